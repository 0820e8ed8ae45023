"""Exports from Python: ``cnnreg.export``, the function under ``cnnreg export``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnreg.api.results import Result
from cnnreg.errors import CnnregError
from cnnreg.version import __version__

__all__ = ["export", "ExportResult"]


@dataclass(repr=False)
class ExportResult(Result):
    """``export``: the files written, their hashes, and the parity with the Keras model
    (``passed`` is False when the export does not give the model's answers; the command then
    exits 1)."""

    exported: Any  # cnnreg.training.export.Exported

    @property
    def passed(self) -> bool:
        return self.exported.parity.passed

    @property
    def path(self) -> str:
        return self.exported.path

    @property
    def parity(self) -> Any:
        return self.exported.parity

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, **self.exported.to_dict()}

    def title(self) -> str:
        return f"{self.exported.format} export of {self.exported.source}: {self.exported.parity.line(self.exported.format)}"


def export(
    model: str | Path,
    *,
    format: str = "onnx",  # noqa: A002 - the option's name
    out: str | Path | None = None,
    quantize: str | None = None,
    images: int = 100,
    backend: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a run's best model or a weights entry (``cnnreg export``) to ``format`` (onnx,
    saved_model, litert, openvino) at ``out`` (default: into the run directory), then load it in
    its own runtime and compare it with the Keras model on ``images`` test images: the result's
    ``parity`` (max |Δ probability|, top-1 agreement) and ``passed``.  ``quantize``: float16 or
    int8 where the format offers it.  ``progress(what)`` is told each stage."""
    from cnnreg.backends import load_keras, select
    from cnnreg.training.export import check_out, default_out, resolve_format
    from cnnreg.training.export import export as write_export
    from cnnreg.training.saved import open_trained

    chosen = select(backend, activate=False)
    fmt = resolve_format(format, quantize=quantize, backend=chosen)
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise CnnregError(f"--images must be >= 1 (got {images})")
    trained = open_trained(model)
    if trained.run_dir is None and trained.entry is None:
        raise CnnregError(f"{model} is an export already; export the run or weights it was made from")
    target = check_out(fmt, Path(out) if out is not None else default_out(fmt, trained))
    select(chosen)
    load_keras()
    return ExportResult(write_export(trained, fmt, target, quantize=quantize, images=images, backend=chosen,
                                     progress=progress))
