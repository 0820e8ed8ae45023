"""The library under the information commands (issue 21, part 3): list, show, plugins, summary,
estimate, compare, data info, data show, weights pull and plugin new each have a public function
whose result's ``to_dict()`` is the command's ``--json``, whose mistakes are the command's one
line, and which shows as a table in a notebook."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import cnnreg
from cnnreg import testing
from cnnreg.errors import CnnregError
from cnnreg.testing import run_cli


def cli_json(*args: str) -> dict:
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cli_error(*args: str) -> str:
    """The one line the command prints for a mistake, without ``error: ``."""
    result = run_cli(*args)
    assert result.exit_code != 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    return line[len("error: "):]


def same_error(call, *args: str) -> str:
    """``call()`` raises the CnnregError whose one line the command ``args`` prints."""
    with pytest.raises(CnnregError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    assert message == cli_error(*args)
    return message


def is_table(result) -> None:
    html = result._repr_html_()
    columns, rows = result.table()
    assert html.count("<table>") == 1 and html.count("<th>") == len(columns) and "<tr><td>" in html, html[:300]
    assert rows and all(len(row) == len(columns) for row in rows)
    assert result.title() and result.title() in repr(result)


# --- list, show, plugins -----------------------------------------------------------------------


@pytest.mark.parametrize("args, kwargs", [
    ((), {}),
    (("architectures", "--filter", "resnet*"), {"kind": "architectures", "filter": "resnet*"}),
    (("weights", "--filter", "keras-resnet*"), {"kind": "weights", "filter": "keras-resnet*"}),
    (("--provider", "cnnreg"), {"provider": "cnnreg"}),
])
def test_list_components_is_list_json(args, kwargs):
    result = cnnreg.list_components(**kwargs)
    assert result.to_dict() == cli_json("list", *args)
    assert len(result) == len(result.to_dict()["components"]) > 0
    is_table(result)


def test_list_components_mistakes_are_the_commands_lines():
    assert "did you mean" in same_error(lambda: cnnreg.list_components("architecturs"), "list", "architecturs")
    same_error(lambda: cnnreg.list_components(provider="cnnreg-nope"), "list", "--provider", "cnnreg-nope")


@pytest.mark.parametrize("name", ["he_normal", "architecture/resnet34", "keras-resnet50.imagenet"])
def test_show_is_show_json(name):
    result = cnnreg.show(name)
    assert result.to_dict() == cli_json("show", name)
    assert (result.entry is not None) == (result.component.kind == "weights")
    is_table(result)


def test_show_mistakes_are_the_commands_lines():
    assert "did you mean 'resnet34'" in same_error(lambda: cnnreg.show("resnet35"), "show", "resnet35")


def test_list_plugins_is_plugins_json():
    result = cnnreg.list_plugins()
    assert result.to_dict() == cli_json("plugins")
    assert result.shadowed == []
    is_table(result)


# --- summary, estimate, compare ----------------------------------------------------------------


def test_summary_of_resnet34_is_summary_json():
    """The issue's example."""
    result = cnnreg.summary("resnet34", classes=10)
    assert result.to_dict() == cli_json("summary", "resnet34", "--classes", "10")
    assert result.target.num_classes == 10 and result.budget is None and result.warnings == []
    columns, rows = result.table()
    assert "params" in columns and len(rows) == len(result.summary.rows)
    is_table(result)


def test_summary_takes_the_shape_as_text_or_a_tuple():
    spec = "single_conv:filters=8,kernel=3"
    expected = cli_json("summary", spec, "--input-shape", "16x16x3", "--batch", "4", "--expand",
                        "--precision", "mixed_bfloat16", "--optimizer", "sgd")
    for shape in ("16x16x3", (16, 16, 3), [16, 16, 3]):
        result = cnnreg.summary(spec, input_shape=shape, batch=4, expand=True, precision="mixed_bfloat16",
                                optimizer="sgd")
        assert result.to_dict() == expected
    assert result.budget.batch_size == 4 and result.target.input_shape == (16, 16, 3)


