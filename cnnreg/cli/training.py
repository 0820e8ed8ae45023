"""``cnnreg run``, ``resume``, ``rerun``, ``runs``, ``evaluate`` and ``predict``: each parses its
options, calls its function of :mod:`cnnreg.api.runs` and renders the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from cnnreg.cli.common import (
    backend_option,
    coordinator_option,
    coordinator_timeout_option,
    num_processes_option,
    process_id_option,
)
from cnnreg.errors import CnnregError


#: cnnreg.training.execute.DEFAULT_ROOT, said here so that `cnnreg --help` imports no training code.
DEFAULT_ROOT = Path("runs")


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("resume")(resume_command)
    app.command("rerun")(rerun_command)
    app.command("runs")(runs_command)
    app.command("log")(log_command)
    app.command("evaluate")(evaluate_command)
    app.command("predict")(predict_command)


def run_command(
    architecture: str = typer.Argument(..., help="Architecture spec, e.g. resnet34 or resnet34:batchnorm=false."),
    dataset: str = typer.Option("digits", "--dataset", "-d", help="Dataset spec (default: digits, shipped with scikit-learn)."),
    init: Optional[str] = typer.Option(None, "--init", help="Initialiser for every Conv/Dense kernel, e.g. he_normal."),
    reg: List[str] = typer.Option([], "--reg", help="Regulariser spec; repeatable: --reg l2=1e-4 --reg flip."),
    clip: Optional[str] = typer.Option(None, "--clip", help="Gradient clipping: value=X, norm=X (per tensor) or global_norm=X."),
    optimizer: str = typer.Option("adam", "--optimizer", help="Optimizer spec: sgd:momentum=0.9, adam, adamw, rmsprop, ..."),
    lr: Optional[str] = typer.Option(None, "--lr", help="Learning rate (overrides the optimizer's), or auto: a range test (`cnnreg lr-find`) chooses it first and the run records the number."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="Learning-rate schedule: cosine, step, exponential, plateau (warmup=N epochs)."),
    epochs: int = typer.Option(10, "--epochs", help="Epochs (phase 1 when fine-tuning)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Mini-batch size."),
    precision: str = typer.Option("float32", "--precision", help="float32, mixed_float16 or mixed_bfloat16."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, shuffling and augmentation."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Model input HxWxC, e.g. 64x64x3 (default: the dataset's)."),
    weights: str = typer.Option("none", "--weights", help="Starting weights: none, imagenet (keras-* architectures), a weights name (`cnnreg list weights`), a run directory, a .keras file or a .weights.h5 / .h5 file."),
    freeze_base: bool = typer.Option(False, "--freeze-base", help="Transfer learning phase 1: train only the new head."),
    fine_tune_epochs: int = typer.Option(0, "--fine-tune-epochs", help="Phase 2: unfreeze the base for N more epochs."),
    fine_tune_lr: Optional[float] = typer.Option(None, "--fine-tune-lr", help="Learning rate of phase 2 (default: lr / 10)."),
    early_stop: Optional[int] = typer.Option(None, "--early-stop", help="Stop after N epochs without validation-loss improvement."),
    bn_momentum: str = typer.Option("auto", "--bn-momentum", help="BatchNorm momentum: auto (0.9 for small data) or a number."),
    class_weight: Optional[str] = typer.Option(None, "--class-weight", help="balanced: weight each class by n / (classes × n_class) in the loss."),
    log: List[str] = typer.Option([], "--log", help="Logger spec, repeatable: tensorboard (the default), csv, mlflow:uri=URL,experiment=NAME, none (`cnnreg list loggers`)."),
    checkpoint: str = typer.Option("auto", "--checkpoint", help="When the resumable checkpoint (model + optimizer) is written: auto (every epoch for a checkpoint under 64 MB, else at most once a minute, and at the end), epoch, or SECONDS of training between two."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run (default: runs/<UTC time>-<arch>-<dataset>/)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve everything and build the model, print the header and the layer summary; train and write nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output: the run's outcome and history (nothing else on stdout)."),
    backend: Optional[str] = backend_option(),
    distribute: str = typer.Option("auto", "--distribute", help="auto, none, mirrored (TensorFlow GPUs) or data-parallel (JAX devices)."),
    coordinator: Optional[str] = coordinator_option(),
    num_processes: Optional[int] = num_processes_option(),
    process_id: Optional[int] = process_id_option(),
    coordinator_timeout: int = coordinator_timeout_option(),
) -> None:
    """Train ARCHITECTURE on a dataset and write a run directory.

    Examples:

      cnnreg run lenet5 --epochs 10

      cnnreg run resnet34 --init he_normal --clip norm=1.0

      cnnreg run alexnet --reg dropout=0.5 --reg crop --optimizer sgd:momentum=0.9 --lr 0.01

      cnnreg run lenet5 --optimizer sgd:momentum=0.9 --lr auto

      cnnreg run keras-xception --dataset tf_flowers --weights imagenet --freeze-base --reg flip

      cnnreg run lenet5 --dataset digits:classes=5-9,per_class=10 --weights lenet5.digits --freeze-base --fine-tune-epochs 5

      cnnreg run lenet5 --weights runs/20261126-170000-lenet5-digits --epochs 3

      cnnreg run resnet18 --dataset ./my_photos --class-weight balanced

      cnnreg run lenet5 --log mlflow:uri=http://127.0.0.1:5000,experiment=lecture --log csv

      cnnreg run resnet50 --backend jax --coordinator host0:1234 --num-processes 2 --process-id 0
    """

    from cnnreg.api.runs import run

    result = run(
        architecture, dataset=dataset, init=init, reg=list(reg), clip=clip, optimizer=optimizer, lr=lr,
        schedule=schedule, epochs=epochs, batch_size=batch_size, precision=precision, seed=seed,
        input_shape=input_shape, weights=weights, freeze_base=freeze_base, fine_tune_epochs=fine_tune_epochs,
        fine_tune_lr=fine_tune_lr, early_stop=early_stop, bn_momentum=bn_momentum, class_weight=class_weight,
        log=list(log), checkpoint=checkpoint, run_dir=run_dir, dry_run=dry_run, backend=backend, distribute=distribute, coordinator=coordinator,
        num_processes=num_processes, process_id=process_id, coordinator_timeout=coordinator_timeout,
        display=cli_display(quiet=quiet or as_json, dry_run=dry_run),
    )
    _closing(result, as_json=as_json)


def cli_display(*, quiet: bool, dry_run: bool = False):
    """The terminal's :class:`cnnreg.cli.runview.CliDisplay` (imported with the run, not at start-up)."""
    from cnnreg.cli.runview import CliDisplay

    return CliDisplay(quiet=quiet, dry_run=dry_run)


