"""``cnnreg diagnose``: initialisation health, per hidden layer, on one real batch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cnnreg.cli.common import backend_option


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose_command)


def diagnose_command(
    architecture: str = typer.Argument(..., metavar="SPEC", help="Architecture spec, e.g. plain_net:depth=30 or resnet18."),
    init: List[str] = typer.Option([], "--init", help="Initialiser spec; repeatable to compare: --init he_normal --init glorot_uniform (default: the architecture's own)."),
    dataset: str = typer.Option("digits", "--dataset", "-d", help="Dataset spec the batch comes from (its training split; default: digits)."),
    batch: int = typer.Option(64, "--batch", help="Training examples in the batch, drawn with --seed."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights and of the batch's draw."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Model input HxWxC, e.g. 8x8x1 (default: the dataset's, as cnnreg run)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for diagnose.png (std per hidden layer, forward and backward)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    backend: Optional[str] = backend_option(),
) -> None:
    """Check an initialiser: signal and gradient std per layer.

    At initialisation, on one batch of real data, per hidden layer: activation mean and std,
    dead ReLUs or saturated tanh/sigmoid units, the std of the loss gradient with respect to
    the layer's output and the weights' std; forward ratio = activation std of the last hidden
    layer / the first's, backward ratio = gradient std at the first / at the last (the Glorot &
    Bengio 2010 and He et al. 2015 criterion: both near 1).  One warning line per initialiser
    whose ratios leave [0.1, 10] (a decade).

    Examples:

      cnnreg diagnose plain_net:depth=30 --init he_normal --init glorot_uniform --out diag/

      cnnreg diagnose plain_net:depth=5,width=1000,conv=false,activation=tanh --init glorot_uniform --init variance_scaling:scale=1/3,distribution=uniform

      cnnreg diagnose resnet18 --dataset digits --batch 32 --json
    """
    from cnnreg.api.runs import diagnose
    from cnnreg.cli.render import console, err_console, warn

    arguments = dict(init=list(init), dataset=dataset, batch=batch, seed=seed, input_shape=input_shape, out=out,
                     backend=backend)
    if as_json or not err_console.is_terminal:
        result = diagnose(architecture, **arguments)
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("diagnose", total=max(1, len(init)))

            def progress(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=f"diagnose: {what}")

            result = diagnose(architecture, **arguments, progress=progress)
    for line in result.warnings:
        warn(line)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    _print(result.result, console)


def _number(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:#.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"


def _print(result: dict, console) -> None:
    """The header, and a table per initialiser that fits the terminal: one activation throughout
    is said in the header instead of a column; where still too wide, the weights' std, then the
    dead/saturated share go (said under the table), and long layer names are cut in the middle."""
    from cnnreg.cli.render import fit_columns, hidden_note

    activations = {layer["activation"] for one in result["results"] for layer in one["layers"]}
    throughout = f", all {next(iter(activations))}" if len(activations) == 1 else ""
    console.print(f"{result['architecture']} at initialisation: {result['batch']} training examples of "
                  f"{result['dataset']} at {'x'.join(map(str, result['input_shape']))}, {result['hidden_layers']} "
                  f"hidden layers{throughout} ({result['backend']})", highlight=False)
    hidden: list[str] = []
    for one in result["results"]:
        # the title on its own line: a table's title wraps at the table's width, not the terminal's
        console.print(f"{one['label']}: forward ratio {_number(one['forward_ratio'])}, backward ratio "
                      f"{_number(one['backward_ratio'])}, loss {one['loss']:.4f}", highlight=False)
        table, left_out = fit_columns(lambda hide, one=one: _table(one, hide, not throughout, console.width),
                                      OPTIONAL, console.width)
        console.print(table)
        hidden += [column for column in left_out if column not in hidden]
    if hidden:
        console.print(hidden_note(hidden))


#: Columns of a diagnose table, and those that go first where the terminal is too narrow.
COLUMNS = ("#", "layer", "activation", "mean", "std", "dead/sat.", "grad std", "weights std")
OPTIONAL = ("weights std", "dead/sat.")


def _table(one: dict, hidden: set[str], with_activation: bool, width: int):
    from rich.cells import cell_len
    from rich.markup import escape
    from rich.table import Table

    from cnnreg.cli.render import cut_middle

    columns = [c for c in COLUMNS if c not in hidden and (with_activation or c != "activation")]
    cells = []
    for layer in one["layers"]:
        share = next((f"{layer[k]:.1%}" for k in ("dead", "saturated") if layer[k] is not None), "")
        row = {"#": str(layer["index"]), "layer": layer["name"], "activation": layer["activation"],
               "mean": _number(layer["mean"]), "std": _number(layer["std"]), "dead/sat.": share,
               "grad std": _number(layer["grad_std"]), "weights std": _number(layer["weights_std"])}
        cells.append([row[c] for c in columns])

    def widest(index: int) -> int:
        return max([cell_len(columns[index]), *(cell_len(row[index]) for row in cells)])

    at = columns.index("layer")
    others = sum(widest(i) for i in range(len(columns)) if i != at) + 3 * (len(columns) - 1)
    room = widest(at)
    if hidden >= set(OPTIONAL):  # names are cut last, in the middle, to what the figures leave
        room = max(8, min(room, width - others))
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, justify="left" if column in ("layer", "activation") else "right", no_wrap=True)
    for row in cells:
        row[at] = cut_middle(row[at], room)
        table.add_row(*(escape(cell) for cell in row))
    return table
