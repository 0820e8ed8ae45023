"""Fast start: --help, list, show and plugins never import keras, tensorflow, jax or torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("keras", "tensorflow", "jax", "torch")

PROBE = """
import sys, json
from cnnreg.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})
sys.stderr.write('HEAVY=' + json.dumps(heavy) + '\\n')
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list"],
        ["list", "architectures", "--json"],
        ["show", "he_normal"],
        ["show", "architecture/resnet34"],
        ["plugins"],
        ["summary", "--help"],
        ["estimate", "--help"],
        # options are checked before a model is built: a mistake costs no keras import
        ["summary", "resnet34", "--precision", "float8"],
        ["compare", "resnet34", "resnt50"],
        ["diagnose", "--help"],
        ["diagnose", "plain_net", "--init", "he_normall"],
        ["lr-find", "--help"],
        ["lr-find", "mlp_bn", "--steps", "5"],
        ["run", "mlp_bn", "--lr", "atuo"],
    ],
)
def test_command_imports_no_heavy_framework(args, subprocess_env):
    probe = PROBE.format(heavy=set(HEAVY))
    proc = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, env=subprocess_env, timeout=60
    )
    line = [l for l in proc.stderr.splitlines() if l.startswith("HEAVY=")]
    assert line, proc.stderr
    assert json.loads(line[0][len("HEAVY="):]) == [], f"cnnreg {' '.join(args)} imported a heavy framework"


def test_console_script_runs(subprocess_env):
    proc = subprocess.run(
        [sys.executable, "-m", "cnnreg", "list", "initialisers", "--json"],
        capture_output=True, text=True, env=subprocess_env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(c["name"] == "he_normal" for c in json.loads(proc.stdout)["components"])


# --- every command checks paths, names and numbers before keras loads (issue 25) --------------

#: One mistake per command (``{run}``: a finished run directory; ``{file}``: a plain file;
#: ``{folder}``: a folder), with a fragment of its one line.  Each is answered without keras,
#: so it costs a fraction of a second instead of keras' seconds of start-up.
MISTAKES = [
    ("list", ["list", "architecturez"], "did you mean 'architecture'"),
    ("show", ["show", "resnet35"], "did you mean"),
    ("plugins", ["plugins", "--json", "extra"], "unexpected extra argument"),
    ("run", ["run", "lenet5", "--epochs", "0"], "--epochs must be >= 1"),
    ("run", ["run", "lenet5", "--weights", "nothere/"], "does not exist"),
    ("resume", ["resume", "nothere"], "does not exist"),
    ("rerun", ["rerun", "{run}", "--set", "epochz=3"], "did you mean 'epochs'"),
    ("runs", ["runs", "--root", "{file}"], "is a file"),
    ("log", ["log", "{run}", "--log", "mlflw"], "did you mean 'mlflow'"),
    ("evaluate", ["evaluate", "{run}", "--split", "tset"], "did you mean 'test'"),
    ("evaluate", ["evaluate", "{run}", "--dataset", "digitz"], "did you mean 'digits'"),
    ("predict", ["predict", "{run}", "nothere.png"], "nothere.png does not exist"),
    ("predict", ["predict", "{run}", "{folder}"], "cannot read image"),
    ("predict", ["predict", "{run}", "{file}"], "not an image"),
    ("lr-find", ["lr-find", "lenet5", "--start", "0"], "--start must be > 0"),
    ("attack", ["attack", "{run}", "--split", "nope"], "has no 'nope' split"),
    ("attack", ["attack", "{run}", "--eps", "2"], "did you mean 2/255"),
    ("summary", ["summary", "resnet34", "--input-shape", "0x3x3"], "--input-shape"),
    ("estimate", ["estimate", "resnet50", "--device-memory", "16GB2"], "invalid memory size"),
    ("compare", ["compare", "resnet34", "resnt50"], "did you mean"),
    ("diagnose", ["diagnose", "plain_net:depth=0"], "'depth' must be in"),
    ("publish", ["publish", "{run}", "{file}"], "is a file"),
    ("export", ["export", "{run}", "--format", "onnxx"], "did you mean 'onnx'"),
    ("plugin new", ["plugin", "new", "9bad name"], "9bad name"),
    ("data info", ["data", "info", "digitz"], "did you mean 'digits'"),
    ("data show", ["data", "show", "digits", "--split", "nope"], "has no 'nope' split"),
    ("weights pull", ["weights", "pull", "nothere.x"], "nothere.x"),
    ("sweep run", ["sweep", "lenet5", "--seed", "0,a"], "whole numbers"),
    ("sweep show", ["sweep", "show", "nosuch"], "no study 'nosuch' under sweeps/ (there are none; start one"),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from cnnreg.testing import run_cli

    run_dir = tmp_path_factory.mktemp("mistakes") / "run"
    result = run_cli("run", "mlp_bn", "--epochs", "1", "--dataset", "digits:per_class=3", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.stderr
    return run_dir


@pytest.mark.parametrize("command,args,fragment", MISTAKES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(MISTAKES)])
def test_a_mistake_is_one_line_before_keras_loads(command, args, fragment, finished_run, tmp_path, subprocess_env):
    plain = tmp_path / "notes.txt"
    plain.write_text("not an image\n")
    values = {"run": str(finished_run), "file": str(plain), "folder": str(tmp_path)}
    args = [a.format(**values) for a in args]
    probe = PROBE.format(heavy=set(HEAVY))
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          env=subprocess_env, timeout=60, cwd=tmp_path)
    lines = [l for l in proc.stderr.splitlines() if not l.startswith("HEAVY=")]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], proc.stderr
    heavy = json.loads([l for l in proc.stderr.splitlines() if l.startswith("HEAVY=")][0][len("HEAVY="):])
    assert heavy == [], f"cnnreg {command} imported {heavy} before refusing: {lines[0]}"


