"""``cnnreg run``, ``resume``, ``rerun``, ``runs``, ``evaluate`` and ``predict``."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import List, Optional

import typer

from cnnreg.cli.common import (
    backend_option, coordinator_option, coordinator_timeout_option, launch, load_framework, num_processes_option,
    parse_shape, process_id_option, use_backend, use_backend_of,
)

from cnnreg.errors import CnnregError

DEFAULT_ROOT = Path("runs")


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("resume")(resume_command)
    app.command("rerun")(rerun_command)
    app.command("runs")(runs_command)
    app.command("evaluate")(evaluate_command)
    app.command("predict")(predict_command)


def parse_lr(text: Optional[str]):
    """``--lr``: a number, or ``auto`` (any case); one line naming both for anything else."""
    if text is None:
        return None
    if text.strip().lower() == "auto":
        return "auto"
    from cnnreg.errors import ParameterError, suggestion_text
    from cnnreg.training.optim import check_rate

    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"--lr must be a number > 0 or auto (got '{text}')"
                             f"{suggestion_text(text.strip().lower(), ['auto'])}") from None
    return check_rate(value, "--lr")  # inf, nan, 0 and negative numbers: its own line


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
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run (default: runs/<UTC time>-<arch>-<dataset>/)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve everything and build the model, print the header and the layer summary; train and write nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
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

      cnnreg run resnet50 --backend jax --coordinator host0:1234 --num-processes 2 --process-id 0
    """
    from cnnreg.training.config import RunConfig
    from cnnreg.training.config import resolve

    config = RunConfig(
        architecture=architecture, dataset=dataset, init=init, regularisers=list(reg), clip=clip,
        optimizer=optimizer, lr=parse_lr(lr), schedule=schedule, epochs=epochs, batch_size=batch_size,
        precision=precision, seed=seed, input_shape=parse_shape(input_shape, positive=False), weights=weights,
        freeze_base=freeze_base, fine_tune_epochs=fine_tune_epochs, fine_tune_lr=fine_tune_lr,
        early_stop=early_stop, bn_momentum=bn_momentum, class_weight=class_weight,
    )
    from cnnreg.training.distribute import check_args

    from cnnreg.backends import select

    config.backend = select(backend, activate=False)
    config.distribute = check_args(distribute, config.backend, coordinator=coordinator,
                                   num_processes=num_processes, process_id=process_id)
    use_backend(config.backend)
    plan = resolve(config)  # every user mistake is caught here, before keras is imported
    plan.launch = launch(coordinator, num_processes, process_id, coordinator_timeout)
    _execute(plan, run_dir=run_dir, dry_run=dry_run, quiet=quiet)


def _execute(plan, *, run_dir: Optional[Path], dry_run: bool, quiet: bool) -> None:
    from cnnreg.training import rundir
    from cnnreg.training.resume import launch_rank

    # The run directory is checked, created, probed and locked before anything is loaded: a bad
    # --run-dir, a read-only disk or another process training there costs no time.
    lock = None
    target = Path(run_dir) if run_dir is not None else None
    if not dry_run and launch_rank(plan.launch) == 0:
        if target is None:
            try:
                from cnnreg.training.config import run_names

                target = rundir.new_run_dir(DEFAULT_ROOT, *run_names(plan))
            except OSError as exc:
                raise CnnregError(f"cannot create a run directory in {DEFAULT_ROOT}/ ({exc.strerror or exc})") from None
        lock = rundir.claim(target, fresh=True, created=run_dir is None)
    try:
        _train(plan, target, dry_run=dry_run, quiet=quiet)
    except BaseException:
        if lock is not None:
            lock.abandon()  # removes a directory it created that is still empty
        raise
    if lock is not None:
        lock.release()


