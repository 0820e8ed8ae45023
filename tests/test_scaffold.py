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


def test_one_package_with_every_kind_passes_its_generated_tests(tmp_path, subprocess_env):
    kinds = [f"{kind}=acme_{kind[:4]}" for kind in KINDS]
    result = run_cli("plugin", "new", "acme", *[a for k in kinds for a in ("--kind", k)], "--dist", "acme-CNN.layers",
                     "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "acme-CNN.layers"
    for kind in KINDS:
        assert (root / "acme_cnn_layers" / f"{kind}s.py").exists()
    env = dict(subprocess_env, PYTHONPATH=str(root))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        capture_output=True, text=True, env=env, timeout=600, cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{len(KINDS) + 2} passed" in proc.stdout  # per kind, plus registration and the lazy-import rule


def test_readme_names_the_files_the_build_writes_and_the_bound_matches_its_comment(tmp_path):
    import re

    assert run_cli("plugin", "new", "my_net", "--dist", "Acme.Vision-Nets", "--dir", str(tmp_path)).exit_code == 0
    root = tmp_path / "Acme.Vision-Nets"
    proc = subprocess.run([sys.executable, "-c", "import setuptools.build_meta as b; print(b.build_sdist('dist'))"],
                          capture_output=True, text=True, cwd=root, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sdist = proc.stdout.strip().splitlines()[-1]
    readme = (root / "README.md").read_text()
    assert f"dist/{sdist}" in readme, (sdist, readme)
    pyproject = (root / "pyproject.toml").read_text()
    low, high = re.search(r'"cnnreg>=([\d.]+),<([\d.]+)"', pyproject).groups()
    comment = next(line for line in pyproject.splitlines() if line.startswith("# The cnnreg"))
    assert f"{low} or later, before {high}.0" in comment, comment
    assert 'my_net = "acme_vision_nets.plugin"' in pyproject
    assert '"my_net"' in (root / "acme_vision_nets" / "plugin.py").read_text()


def test_assert_light_imports_catches_a_heavy_plugin(tmp_path, monkeypatch):
    from cnnreg import testing

    (tmp_path / "heavy_plugin.py").write_text(
        "import cnnreg\n"
        "import keras\n\n@cnnreg.hookimpl\ndef register_initialisers(registry):\n    pass\n"
    )
    (tmp_path / "light_plugin.py").write_text(
        "import cnnreg\n\n@cnnreg.hookimpl\ndef register_initialisers(registry):\n"
        "    registry.add('light', 'light_factories:light')\n"
    )
    (tmp_path / "light_factories.py").write_text("def light():\n    import keras\n    return keras.initializers.Zeros()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    testing.assert_light_imports("light_plugin")
    with pytest.raises(AssertionError, match="imports .*keras"):
        testing.assert_light_imports("heavy_plugin")


@pytest.mark.parametrize(
    "args, message",
    [
        (["plugin", "new", "My Net"], "plugin name 'my net' must start with a letter"),
        (["plugin", "new", "1bad"], "plugin name '1bad' must start with a letter"),
        (["plugin", "new", "x", "--kind", "callback"], "unknown component kind 'callback'"),
        (["plugin", "new", "x", "--kind", "architecture=My Net"], "architecture name 'my net' must start with a letter"),
        (["plugin", "new", "x", "--kind", "init", "--kind", "initializer=y"], "--kind initialiser is given twice"),
        (["plugin", "new", "x", "--dist", "-bad-"], "distribution name '-bad-' is not a valid package name"),
    ],
)
def test_bad_scaffold_input(args, message, tmp_path):
    result = run_cli(*args, "--dir", str(tmp_path))
    assert result.exit_code == 2 and message in result.stderr


def test_refuses_to_overwrite(tmp_path):
    assert run_cli("plugin", "new", "twice", "--dir", str(tmp_path)).exit_code == 0
    again = run_cli("plugin", "new", "twice", "--dir", str(tmp_path))
    assert again.exit_code == 2 and "already exists" in again.stderr
