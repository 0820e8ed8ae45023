"""``cnnreg lr-find``: the learning-rate range test of a run's setup, on its own."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cnnreg.cli.common import backend_option


def register(app: typer.Typer) -> None:
    app.command("lr-find")(lr_find_command)


def lr_find_command(
    architecture: str = typer.Argument(..., help="Architecture spec, as for `cnnreg run`."),
    dataset: str = typer.Option("digits", "--dataset", "-d", help="Dataset spec (default: digits)."),
    init: Optional[str] = typer.Option(None, "--init", help="Initialiser for every Conv/Dense kernel, e.g. he_normal."),
    reg: List[str] = typer.Option([], "--reg", help="Regulariser spec; repeatable: --reg l2=1e-4 --reg flip."),
    clip: Optional[str] = typer.Option(None, "--clip", help="Gradient clipping: value=X, norm=X or global_norm=X."),
    optimizer: str = typer.Option("adam", "--optimizer", help="Optimizer spec: sgd:momentum=0.9, adam, adamw, ... (its learning rate is what is swept)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Mini-batch size."),
    precision: str = typer.Option("float32", "--precision", help="float32, mixed_float16 or mixed_bfloat16."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, shuffling and augmentation (as the run's)."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Model input HxWxC (default: the dataset's)."),
    weights: str = typer.Option("none", "--weights", help="Starting weights, as for `cnnreg run`."),
    freeze_base: bool = typer.Option(False, "--freeze-base", help="Sweep the new head only (a transfer run's first phase)."),
    start: float = typer.Option(1e-7, "--start", help="First learning rate of the sweep."),
    end: float = typer.Option(10.0, "--end", help="Last learning rate of the sweep."),
    steps: int = typer.Option(100, "--steps", help="Training steps of the sweep (10 to 1000); the rate grows by the same factor each step."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for lr_find.png (loss against learning rate, the suggestion marked)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output, with every step's rate and loss."),
    backend: Optional[str] = backend_option(),
) -> None:
    """Suggest a learning rate by the range test (Smith 2017).

    As fastai's and Lightning's lr_find: from the run's initial weights, train while the rate grows exponentially from --start to
    --end, smooth the loss, stop once it diverges, and suggest the rate of the steepest descent
    (the rate at the minimum / 10 is given too).  Nothing is kept: the weights and random
    states are put back.

    Examples:

      cnnreg lr-find lenet5

      cnnreg lr-find resnet18 --optimizer sgd:momentum=0.9 --reg l2=1e-4 --out lr/

      cnnreg lr-find mlp_bn --dataset digits:size=8 --steps 300 --end 1 --json
    """
    from cnnreg.api.runs import lr_find
    from cnnreg.cli.render import console, err_console, warn

    arguments = dict(dataset=dataset, init=init, reg=list(reg), clip=clip, optimizer=optimizer, batch_size=batch_size,
                     precision=precision, seed=seed, input_shape=input_shape, weights=weights, freeze_base=freeze_base,
                     start=start, end=end, steps=steps, out=out, backend=backend)
    if as_json or not err_console.is_terminal:
        result = lr_find(architecture, **arguments)
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
            task = bar.add_task("range test", total=steps)
            result = lr_find(architecture, **arguments, progress=lambda done, total: bar.update(task, completed=done))
    for line in result.warnings:
        warn(line)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    from cnnreg.training.lr_find import describe

    # wrapped at words to the terminal; the plot's path stays one line, to be pasted
    console.print(f"lr-find {result.title_text}", highlight=False)
    console.print(describe(result.test), highlight=False)
    if result.suggested_lr is not None:
        console.print(f"suggested: --lr {result.suggested_lr:.3g}", highlight=False)
    if result.files:
        console.print(f"plot: {result.files['plot']}", highlight=False, soft_wrap=True)
