"""The docs build, and the CLI reference is the one the Typer app generates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_generated_from_the_app():
    from cnnreg.cli.reference import render

    committed = (ROOT / "docs" / "cli-reference.md").read_text()
    assert committed == render(), "docs/cli-reference.md is stale: python -m cnnreg.cli.reference > docs/cli-reference.md"


def _commands():
    """(path, click command) for every command of the app, plugins left out."""
    import click
    import typer

    from cnnreg.cli import make_app

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, command

    return list(walk(typer.main.get_command(make_app(with_plugins=False)), "cnnreg"))


def test_every_command_help_shows_an_example():
    for path, command in _commands():
        assert "Example" in (command.help or ""), f"`{path} --help` shows no example"


def test_every_cli_argument_has_its_description_in_help():
    """click 8.5 under typer 0.25 reset every Argument's help (pyproject.toml caps click)."""
    import click

    from cnnreg.testing import run_cli

    arguments = [(path, p) for path, command in _commands() for p in command.params if isinstance(p, click.Argument)]
    assert len(arguments) >= 10
    for path, param in arguments:
        assert getattr(param, "help", None), f"`{path}`: argument {param.name} lost its description"
    assert "Architecture spec" in run_cli("run", "--help").stdout


def test_mkdocs_builds_strict(tmp_path):
    if shutil.which("mkdocs") is None and not _has_module("mkdocs"):
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