def _closing(result, *, as_json: bool = False) -> None:
    """The run summary (or its JSON), or one line from a process other than 0 (which writes no
    run); a failed run is its one error line and exit status 2, an interrupted one 130."""
    from cnnreg.cli.render import console, print_json
    from cnnreg.cli.runview import closing

    if as_json:
        print_json(result.to_dict())
    elif result.status == "dry-run":
        return
    elif result.process:
        index, processes = result.process
        console.print(f"process {index} of {processes}: {result.status} after {len(result.history)} epochs "
                      f"({result.seconds:.1f} s)")
    else:
        console.print(closing(result))
    if result.status == "failed":  # the message is the run's own line: exit status 2
        raise CnnregError(result.message)
    if result.status == "interrupted":
        sys.exit(130)


def resume_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `cnnreg run`."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output: the run's outcome and history (nothing else on stdout)."),
    coordinator: Optional[str] = coordinator_option(),
    num_processes: Optional[int] = num_processes_option(),
    process_id: Optional[int] = process_id_option(),
    coordinator_timeout: int = coordinator_timeout_option(),
) -> None:
    """Continue a stopped run from its last completed epoch.

    A run that was interrupted or crashed goes on from its last completed epoch.

    Examples:

      cnnreg resume runs/20261126-170000-resnet34-digits

      cnnreg resume /shared/runs/resnet50 --coordinator host0:1234 --num-processes 2 --process-id 1
    """

    from cnnreg.api.runs import resume

    result = resume(run_dir, coordinator=coordinator, num_processes=num_processes, process_id=process_id,
                    coordinator_timeout=coordinator_timeout, display=cli_display(quiet=quiet or as_json))
    _closing(result, as_json=as_json)