def _train(plan, target: Optional[Path], *, dry_run: bool, quiet: bool) -> None:
    from cnnreg.cli.render import console, warn
    from cnnreg.training import loop
    from cnnreg.training.steps import check_step_transforms
    from cnnreg.training.model import prepare

    load_framework()
    with console.status("loading data and building the model...") if console.is_terminal else contextlib.nullcontext():
        prepare(plan, find_lr=False)  # the range test of --lr auto comes next, with its own progress
    if plan.config.lr == "auto":
        _choose_lr(plan, target, dry_run=dry_run, quiet=quiet)
    from cnnreg.cli.runview import header

    panel = header(plan)  # computes the cost model, which may add warnings
    distribution = plan.distribution
    if not distribution.is_chief and not dry_run:  # process 0 reports and writes the run
        console.print(f"process {distribution.process_index} of {distribution.processes}: training with process 0, "
                      "which writes the run directory")
        _closing(loop.start(plan, None, argv=["cnnreg", *sys.argv[1:]], progress=_progress(plan, True)))
        return
    for line in plan.warnings:
        warn(line)
    if not quiet or dry_run:
        console.print(panel)
    if dry_run:
        check_step_transforms(plan, plan.model)  # what the run would check before writing anything
        plan.model.summary(print_fn=lambda text, line_break=True: console.print(text, markup=False, highlight=False))
        return
    outcome = loop.start(plan, target, argv=["cnnreg", *sys.argv[1:]], progress=_progress(plan, quiet))
    _closing(outcome)


def _choose_lr(plan, target: Optional[Path], *, dry_run: bool, quiet: bool) -> None:
    """``--lr auto``: the range test, one line with its choice, and lr_find.png in the run
    directory; with --dry-run only what would be done."""
    from cnnreg.cli.render import console
    from cnnreg.training import lr_find

    if dry_run:
        console.print(f"--lr auto: a range test of {lr_find.DEFAULT_STEPS} steps from {lr_find.DEFAULT_START:g} to "
                      f"{lr_find.DEFAULT_END:g} would choose the learning rate (not run with --dry-run; "
                      "`cnnreg lr-find` runs it alone)", highlight=False, soft_wrap=True)
        plan.optimizer.params["learning_rate"] = "auto"  # the header shows it so
        return
    status = console.status("--lr auto: range test...") if console.is_terminal and not quiet else None

    def progress(done: int, total: int) -> None:
        if status is not None:
            status.update(f"--lr auto: range test, step {done} of {total}...")

    with status if status is not None else contextlib.nullcontext():
        result = lr_find.choose_lr(plan, progress=progress)
    if not quiet:
        console.print(f"--lr auto: {lr_find.describe(result)}; training with lr {plan.config.lr:g}", highlight=False,
                      soft_wrap=True)
    if target is not None:
        lr_find.plot(result, target / "lr_find.png", title=f"--lr auto: {plan.architecture.spec} on {plan.dataset_component.spec}")


def _progress(plan, quiet: bool):
    from cnnreg.cli.render import console
    from cnnreg.training.progress import make_progress

    mode = "quiet" if quiet else ("rich" if console.is_terminal else "plain")
    return make_progress(mode, console, plan.steps_per_epoch)


def _closing(outcome) -> None:
    """The run summary, or one line from a process other than 0 (which writes no run)."""
    from cnnreg.cli.runview import closing

    from cnnreg.cli.render import console

    if outcome.extra.get("process"):
        index, processes = outcome.extra["process"]
        console.print(f"process {index} of {processes}: {outcome.status} after {len(outcome.history)} epochs ({outcome.seconds:.1f} s)")
    else:
        console.print(closing(outcome))
    if outcome.status == "failed":
        raise CnnregError(outcome.message)
    if outcome.status == "interrupted":
        sys.exit(130)


