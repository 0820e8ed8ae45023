"""``cnnreg list``, ``cnnreg show`` and ``cnnreg plugins``: what is installed. No keras import."""

from __future__ import annotations

from typing import Optional

import typer

from cnnreg import registry as kinds
from cnnreg.analysis.units import format_bytes
from cnnreg.registry import kind_spec
from cnnreg.spec import shown

_PLURALS = [k.plural for k in kinds.KIND_SPECS]


def register(app: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command("show")(show_command)
    app.command("plugins")(plugins_command)


def list_command(
    kind: Optional[str] = typer.Argument(
        None, help=f"{', '.join(_PLURALS[:-1])} or {_PLURALS[-1]} (default: all)."
    ),
    filter: Optional[str] = typer.Option(
        None, "--filter", "-f", help="Glob on the name, e.g. 'resnet*' (case-insensitive)."
    ),
    provider: Optional[str] = typer.Option(None, "--provider", "-p", help="Only components of this package."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (see docs/cli.md)."),
) -> None:
    """List installed components and the package of each.

    Examples:

      cnnreg list

      cnnreg list architectures --filter 'resnet*'

      cnnreg list weights --filter 'keras-resnet*'

      cnnreg list --provider cnnreg-fixup --json
    """
    from cnnreg.api.components import list_components

    result = list_components(kind, filter=filter, provider=provider)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    chosen, found = result.kinds, result.components
    from cnnreg.cli.render import console, hidden_note, print_wide

    if not found:
        console.print("no components match")
        return
    shadowed = False
    hidden: set[str] = set()
    width = console.width
    for k in chosen:
        rows = [c for c in found if c.kind == k]
        if not rows:
            continue
        make_table = KIND_TABLES.get(k, _component_table)
        table, left_out = make_table(f"{kind_spec(k).plural} ({len(rows)})", rows, width)
        hidden |= left_out
        shadowed = shadowed or any(c.shadowed_by or c.shadowed_aliases for c in rows)
        print_wide(table)
        console.print()
    if shadowed:
        console.print("* shadowed: a built-in has this name, so the bare name means the built-in; "
                      "reach this one as provider/name")
    if hidden:
        console.print(hidden_note(sorted(hidden), "cnnreg show NAME"))


#: At ``cnnreg list``'s narrowest layouts a summary keeps at least this many columns.
SUMMARY_MIN = 30


def _component_table(title: str, rows, width: int):
    """One kind's table for ``cnnreg list``, one line per component at ``width`` columns (≥ 60).

    Columns: name, aliases, summary, provider and version (said once in the title when every
    row has the same).  Names are never cut; the summary gets what is left and is cut with "…".
    Where it would get fewer than ``SUMMARY_MIN`` columns, the versions go, then the aliases.
    Returns the table and what was left out.
    """
    from rich.cells import cell_len
    from rich.markup import escape

    from cnnreg.cli.render import Listing, cut

    names = _display_names(rows)
    aliases = [", ".join(a + "*" if a in c.shadowed_aliases else a for a in c.aliases) for c in rows]

    def widest(texts, header):
        return max([cell_len(header), *(cell_len(t) for t in texts)])

    providers = [c.provider for c in rows]
    versioned = [f"{c.provider} {c.provider_version}" for c in rows]
    summary_max = widest([c.summary for c in rows], "summary")
    # (aliases shown, provider column texts or None for "all from ..." in the title, left out)
    if len(set(versioned)) == 1:  # one provider: the title says it once instead of a column
        layouts = [(True, None, set()), (False, None, {"aliases"})]
    else:
        layouts = [(True, versioned, set()), (True, providers, {"versions"}),
                   (False, providers, {"versions", "aliases"})]
    has_aliases = any(aliases)
    for show_aliases, provider_texts, left_out in layouts:
        show_aliases = show_aliases and has_aliases
        fixed = [widest(names, "name")]
        if show_aliases:
            fixed.append(widest(aliases, "aliases"))
        if provider_texts is not None:
            fixed.append(widest(provider_texts, "provider"))
        room = width - sum(fixed) - 3 * len(fixed)  # " │ " between columns, no outer edges
        if room >= min(summary_max, SUMMARY_MIN):
            break
    if not has_aliases:
        left_out = left_out - {"aliases"}
    summary_width = max(min(summary_max, room), 10)
    table = Listing(title=title)
    table.add_column("name", style="bold cyan")
    if show_aliases:
        table.add_column("aliases")
    table.add_column("summary", width=summary_width)
    if provider_texts is not None:
        table.add_column("provider")
    for i, c in enumerate(rows):
        cells = [escape(names[i])]
        if show_aliases:
            cells.append(escape(aliases[i]))
        cells.append(escape(cut(c.summary, summary_width)))
        if provider_texts is not None:
            cells.append(escape(provider_texts[i]))
        table.add_row(*cells)
    if provider_texts is None:
        table.title = f"{title}, all from {escape(versioned[0])}"
    return table, left_out


def _display_names(rows) -> list[str]:
    """The name to type for each row: a built-in's bare name always, provider/name for a shadowed
    or ambiguous one (marked "*" when shadowed)."""
    ambiguous = _ambiguous_names(rows)
    names = []
    for c in rows:
        name = c.qualified_name if c.shadowed_by or (c.name.lower() in ambiguous and not c.builtin) else c.name
        names.append(name + ("*" if c.shadowed_by else ""))
    return names


def _weights_table(title: str, rows, width: int):
    """``cnnreg list weights``: name, classes, top-1, parameters, size or source, provider.

    The provider is said once in the title when every row has the same.  Names are never cut;
    where the line would be wider than ``width``, the size/source and provider columns are cut
    (to no fewer than 10 and 16 columns; providers keep what tells them apart), then size/source is left out, then the parameters.
    Returns the table and what was left out.
    """
    from rich.cells import cell_len
    from rich.markup import escape

    from cnnreg.cli.render import Listing, cut_apart, text_width

    versioned = [f"{c.provider} {c.provider_version}" for c in rows]
    one_provider = len(set(versioned)) == 1
    columns: dict[str, list[str]] = {"name": _display_names(rows), "classes": [], "top-1": [], "params": [],
                                     "size/source": []}
    for c in rows:  # one pass: a zoo may list 100,000 entries
        m = c.metadata
        classes = m.get("num_classes")
        columns["classes"].append(str(classes) if type(classes) is int and 0 <= classes <= _LARGEST else "?")
        columns["top-1"].append(_percent(_first_metric(m, "top1", "accuracy")))
        columns["params"].append(_short_count(m.get("parameters")))
        columns["size/source"].append(_size_or_source(m))
    if not one_provider:
        columns["provider"] = [c.provider for c in rows]
    shortest = {"size/source": 10, "provider": 16}  # what a cut column keeps at least
    measured = {h: max([cell_len(h), *map(text_width, set(texts))]) for h, texts in columns.items()}
    left_out: set[str] = set()
    while True:
        widths = {h: measured[h] for h in columns}
        excess = sum(widths.values()) + 3 * (len(widths) - 1) - width
        for header, least in shortest.items():
            least = max(least, cell_len(header))  # a header is never cut: the column is at least as wide
            if excess > 0 and header in widths and widths[header] > least:
                take = min(excess, widths[header] - least)
                widths[header] -= take
                excess -= take
        droppable = [h for h in ("size/source", "params") if h in columns]
        if excess <= 0 or not droppable:
            break
        del columns[droppable[0]]
        left_out.add(droppable[0])
    # providers are cut where they are the same, keeping what tells two zoos apart
    fitted = {h: texts if widths[h] >= measured[h] else cut_apart(texts, widths[h]) if h == "provider"
             else _cut_each(texts, widths[h]) for h, texts in columns.items()}
    table = Listing(title=title)
    for header in columns:
        table.add_column(header, style="bold cyan" if header == "name" else None, width=widths[header],
                         justify="right" if header in ("classes", "top-1", "params") else "left")
    for cells in zip(*fitted.values()):
        table.add_row(*(escape(t) if "[" in t else t for t in cells))  # only a "[" can read as markup
    if one_provider:
        table.title = f"{title}, all from {escape(versioned[0])}"
    return table, left_out


def _cut_each(texts: list[str], width: int) -> list[str]:
    """:func:`cnnreg.cli.render.cut` on each text, once per distinct text (a zoo repeats them)."""
    from cnnreg.cli.render import cut

    done: dict[str, str] = {}
    return [done[t] if t in done else done.setdefault(t, cut(t, width)) for t in texts]


#: ``cnnreg list``'s table for the kinds that have their own columns; the others get the
#: name / aliases / summary / provider table.
KIND_TABLES = {"weights": _weights_table}


def _first_metric(metadata, *keys: str):
    """The first metric an entry reports under one of ``keys`` (in that order of preference)."""
    metrics = metadata.get("metrics")
    if not isinstance(metrics, (list, tuple)):
        return None
    for key in keys:
        for metric in metrics:
            if isinstance(metric, dict) and key in metric:
                return metric[key]
    return None


#: The largest whole number a listing shows (a zoo's entries are listed before they are checked:
#: an unchecked 10**400 would not even convert to a float).
_LARGEST = 10**18


def _percent(value) -> str:
    return f"{100 * value:.1f}%" if type(value) in (int, float) and abs(value) <= _LARGEST else "-"


def _short_count(n) -> str:
    """25636712 → "25.6M" (exact figures are in ``cnnreg show`` and ``--json``)."""
    if type(n) is not int or not 0 <= n <= _LARGEST:
        return "-"
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _size_or_source(metadata) -> str:
    """The main file's size when known, else where it comes from (a host, hf:user/repo, the zoo)."""
    files = metadata.get("files")
    if not isinstance(files, dict) or not files:
        return "-"
    main = files.get("model") or files.get("top") or next(iter(files.values()))
    if not isinstance(main, dict):
        return "-"
    size = main.get("size")
    if type(size) is int and 0 <= size <= _LARGEST:
        return format_bytes(size, digits=1)
    return shown(_source_label(str(main.get("url", "")), metadata.get("zoo")), 60)  # a zoo's URL, unchecked yet


def _source_label(url: str, zoo=None) -> str:
    from urllib.parse import urlsplit

    if url.startswith("hf://"):
        return "hf:" + "/".join(url[len("hf://"):].split("/")[:2])
    if "://" in url:
        try:
            host = urlsplit(url).hostname or "?"
        except ValueError:  # "http://[..." (a zoo's URL is checked when the entry is used)
            return "?"
        return ".".join(host.split(".")[-2:])  # storage.googleapis.com → googleapis.com
    return f"zoo {zoo}" if zoo else "zoo"


def _ambiguous_names(rows) -> set[str]:
    first: dict[str, str] = {}  # name → the first provider seen with it
    ambiguous = set()
    for c in rows:
        name = c.name.lower()
        if first.setdefault(name, c.provider) != c.provider:
            ambiguous.add(name)
    return ambiguous


def show_command(
    name: str = typer.Argument(..., help="NAME, KIND/NAME or PROVIDER/NAME, e.g. resnet34 or initialiser/he_normal."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (see docs/cli.md)."),
) -> None:
    """Show one component: parameters, docstring, provider.

    Each parameter with its type and default; the docstring, the provider and the metadata.

    Examples:

      cnnreg show he_normal

      cnnreg show architecture/resnet34

      cnnreg show keras-resnet50.imagenet
    """
    from cnnreg.api.components import show

    result = show(name)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    component, data = result.component, result.data
    if component.kind in KIND_SHOW:
        return KIND_SHOW[component.kind](result)
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
        if primary is None:
            console.print(f"no primary parameter: write {component.name}:KEY=VALUE", markup=False)
    else:
        console.print("parameters: none")
    if data["doc"]:
        from cnnreg.cli.render import reflow

        console.print()
        for line in reflow(data["doc"], console.width):
            console.print(line, markup=False, soft_wrap=True)


def _show_weights(result) -> None:
    """``cnnreg show`` for a weights entry: what it is, its files with URL and hash, its metrics.

    The entry is data: nothing is imported or downloaded to show it.
    """
    component, entry = result.component, result.entry
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    from cnnreg.cli.render import console

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")  # URLs and hashes stay whole, folded at the width

    def row(label: str, value) -> None:
        head.add_row(label, escape(str(value)))

    row("kind", "weights")
    row("name", component.name)
    row("provider", f"{component.provider} {component.provider_version} (plugin '{component.plugin}')")
    if component.summary:
        row("summary", component.summary)
    row("architecture", entry.architecture)
    row("input", "x".join(str(d) for d in entry.input_shape))
    if entry.preprocess:
        row("preprocess", entry.preprocess)
    if entry.class_names:
        from cnnreg.cli.render import cut

        row("classes", f"{entry.num_classes}: " + cut(", ".join(entry.class_names), 200))
    elif entry.class_names_file:
        row("classes", f"{entry.num_classes}, names in {entry.class_names_file.filename}")
    else:
        row("classes", entry.num_classes)
    if entry.dataset:
        row("trained on", entry.dataset)
    for i, metric in enumerate(entry.metrics):
        values = ", ".join(f"{_metric_label(k)} {_metric_value(k, v)}" for k, v in metric.items()
                           if k not in ("dataset", "split", "source"))
        where = f"{metric['dataset']} {metric['split']}"
        if metric.get("source"):
            values += f" (source: {metric['source']})"
        row("metrics" if i == 0 else "", f"{where}: {values}")
    sizes = [f"{n:,} {label}" for n, label in ((entry.parameters, "parameters"), (entry.macs, "MACs"))
             if n is not None]
    if entry.depth is not None:
        sizes.append(f"depth {entry.depth}")
    if sizes:
        row("size", ", ".join(sizes))
    row("license", entry.license or "not stated")
    if entry.source:
        row("source", entry.source)
    if entry.zoo:
        row("zoo", entry.zoo)
    if entry.cnnreg_version:
        row("cnnreg", entry.cnnreg_version)
    if entry.manifest is not None:
        command = entry.manifest.get("command")
        row("training run", command if isinstance(command, str) else
            f"manifest with {len(entry.manifest)} fields (cnnreg show {component.name} --json)")
    console.print(Panel(head, title=f"weights {escape(component.name)}", title_align="left", expand=False))
    # Files below the panel, a URL whole on its own line (a terminal wraps it; a copy stays whole).
    files = list(entry.files.items())
    if entry.class_names_file:
        files.append(("class names", entry.class_names_file))
    console.print("files")
    for role, file in files:
        size = f", {file.size:,} bytes" if file.size is not None else ""
        console.print(f"  {role}: {file.filename}{size}", markup=False, soft_wrap=True)
        console.print(f"    {file.hash or 'no hash published: cannot be verified'}", markup=False, soft_wrap=True)
        console.print(f"    {file.url}", markup=False, soft_wrap=True)


#: ``cnnreg show`` for the kinds that show more than the factory's parameters.
KIND_SHOW = {"weights": _show_weights}


def _metric_label(key: str) -> str:
    return {"top1": "top-1", "top5": "top-5"}.get(key, key)


def _metric_value(key: str, value) -> str:
    """Accuracies (fractions) as percentages; anything else as it is."""
    if (key.startswith("top") or "accuracy" in key) and isinstance(value, float) and 0 <= value <= 1:
        return f"{100 * value:.1f}%"
    return str(value)


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
    from cnnreg.api.components import list_plugins

    result = list_plugins()
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    plugins = result.plugins
    from rich.markup import escape

    from cnnreg.cli.render import console, natural_width, print_wide

    styles = {"ok": "green", "warning": "yellow", "blocked": "dim", "failed": "red", "hook-error": "red"}
    width = console.width
    # Errors go in the status column when each fits there on one line, else in notes under the
    # table, wrapped at the terminal's width: an error is never cut.  Narrow terminals then lose
    # the "(built-in)" marks (the package cnnreg says it), then the hooks column.
    table = _plugins_table(plugins, styles, inline=True)
    notes = natural_width(table) > width and any(p.error for p in plugins)
    for builtin_mark, hooks in ((True, True), (False, True), (False, False)):
        table = _plugins_table(plugins, styles, inline=not notes, hooks=hooks, builtin_mark=builtin_mark)
        if natural_width(table) <= width:
            break
    print_wide(table)
    if notes:
        import textwrap

        console.print()
        for p in plugins:
            if not p.error:
                continue
            head = f"{p.name} ({p.status}): "
            lines = textwrap.wrap(head + p.error, max(width, 40), subsequent_indent="  ", break_on_hyphens=False)
            style = styles.get(p.status, "")
            console.print(f"{escape(p.name)} ([{style}]{p.status}[/]): {escape(lines[0][len(head):])}", soft_wrap=True)
            for line in lines[1:]:
                console.print(line, markup=False, soft_wrap=True)
    shadowed = result.shadowed
    if shadowed:
        from rich.markup import escape

        console.print(escape(shadowed_note(shadowed)))


def _plugins_table(plugins, styles: dict[str, str], *, inline: bool, hooks: bool = True, builtin_mark: bool = True):
    """``cnnreg plugins``' table: errors inline in the status column, or (``inline=False``) in
    notes under the table; ``hooks=False`` leaves the hooks column out, ``builtin_mark=False`` the
    "(built-in)" after cnnreg's own package (narrow terminals)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    table.add_column("plugin", no_wrap=True)
    table.add_column("package", no_wrap=True)
    if hooks:
        table.add_column("hooks", no_wrap=True)
    table.add_column("components", no_wrap=True, justify="right")
    table.add_column("status", no_wrap=inline, overflow="fold")
    for p in plugins:
        status = f"[{styles.get(p.status, '')}]{p.status}[/]"
        if p.error and inline:
            status += f": {escape(p.error)}"
        package = f"{p.distribution} {p.version}" + (" (built-in)" if p.builtin and builtin_mark else "")
        cells = [escape(p.name), escape(package)]
        if hooks:
            cells.append(escape(", ".join(h.replace("register_", "") for h in p.hooks) or "-"))
        table.add_row(*cells, str(p.components), status)
    return table


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
