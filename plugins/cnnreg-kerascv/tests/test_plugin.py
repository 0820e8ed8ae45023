"""cnnreg-kerascv registration and its behaviour without keras-cv (these tests never need it)."""

import os
import subprocess
import sys

import pytest

import cnnreg
from cnnreg import testing
from cnnreg.errors import PluginError

import cnnreg_kerascv.plugin as plugin
from cnnreg_kerascv.backbones import BACKBONES

REGULARISERS = {"grid_mask", "cutout", "channel_shuffle", "channel_shift", "fourier_mix", "mosaic"}


@pytest.fixture
def registry():
    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-kerascv", version="0.1.0") as registry:
        yield registry


def test_registers_backbones_and_augmentations(registry):
    mine = [c for c in registry if c.provider == "cnnreg-kerascv"]
    assert {c.name for c in mine if c.kind == "architecture"} == set(BACKBONES)
    assert {c.name for c in mine if c.kind == "regulariser"} == REGULARISERS
    assert registry.get("regulariser", "fmix").name == "fourier_mix"
    assert registry.get("architecture", "kerascv-mit_b0").metadata["min_input_size"] == 64
    result = testing.run_cli("show", "grid_mask")
    assert result.exit_code == 0 and "ratio" in result.stdout, result.output


def test_modules_import_without_keras_or_keras_cv():
    code = ("import sys; sys.modules['keras_cv'] = None; "
            "import cnnreg_kerascv.plugin, cnnreg_kerascv.backbones, cnnreg_kerascv.augmentations; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_without_keras_cv_building_is_one_clear_error(registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_cv", None)  # import keras_cv now fails, as if not installed
    with pytest.raises(PluginError, match=r"architecture 'kerascv-resnet18_v2' needs keras-cv.*pip install"):
        cnnreg.build("architecture", "kerascv-resnet18_v2", input_shape=(32, 32, 3), num_classes=10)
    with pytest.raises(PluginError, match=r"regulariser 'grid_mask' needs keras-cv, which is not installed"):
        cnnreg.build("regulariser", "grid_mask")


def test_input_size_rules_come_before_keras_cv(registry):
    from cnnreg.errors import ParameterError

    with pytest.raises(ParameterError, match="multiples of 32"):
        cnnreg.build("architecture", "kerascv-mit_b0", input_shape=(80, 80, 3), num_classes=10)
    with pytest.raises(ParameterError, match="multiples of 2"):
        cnnreg.build("architecture", "kerascv-csp_darknet_tiny", input_shape=(33, 33, 3), num_classes=10)
