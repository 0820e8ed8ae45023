"""``cnnreg list``, ``cnnreg show`` and ``cnnreg plugins``: what is installed. No keras import."""

from __future__ import annotations

import fnmatch
from typing import Optional

import typer

from cnnreg import __version__
from cnnreg.errors import CnnregError, UnknownComponentError, choices_text
from cnnreg.registry import KINDS, normalize_kind


def register(app: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command("show")(show_command)
    app.command("plugins")(plugins_command)


def list_command(
    kind: Optional[str] = typer.Argument(
        None, help="architectures, initialisers, regularisers or datasets (default: all)."
    ),
    filter: Optional[str] = typer.Option(
        None, "--filter", "-f", help="Glob on the name, e.g. 'resnet*' (case-insensitive)."
    ),
    provider: Optional[str] = typer.Option(None, "--provider", "-p", help="Only components of this package."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (see docs/cli.md)."),
) -> None:
    """List installed components with the package that provides each.

    Examples:

      cnnreg list

      cnnreg list architectures --filter 'resnet*'

      cnnreg list --provider cnnreg-fixup --json
    """
    from cnnreg.plugins import get_host

    host = get_host()
    kinds = KINDS if kind is None else (normalize_kind(kind),)
    found = [c for k in kinds for c in host.registry.components(k)]
    if provider is not None:
        providers = {c.provider for c in host.registry.components()}
        if provider.lower() not in {p.lower() for p in providers}:
            raise CnnregError(f"no installed package '{provider}' provides components" + choices_text(provider, providers))
        found = [c for c in found if c.provider.lower() == provider.lower()]
    if filter:
        pattern = filter.lower()
        found = [
            c for c in found
            if fnmatch.fnmatchcase(c.name.lower(), pattern)
            or any(fnmatch.fnmatchcase(a.lower(), pattern) for a in c.aliases)
        ]
    if as_json:
        from cnnreg.cli.render import print_json

        print_json({"cnnreg": __version__, "components": [c.to_dict() for c in found]})
        return
    from rich.table import Table

    from cnnreg.cli.render import console

    if not found:
        console.print("no components match")
        return
    shadowed = False
    for k in kinds:
        rows = [c for c in found if c.kind == k]
        if not rows:
            continue
        table = Table(title=f"{k}s ({len(rows)})", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("aliases")
        table.add_column("summary")
        table.add_column("provider", no_wrap=True)
        ambiguous = _ambiguous_names(rows)
        for c in rows:
            # the name to type: a built-in's bare name always; provider/name for the others
            name = c.qualified_name if c.shadowed_by or (c.name.lower() in ambiguous and not c.builtin) else c.name
            aliases = [a + "*" if a in c.shadowed_aliases else a for a in c.aliases]
            if c.shadowed_by:
                name += "*"
            shadowed = shadowed or bool(c.shadowed_by or c.shadowed_aliases)
            table.add_row(name, ", ".join(aliases), c.summary, f"{c.provider} {c.provider_version}")
        console.print(table)
        console.print()
    if shadowed:
        console.print("* shadowed: a built-in has this name, so the bare name means the built-in; "
                      "reach this one as provider/name")


def _ambiguous_names(rows) -> set[str]:
    seen: dict[str, set[str]] = {}
    for c in rows:
        seen.setdefault(c.name.lower(), set()).add(c.provider)
    return {name for name, providers in seen.items() if len(providers) > 1}


def find_component(text: str):
    """``NAME``, ``KIND/NAME``, ``provider/NAME`` or ``KIND/provider/NAME`` → one component."""
    from cnnreg.plugins import get_host
    from cnnreg.spec import parse

    registry = get_host().registry
    head, sep, rest = text.partition("/")
    if sep:
        try:
            kind = normalize_kind(head)
        except CnnregError:
            kind = None
        if kind is not None:
            return registry.get(kind, parse(rest).name)
    name = parse(text).name
    found, errors = [], []
    for kind in KINDS:
        try:
            found.append(registry.get(kind, name))
        except UnknownComponentError as exc:
            errors.append(exc)
    if len(found) == 1:
        return found[0]
    if found:
        options = ", ".join(f"{c.kind}/{c.name}" for c in found)
        raise CnnregError(f"'{text}' names components of several kinds; use one of {options}")
    every = [n for kind in KINDS for n in registry.names(kind)]
    raise UnknownComponentError(
        f"unknown component '{text}'" + choices_text(name.rpartition("/")[2], every, hint="see `cnnreg list`")
    )


def show_command(
    name: str = typer.Argument(..., help="NAME, KIND/NAME or PROVIDER/NAME, e.g. resnet34 or initialiser/he_normal."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (see docs/cli.md)."),
) -> None:
    """Show one component: parameters with types and defaults, docstring, provider, metadata.

    Examples:

      cnnreg show he_normal

      cnnreg show architecture/resnet34
    """
    component = find_component(name)
    data = component.to_dict(detail=True)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json({"cnnreg": __version__, "component": data})
        return
    from rich.panel import Panel
    from rich.table import Table

    from cnnreg.cli.render import console

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("kind", component.kind)
    head.add_row("name", component.name + (f"  (aliases: {', '.join(component.aliases)})" if component.aliases else ""))
    head.add_row("provider", f"{component.provider} {component.provider_version} (plugin '{component.plugin}')")
    head.add_row("factory", data["factory"])
    if component.shadowed_by or component.shadowed_aliases:
        taken = ([component.name] if component.shadowed_by else []) + list(component.shadowed_aliases)
        verb = "names a built-in" if len(taken) == 1 else "name built-ins"
        head.add_row("shadowed", f"{', '.join(taken)} {verb}; use {component.qualified_name} for this one")
    if component.tags:
        head.add_row("tags", ", ".join(component.tags))
    for key, value in data["metadata"].items():
        head.add_row(key, _meta_text(value))
    console.print(Panel(head, title=f"{component.kind} {component.name}", title_align="left", expand=False))
    params = component.parameters()
    if params:
        table = Table(title="parameters", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("name", style="bold cyan")
        table.add_column("type")
        table.add_column("default")
        primary = component.primary
        for p in params:
            label = p.name + ("  (NAME=VALUE sets it)" if p.name == primary else "")
            table.add_row(label, p.type_text, "required" if p.required else repr(p.default))
        console.print(table)
    else:
        console.print("parameters: none")
    if data["doc"]:
        console.print()
        console.print(data["doc"], markup=False)


def _meta_text(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_meta_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, int) for v in value):
            return "x".join(str(v) for v in value)
        return ", ".join(_meta_text(v) for v in value)
    return str(value)


def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (see docs/cli.md)."),
) -> None:
    """List every plugin with its version, hooks, status and error.

    A plugin that failed to import or whose hook raised is shown here with its error; the rest of
    cnnreg keeps working. CNNREG_DISABLE_PLUGINS=a,b blocks plugins; CNNREG_LOAD_PLUGINS=a,b loads
    only those (empty: built-ins only).

    Example:

      cnnreg plugins --json
    """
    from cnnreg.plugins import get_host

    plugins = get_host().plugin_list()
    if as_json:
        from cnnreg.cli.render import print_json

        print_json({"cnnreg": __version__, "plugins": [p.to_dict() for p in plugins]})
        return
    from rich.table import Table

    from cnnreg.cli.render import console

    table = Table(show_edge=False, pad_edge=False)
    for column in ("plugin", "package", "hooks", "components", "status"):
        table.add_column(column, no_wrap=column in ("plugin", "package"))
    styles = {"ok": "green", "warning": "yellow", "blocked": "dim", "failed": "red", "hook-error": "red"}
    for p in plugins:
        hooks = ", ".join(h.replace("register_", "") for h in p.hooks) or "-"
        status = f"[{styles.get(p.status, '')}]{p.status}[/]"
        if p.error:
            from rich.markup import escape

            status += f": {escape(p.error)}"
        package = f"{p.distribution} {p.version}" + (" (built-in)" if p.builtin else "")
        table.add_row(p.name, package, hooks, str(p.components), status)
    console.print(table)
    shadowed = [item for p in plugins for item in p.shadowed]
    if shadowed:
        from rich.markup import escape

        console.print(escape(shadowed_note(shadowed)))


def shadowed_note(shadowed: list[dict]) -> str:
    """``1 component shadowed by a built-in: resnet34 (use test-plugin/resnet34)`` (and aliases)."""
    names = [f"{s['name']} (use {s['use']})" for s in shadowed if not s["alias"]]
    aliases = [f"{s['name']} (of {s['use']})" for s in shadowed if s["alias"]]
    parts = []
    if names:
        parts.append(f"{len(names)} component{'s' if len(names) != 1 else ''} shadowed by a built-in: "
                     + ", ".join(names))
    if aliases:
        parts.append(f"{len(aliases)} alias{'es' if len(aliases) != 1 else ''} taken by a built-in: "
                     + ", ".join(aliases))
    return "; ".join(parts)