def resume_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `cnnreg run`."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
    coordinator: Optional[str] = coordinator_option(),
    num_processes: Optional[int] = num_processes_option(),
    process_id: Optional[int] = process_id_option(),
    coordinator_timeout: int = coordinator_timeout_option(),
) -> None:
    """Continue an interrupted or crashed run from its last completed epoch.

    Examples:

      cnnreg resume runs/20261126-170000-resnet34-digits

      cnnreg resume /shared/runs/resnet50 --coordinator host0:1234 --num-processes 2 --process-id 1
    """
    from cnnreg.cli.render import console, warn
    from cnnreg.training import rundir
    from cnnreg.training.resume import launch_rank, resume

    data = rundir.load_manifest(run_dir)
    if data.get("status") == "completed":
        raise CnnregError(f"run {run_dir} is already completed; `cnnreg rerun {run_dir}` starts a new one")
    from cnnreg.training.distribute import check_args
    from cnnreg.training.saved import run_preprocess

    config = rundir.run_config(data, Path(run_dir))
    use_backend(config.backend)  # a run continues on the backend it started on
    check_args(config.distribute, config.backend, coordinator=coordinator, num_processes=num_processes, process_id=process_id)
    arguments = launch(coordinator, num_processes, process_id, coordinator_timeout)
    rank = launch_rank(arguments)
    run_preprocess(data, Path(run_dir))  # refused before keras loads
    # checked and locked before keras loads; the loop takes the same lock again
    lock = rundir.claim(Path(run_dir), fresh=False) if rank == 0 else contextlib.nullcontext()
    def announce(plan, done: int) -> None:  # as `cnnreg run` shows it, once the run is recovered
        from cnnreg.cli.runview import header

        panel = header(plan, resumed=done)  # computes the cost model, which may add warnings
        for line in plan.warnings:
            warn(line)
        if not quiet:
            console.print(panel)

    with lock:
        load_framework()
        outcome = resume(Path(run_dir), progress=_progress_for(config, data, quiet or rank != 0),
                              launch=arguments, report=warn, announce=announce)
    _closing(outcome)


def _progress_for(config, data, quiet: bool):
    import math

    from cnnreg.cli.render import console
    from cnnreg.training.progress import make_progress

    train = (data.get("data") or {}).get("train", config.batch_size)
    mode = "quiet" if quiet else ("rich" if console.is_terminal else "plain")
    return make_progress(mode, console, max(1, math.ceil(train / config.batch_size)))


def rerun_command(
    run_dir: Path = typer.Argument(..., help="A run directory to replay."),
    set_: List[str] = typer.Option([], "--set", help="Change one setting: --set epochs=3 --set seed=1 --set lr=0.01."),
    new_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the new run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
) -> None:
    """Start a new run from another run's manifest (config-free reproducibility).

    Example:

      cnnreg rerun runs/20261126-170000-lenet5-digits --set epochs=20
    """
    from cnnreg.training import rundir
    from cnnreg.training.config import rerun_config
    from cnnreg.training.config import resolve

    config = rerun_config(run_dir, list(set_))
    config.backend = use_backend(config.backend)  # the original run's backend unless --set backend=...
    plan = resolve(config)
    replayed = rundir.load_manifest(Path(run_dir)).get("weights")
    if isinstance(replayed, dict) and (config.weights or "none") == replayed.get("weights"):
        plan.replayed_weights = replayed  # a changed file is said in a warning
    _execute(plan, run_dir=new_dir, dry_run=False, quiet=quiet)


