"""``cnnreg attack``: robust accuracy of a run or weights entry under an adversarial attack."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cnnreg.cli.common import check_out_folder
from cnnreg.errors import CnnregError


def register(app: typer.Typer) -> None:
    app.command("attack")(attack_command)


def parse_eps(text: str) -> list[float]:
    """``0,0.05,8/255`` → floats (fractions allowed); one line for anything else."""
    from cnnreg.spec import coerce

    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise CnnregError(f"--eps takes a comma-separated list of numbers such as 0,2/255,8/255 (got {text!r})")
    return [coerce(p, float, where="--eps") for p in parts]


def attack_command(
    model: str = typer.Argument(..., metavar="RUN_DIR|WEIGHTS", help="A run directory, or a weights name (`cnnreg list weights`)."),
    attack: str = typer.Option("fgsm", "--attack", "-a", help="Attack spec (`cnnreg list attacks`), e.g. pgd:steps=20 or fgsm:norm=2."),
    eps: Optional[str] = typer.Option(None, "--eps", help="Budgets in [0, 1] pixel units, comma-separated; fractions allowed: 0,2/255,8/255,0.1 (default: 0 and the attack's eps)."),
    split: str = typer.Option("test", "--split", help="train, validation or test."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset spec (default: the one it was trained on)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Attack only the first N examples of the split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the attack's random start (pgd)."),
    batch_size: int = typer.Option(128, "--batch-size", help="Examples attacked at a time (a universal attack takes them all at once)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for adversarial.png, adversarial.npz and robustness.png."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Robust accuracy under an adversarial attack, per eps: a table, robustness.png (in the
    run directory, or --out), and with --out the Szegedy figure adversarial.png and every
    adversarial input in adversarial.npz.  eps is in pixel space scaled to [0, 1].

    Examples:

      cnnreg attack runs/20261126-170000-lenet5-digits --eps 0,2/255,4/255,8/255,16/255

      cnnreg attack runs/20261126-170000-lenet5-digits --attack pgd:steps=20 --eps 0,0.1 --limit 200 --out adv/

      cnnreg attack lenet5.digits --attack universal --eps 0,8/255 --json
    """
    from cnnreg.adversarial.robustness import build_attack, check_eps

    if limit is not None and limit < 1:
        raise CnnregError(f"--limit must be >= 1 (got {limit})")
    if batch_size < 1:
        raise CnnregError(f"--batch-size must be >= 1 (got {batch_size})")
    values = parse_eps(eps) if eps is not None else None
    built = build_attack(attack)  # an unknown attack or a bad parameter: before any model loads
    eps_list = check_eps(values if values is not None else [0.0, float(built.eps)], built.norm)
    from cnnreg.training.saved import open_trained

    trained = open_trained(model)
    if out is not None:  # before the model loads: a folder that cannot be written costs nothing
        check_out_folder(out)
    from cnnreg.cli.common import use_backend_of

    use_backend_of(trained)
    from cnnreg.adversarial.robustness import robustness
    from cnnreg.cli.render import console, err_console

    def run(progress=None):
        return robustness(trained, built, eps_list, split=split, dataset=dataset, limit=limit, batch_size=batch_size,
                          seed=seed, out=out, progress=progress, spec=attack)

    if as_json or not err_console.is_terminal:
        result = run()
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task(f"attack {attack}", total=None)

            def progress(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=f"attack {attack}: {what}")

            result = run(progress)
    if as_json:
        from cnnreg.version import __version__
        from cnnreg.cli.render import print_json

        print_json({"cnnreg": __version__, **result})
        return
    _print(result, console)


def _print(result: dict, console) -> None:
    from rich.table import Table

    from cnnreg.adversarial.robustness import eps_text

    console.print(f"attack {result['attack']}: {result['model']} on {result['dataset']} ({result['split']}, "
                  f"{result['examples']} examples)", highlight=False, soft_wrap=True)
    clean = result["clean_accuracy"]
    table = Table(show_edge=False, pad_edge=False)
    for column in ("eps", "accuracy", "drop", "changed", "confidence"):
        table.add_column(column, justify="left" if column == "eps" else "right")
    for row in result["results"]:
        table.add_row(eps_text(row["eps"]), f"{row['accuracy']:.4f}", f"{clean - row['accuracy']:.4f}" if row["eps"] else "",
                      f"{row['changed']:.1%}", f"{row['mean_confidence']:.3f}")
    console.print(table)
    names = {"curve": "robustness curve", "figure": "adversarial examples", "npz": "arrays"}
    for key, path in result["files"].items():
        console.print(f"{names.get(key, key)}: {path}", highlight=False, soft_wrap=True)
