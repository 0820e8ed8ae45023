"""``cnnreg plugin new``: scaffold a plugin package."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    """``cnnreg plugin new``, its ``--kind`` help listing the kinds the table can scaffold now."""
    from cnnreg.scaffold import scaffold_kinds

    plugin_app = typer.Typer(help="Write and inspect cnnreg plugin packages.\n\nExample: cnnreg plugin new mynet", no_args_is_help=True)
    help_text = (f"KIND or KIND=COMPONENT, repeatable: {', '.join(scaffold_kinds())} "
                 "(default: architecture; the component is called NAME unless given).")
    plugin_app.command("new")(_with_kind_help(new_command, help_text))
    app.add_typer(plugin_app, name="plugin")


def _with_kind_help(command, help_text: str):
    """``command`` with the help of its ``--kind`` option set to ``help_text``."""
    import functools
    import inspect

    signature = inspect.signature(command)
    option = signature.parameters["kind"].default
    parameters = [p.replace(default=typer.Option([], *option.param_decls, help=help_text)) if p.name == "kind" else p
                  for p in signature.parameters.values()]

    @functools.wraps(command)
    def wrapped(*args, **kwargs):
        return command(*args, **kwargs)

    wrapped.__signature__ = signature.replace(parameters=parameters)
    return wrapped


def new_command(
    name: str = typer.Argument(..., help="Package name: the distribution becomes cnnreg-NAME (see --dist), the entry point NAME."),
    kind: List[str] = typer.Option([], "--kind", "-k", help="KIND or KIND=COMPONENT, repeatable."),
    dist: Optional[str] = typer.Option(None, "--dist", help="Distribution (PyPI) name, e.g. acme-cnn (default: cnnreg-NAME)."),
    directory: Path = typer.Option(Path("."), "--dir", help="Folder to write the package into."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output: the package, its components and files."),
) -> None:
    """Write an installable plugin package.

    With working components and their tests.

    Examples:

      cnnreg plugin new mynet && pip install -e ./cnnreg-mynet && cnnreg show mynet

      cnnreg plugin new acme --kind architecture=acmenet --kind initialiser=acme_init --dist acme-cnn
    """
    from cnnreg.api.plugin import new_plugin
    from cnnreg.cli.render import console

    result = new_plugin(name, kind=kind, dist=dist, directory=directory)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    root = result.root
    console.print(f"wrote {root}/", highlight=False)
    for path in result.files:
        console.print(f"  {path}", highlight=False)
    console.print(f"next: pip install -e {root} && cnnreg list --provider {root.name}", highlight=False, soft_wrap=True)
