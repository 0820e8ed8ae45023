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
