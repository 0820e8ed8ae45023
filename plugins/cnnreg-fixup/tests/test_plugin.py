"""cnnreg-fixup without installing it (cnnreg.testing): registration, initialiser, architectures."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import cnnreg
from cnnreg import testing
from cnnreg.errors import ParameterError

import cnnreg_fixup.plugin as plugin

ARCHITECTURES = ["fixup_resnet18", "fixup_resnet34", "fixup_resnet50", "fixup_resnet101",
                 "fixup_resnet20", "fixup_resnet32", "fixup_resnet56", "fixup_resnet110"]


@pytest.fixture
def registry():
    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-fixup", version="0.1.0") as registry:
        yield registry


def test_one_plugin_registers_architectures_and_an_initialiser(registry):
    names = {(c.kind, c.name) for c in registry if c.provider == "cnnreg-fixup"}
    assert names == {("architecture", n) for n in ARCHITECTURES} | {("initialiser", "fixup")}
    arch = registry.get("architecture", "fixup_resnet34")
    assert arch.metadata["batchnorm"] is False and arch.metadata["activation"] == "relu"
    assert arch.metadata["residual_branches"] == 16 and arch.metadata["paper"]["year"] == 2019
    assert [p.name for p in arch.parameters()] == ["include_top", "width", "fixup", "dropout"]
    result = testing.run_cli("show", "fixup_resnet34")
    assert result.exit_code == 0 and "cnnreg-fixup" in result.stdout and "width" in result.stdout, result.output


def test_modules_named_by_the_plugin_do_not_import_keras():
    code = ("import sys, cnnreg_fixup.plugin, cnnreg_fixup.architectures, cnnreg_fixup.initialisers; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("m, branches, shrink", [(2, 16, 1 / 16), (3, 16, 1 / 4), (2, 1, 1.0)])
def test_fixup_initialiser_scales_he_variance_by_L_to_the_minus_1_over_m_minus_1(registry, m, branches, shrink):
    import keras

    init = cnnreg.build("initialiser", f"fixup:branches={branches},m={m},seed=3")
    values = keras.ops.convert_to_numpy(init((3, 3, 64, 128)))  # fan_in 576
    expected = 2 / 576 * shrink
    assert abs(values.var() / expected - 1) < 0.03


def test_fixup_initialiser_needs_the_number_of_branches(registry):
    with pytest.raises(ParameterError, match="needs parameter 'branches'"):
        cnnreg.build("initialiser", "fixup")
    assert cnnreg.get("initialiser", "fixup").primary == "branches"  # --init fixup=16


def test_resnet18_is_the_lecture_resnet18_without_bn_plus_42_scalars(registry):
    model = cnnreg.build("architecture", "fixup_resnet18", input_shape=(224, 224, 3), num_classes=10)
    # conv weights of ResNet-18 (no biases) 11,166,912 + dense 5,130 + 1 + 8 units × 5 + 1 scalars
    assert model.count_params() == 11_166_912 + 5_130 + 42
    assert not any("BatchNormalization" in type(layer).__name__ for layer in model.layers)


def test_cifar_resnet20_has_the_papers_size(registry):
    model = cnnreg.build("architecture", "fixup_resnet20", input_shape=(32, 32, 3), num_classes=10)
    assert model.count_params() == 267_696 + 650 + 47  # He et al.: 0.27 M
    assert model.output_shape == (None, 10)


def test_fixup_initialisation_makes_every_branch_the_identity(registry):
    model = cnnreg.build("architecture", "fixup_resnet32:width=4", input_shape=(16, 16, 1), num_classes=7)
    x = np.random.default_rng(0).uniform(0, 1, (4, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), 1 / 7, rtol=1e-6)  # zero classifier
    last = [layer for layer in model.layers if layer.name.endswith("_2_conv")]
    first = [layer for layer in model.layers if layer.name.endswith("_1_conv")]
    assert len(last) == len(first) == 15 and all(not np.any(layer.kernel.numpy()) for layer in last)
    kernel = first[-1].kernel.numpy()  # 3×3×16×16: He variance 2/144, scaled by 1/L = 1/15
    assert abs(kernel.var() / (2 / 144 / 15) - 1) < 0.15
    assert not np.array_equal(first[-1].kernel.numpy(), first[-2].kernel.numpy())  # each branch its own draw


def test_without_fixup_the_output_grows_with_depth_with_fixup_it_does_not(registry):
    """At initialisation, before any training: He init without BN doubles the variance at every
    residual unit (the lecture's reason for BN); Fixup keeps every branch at zero."""
    import keras

    x = np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 1)).astype("float32")
    spread = {}
    for depth in (20, 56, 110):
        for fixup in (True, False):
            keras.utils.set_random_seed(0)
            model = cnnreg.build("architecture", f"fixup_resnet{depth}:width=8,fixup={fixup}",
                                 input_shape=(8, 8, 1), num_classes=10, include_top=False)
            spread[depth, fixup] = float(np.std(model.predict(x, verbose=0)))
    # measured: Fixup 0.30 at every depth; He init 2.2, 136, 7.1e4
    assert spread[20, True] == pytest.approx(spread[110, True], rel=1e-5)
    assert spread[56, False] > 30 * spread[20, False] and spread[110, False] > 100 * spread[56, False]


def test_model_keras_saves_and_loads(registry, tmp_path):
    import keras

    from cnnreg_fixup.layers import ScalarBias, ScalarMultiplier

    model = cnnreg.build("architecture", "fixup_resnet20:width=4", input_shape=(8, 8, 1), num_classes=3)
    rng = np.random.default_rng(1)
    for weight in model.weights:  # move off the initialisation, scalars included
        weight.assign(weight.numpy() + rng.normal(0, 0.1, weight.shape).astype("float32"))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.get_layer("conv1_bias"), ScalarBias)
    assert isinstance(loaded.get_layer("conv2_block1_2_scale"), ScalarMultiplier)
    x = rng.uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_summary_costs_every_layer(registry):
    import json

    result = testing.run_cli("summary", "fixup_resnet20", "--classes", "10", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["macs"] == 40_551_040 and summary["total_params"] == 268_393  # ResNet-20: 41 M, 0.27 M
    scalars = [row for row in summary["rows"] if row["type"] in ("ScalarBias", "ScalarMultiplier")]
    assert len(scalars) == 47 and all(row["rule"] == "scalar" for row in scalars)


@pytest.mark.parametrize("spec, message", [
    ("fixup_resnet18", "input shape 16x16x3 is too small for fixup_resnet18 (minimum 32x32)"),
    ("fixup_resnet18:width=0", "fixup_resnet18' parameter 'width'"),
])
def test_mistakes_are_one_line(registry, spec, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        cnnreg.build("architecture", spec, input_shape=(16, 16, 3), num_classes=10)