def runs_command(
    root: Path = typer.Option(DEFAULT_ROOT, "--root", help="Folder holding run directories."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List runs: architecture, dataset, status, best validation accuracy, epochs, duration.

    A narrow terminal drops whole columns (time, dataset, architecture, epochs first) rather
    than cut a name or a number.

    Example:

      cnnreg runs --json
    """
    from cnnreg.training.rundir import list_runs, shown_status

    found = list_runs(root)
    rows = []
    for path, data in found:
        if not isinstance(data, dict):
            continue
        config = data.get("config") if isinstance(data.get("config"), dict) else {}
        best = data.get("best") if isinstance(data.get("best"), dict) else {}
        rows.append({
            "run_dir": str(path), "architecture": config.get("architecture"), "dataset": config.get("dataset"),
            "status": shown_status(path, data), "best": best, "epochs_done": data.get("epochs_done", 0),
            "epochs": _total_epochs(config), "seconds": data.get("seconds"), "test": (data.get("test") or {}).get("accuracy"),
        })
    if as_json:
        from cnnreg.version import __version__
        from cnnreg.cli.render import print_json

        print_json({"cnnreg": __version__, "runs": rows})
        return
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
            "status": str(row["status"]), "best val acc": _number(best), "test acc": _number(row["test"]),
            "epochs": f"{row['epochs_done']}/{row['epochs']}",
            "time": "-" if not isinstance(row["seconds"], (int, float)) or not row["seconds"] else f"{row['seconds']:.0f} s",
        })
    columns, headers = _runs_columns(cells, console.width)
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(headers[column], justify="right" if column in RUNS_NUMBERS else "left", no_wrap=True,
                         min_width=_natural(column, headers[column], cells),
                         overflow="fold" if column == "run" else "ellipsis")
    for cell in cells:
        table.add_row(*(cell[column] for column in columns))
    console.print(table)


#: `cnnreg runs`' columns; narrower terminals first shorten the headers (RUNS_SHORT), then drop
#: whole columns in the order of RUNS_DROPPED (the run's own folder name usually holds the
#: architecture and dataset) rather than cut a name or a number.  The run column always stays.
RUNS_COLUMNS = ("run", "architecture", "dataset", "status", "best val acc", "test acc", "epochs", "time")
RUNS_SHORT = {"architecture": "arch", "best val acc": "val acc", "test acc": "test"}
RUNS_DROPPED = ("time", "dataset", "architecture", "epochs", "test acc", "best val acc", "status")
RUNS_NUMBERS = ("best val acc", "test acc", "epochs", "time")


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _natural(column: str, header: str, cells: list[dict]) -> int:
    from rich.cells import cell_len

    return max([cell_len(header), *(cell_len(cell[column]) for cell in cells)])


def _runs_columns(cells: list[dict], width: int) -> tuple[list[str], dict[str, str]]:
    """The columns that fit ``width`` uncut, and their headers."""
    columns = list(RUNS_COLUMNS)
    headers = {column: column for column in columns}

    def needed() -> int:  # each column at its widest cell, " │ " between columns
        return sum(_natural(c, headers[c], cells) for c in columns) + 3 * (len(columns) - 1)

    if needed() <= width:
        return columns, headers
    headers.update(RUNS_SHORT)
    for column in RUNS_DROPPED:
        if needed() <= width:
            break
        columns.remove(column)
    return columns, headers


def _total_epochs(config: dict):
    """Both phases' epochs (--epochs, then --fine-tune-epochs), as the run counts them."""
    epochs, more = config.get("epochs"), config.get("fine_tune_epochs")
    if type(epochs) is int and type(more) is int and more > 0:
        return epochs + more
    return epochs


def evaluate_command(
    model: str = typer.Argument(..., metavar="RUN_DIR|WEIGHTS", help="A run directory, or a weights name (`cnnreg list weights`)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset spec (default: the one it was trained on)."),
    split: str = typer.Option("test", "--split", help="train, validation or test."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Evaluate a run's best model or pretrained weights: loss, accuracy, top-5, per-class
    precision/recall (and a run's confusion.png).

    Examples:

      cnnreg evaluate runs/20261126-170000-lenet5-digits --split test

      cnnreg evaluate lenet5.digits --dataset digits
    """
    from cnnreg.training.report import evaluate
    from cnnreg.training.saved import open_trained

    trained = open_trained(model)
    use_backend_of(trained)
    result = evaluate(trained, split, dataset)
    if as_json:
        from cnnreg.version import __version__
        from cnnreg.cli.render import print_json

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
    model: str = typer.Argument(..., metavar="RUN_DIR|WEIGHTS", help="A run directory, or a weights name (`cnnreg list weights`)."),
    images: List[Path] = typer.Argument(..., help="Image files (png, jpg, bmp, gif)."),
    top: int = typer.Option(3, "--top", help="How many classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Classify images with a run's best model or pretrained weights, preprocessed exactly as
    in training; a weights entry names its classes (ImageNet's 1000 for keras-*.imagenet).

    Examples:

      cnnreg predict runs/20261126-170000-lenet5-digits seven.png --top 3

      cnnreg predict keras-resnet50.imagenet cat.jpg --top 3
    """
    if top < 1:
        raise CnnregError(f"--top must be >= 1 (got {top})")
    from cnnreg.training.saved import open_trained
    from cnnreg.training.report import predict

    trained = open_trained(model)
    use_backend_of(trained)
    results = predict(trained, list(images), top)
    if as_json:
        from cnnreg.version import __version__
        from cnnreg.cli.render import print_json

        print_json({"cnnreg": __version__, "predictions": results})
        return
    from cnnreg.cli.render import console

    for item in results:
        ranked = "  ".join(f"{t['class']} ({t['class_id']}) {t['probability']:.3f}" for t in item["top"])
        console.print(f"{item['image']}: {ranked}", highlight=False)
