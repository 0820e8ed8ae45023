"""Help text set for the terminal's width, once, where ``cnnreg`` builds its commands.

Docstrings are written hard-wrapped for the source file, and Typer (in Rich markup mode) keeps
those line breaks and wraps again at the terminal's width, leaving ragged lines; it wraps an
example like prose, breaking it where it cannot be pasted.  :func:`fit_help` rewrites every
command's help before Typer sees it: prose paragraphs flow, each example stays one line (or,
when wider than the terminal, one shell block continued with ``\\``), and the command list gets
the first paragraph on one line, cut to the row it has.
"""

from __future__ import annotations

import inspect
import re

import click

from cnnreg.cli.render import cut

__all__ = ["examples", "fit_help", "help_width", "paragraphs"]

#: Typer pads the help text one column each side; a commands row takes "│ NAME  " and " │".
_HELP_MARGIN = 2
_ROW_MARGIN = 6
_HEADER = re.compile(r"^(Examples?):\s*(\S.*)?$")
_TOKEN = re.compile(r"""(?:'[^']*'|"[^"]*"|\S)+""")


class _Deferred(type):
    """A stand-in class whose calls and attributes go to the real one, imported on first use."""

    def __call__(cls, *args, **kwargs):
        return cls.real()(*args, **kwargs)

    def __getattr__(cls, attr: str):
        return getattr(cls.real(), attr)


def lean_help_imports() -> None:
    """Import Typer's help formatter (``typer.rich_utils``) without the two Rich modules it imports
    for what cnnreg's help never shows: ``rich.markdown`` (help written in Markdown; cnnreg's is
    Rich markup) and ``rich.traceback`` (Typer's pretty tracebacks; cnnreg's errors are one line).
    They cost 30 ms of ``cnnreg --help``'s 165.  The formatter gets stand-ins that import the real
    class on first use, so nothing changes if it does use one; after this import, both modules
    import as usual."""
    import importlib
    import sys
    import types

    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {}
    for module, name in (("rich.markdown", "Markdown"), ("rich.traceback", "Traceback")):
        if module not in sys.modules:
            later = types.ModuleType(module)
            setattr(later, name, _Deferred(name, (), {
                "real": staticmethod(lambda module=module, name=name: getattr(importlib.import_module(module), name))}))
            stand_ins[module] = later
    sys.modules.update(stand_ins)
    try:
        import typer.rich_utils  # noqa: F401
    finally:
        for module, later in stand_ins.items():
            if sys.modules.get(module) is later:
                del sys.modules[module]


def help_width() -> int:
    """The width Typer sets help at: ``TERMINAL_WIDTH`` when set, else Rich's (``COLUMNS``, the terminal)."""
    import os

    from rich.console import Console

    fixed = os.environ.get("TERMINAL_WIDTH")
    return int(fixed) if fixed and fixed.isdigit() else Console().width


def paragraphs(text: str) -> list[tuple[str, list[str]]]:
    """A docstring as ``(kind, lines)``: ``"prose"`` (one flowed line), ``"header"`` ("Examples:")
    or ``"example"`` (each line one command, whitespace as written).  Indented lines are examples;
    so is what follows "Example: " on the header's own line."""
    out: list[tuple[str, list[str]]] = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text or "").partition("\f")[0]):
        prose: list[str] = []
        literal: list[str] = []

        def flush() -> None:
            if prose:
                out.append(("prose", [" ".join(" ".join(prose).split())]))
                prose.clear()
            if literal:
                out.append(("example", list(literal)))
                literal.clear()

        for line in block.splitlines():
            if not line.strip():
                continue
            header = _HEADER.match(line)
            if header and not prose:
                flush()
                out.append(("header", [header.group(1) + ":"]))
                if header.group(2):
                    literal.append(header.group(2).strip())
            elif line[0] in " \t":
                if prose:
                    flush()
                literal.append(line.strip())
            else:
                if literal:
                    flush()
                prose.append(line.strip())
        flush()
    return out


def examples(text: str) -> list[str]:
    """Every example command of a docstring, one string each."""
    return [line for kind, lines in paragraphs(text) if kind == "example" for line in lines]


def _continued(line: str, width: int) -> list[str]:
    """``line`` as one line if it fits ``width``, else a shell block: lines ended with `` \\`` and
    continued four columns in, broken before an option (with its value) where one fits."""
    if len(line) <= width:
        return [line]
    units: list[str] = []
    for token in _TOKEN.findall(line):  # an option and its value stay together
        if units and not token.startswith("-") and units[-1].startswith("-") and " " not in units[-1]:
            units[-1] += " " + token
        else:
            units.append(token)
    # an option whose value would not fit a continued line goes on a line of its own
    units = [piece for unit in units for piece in (unit.split(" ", 1) if len(unit) + 6 > width else [unit])]
    rows: list[str] = []
    for unit in units:
        room = width - 2 - (4 if len(rows) > 1 else 0)  # a continued row is indented; all but the last end " \\"
        if rows and len(rows[-1] + " " + unit) <= room:
            rows[-1] += " " + unit
        else:
            rows.append(unit)
    # four columns in, or fewer for a word that would not fit otherwise
    shown = [rows[0]] + [" " * max(0, min(4, width - 2 - len(row))) + row for row in rows[1:]]
    return [row + " \\" for row in shown[:-1]] + shown[-1:]


def _help(text: str, width: int) -> str:
    from rich.markup import escape

    out = []
    for kind, lines in paragraphs(text):
        if kind == "example":
            # one paragraph of lines that fit: Typer's dedent finds no margin to strip
            shown = [piece for line in lines for piece in _continued(line, width)]
            out.append(escape("\n".join(shown)))  # a line's closing "\\" is no escape to Rich
        else:
            out.append(lines[0])
    return "\n\n".join(out)


def fit_help(command: click.Command, width: int) -> None:
    """Set the help of ``command`` and its subcommands for ``width`` columns (see the module)."""
    if command.help:
        first = paragraphs(command.help)
        command.help = _help(command.help, width - _HELP_MARGIN)
        if first and first[0][0] == "prose" and command.short_help is None:
            command.short_help = first[0][1][0]
    if isinstance(command, click.Group) and command.commands:
        longest = max(len(name) for name in command.commands)
        for sub in command.commands.values():
            fit_help(sub, width)
            if sub.short_help:
                sub.short_help = cut(" ".join(sub.short_help.split()), max(10, width - longest - _ROW_MARGIN))