def _tiny(input_shape=(16, 16, 3), num_classes=3):
    """A conv, a layer the cost model does not know, a dense head."""
    import keras

    class Mystery(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

        def compute_output_shape(self, shape):
            return shape

    inputs = keras.Input(input_shape, name="image")
    x = Mystery(name="mystery")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    outputs = keras.layers.Dense(num_classes, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    return keras.Model(inputs, outputs, name="tiny_api")


def test_a_layer_not_costed_is_a_warning_of_the_result():
    module = types.ModuleType("tinyapi")

    @cnnreg.hookimpl
    def register_architectures(registry):
        registry.add("tiny_api", _tiny, default_input_shape=(16, 16, 3))

    module.register_architectures = register_architectures
    with testing.plugin(module, name="tinyapi"):
        cli = run_cli("summary", "tiny_api", "--json")
        result = cnnreg.summary("tiny_api")
        compared = cnnreg.compare(["tiny_api", "lenet5"], input_shape="32x32x1")
    assert result.to_dict() == json.loads(cli.stdout)
    (line,) = [line for line in cli.stderr.splitlines() if line.startswith("warning: ")]
    assert result.warnings == [line[len("warning: "):]] and "mystery (Mystery)" in line
    assert len(compared.warnings) == 1 and compared.warnings[0].startswith("tiny_api: ")
    (row,) = [row for row in result.table()[1] if row[0] == "mystery"]
    assert row[5] is None  # MACs unknown, not 0


def test_estimate_is_estimate_json():
    result = cnnreg.estimate("lenet5", device_memory="1GiB")
    assert result.to_dict() == cli_json("estimate", "lenet5", "--device-memory", "1GiB")
    assert result.fits and result.batch_size == result.max_batch_size > 0 and result.remedies == []
    is_table(result)


def test_estimate_of_a_batch_that_does_not_fit_has_the_remedies():
    args = dict(device_memory="64MiB", batch=20000, input_shape=(32, 32, 1), platform="cpu")
    result = cnnreg.estimate("lenet5", **args)
    assert result.to_dict() == cli_json("estimate", "lenet5", "--device-memory", "64MiB", "--batch", "20000",
                                        "--input-shape", "32x32x1", "--platform", "cpu")
    assert not result.fits and result.remedies and result.advice is not None
    columns, rows = result.table()
    assert any(str(row[0]).startswith("remedy 1: ") for row in rows)


def test_compare_is_compare_json():
    names = ["lenet5", "single_conv:filters=8,kernel=3"]
    result = cnnreg.compare(names, input_shape="32x32x1", classes=5, batch=8)
    assert result.to_dict() == cli_json("compare", *names, "--input-shape", "32x32x1", "--classes", "5", "--batch", "8")
    columns, rows = result.table()
    assert [row[0] for row in rows] == names and "parameters" in columns
    is_table(result)


@pytest.mark.parametrize("call, args", [
    (lambda: cnnreg.summary("lenet5", precision="float8"), ("summary", "lenet5", "--precision", "float8")),
    (lambda: cnnreg.summary("lenet5", input_shape=(0, 32, 1)), ("summary", "lenet5", "--input-shape", "0x32x1")),
    (lambda: cnnreg.summary("lenet5", batch=0), ("summary", "lenet5", "--batch", "0")),
    (lambda: cnnreg.summary("lenet5", optimizer="adamm"), ("summary", "lenet5", "--optimizer", "adamm")),
    (lambda: cnnreg.summary("lenet5", backend="theano"), ("summary", "lenet5", "--backend", "theano")),
    (lambda: cnnreg.estimate("lenet5", device_memory="16 parsecs"), ("estimate", "lenet5", "--device-memory", "16 parsecs")),
    (lambda: cnnreg.estimate("lenet5", method="guess"), ("estimate", "lenet5", "--method", "guess")),
    (lambda: cnnreg.estimate("lenet5", method="compiled", platform="cpu"),
     ("estimate", "lenet5", "--method", "compiled", "--platform", "cpu")),
    (lambda: cnnreg.compare(["lenet5"]), ("compare", "lenet5")),
    (lambda: cnnreg.compare("lenet5"), ("compare", "lenet5")),
])
def test_analysis_mistakes_are_the_commands_lines(call, args):
    same_error(call, *args)


def test_mistakes_cost_no_keras_import():
    """A typo is found before keras (or TensorFlow) is imported, as on the command line."""
    code = """
import sys, cnnreg
calls = [
    lambda: cnnreg.summary("resnet35"),
    lambda: cnnreg.summary("lenet5", precision="float8"),
    lambda: cnnreg.summary("resnet34", input_shape="8x8x3"),
    lambda: cnnreg.estimate("lenet5", device_memory="lots"),
    lambda: cnnreg.compare(["lenet5", "vgg17"]),
    lambda: cnnreg.list_components("weight", provider="nobody"),
    lambda: cnnreg.show("resnet35"),
    lambda: cnnreg.new_plugin("Bad Name"),
    lambda: cnnreg.dataset_samples("digits", n=0),
]
for call in calls:
    try:
        call()
    except cnnreg.CnnregError as exc:
        print(str(exc).replace(chr(10), " / "))
    else:
        print("no error")
print(sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules))
"""
    env = dict(os.environ, CNNREG_LOAD_PLUGINS="")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 10 and "no error" not in lines, proc.stdout
    assert "did you mean 'resnet34'" in lines[0]
    assert lines[-1] == "[]", proc.stdout


# --- data info, data show ----------------------------------------------------------------------


def test_dataset_info_is_data_info_json():
    result = cnnreg.dataset_info("digits")
    assert result.to_dict() == cli_json("data", "info", "digits")
    assert len(result.classes) == 10 and sum(result.counts["train"]) > 0
    columns, rows = result.table()
    assert columns[0] == "class" and columns[-1] == "total" and len(rows) == 10
    is_table(result)


def test_dataset_samples_is_data_show_json(tmp_path):
    out = tmp_path / "grid.png"
    expected = cli_json("data", "show", "digits", "--n", "4", "--seed", "3", "--size", "16", "-o", str(out))
    out.unlink()
    result = cnnreg.dataset_samples("digits", n=4, seed=3, size=16, output=out)
    assert result.to_dict() == expected and result.path == out and out.is_file()
    is_table(result)
    assert '<img src="data:image/png;base64,' in result._repr_html_()


def test_dataset_mistakes_are_the_commands_lines(tmp_path):
    same_error(lambda: cnnreg.dataset_info("digitz"), "data", "info", "digitz")
    same_error(lambda: cnnreg.dataset_samples("digits", n=0, output=tmp_path / "x.png"),
               "data", "show", "digits", "--n", "0", "-o", str(tmp_path / "x.png"))
    missing = tmp_path / "no" / "x.png"
    same_error(lambda: cnnreg.dataset_samples("digits", output=missing), "data", "show", "digits", "-o", str(missing))


# --- weights pull ------------------------------------------------------------------------------


def test_pull_weights_is_weights_pull_json(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    (zoo / "lenet5.tiny").mkdir(parents=True)
    data = b"not really a keras file, but its hash is checked" * 10
    (zoo / "lenet5.tiny" / "lenet5.tiny.keras").write_bytes(data)
    entry = {"name": "lenet5.tiny", "architecture": "lenet5", "num_classes": 10, "input_shape": [32, 32, 1],
             "files": {"model": {"url": "lenet5.tiny/lenet5.tiny.keras", "filename": "lenet5.tiny.keras",
                                 "hash": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}}}
    (zoo / "zoo.json").write_text(json.dumps({"cnnreg_zoo": 1, "entries": [entry]}))
    monkeypatch.setenv("CNNREG_ZOO", str(zoo))
    monkeypatch.setenv("CNNREG_CACHE", str(tmp_path / "cache"))
    expected = cli_json("weights", "pull", "lenet5.tiny")  # downloads: "action" says so
    result = cnnreg.pull_weights("lenet5.tiny", file="model")
    assert expected["pulled"]["files"]["model"]["action"] != "cached"
    expected["pulled"]["files"]["model"]["action"] = "cached"  # the second pull finds it in the cache
    assert result.to_dict() == expected
    assert result.to_dict() == cli_json("weights", "pull", "lenet5.tiny")
    assert result.paths["model"].read_bytes() == data and result.recipe is None
    assert result.entry.name == "lenet5.tiny"
    is_table(result)
    same_error(lambda: cnnreg.pull_weights("lenet5.tiny", file="notop"), "weights", "pull", "lenet5.tiny",
               "--file", "notop")
    same_error(lambda: cnnreg.pull_weights("lenet5.tiniest"), "weights", "pull", "lenet5.tiniest")


# --- plugin new --------------------------------------------------------------------------------


def test_new_plugin_writes_what_plugin_new_writes(tmp_path):
    by_cli, by_api = tmp_path / "cli", tmp_path / "api"
    by_cli.mkdir(), by_api.mkdir()
    cli = run_cli("plugin", "new", "acme", "--kind", "architecture=acmenet", "--kind", "initialiser",
                  "--dist", "acme-cnn", "--dir", str(by_cli))
    assert cli.exit_code == 0, cli.output
    result = cnnreg.new_plugin("acme", kind={"architecture": "acmenet", "initialiser": "acme"}, dist="acme-cnn",
                               directory=by_api)
    assert result.root == by_api / "acme-cnn" and result.distribution == "acme-cnn"
    assert result.components == {"architecture": "acmenet", "initialiser": "acme"}
    written = sorted(p.relative_to(by_cli / "acme-cnn") for p in (by_cli / "acme-cnn").rglob("*") if p.is_file())
    assert result.files == written
    assert [f"  {p}" for p in result.files] == [line for line in cli.stdout.splitlines() if line.startswith("  ")]
    for path in result.files:
        assert (result.root / path).read_text() == (by_cli / "acme-cnn" / path).read_text()
    data = result.to_dict()
    assert data["cnnreg"] == cnnreg.__version__ and data["plugin"]["files"] == [str(p) for p in result.files]
    is_table(result)
    same_error(lambda: cnnreg.new_plugin("acme", kind="widget=x", directory=by_api),
               "plugin", "new", "acme", "--kind", "widget=x", "--dir", str(by_api))
    same_error(lambda: cnnreg.new_plugin("acme", dist="acme-cnn", directory=by_api),
               "plugin", "new", "acme", "--dist", "acme-cnn", "--dir", str(by_api))


# --- the functions' keywords are the commands' ---------------------------------------------------


COMMANDS = ["list", "show", "plugins", "summary", "estimate", "compare", "data info", "data show", "weights pull",
            "plugin new"]


@pytest.mark.parametrize("command", COMMANDS)
def test_keywords_and_defaults_are_the_commands(command):
    import click
    import typer

    from cnnreg.api import COMMANDS as TABLE
    from cnnreg.cli import make_app

    group = typer.main.get_command(make_app(with_plugins=False))
    ctx = click.Context(group)
    cmd = group
    for word in command.split():
        cmd = cmd.get_command(ctx, word)
    function = getattr(cnnreg, TABLE[command].rpartition(":")[2])
    params = [p for p in cmd.params if p.name != "as_json"]
    # progress(...) is how the CLI (or a notebook) is told of long steps, not an option
    signature = {k: v for k, v in inspect.signature(function).parameters.items() if k != "progress"}
    assert list(signature) == [p.name for p in params]
    for param in params:
        default = signature[param.name].default
        if default is inspect.Parameter.empty:
            assert param.required, param.name
        else:
            assert not param.required and param.default == (list(default) if isinstance(default, tuple) else default)
