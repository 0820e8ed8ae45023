"""``--help`` at the width people have (issue 25, item 1): one line per command in the list,
paragraphs that flow, and examples that stay whole so they can be pasted."""

from __future__ import annotations

import click
import pytest
import typer
from rich.cells import cell_len

from cnnreg.cli import make_app
from cnnreg.cli.helptext import examples, paragraphs
from cnnreg.testing import run_cli

WIDTHS = (60, 80, 120)


def commands() -> list[tuple[list[str], click.Command]]:
    """(argv, command) for every command and group of the app, the root first."""
    def walk(command, path):
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(make_app(with_plugins=False)), []))


def help_at(width: int, argv: list[str], monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    result = run_cli(*argv, "--help")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def prose_block(out: str) -> list[str]:
    """The help text between the usage line and the first panel, without its one-column margin."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    return [line[1:].rstrip() for line in lines[start:end]]


def shown_example(block: list[str], example: str) -> str | None:
    """The example as the help shows it: its line, and the lines a closing " \\" continues onto."""
    head = example.split()[0:2]
    for number, line in enumerate(block):
        if line.split()[:2] != head:
            continue
        pieces = [line]
        while pieces[-1].endswith(" \\") and number + len(pieces) < len(block):
            pieces.append(block[number + len(pieces)])
        joined = " ".join(piece.removesuffix(" \\").strip() for piece in pieces)
        if joined == " ".join(example.split()):
            return joined
    return None


@pytest.mark.parametrize("width", WIDTHS)
def test_the_command_list_has_one_line_per_command(width, monkeypatch):
    out = help_at(width, [], monkeypatch)
    assert all(cell_len(line) <= width for line in out.splitlines()), max(out.splitlines(), key=cell_len)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "Commands" in line)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
    rows = lines[start + 1:end]
    names = [name for name, command in typer.main.get_command(make_app()).commands.items() if not command.hidden]
    assert [row.split()[1] for row in rows] == names  # one row each, in order
    if width >= 80:
        assert "…" not in "\n".join(rows)  # every command's first sentence whole at 80 columns


@pytest.mark.parametrize("width", WIDTHS)
def test_every_help_fits_flows_and_keeps_examples_whole(width, monkeypatch):
    for argv, command in commands():
        out = help_at(width, argv, monkeypatch)
        lines = out.splitlines()
        assert all(cell_len(line) <= width for line in lines), (argv, max(lines, key=cell_len))
        block = prose_block(out)
        wanted = examples(command.help or "")
        assert wanted, f"`cnnreg {' '.join(argv)} --help` shows no example"
        for example in wanted:
            assert shown_example(block, example), (argv, width, example)
        # prose is filled: a line ends only where the next word would not have fitted
        prose = {line for kind, lines_ in paragraphs(command.help) if kind == "prose" for line in lines_}
        for text in prose:
            first = text.split()[0]
            at = next(i for i, line in enumerate(block) if line.startswith(first) and text.startswith(line.strip()))
            shown = block[at:block.index("", at) if "" in block[at:] else len(block)]
            assert " ".join(" ".join(shown).split()) == " ".join(text.split()), (argv, shown)
            for line, after in zip(shown, shown[1:]):
                assert cell_len(line) + 1 + cell_len(after.split()[0]) > width - 2, (argv, width, line, after)


def test_the_issue_s_examples_are_unbroken_at_80_columns(monkeypatch):
    attack = prose_block(help_at(80, ["attack"], monkeypatch))
    assert "cnnreg attack runs/20261126-170000-lenet5-digits \\" in attack
    assert "    --eps 0,2/255,4/255,8/255,16/255" in attack
    diagnose = "\n".join(prose_block(help_at(80, ["diagnose"], monkeypatch)))
    assert "    --init variance_scaling:scale=1/3,distribution=uniform" in diagnose
    publish = " ".join(prose_block(help_at(80, ["publish"], monkeypatch)))
    assert "an entry of the same name is replaced" in " ".join(publish.split())
    wide = prose_block(help_at(200, ["attack"], monkeypatch))
    assert ("cnnreg attack runs/20261126-170000-lenet5-digits --attack pgd:steps=20 --eps 0,0.1 --limit 200 "
            "--out adv/") in wide  # one line where it fits


def test_paragraphs_tell_prose_from_examples():
    doc = """First line
    goes on.

    Example: cnnreg list architectures

    Examples:

      cnnreg a --x 1
      cnnreg b

    Last words
    here."""
    assert paragraphs(doc) == [
        ("prose", ["First line goes on."]),
        ("header", ["Example:"]), ("example", ["cnnreg list architectures"]),
        ("header", ["Examples:"]), ("example", ["cnnreg a --x 1", "cnnreg b"]),
        ("prose", ["Last words here."]),
    ]
    assert examples(doc) == ["cnnreg list architectures", "cnnreg a --x 1", "cnnreg b"]


def test_help_imports_no_markdown_or_traceback_and_they_still_work(subprocess_env):
    """`cnnreg --help` imports Typer's formatter without rich.markdown and rich.traceback (30 ms of
    its start-up); the stand-ins it gets import the real classes when used, and the modules
    import as usual afterwards."""
    import subprocess
    import sys

    code = """
import sys
from cnnreg.cli.helptext import lean_help_imports
lean_help_imports()
import typer.rich_utils as ru
assert "rich.markdown" not in sys.modules and "rich.traceback" not in sys.modules, sorted(sys.modules)
from rich.markdown import Markdown
assert type(ru.Markdown("# hi")) is Markdown
assert ru.Traceback.from_exception.__qualname__ == "Traceback.from_exception"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
    shown = subprocess.run([sys.executable, "-X", "importtime", "-m", "cnnreg", "--help"], capture_output=True,
                           text=True, env=dict(subprocess_env, COLUMNS="80"), timeout=120)
    assert shown.returncode == 0 and "Commands" in shown.stdout, shown.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in shown.stderr.splitlines() if line.startswith("import time:")}
    assert "typer.rich_utils" in imported and not imported & {"rich.markdown", "rich.traceback", "markdown_it"}
