"""The first-party plugin packages in plugins/, installed for real and found through entry points.

Each package is pip-installed offline into a directory put on PYTHONPATH, as a user's
``pip install`` would, and cnnreg runs in a subprocess with plugin autoloading on
(``CNNREG_LOAD_PLUGINS`` unset).  The packages' own tests (their behaviour, Fixup's training
comparison, the keras-cv components) run from each package's folder; see plugins/*/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXUP_ARCHITECTURES = {f"fixup_resnet{d}" for d in (18, 34, 50, 101, 20, 32, 56, 110)}

#: A second third-party package that also registers an initialiser called ``fixup``.
CLASHING_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "cnnreg-otherfixup"
version = "2.0.0"

[project.entry-points.cnnreg]
otherfixup = "cnnreg_otherfixup"

[tool.setuptools]
packages = ["cnnreg_otherfixup"]
"""
CLASHING_MODULE = """\
import cnnreg

@cnnreg.hookimpl
def register_initialisers(registry):
    registry.add("fixup", "cnnreg.builtin.initialisers:he_normal", summary="not the real Fixup")
"""


def _install(target: Path, *packages: Path) -> None:
    """``pip install`` offline into ``target`` (from copies: building writes build/ and *.egg-info)."""
    copies = []
    for package in packages:
        copies.append(target.parent / "src" / package.name)
        shutil.copytree(package, copies[-1], ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), *map(str, copies)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """(first-party site, clashing package's site, a site that makes keras_cv unimportable)."""
    root = tmp_path_factory.mktemp("first_party")
    _install(root / "site", ROOT / "plugins" / "cnnreg-fixup", ROOT / "plugins" / "cnnreg-kerascv",
             ROOT / "plugins" / "cnnreg-wandb")
    clash = root / "clashing" / "cnnreg-otherfixup"
    (clash / "cnnreg_otherfixup").mkdir(parents=True)
    (clash / "pyproject.toml").write_text(CLASHING_PYPROJECT)
    (clash / "cnnreg_otherfixup" / "__init__.py").write_text(CLASHING_MODULE)
    _install(root / "clash", clash)
    # Whether or not keras-cv is installed here, these subprocesses must not find it.
    (root / "no_keras_cv").mkdir()
    (root / "no_keras_cv" / "sitecustomize.py").write_text("import sys\nsys.modules['keras_cv'] = None\n")
    return root / "site", root / "clash", root / "no_keras_cv"


