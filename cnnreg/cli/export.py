"""``cnnreg export``: a run or weights entry as ONNX, SavedModel, LiteRT or OpenVINO, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def export_command(
    model: str = typer.Argument(..., metavar="RUN_DIR|WEIGHTS", help="A run directory, or a weights name (`cnnreg list weights`)."),  # noqa: E501
    format: str = typer.Option("onnx", "--format", "-f", help="onnx, saved_model, litert or openvino."),  # noqa: A002
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write it: a .onnx, .tflite or .xml file, or the SavedModel's folder (default: model.onnx ... in the run directory)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="float16 (litert, openvino) or int8 (onnx, litert): judged by top-1 agreement >= 99%."),
    images: int = typer.Option(100, "--images", help="How many test images the parity check runs on."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Keras backend that exports (default: KERAS_BACKEND, else tensorflow)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Export to ONNX, SavedModel, LiteRT or OpenVINO, checked.

    A run or a weights entry, exported and checked against Keras.

    The file is loaded in its own runtime and compared with the Keras model on the run's test images, at batch 1 and 7: max |Δp| and top-1 agreement, printed and written with the preprocessing and class names to PATH.cnnreg.json, so that predict and evaluate take the export as a model. Exit status 1 when parity fails (tolerance 1e-4 for onnx and saved_model, 1e-3 for litert and openvino).

    Examples:

      cnnreg export runs/lenet5 --format onnx --out lenet5.onnx

      cnnreg export runs/lenet5 -f litert --quantize int8 -o lenet5.tflite

      cnnreg predict lenet5.onnx seven.png
    """
    from cnnreg.api.export import export
    from cnnreg.cli.render import console, err_console, warn

    def run(progress=None):
        return export(model, format=format, out=out, quantize=quantize, images=images, backend=backend,
                      progress=progress)

    if as_json or not err_console.is_terminal:
        result = run()
    else:
        with err_console.status(f"exporting {model} to {format}") as status:
            result = run(lambda what: status.update(what))
    exported = result.exported
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
    else:
        for note in exported.notes:
            warn(note)
        console.print(f"exported {exported.source} to {exported.path} ({exported.format}"
                      + (f", {exported.quantize}" if exported.quantize else "") + f", {exported.size:,} bytes)",
                      highlight=False, soft_wrap=True)
        console.print(exported.parity.line(exported.format), highlight=False, soft_wrap=True)
        console.print(f"sidecar: {exported.sidecar}", highlight=False, soft_wrap=True)
    if not result.passed:
        from cnnreg.errors import CnnregError

        error = CnnregError(f"the {exported.format} export does not give the model's answers: "
                            f"{exported.parity.line(exported.format)}")
        error.exit_code = 1
        raise error
