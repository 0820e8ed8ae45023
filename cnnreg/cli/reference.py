"""The CLI reference in Markdown, generated from the Typer app (docs/cli-reference.md).

    python -m cnnreg.cli.reference > docs/cli-reference.md

A test checks that the committed file equals this output, so the reference never drifts from
the code.
"""

from __future__ import annotations

import click
import typer

from cnnreg.cli.helptext import paragraphs


def _rows(command: click.Command) -> list[str]:
    lines = []
    for param in command.params:
        if isinstance(param, click.Argument):
            name = param.human_readable_name
            kind = "argument"
        else:
            name = ", ".join(param.opts + param.secondary_opts)
            kind = "flag" if getattr(param, "is_flag", False) else "option"
        text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
        default = param.default
        shown = "" if default in (None, False, (), []) or kind == "argument" else f"`{default}`"
        required = " (required)" if param.required else ""
        lines.append(f"| `{name}` | {kind}{required} | {text} | {shown} |")
    return lines


def _section(path: str, command: click.Command, depth: int) -> list[str]:
    out = [f"{'#' * depth} `{path}`", ""]
    parts = paragraphs(command.help or "")
    out += [lines[0] + "\n" for kind, lines in parts if kind == "prose"]
    code = [line for kind, lines in parts if kind == "example" for line in lines]
    if code:
        out += ["```bash", *code, "```", ""]
    rows = _rows(command)
    if rows:
        out += ["| name | kind | description | default |", "|---|---|---|---|", *rows, ""]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            out += _section(f"{path} {name}", command.commands[name], depth + 1)
    return out


def render() -> str:
    from cnnreg.cli import make_app

    root = typer.main.get_command(make_app(with_plugins=False))
    lines = [
        "# CLI reference",
        "",
        "Generated from the Typer app by `python -m cnnreg.cli.reference`; do not edit by hand.",
        "Behaviour that scripts rely on (exit status, JSON shapes) is described in [cli.md](cli.md).",
        "",
    ]
    assert isinstance(root, click.Group)
    for name in sorted(root.commands):
        lines += _section(f"cnnreg {name}", root.commands[name], 2)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
