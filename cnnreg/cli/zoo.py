"""``cnnreg weights pull`` and ``cnnreg publish``: the model zoo's downloads and uploads."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

weights_app = typer.Typer(
    help="Pretrained weights from the zoo.\n\n"
    "List them with `cnnreg list weights`.\n\n"
    "Example: cnnreg weights pull lenet5.digits",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
    app.command("publish")(publish_command)


@weights_app.command("pull")
def pull_command(
    name: str = typer.Argument(..., help="A weights entry, ARCH.TAG (see `cnnreg list weights`)."),
    file: Optional[str] = typer.Option(None, "--file", help="Only this file of the entry: model, raw, top, notop, onnx or litert."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Download a weights entry into the cache.

    Its files are fetched once, their hashes checked, and where they are printed.

    The cache is $CNNREG_CACHE, else the per-user cache folder; a cached file that no longer
    matches its hash is fetched again. An entry published from a cnnreg run also gets its recipe,
    the run's manifest, as a folder that `cnnreg rerun` takes.

    Example:

      CNNREG_ZOO=https://example.org/zoo/zoo.json cnnreg weights pull lenet5.digits
    """
    from cnnreg.api.zoo import pull_weights

    pulled = pull_weights(name, file=file)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(pulled.to_dict())
        return
    from cnnreg.cli.render import console

    result = pulled.pulled
    for role, item in result["files"].items():  # paths are never broken across lines (copy and paste)
        console.print(f"{result['name']} {role} ({item['action']})", highlight=False)
        console.print(f"  path    {item['path']}", highlight=False, soft_wrap=True)
        console.print(f"  size    {item['size']:,} bytes", highlight=False)
        console.print(f"  sha256  {item['sha256']}", highlight=False)
    if result["recipe"]:
        console.print(f"recipe: cnnreg rerun {result['recipe']}", highlight=False, soft_wrap=True)


def publish_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `cnnreg run` (completed, or with a model.keras)."),
    dest: str = typer.Argument(..., help="The zoo: a folder (created if needed), or hf://USER/REPO on the Hugging Face Hub."),
    name: Optional[str] = typer.Option(None, "--name", help="The entry's name, ARCH.TAG (default: ARCH.DATASET of the run)."),
    license: Optional[str] = typer.Option(None, "--license", help="The weights' license, an SPDX or Hugging Face id: MIT, Apache-2.0, CC-BY-4.0 (needed for hf://; a folder without it gets a warning)."),
    format: Optional[List[str]] = typer.Option(None, "--format", "-f", help="Add an export, checked against the model: onnx or litert (repeatable)."),  # noqa: A002
    with_preprocess: bool = typer.Option(False, "--with-preprocess", help="Also NAME.raw.keras: the model behind stock Resizing and Rescaling layers, so raw pixels of any size go in."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Publish a run's best model into a zoo.

    Its weights, model card (README.md), recipe and entry in zoo.json.

    The entry in zoo.json carries the weights' sha256 and size and the run's manifest; an entry of
    the same name is replaced. Serve the folder over http (or share it) and point CNNREG_ZOO at it.
    The card has Hugging Face front matter, the training settings, how inputs are prepared and a
    snippet that runs the model with plain Keras (it loads in safe mode without cnnreg).

    With --with-preprocess the entry also gets NAME.raw.keras: resizing and scaling as stock
    Keras layers before the model, so raw images of any size go in.

    With --format onnx the entry also gets NAME.onnx (and its sidecar), exported and checked as
    `cnnreg export` does, its hash in zoo.json and a row on the card.

    Examples:

      cnnreg publish runs/20261126-170000-lenet5-digits zoo/ --license MIT

      cnnreg publish runs/20261126-170000-lenet5-digits zoo/ --license MIT --format onnx

      cnnreg publish runs/20261126-170000-lenet5-digits zoo/ --license MIT --with-preprocess
    """
    from cnnreg.api.runs import publish
    from cnnreg.cli.render import steps

    with steps(f"publishing {run_dir}…", shown=not as_json) as say:
        result = publish(run_dir, dest, name=name, license=license, format=format, with_preprocess=with_preprocess,
                         progress=say)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    from cnnreg.cli.render import console, warn

    for note in result.notes:
        warn(note)
    entry = result.entry
    model = entry.files["model"]
    count = f"{result.entries} entr{'y' if result.entries == 1 else 'ies'}"
    console.print(f"published {entry.name} to {result.dest} ({count} in its zoo.json)", highlight=False)
    console.print(f"  weights  {result.folder}/{entry.name}.keras ({model.size:,} bytes)", highlight=False, soft_wrap=True)
    console.print(f"  sha256   {model.hash.partition(':')[2]}", highlight=False)
    if "raw" in entry.files:
        raw = entry.files["raw"]
        console.print(f"  raw      {result.folder}/{entry.name}.raw.keras ({raw.size:,} bytes; raw pixels of any size go in)",
                      highlight=False, soft_wrap=True)
    for item in result.exports:
        console.print(f"  {item.format:<8} {item.path} ({item.size:,} bytes), {item.parity.line(item.format)}",
                      highlight=False, soft_wrap=True)
    console.print(f"  card     {result.folder}/README.md", highlight=False, soft_wrap=True)
    for metric in entry.metrics:
        top5 = f"  top-5 {metric['top5']:.4f}" if "top5" in metric else ""
        console.print(f"  {metric['split']:<10} accuracy {metric['top1']:.4f}{top5}  ({metric['dataset']})", highlight=False)
    where = result.dest if "://" in result.dest else str(Path(result.dest).resolve())
    console.print(f"use it: CNNREG_ZOO={where} cnnreg weights pull {entry.name}", highlight=False, soft_wrap=True)