def test_every_command_has_a_mistake_checked_before_keras():
    from typer.main import get_command

    from cnnreg.cli import make_app

    def leaves(group, prefix=""):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from leaves(command, f"{prefix}{name} ")
            else:
                yield prefix + name

    commands = set(leaves(get_command(make_app(with_plugins=False))))
    assert commands <= {c for c, _, _ in MISTAKES}, sorted(commands - {c for c, _, _ in MISTAKES})


def test_opening_a_keras_weights_entry_imports_no_keras(subprocess_env):
    """A keras-* entry's preprocessing (keras.applications.X:preprocess_input) is imported when it
    is first called, not when the entry is opened: keras (and TensorFlow's native start-up lines,
    which only a quiet import hides) loads after every check, through the backend's own loader."""
    script = ("import sys\nfrom cnnreg.training.saved import open_trained\n"
              "trained = open_trained('keras-mobilenetv2.imagenet')\n"
              "print(callable(trained.preprocess), sorted(m for m in sys.modules if m.split('.')[0] in {'keras', 'tensorflow'})[:3])")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True []" and proc.stderr == ""


def test_plugins_runs_every_hook_but_reads_no_zoo(subprocess_env):
    """`cnnreg plugins` runs each kind's hooks to count what they registered; the zoos those
    hooks defer (an http index) are read only by a command that reads weights."""
    env = dict(subprocess_env, CNNREG_ZOO="http://127.0.0.1:9/zoo.json")  # a port that refuses
    shown = subprocess.run([sys.executable, "-m", "cnnreg", "plugins", "--json"], capture_output=True, text=True,
                           env=env, timeout=60)
    assert shown.returncode == 0 and "zoo" not in shown.stderr, shown.stderr
    assert any(p["components"] for p in json.loads(shown.stdout)["plugins"])
    listed = subprocess.run([sys.executable, "-m", "cnnreg", "list", "weights", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert "zoo http://127.0.0.1:9/zoo.json cannot be reached" in listed.stderr
