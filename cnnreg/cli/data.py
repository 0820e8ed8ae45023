"""``cnnreg data info`` and ``cnnreg data show``: look at a dataset before training on it."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="data",
    help="Look at a dataset: classes, counts, sample grids.\n\n"
    "Classes, counts per split, class imbalance, grids of samples.\n\n"
    "Example: cnnreg data info folder:~/photos/flowers",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")


@app.command("info")
def info_command(
    dataset: str = typer.Argument(..., help="Dataset spec: digits, tf_flowers, tfds:NAME, folder:PATH or a folder path."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """A dataset's classes, counts and imbalance.

    Classes, examples per class and split, image shape, where the data is, class imbalance.

    Examples:

      cnnreg data info digits

      cnnreg data info ./flowers

      cnnreg data info tf_flowers:split=train[:50%] --json
    """
    from cnnreg.api.data import dataset_info

    result = dataset_info(dataset)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    _render_info(result.info)


def _shape_text(shape: list) -> str:
    height, width, channels = shape
    size = "varying size" if height is None or width is None else f"{height}x{width}"
    return f"{size}, {channels} channel{'s' if channels != 1 else ''}"


def _render_info(result: dict) -> None:
    from rich.table import Table

    from cnnreg.cli.render import console, print_wide

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("dataset", f"{result['dataset']}  [dim]({result['provider']})[/]")
    if result["description"]:
        grid.add_row("", result["description"])
    where = result["location"] or "-"
    grid.add_row("data", f"{where}  ({'on this machine' if result['local'] else 'not on this machine'})")
    images = _shape_text(result["image_shape"])
    if result["image_shape_note"] and result["image_shape"][0] is None:
        images += f"  [dim]({result['image_shape_note']})[/]"
    grid.add_row("images", f"{images}; resize {result['resize']}")
    sizes = ", ".join(f"{k} {v:,}" for k, v in result["sizes"].items())
    grid.add_row("examples", f"{result['total']:,}: {sizes}")
    grid.add_row("classes", str(result["num_classes"]))
    balance = result["imbalance"]
    largest, smallest = balance["largest"], balance["smallest"]
    if balance["ratio"] is None:
        grid.add_row("balance", f"[red]class '{smallest['class']}' has no training examples[/]")
    else:
        text = (f"largest/smallest {balance['ratio']:.2f} ({largest['class']} {largest['train']:,}, "
                f"{smallest['class']} {smallest['train']:,} in train)")
        if balance["imbalanced"]:
            text = f"[yellow]imbalanced[/]: {text}; consider `cnnreg run ... --class-weight balanced`"
        grid.add_row("balance", text)
    if result["skipped"]:
        shown = ", ".join(result["skipped"][:5]) + (f", ... {len(result['skipped']) - 5} more" if len(result["skipped"]) > 5 else "")
        grid.add_row("skipped", f"{len(result['skipped'])} unreadable files: {shown}")
    console.print(grid)
    console.print()
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("class")
    splits = list(result["counts"])
    for split in splits:
        table.add_column(split, justify="right")
    table.add_column("total", justify="right")
    for i, name in enumerate(result["classes"]):
        table.add_row(name, *(f"{result['counts'][s][i]:,}" for s in splits), f"{result['class_totals'][i]:,}")
    print_wide(table)


@app.command("show")
def show_command(
    dataset: str = typer.Argument(..., help="Dataset spec: digits, tf_flowers, tfds:NAME, folder:PATH or a folder path."),
    n: int = typer.Option(16, "--n", "-n", help="How many samples."),
    augment: List[str] = typer.Option([], "--augment", help="Augmentation regulariser spec; repeatable: --augment flip --augment rotate=0.1."),
    split: str = typer.Option("train", "--split", help="train, validation or test."),
    output: Path = typer.Option(Path("samples.png"), "--output", "-o", help="PNG to write."),
    size: Optional[int] = typer.Option(None, "--size", help="Draw the images at SIZExSIZE (default: the input size a model gets by default; 160 when sizes vary)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the choice of samples and the augmentation."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write a PNG grid of labelled samples.

    Optionally augmented as in training.

    Examples:

      cnnreg data show digits -o digits.png

      cnnreg data show ./flowers --n 16 --augment flip --augment rotate=0.1 -o grid.png
    """
    from cnnreg.api.data import dataset_samples

    result = dataset_samples(dataset, n=n, augment=augment, split=split, output=output, size=size, seed=seed)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    from cnnreg.cli.render import console

    grid = result.grid
    console.print(f"{len(grid['samples'])} samples of {grid['split']} → {grid['path']}")
