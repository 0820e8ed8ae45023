"""``cnnreg attack``: robust accuracy of a run or weights entry under an adversarial attack."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("attack")(attack_command)


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
    """Robust accuracy under an adversarial attack, per eps.

    A table, robustness.png (in the
    run directory, or --out), and with --out the Szegedy figure adversarial.png and every
    adversarial input in adversarial.npz.  eps is in pixel space scaled to [0, 1].

    Examples:

      cnnreg attack runs/20261126-170000-lenet5-digits --eps 0,2/255,4/255,8/255,16/255

      cnnreg attack runs/20261126-170000-lenet5-digits --attack pgd:steps=20 --eps 0,0.1 --limit 200 --out adv/

      cnnreg attack lenet5.digits --attack universal --eps 0,8/255 --json
    """
    from cnnreg.api.attack import attack as run_attack
    from cnnreg.cli.render import console, err_console

    def run(progress=None):
        return run_attack(model, attack=attack, eps=eps, split=split, dataset=dataset, limit=limit, seed=seed,
                          batch_size=batch_size, out=out, progress=progress)

    if as_json or not err_console.is_terminal:
        result = run()
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task(f"attack {attack}", total=None)

            def progress(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=f"attack {attack}: {what}")

            result = run(progress)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    _print(result.result, console)


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
