"""``cnnreg sweep ARCH [options]`` and ``cnnreg sweep show STUDY``: sweeps on Optuna."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from cnnreg.cli.common import backend_option

DEFAULT_ROOT = Path("sweeps")


class SweepGroup(TyperGroup):
    """``cnnreg sweep ARCH ...`` runs a sweep (as ``cnnreg sweep run ARCH ...``); ``cnnreg sweep
    show STUDY`` shows one."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(
    cls=SweepGroup, no_args_is_help=True,
    help="Many runs from one command line, on Optuna.\n\n"
    "Every run option may take several values.\n\n"
    "cnnreg sweep ARCH [OPTIONS] is cnnreg sweep run ARCH [OPTIONS] (its options: cnnreg sweep run --help).\n\n"
    "Example: cnnreg sweep lenet5 --init he_normal,glorot_uniform --epochs 1 --study local",
)


def register(app: typer.Typer) -> None:
    app.add_typer(sweep_app, name="sweep")


@sweep_app.command("run")
def run_command(
    architecture: str = typer.Argument(..., help="Architecture spec, as for `cnnreg run`."),
    dataset: str = typer.Option("digits", "--dataset", "-d", help="Dataset spec: one value (every trial uses the same split)."),
    init: Optional[str] = typer.Option(None, "--init", help="Initialisers, e.g. he_normal,glorot_uniform."),
    reg: List[str] = typer.Option([], "--reg", help="Regularisers per slot, repeatable: --reg none,dropout=0.3 --reg l2:factor=1e-5..1e-3:log."),
    clip: Optional[str] = typer.Option(None, "--clip", help="Clipping, e.g. none,norm=1.0."),
    optimizer: str = typer.Option("adam", "--optimizer", help="Optimizers; '|' between specs with parameters: 'sgd:momentum=0.9|adam'."),
    lr: Optional[str] = typer.Option(None, "--lr", help="Learning rates: 0.001,0.01 or a range 1e-4..1e-1:log."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="Schedules, e.g. none,cosine."),
    epochs: str = typer.Option("10", "--epochs", help="Epochs: 10, 5,10 or a range 5..20."),
    batch_size: str = typer.Option("32", "--batch-size", help="Batch sizes, e.g. 32,64."),
    precision: str = typer.Option("float32", "--precision", help="Precisions, e.g. float32,mixed_bfloat16."),
    seed: str = typer.Option("0", "--seed", help="Replicates: every configuration runs with every seed, e.g. 0,1,2."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Model inputs HxWxC, e.g. 32x32x1,64x64x1."),
    weights: str = typer.Option("none", "--weights", help="Starting weights, as for `cnnreg run`."),
    freeze_base: bool = typer.Option(False, "--freeze-base", help="Transfer learning phase 1: train only the new head."),
    fine_tune_epochs: str = typer.Option("0", "--fine-tune-epochs", help="Fine-tuning epochs."),
    fine_tune_lr: Optional[str] = typer.Option(None, "--fine-tune-lr", help="Fine-tuning learning rates."),
    early_stop: Optional[str] = typer.Option(None, "--early-stop", help="Early-stopping patience."),
    bn_momentum: str = typer.Option("auto", "--bn-momentum", help="BatchNorm momentum."),
    class_weight: Optional[str] = typer.Option(None, "--class-weight", help="none,balanced."),
    log: List[str] = typer.Option([], "--log", help="Loggers of every trial, repeatable, as for `cnnreg run` (not swept)."),
    trials: Optional[int] = typer.Option(None, "--trials", help="Trials in all, over every worker (default: the grid's cells, or 10)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="grid (default when every option is a list), random or tpe."),
    prune: str = typer.Option("none", "--prune", help="none, median or hyperband, on the metric after every epoch."),
    metric: str = typer.Option("val_accuracy", "--metric", help="val_accuracy, val_loss, accuracy, loss, test_accuracy or test_loss."),
    direction: Optional[str] = typer.Option(None, "--direction", help="maximize or minimize (default: the metric's)."),
    study: Optional[str] = typer.Option(None, "--study", help="The study's name (default: the architecture's); workers with the same name join it."),
    storage: Optional[str] = typer.Option(None, "--storage", help="postgresql://... or mysql://... for workers on many machines (default: sweeps/STUDY/study.db)."),
    root: Path = typer.Option(DEFAULT_ROOT, "--root", help="Folder of the studies' files and trials' run directories."),
    heartbeat: int = typer.Option(30, "--heartbeat", help="Seconds between a trial's heartbeats; one silent for twice that is re-run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final table."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output: the study's summary."),
    backend: Optional[str] = backend_option(),
) -> None:
    """Run a sweep: options with several values.

    Every run option may take several values; trials are ordinary run directories.

    A list of alternatives is comma-separated, or '|'-separated when they have parameters; a
    range is LOW..HIGH or LOW..HIGH:log; --seed values are replicates.  Run the same command on
    several processes or machines (with --storage postgresql://...) to share the work.

    Examples:

      cnnreg sweep lenet5 --init he_normal,glorot_uniform --epochs 1 --study local

      cnnreg sweep mlp_bn --init he_normal,glorot_uniform --reg none,batchnorm=false --seed 0,1,2

      cnnreg sweep lenet5 --lr 1e-4..1e-1:log --sampler tpe --trials 20 --prune median

      cnnreg sweep resnet18 --reg none,dropout=0.3 --trials 4 --study shared --storage postgresql://cnnreg@db/cnnreg
    """
    from cnnreg.api.sweeps import sweep
    from cnnreg.cli.render import console, warn

    report = None if quiet or as_json else (lambda line: console.print(line, highlight=False, soft_wrap=True))
    result = sweep(
        architecture, dataset=dataset, init=init, reg=list(reg), clip=clip, optimizer=optimizer, lr=lr,
        schedule=schedule, epochs=epochs, batch_size=batch_size, precision=precision, seed=seed,
        input_shape=input_shape, weights=weights, freeze_base=freeze_base, fine_tune_epochs=fine_tune_epochs,
        fine_tune_lr=fine_tune_lr, early_stop=early_stop, bn_momentum=bn_momentum, class_weight=class_weight,
        log=list(log), trials=trials, sampler=sampler, prune=prune, metric=metric, direction=direction, study=study,
        storage=storage, root=root, heartbeat=heartbeat, quiet=quiet or as_json, backend=backend,
        report=report if report is not None else (lambda line: None), warn=warn,
    )
    _render(result, as_json=as_json)


@sweep_app.command("show")
def show_command(
    study: str = typer.Argument(..., help="The study's name."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Its storage URL (default: sweeps/STUDY/study.db)."),
    root: Path = typer.Option(DEFAULT_ROOT, "--root", help="Folder of the studies' files."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """A study's trials, best first, and its plots.

    Trials best first (state, the varied options, the metric, duration, run
    directory), and its plots in sweeps/STUDY/: history, parallel coordinates, parameter
    importances, and mean ± std per configuration when seeds replicate.  Works while workers run.

    Examples:

      cnnreg sweep show local

      cnnreg sweep show shared --storage postgresql://cnnreg@db/cnnreg --json
    """
    from cnnreg.api.sweeps import show_sweep

    _render(show_sweep(study, storage=storage, root=root), as_json=as_json)


def _render(result, *, as_json: bool) -> None:
    """The study's JSON, or its table: a trial a row, best first, at 80 columns (a parameter's
    long value is cut with "…"; the JSON and `cnnreg runs --root sweeps/STUDY` have them whole)."""
    from rich.table import Table
    from rich.text import Text

    from cnnreg.cli.render import console, print_json

    if as_json:
        print_json(result.to_dict())
        return
    data = result.to_dict()
    console.print(result.title(), highlight=False, soft_wrap=True)
    if not data["trials"]:
        return
    names = sorted({k for row in data["trials"] for k in row["params"]})
    spread = any(row["std"] for row in data["trials"])
    metric = data.get("metric") or "value"
    rows = []
    for row in data["trials"]:
        rows.append([str(row["number"]), row["state"],
                     *[_cell(row["params"][n]) if n in row["params"] else "" for n in names],
                     "" if row["value"] is None else f"{row['value']:.4f}",
                     *([f"{row['std']:.4f}" if row["std"] else ""] if spread else []),
                     "" if row["seconds"] is None else f"{row['seconds']:.0f} s",
                     Path(row["run_dir"]).name if row["run_dir"] else ""])
    columns = ["#", "state", *names, metric, *(["±"] if spread else []), "time", "run"]
    naturals = [max([len(column), *(len(r[index]) for r in rows)]) for index, column in enumerate(columns)]
    table = Table(show_edge=False, pad_edge=False)
    for column, width in zip(columns, _widths(columns, naturals, set(names) | {"run"}, console.width)):
        table.add_column(column, justify="right" if column in ("#", "time", "±", metric) else "left", no_wrap=True,
                         overflow="ellipsis", width=width)
    for cells in rows:
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    folder = Path(data["trials"][0]["run_dir"]).parent if data["trials"][0]["run_dir"] else None
    if folder is not None:
        console.print(f"runs: {folder}/trial-NNNN-… (cnnreg runs --root {folder})", highlight=False, soft_wrap=True)
    for key, path in data.get("files", {}).items():
        console.print(f"{key}: {path}", highlight=False, soft_wrap=True)


def _widths(columns: list[str], naturals: list[int], shrink: set[str], total: int) -> list[int]:
    """Column widths within ``total`` (3 columns between two columns): the figures at their
    natural width; the parameters (down to 6 columns) and the run directory (down to
    "trial-0007-…") give way, the widest first."""
    widths = list(naturals)
    room = total - 3 * (len(columns) - 1)
    floors = [12 if c == "run" else 6 for c in columns]
    while sum(widths) > room:
        widest = max((i for i, c in enumerate(columns) if c in shrink and widths[i] > floors[i]),
                     key=lambda i: widths[i], default=None)
        if widest is None:
            break
        widths[widest] -= 1
    return widths


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "none" if value is None else str(value)
