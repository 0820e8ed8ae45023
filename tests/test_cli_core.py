"""`cnnreg list / show / plugins / --version` and the one-line error contract."""

from __future__ import annotations

import json
import types

import pytest

import cnnreg
from cnnreg import testing
from cnnreg.testing import run_cli


def test_version():
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"cnnreg {cnnreg.__version__}"


def test_help_shows_commands_and_examples():
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("list", "show", "plugins"):
        assert command in result.stdout
    assert "Example" in run_cli("list", "--help").stdout


def test_list_shows_every_kind_with_provider():
    result = run_cli("list")
    assert result.exit_code == 0, result.stderr
    assert "initialisers (" in result.stdout and "he_normal" in result.stdout and "cnnreg" in result.stdout


def test_list_json_filter_and_provider():
    data = json.loads(run_cli("list", "initialisers", "--filter", "he_*", "--json").stdout)
    assert [c["name"] for c in data["components"]] == ["he_normal", "he_uniform"]
    assert set(data["components"][0]) == {
        "kind", "name", "qualified_name", "aliases", "summary", "provider", "provider_version", "tags",
        "builtin", "shadowed_by", "shadowed_aliases",
    }
    data = json.loads(run_cli("list", "--provider", "cnnreg", "--json").stdout)
    assert data["components"] and all(c["provider"] == "cnnreg" for c in data["components"])


def test_show_prints_parameters_and_docstring():
    result = run_cli("show", "initialiser/variance_scaling")
    assert result.exit_code == 0, result.stderr
    for text in ("scale", "fan_avg", "cnnreg", "Variance scaling"):
        assert text in result.stdout
    data = json.loads(run_cli("show", "he_normal", "--json").stdout)["component"]
    assert data["metadata"]["suits"][0] == "relu" and data["provider"] == "cnnreg"


@pytest.mark.parametrize(
    "args, line",
    [
        (("show", "he_norml"), "error: unknown component 'he_norml'; did you mean 'he_normal'?"),
        (("run", "resnet35"), "error: unknown architecture 'resnet35'; did you mean 'resnet34'?"),
        (("list", "architectres"), "error: unknown component kind 'architectres'; did you mean 'architecture'?"),
        (("list", "--provider", "cnnreg-fixp"), "error: no installed package 'cnnreg-fixp' provides components"),
        (("show", "he_normal:"), "error: bad spec 'he_normal:'"),
        (("list", "--bogus"), "error: No such option '--bogus'"),
        (("nosuchcommand",), "error: No such command 'nosuchcommand'"),
        # click 8.2+ and typer each add the suggestion: it is said once
        (("lsit",), "error: No such command 'lsit'. Did you mean 'list'? (see `cnnreg --help`)\n"),
    ],
)
def test_user_mistakes_get_one_line_and_status_2(args, line):
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(line), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_plugins_shows_a_broken_plugin_and_the_cli_keeps_working(tmp_path, monkeypatch):
    (tmp_path / "plug_cli_broken.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with testing.entry_point("shaky", "plug_cli_broken", distribution="cnnreg-shaky", version="0.3"):
        result = run_cli("plugins", "--json")
        assert result.exit_code == 0
        plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
        assert plugins["shaky"]["status"] == "failed"
        assert "No module named 'no_such_dependency_xyz'" in plugins["shaky"]["error"]
        assert plugins["initialisers"]["status"] == "ok" and plugins["initialisers"]["builtin"]
        # one warning line on stderr, and the command still works
        result = run_cli("list", "initialisers")
        assert result.exit_code == 0 and "he_normal" in result.stdout
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("warning: plugin 'shaky'")


def test_plugin_can_add_a_command():
    module = types.ModuleType("cmdplug")

    @cnnreg.hookimpl
    def register_commands(app):
        @app.command("hello")
        def hello(name: str = "world"):
            """Say hello."""
            print(f"hello {name}")

    module.register_commands = register_commands
    with testing.plugin(module, name="cmdplug"):
        result = run_cli("hello", "--name", "cnn")
    assert result.exit_code == 0 and result.stdout == "hello cnn\n"
