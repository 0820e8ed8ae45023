"""The library under the command line (issue 21, part 3): a public function per command, named as
the command's options with the same defaults, whose result's ``to_dict()`` is exactly what the
command prints with ``--json``."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cnnreg
from cnnreg.api import COMMANDS
from cnnreg.api.results import Result
from cnnreg.errors import CnnregError
from cnnreg.testing import run_cli

#: Options that are the CLI's own: how it renders (the result's to_dict() is the JSON).
CLI_ONLY = {"as_json"}
#: Keyword-only arguments the functions have beyond the options: how a caller shows progress.
API_ONLY = {"display", "progress", "report", "warn"}
FAST = {"dataset": "digits:size=8", "batch_size": 64}


def _commands() -> dict[str, object]:
    """``"data info"`` → its click command, for every command of the app (plugins left out)."""
    import click
    import typer

    from cnnreg.cli import make_app

    found = {}

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = command

    walk(typer.main.get_command(make_app(with_plugins=False)), [])
    return found


def _function(path: str):
    module, _, name = COMMANDS[path].partition(":")
    return getattr(importlib.import_module(module), name)


def _plain(value):
    """Defaults compared as the CLI gives them: a list for a tuple, text for a path."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def test_every_command_has_a_function_and_every_function_a_command():
    commands = _commands()
    assert set(commands) == set(COMMANDS)
    for path in COMMANDS:
        function = _function(path)
        assert getattr(cnnreg, function.__name__) is function, f"cnnreg.{function.__name__} is not {path}'s function"
        assert function.__name__ in cnnreg.__all__ and function.__doc__


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_the_functions_arguments_are_the_commands_options(path):
    """Same names, same defaults; a required argument of the command is a required argument of
    the function; the function's other arguments are keyword-only hooks (``display``, ``progress``)."""
    command = _commands()[path]
    signature = inspect.signature(_function(path))
    options = {p.name: p for p in command.params if p.name not in CLI_ONLY and p.name != "help"}
    arguments = {n: p for n, p in signature.parameters.items() if n not in API_ONLY}
    assert set(options) == set(arguments), (path, sorted(options), sorted(arguments))
    for name, option in options.items():
        argument = arguments[name]
        if option.required:
            assert argument.default is inspect.Parameter.empty, (path, name)
        else:
            assert _plain(argument.default) == _plain(option.default), (path, name, argument.default, option.default)
    for name in set(signature.parameters) - set(arguments):
        assert signature.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_importing_cnnreg_and_its_functions_imports_no_framework(subprocess_env):
    code = ("import sys, cnnreg\n"
            "functions = [getattr(cnnreg, n) for n in cnnreg.__all__ if n not in ('__version__',)]\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_old_names_still_work():
    """What cnnreg exported before keeps working: components/get/build and the moved modules."""
    import warnings

    assert cnnreg.get("initialiser", "he_normal").name == "he_normal"
    assert cnnreg.build("regulariser", "l2=1e-4").describe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from cnnreg.regularisers import Regulariser  # moved to cnnreg.kinds.regularisers
        from cnnreg.data import Dataset
        import cnnreg.zoo.entry as entry
    assert Regulariser is cnnreg.Regulariser and Dataset is cnnreg.Dataset
    assert entry.WeightsEntry is cnnreg.WeightsEntry and entry.__name__ == "cnnreg.kinds.weights"


# --- to_dict() is --json ---------------------------------------------------------------------------


class Recorded:
    """Wraps a public function so that the CLI's call of it is recorded with its result."""

    def __init__(self, monkeypatch, path: str):
        module, _, name = COMMANDS[path].partition(":")
        self.module, self.name = importlib.import_module(module), name
        original = getattr(self.module, name)
        self.results: list[Result] = []

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            self.results.append(result)
            return result

        monkeypatch.setattr(self.module, name, wrapper)

    def json(self) -> dict:
        assert len(self.results) == 1, f"{self.name} was called {len(self.results)} times"
        return json.loads(json.dumps(self.results[0].to_dict(), default=str))


def same_as_json(monkeypatch, path: str, *args: str) -> Result:
    """Run ``cnnreg PATH ARGS --json``: it succeeds, and prints exactly its result's to_dict()."""
    recorded = Recorded(monkeypatch, path)
    result = run_cli(*path.split(), *args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == recorded.json()
    return recorded.results[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One finished LeNet-5 run, from Python."""
    run_dir = tmp_path_factory.mktemp("api") / "lenet5"
    result = cnnreg.run("lenet5", epochs=1, run_dir=run_dir, quiet=True, **FAST)
    assert result.status == "completed" and result.test["accuracy"] > 0
    assert result.run_dir == run_dir and (run_dir / "model.keras").exists()
    return run_dir


def test_run_resume_rerun_and_runs(trained, tmp_path, monkeypatch):
    result = same_as_json(monkeypatch, "run", "lenet5", "--epochs", "1", "--dataset", "digits:size=8",
                          "--batch-size", "64", "--run-dir", str(tmp_path / "cli"))
    assert result.status == "completed" and len(result.history) == 1
    rerun = same_as_json(monkeypatch, "rerun", str(trained), "--set", "seed=1", "--run-dir", str(tmp_path / "again"))
    assert rerun.plan.config.seed == 1 and rerun.status == "completed"
    runs = same_as_json(monkeypatch, "runs", "--root", str(tmp_path))
    assert sorted(Path(r["run_dir"]).name for r in runs.runs) == ["again", "cli"]
    with pytest.raises(CnnregError, match="already completed"):
        cnnreg.resume(trained)


def test_evaluate_predict_attack_and_publish(trained, tmp_path, monkeypatch):
    from PIL import Image

    evaluation = same_as_json(monkeypatch, "evaluate", str(trained))
    assert evaluation["examples"] > 0 and evaluation.to_dict() == cnnreg.evaluate(trained).to_dict()
    image = tmp_path / "seven.png"
    Image.new("L", (8, 8), 128).save(image)
    prediction = same_as_json(monkeypatch, "predict", str(trained), str(image), "--top", "2")
    assert len(prediction.predictions[0]["top"]) == 2
    attacked = same_as_json(monkeypatch, "attack", str(trained), "--eps", "0,8/255", "--limit", "16")
    assert [row["eps"] for row in attacked["results"]] == [0.0, 8 / 255]
    published = same_as_json(monkeypatch, "publish", str(trained), str(tmp_path / "zoo"), "--license", "MIT")
    assert published.entry.name == "lenet5.digits"


def test_lr_find_and_diagnose(tmp_path, monkeypatch):
    found = same_as_json(monkeypatch, "lr-find", "lenet5", "--dataset", "digits:size=8", "--steps", "12",
                         "--end", "1")
    assert found.test.steps >= 1
    diagnosed = same_as_json(monkeypatch, "diagnose", "plain_net:depth=3,width=8", "--batch", "8",
                             "--input-shape", "8x8x1")
    assert diagnosed.to_dict()["hidden_layers"] == 3


def test_sweep_and_sweep_show(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    root = str(tmp_path / "sweeps")
    swept = same_as_json(monkeypatch, "sweep run", "lenet5", "--init", "he_normal,glorot_uniform", "--epochs", "1",
                         "--dataset", "digits:size=8", "--batch-size", "64", "--study", "api", "--root", root)
    assert len(swept.trials) == 2 and sorted(swept.to_dict()["ran"]) == [0, 1]
    shown = same_as_json(monkeypatch, "sweep show", "api", "--root", root)
    assert [t["number"] for t in shown.trials] == [t["number"] for t in swept.trials]
    assert shown.best == swept.best


def test_plugin_new(tmp_path, monkeypatch):
    written = same_as_json(monkeypatch, "plugin new", "acme", "--kind", "optimizer=nesty", "--dir", str(tmp_path))
    assert written.root == tmp_path / "cnnreg-acme" and (written.root / "cnnreg_acme" / "optimizers.py").exists()


def test_a_mistake_is_one_line_before_anything_loads():
    with pytest.raises(CnnregError, match=r"unknown architecture 'resnet35'.*did you mean 'resnet34'"):
        cnnreg.run("resnet35", epochs=1)
    with pytest.raises(CnnregError, match=r"--lr must be a number > 0 or auto"):
        cnnreg.run("lenet5", lr="fast")
    with pytest.raises(CnnregError, match=r"unknown optimizer 'adamm'.*did you mean 'adam'"):
        cnnreg.lr_find("lenet5", optimizer="adamm")


def test_results_show_as_tables_in_a_notebook(trained):
    evaluation = cnnreg.evaluate(trained)
    html = evaluation._repr_html_()
    assert html.startswith("<p><b>test:") and "<table>" in html and "precision" in html
    runs = cnnreg.list_runs(trained.parent)
    assert "lenet5" in runs._repr_html_()


def test_the_issues_one_liner(tmp_path, subprocess_env):
    """``import cnnreg; cnnreg.run('lenet5', epochs=1, run_dir='r'); cnnreg.evaluate('r').to_dict()``."""
    code = ("import cnnreg; cnnreg.run('lenet5', epochs=1, run_dir='r', dataset='digits:size=8'); "
            "import json; print(json.dumps(cnnreg.evaluate('r').to_dict()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["cnnreg"] == cnnreg.__version__ and data["evaluation"]["split"] == "test"
    assert "epoch   1/1" in out.stdout  # a script shows its epochs (one line each through a pipe)
