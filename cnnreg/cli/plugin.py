"""``cnnreg plugin new``: scaffold a plugin package."""

from __future__ import annotations

from pathlib import Path

import typer

plugin_app = typer.Typer(help="Write and inspect cnnreg plugin packages.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(plugin_app, name="plugin")


@plugin_app.command("new")
def new_command(
    name: str = typer.Argument(..., help="Plugin name: the package becomes cnnreg-NAME, the component NAME."),
    kind: str = typer.Option("architecture", "--kind", "-k", help="architecture, initialiser, regulariser or dataset."),
    directory: Path = typer.Option(Path("."), "--dir", help="Folder to write the package into."),
) -> None:
    """Write an installable plugin package cnnreg-NAME with one working component and a test.

    Example:

      cnnreg plugin new mynet --kind architecture && pip install -e ./cnnreg-mynet && cnnreg show mynet
    """
    from cnnreg.cli.render import console
    from cnnreg.registry import normalize_kind
    from cnnreg.scaffold import new_plugin

    root = new_plugin(name, normalize_kind(kind), directory)
    console.print(f"wrote {root}/", highlight=False)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        console.print(f"  {path.relative_to(root)}", highlight=False)
    console.print(f"next: pip install -e {root} && cnnreg list --provider {root.name}", highlight=False, soft_wrap=True)
