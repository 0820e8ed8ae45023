"""`cnnreg plugin new`: the generated package installs, is discovered, and its tests pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnnreg.scaffold import KINDS
from cnnreg.testing import run_cli


def test_generated_architecture_plugin_installs_and_appears(tmp_path, subprocess_env):
    result = run_cli("plugin", "new", "mynet", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    package = tmp_path / "cnnreg-mynet"
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), str(package)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    env = dict(subprocess_env, PYTHONPATH=os.pathsep.join([str(target), subprocess_env.get("PYTHONPATH", "")]))
    env.pop("CNNREG_LOAD_PLUGINS")  # a user's machine: autoload what is installed
    listing = subprocess.run([sys.executable, "-m", "cnnreg", "list", "architectures", "--provider", "cnnreg-mynet", "--json"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert listing.returncode == 0, listing.stderr
    components = json.loads(listing.stdout)["components"]
    assert [(c["name"], c["provider"], c["provider_version"]) for c in components] == [("mynet", "cnnreg-mynet", "0.1.0")]
    shown = subprocess.run([sys.executable, "-m", "cnnreg", "show", "mynet"], capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0 and "width" in shown.stdout and "cnnreg-mynet" in shown.stdout


def test_generated_tests_pass_for_every_kind(tmp_path, subprocess_env):
    roots = []
    for kind in KINDS:
        result = run_cli("plugin", "new", f"my_{kind}", "--kind", kind, "--dir", str(tmp_path))
        assert result.exit_code == 0, result.output
        roots.append(tmp_path / f"cnnreg-my-{kind}")
    env = dict(subprocess_env, PYTHONPATH=os.pathsep.join(str(r) for r in roots))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
         *[str(r / "tests") for r in roots]],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "8 passed" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["plugin", "new", "My Net"], "must start with a letter"),
        (["plugin", "new", "x", "--kind", "optimiser"], "unknown component kind 'optimiser'"),
    ],
)
def test_bad_scaffold_input(args, message, tmp_path):
    result = run_cli(*args, "--dir", str(tmp_path))
    assert result.exit_code == 2 and message in result.stderr


def test_refuses_to_overwrite(tmp_path):
    assert run_cli("plugin", "new", "twice", "--dir", str(tmp_path)).exit_code == 0
    again = run_cli("plugin", "new", "twice", "--dir", str(tmp_path))
    assert again.exit_code == 2 and "already exists" in again.stderr