def cnnreg(*args: str, path: list[Path], **env_vars: str) -> subprocess.CompletedProcess:
    """Run ``cnnreg ARGS`` the way a user's shell would: every installed plugin autoloads."""
    env = {k: v for k, v in os.environ.items() if k not in ("CNNREG_LOAD_PLUGINS", "CNNREG_DISABLE_PLUGINS")}
    env.update(PYTHONPATH=os.pathsep.join([*map(str, path), env.get("PYTHONPATH", "")]), COLUMNS="200", **env_vars)
    return subprocess.run([sys.executable, "-m", "cnnreg", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=path[0])


def _components(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["components"]


def test_both_packages_are_discovered_with_their_provenance(sites):
    site, _, no_keras_cv = sites
    fixup = _components(cnnreg("list", "--provider", "cnnreg-fixup", "--json", path=[site]))
    assert {(c["kind"], c["name"]) for c in fixup} == (
        {("architecture", n) for n in FIXUP_ARCHITECTURES} | {("initialiser", "fixup")})
    assert {(c["provider"], c["provider_version"]) for c in fixup} == {("cnnreg-fixup", "0.1.0")}
    # keras-cv's plugin module never imports keras_cv: it is listed even where keras-cv is missing
    kerascv = _components(cnnreg("list", "--provider", "cnnreg-kerascv", "--json", path=[no_keras_cv, site]))
    kinds = [c["kind"] for c in kerascv]
    assert kinds.count("architecture") == 18 and kinds.count("regulariser") == 6
    plugins = json.loads(cnnreg("plugins", "--json", path=[no_keras_cv, site]).stdout)["plugins"]
    mine = {p["distribution"]: (p["status"], p["components"]) for p in plugins if not p["builtin"]}
    assert mine == {"cnnreg-fixup": ("ok", 9), "cnnreg-kerascv": ("ok", 24), "cnnreg-wandb": ("ok", 1)}


def test_disable_plugins_hides_a_package(sites):
    site, _, _ = sites
    hidden = cnnreg("show", "fixup_resnet18", path=[site], CNNREG_DISABLE_PLUGINS="cnnreg-fixup")
    assert hidden.returncode == 2 and "unknown component 'fixup_resnet18'" in hidden.stderr
    remaining = _components(cnnreg("list", "--json", path=[site], CNNREG_DISABLE_PLUGINS="cnnreg-fixup"))
    providers = {c["provider"] for c in remaining}
    assert "cnnreg-fixup" not in providers and "cnnreg-kerascv" in providers


def test_a_name_registered_by_two_packages_must_be_qualified(sites):
    site, clash, _ = sites
    ambiguous = cnnreg("show", "fixup", path=[site, clash])
    assert ambiguous.returncode == 2
    assert ambiguous.stderr.strip().splitlines() == [
        "error: initialiser name 'fixup' is ambiguous: it is registered by several plugins; "
        "use one of cnnreg-fixup/fixup, cnnreg-otherfixup/fixup"
    ]
    qualified = cnnreg("show", "cnnreg-fixup/fixup", path=[site, clash])
    assert qualified.returncode == 0 and "cnnreg-fixup 0.1.0" in qualified.stdout, qualified.stderr
    other = cnnreg("show", "cnnreg-otherfixup/fixup", path=[site, clash])
    assert other.returncode == 0 and "cnnreg-otherfixup 2.0.0" in other.stdout
    assert cnnreg("show", "fixup_resnet18", path=[site, clash]).returncode == 0  # no clash there


def test_without_keras_cv_using_its_components_is_one_line(sites):
    site, _, no_keras_cv = sites
    built = cnnreg("summary", "kerascv-resnet18_v2", "--classes", "10", path=[no_keras_cv, site])
    assert built.returncode == 2
    lines = built.stderr.strip().splitlines()
    assert len(lines) == 1 and "architecture 'kerascv-resnet18_v2' needs keras-cv" in lines[0]
    assert "pip install 'keras-cv==0.9.*'" in lines[0]
    run = cnnreg("run", "lenet5", "--reg", "grid_mask", "--dry-run", path=[no_keras_cv, site])
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: regulariser 'grid_mask' needs keras-cv, which is not installed; pip install 'keras-cv==0.9.*' "
        "(it needs TensorFlow: pip install 'cnnreg[tensorflow]')"
    ]


@pytest.fixture(scope="module")
def fixup_run(sites):
    site, _, _ = sites
    run_dir = site.parent / "run"
    result = cnnreg("run", "fixup_resnet20:width=4", "--dataset", "digits:size=8", "--epochs", "1", "--quiet",
                    "--run-dir", str(run_dir), path=[site])
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def test_a_run_records_the_plugin_that_provided_its_architecture(fixup_run):
    manifest = json.loads((fixup_run / "run.json").read_text())
    assert manifest["status"] == "completed"
    arch = manifest["resolved"]["architecture"]
    assert (arch["name"], arch["provider"], arch["provider_version"]) == ("fixup_resnet20", "cnnreg-fixup", "0.1.0")


def test_evaluate_loads_a_model_with_the_plugins_custom_layers(fixup_run, sites):
    site, _, _ = sites
    result = cnnreg("evaluate", str(fixup_run), path=[site])
    assert result.returncode == 0, result.stderr[-1000:]


def test_a_fixup_run_exports_to_onnx_with_its_custom_layers(fixup_run, sites, tmp_path):
    """Fixup's own Keras layers (scalar biases and multipliers) go through tf2onnx and give the
    model's answers in onnxruntime; the sidecar names the plugin's architecture."""
    site, _, _ = sites
    out = tmp_path / "fixup.onnx"
    exported = cnnreg("export", str(fixup_run), "--format", "onnx", "--out", str(out), "--images", "20", "--json", path=[site])
    assert exported.returncode == 0, exported.stderr
    parity = json.loads(exported.stdout)["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4 and parity["examples"] == 20
    sidecar = json.loads((tmp_path / "fixup.onnx.cnnreg.json").read_text())
    assert sidecar["component"] == {"provider": "cnnreg-fixup", "name": "fixup_resnet20"}


def test_the_wandb_logger_is_listed_and_its_offline_run_reads_back(sites, tmp_path):
    """`cnnreg list loggers` shows wandb once its package is installed (without importing
    wandb); the package's own test writes an offline W&B run and reads it back with wandb's
    protobuf records."""
    site, _, _ = sites
    listed = _components(cnnreg("list", "loggers", "--json", path=[site]))
    assert {(c["name"], c["provider"]) for c in listed} >= {("wandb", "cnnreg-wandb"), ("mlflow", "cnnreg")}
    env = {k: v for k, v in os.environ.items() if k not in ("CNNREG_LOAD_PLUGINS", "CNNREG_DISABLE_PLUGINS")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]), WANDB_SILENT="true",
               WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "config"), WANDB_CACHE_DIR=str(tmp_path / "cache"),
               WANDB_MODE="offline")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
                             str(ROOT / "plugins" / "cnnreg-wandb" / "tests")],
                            capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