def rerun_command(
    run_dir: Path = typer.Argument(..., help="A run directory to replay."),
    set: List[str] = typer.Option([], "--set", help="Change one setting: --set epochs=3 --set seed=1 --set lr=0.01."),
    new_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the new run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output: the run's outcome and history (nothing else on stdout)."),
) -> None:
    """Start a new run from another run's manifest.

    Config-free reproducibility: the manifest names every component and option.

    Example:

      cnnreg rerun runs/20261126-170000-lenet5-digits --set epochs=20
    """

    from cnnreg.api.runs import rerun

    result = rerun(run_dir, set=list(set), new_dir=new_dir, display=cli_display(quiet=quiet or as_json))
    _closing(result, as_json=as_json)


def runs_command(
    root: Path = typer.Option(DEFAULT_ROOT, "--root", help="Folder holding run directories."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List runs with their status and best validation accuracy.

    Architecture, dataset, regularisers, status, best validation accuracy, epochs, duration.

    A narrow terminal drops whole columns (time, dataset, architecture, epochs first) rather
    than cut a name or a number.

    Example:

      cnnreg runs --json
    """

    from cnnreg.api.runs import list_runs

    result = list_runs(root)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    rows = result.runs
    from rich.table import Table

    from cnnreg.cli.render import console

    if not rows:
        console.print(f"no runs under {root}/")
        return
    cells = []
    for row in rows:
        best = next(iter(row["best"].values()), None) if row["best"] else None
        cells.append({
            "run": Path(row["run_dir"]).name, "architecture": str(row["architecture"]), "dataset": str(row["dataset"]),
            "regularisers": ", ".join(map(str, row.get("regularisers") or [])) or "-",
            "status": str(row["status"]), "best val acc": _number(best), "test acc": _number(row["test"]),
            "epochs": f"{row['epochs_done']}/{row['epochs']}",
            "time": "-" if not isinstance(row["seconds"], (int, float)) or not row["seconds"] else f"{row['seconds']:.0f} s",
        })
    columns, headers = _runs_columns(cells, console.width)
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        wraps = column == "regularisers"  # a list: wraps at its commas rather than push a figure out
        table.add_column(headers[column], justify="right" if column in RUNS_NUMBERS else "left", no_wrap=not wraps,
                         min_width=RUNS_LIST_WIDTH if wraps else _natural(column, headers[column], cells),
                         overflow="fold" if column in ("run", "regularisers") else "ellipsis")
    for cell in cells:
        table.add_row(*(cell[column] for column in columns))
    console.print(table)


#: `cnnreg runs`' columns; narrower terminals first shorten the headers (RUNS_SHORT), then drop
#: whole columns in the order of RUNS_DROPPED rather than cut a name or a number.  The
#: architecture and dataset go early only where every run's folder name carries them (the default
#: names do, --run-dir names need not).  The run column always stays.
RUNS_COLUMNS = ("run", "architecture", "dataset", "regularisers", "status", "best val acc", "test acc", "epochs", "time")
RUNS_SHORT = {"architecture": "arch", "regularisers": "regs", "best val acc": "val acc", "test acc": "test"}
RUNS_DROPPED = ("time", "epochs", "test acc", "architecture", "regularisers", "dataset", "best val acc", "status")
RUNS_CARRIED = ("architecture", "dataset")
RUNS_NUMBERS = ("best val acc", "test acc", "epochs", "time")
#: The regularisers column wraps; it counts this many columns (or fewer) when columns are dropped.
RUNS_LIST_WIDTH = 12


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _natural(column: str, header: str, cells: list[dict]) -> int:
    from rich.cells import cell_len

    return max([cell_len(header), *(cell_len(cell[column]) for cell in cells)])


def _carried(column: str, cells: list[dict]) -> bool:
    """Whether every run's folder name holds its ``column`` (the name, before any parameters)."""
    import re

    return all(re.split(r"[:=]", cell[column], maxsplit=1)[0].lower() in cell["run"].lower() for cell in cells)


def _runs_columns(cells: list[dict], width: int) -> tuple[list[str], dict[str, str]]:
    """The columns that fit ``width`` uncut, and their headers."""
    columns = list(RUNS_COLUMNS)
    headers = {column: column for column in columns}

    def needed() -> int:  # each column at its widest cell (a list at most RUNS_LIST_WIDTH), " │ " between
        return (sum(min(_natural(c, headers[c], cells), RUNS_LIST_WIDTH) if c == "regularisers"
                    else _natural(c, headers[c], cells) for c in columns) + 3 * (len(columns) - 1))

    if needed() <= width:
        return columns, headers
    headers.update(RUNS_SHORT)
    carried = [c for c in RUNS_CARRIED if _carried(c, cells)]
    order = ["time", *carried, *(c for c in RUNS_DROPPED if c not in carried and c != "time")]
    for column in order:
        if needed() <= width:
            break
        columns.remove(column)
    return columns, headers


def log_command(
    run_dir: Path = typer.Argument(..., help="A run directory that has ended (completed, failed or interrupted)."),
    log: List[str] = typer.Option(..., "--log", help="Logger spec, repeatable: mlflow:uri=URL,experiment=NAME, csv (`cnnreg list loggers`)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Send a run that has ended to loggers (MLflow, CSV, ...).

    Its parameters, every epoch of history.csv, test metrics, model.keras, curves.png and run.json.

    For a run whose tracker was down while it trained, or one trained without --log. Each logger gets a new run; its id is kept in run.json.

    Example:

      cnnreg log runs/lenet5 --log mlflow:uri=http://127.0.0.1:5000
    """
    from cnnreg.api.runs import log_run

    result = log_run(run_dir, log=list(log))
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    from cnnreg.cli.render import console, warn

    for spec, reason in result.failed.items():
        warn(f"logger {spec}: {reason}")
    for spec, run_id in result.trackers.items():
        console.print(f"{spec}: {result.epochs} epochs" + (f", run {run_id}" if run_id else ""), highlight=False,
                      soft_wrap=True)


def evaluate_command(
    model: str = typer.Argument(..., metavar="RUN_DIR|EXPORT|WEIGHTS", help="A run directory, an export written by `cnnreg export`, or a weights name (`cnnreg list weights`)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset spec (default: the one it was trained on)."),
    split: str = typer.Option("test", "--split", help="train, validation or test."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Evaluate a run's best model or pretrained weights.

    Loss, accuracy, top-5, per-class precision/recall (and a run's confusion.png).

    Examples:

      cnnreg evaluate runs/20261126-170000-lenet5-digits --split test

      cnnreg evaluate lenet5.digits --dataset digits
    """

    from cnnreg.api.runs import evaluate

    result = evaluate(model, dataset=dataset, split=split).evaluation
    if as_json:
        from cnnreg.cli.render import print_json
        from cnnreg.version import __version__

        print_json({"cnnreg": __version__, "evaluation": result})
        return
    from rich.table import Table

    from cnnreg.cli.render import console

    line = f"{result['split']}: {result['examples']} examples  loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}"
    if "top5" in result:
        line += f"  top-5 {result['top5']:.4f}"
    console.print(line)
    table = Table(show_edge=False, pad_edge=False)
    for column in ("class", "precision", "recall", "examples"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, p, r, row in zip(result["class_names"], result["precision"], result["recall"], result["confusion"]):
        table.add_row(name, f"{p:.3f}", f"{r:.3f}", str(sum(row)))
    console.print(table)
    if result["confusion_png"]:
        console.print(f"confusion matrix: {result['confusion_png']}")


def predict_command(
    model: str = typer.Argument(..., metavar="RUN_DIR|EXPORT|WEIGHTS", help="A run directory, an export written by `cnnreg export`, or a weights name (`cnnreg list weights`)."),
    images: List[Path] = typer.Argument(..., help="Image files (png, jpg, bmp, gif)."),
    top: int = typer.Option(3, "--top", help="How many classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Classify images with a run's best model or pretrained weights.

    Images are preprocessed exactly as in training; a weights entry names its classes (ImageNet's 1000 for keras-*.imagenet).

    Examples:

      cnnreg predict runs/20261126-170000-lenet5-digits seven.png --top 3

      cnnreg predict keras-resnet50.imagenet cat.jpg --top 3

      cnnreg predict lenet5.onnx seven.png
    """

    from cnnreg.api.runs import predict

    results = predict(model, list(images), top=top).predictions
    if as_json:
        from cnnreg.cli.render import print_json
        from cnnreg.version import __version__

        print_json({"cnnreg": __version__, "predictions": results})
        return
    from cnnreg.cli.render import console

    for item in results:
        ranked = "  ".join(f"{t['class']} ({t['class_id']}) {t['probability']:.3f}" for t in item["top"])
        console.print(f"{item['image']}: {ranked}", highlight=False)
