"""The built-in architecture zoo: exact parameter counts, the keras.applications bridge, contracts.

Models are only built (symbolically, never trained); each build is summarised once, cached, and
the Keras session cleared, so the whole file stays well under two minutes on two CPU cores.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import cnnreg.builtin.architectures as zoo  # noqa: E402
from cnnreg.builtin.architectures import applications, preprocess  # noqa: E402
from cnnreg.errors import ParameterError  # noqa: E402


# --- helpers ----------------------------------------------------------------------------------


class FakeRegistry:
    """Records ``add`` calls the way the core registry receives them."""

    def __init__(self):
        self.added = {}

    def add(self, name, factory, *, summary="", aliases=(), tags=(), **metadata):
        assert name not in self.added, f"{name} registered twice"
        self.added[name] = {"factory": factory, "summary": summary, "aliases": aliases, "tags": tags, **metadata}


def registered() -> dict[str, dict]:
    registry = FakeRegistry()
    zoo.register_architectures(registry)
    return registry.added


REGISTERED = registered()
#: cnnreg's own architectures and its three wrapped keras.applications models (not ``keras-*``).
OURS = sorted(name for name in REGISTERED if not name.startswith("keras-"))
#: A few bridge models, built at their minimum size (all ~40 at default size would be slow).
BRIDGE_SAMPLE = ["keras-mobilenetv3small", "keras-efficientnetb0", "keras-convnexttiny", "keras-mobilenet",
                 "keras-resnet50v2"]


def factory(name: str):
    module, _, attr = REGISTERED[name]["factory"].partition(":")
    return getattr(importlib.import_module(module), attr)


def _count(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def _shape(layer, which: str):
    try:
        tensor = getattr(layer, which)
    except (AttributeError, ValueError):
        return None
    return None if isinstance(tensor, (list, tuple)) else tuple(tensor.shape)


def summarise(model) -> dict:
    """What the tests need from a model, so that the model itself can be freed at once."""
    layers = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        layers[layer.name] = {
            "class": type(layer).__name__,
            "kernel": tuple(kernel.shape) if kernel is not None else None,
            "weights": [tuple(w.shape) for w in layer.weights],
            "input": _shape(layer, "input"),
            "output": _shape(layer, "output"),
            "activation": getattr(getattr(layer, "activation", None), "__name__", None),
            "dtype": layer.dtype_policy.compute_dtype,
        }
    trainable, frozen = _count(model.trainable_weights), _count(model.non_trainable_weights)
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen,
            "output": tuple(model.output.shape), "layers": layers}


@functools.lru_cache(maxsize=None)
def built(name: str, input_shape: tuple | None = None, num_classes: int | None = None, include_top: bool = True):
    """Build registered architecture ``name`` (defaults: its own), summarise it, free it."""
    kwargs = {"include_top": include_top}
    if input_shape is not None:
        kwargs["input_shape"] = input_shape
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = factory(name)(**kwargs)
    try:
        return summarise(model)
    finally:
        del model
        keras.backend.clear_session()


@functools.lru_cache(maxsize=None)
def built_keras(function: str) -> dict:
    model = getattr(keras.applications, function)(weights=None)
    try:
        return summarise(model)
    finally:
        del model
        keras.backend.clear_session()


def conv_params(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return (k * k * c_in + bias) * c_out


def dense_params(n_in: int, n_out: int) -> int:
    return (n_in + 1) * n_out


def small_shape(name: str) -> tuple[int, int, int]:
    size = REGISTERED[name]["min_input_size"]
    channels = REGISTERED[name]["default_input_shape"][2]
    return (max(size, 1), max(size, 1), channels)


# --- exact numbers from the lecture and DOMAIN.md ---------------------------------------------


def test_mlp_bn_matches_the_lecture():
    s = built("mlp_bn")  # 28×28×1, 10 classes
    assert (s["total"], s["trainable"], s["non_trainable"]) == (271_346, 268_978, 2_368)
    assert s["output"] == (None, 10)


def test_resnet34_matches_the_lecture_summary():
    s = built("resnet34", (224, 224, 3), 10)
    assert (s["total"], s["trainable"], s["non_trainable"]) == (21_306_826, 21_289_802, 17_024)
    units = {}  # the lecture's per-unit column: residual_unit_3 (here conv3_block1) has 230,912
    for name, layer in s["layers"].items():
        if "_block" in name:
            unit = "_".join(name.split("_")[:2])
            units[unit] = units.get(unit, 0) + sum(math.prod(w) for w in layer["weights"])
    assert list(units.values()) == [74_240] * 3 + [230_912] + [295_936] * 3 + [920_576] + [1_181_696] * 5 + [
        3_676_160] + [4_722_688] * 2
    assert s["layers"]["conv1_conv"]["weights"] == [(7, 7, 3, 64)]  # no bias: 9,408


def test_alexnet_matches_a_hand_count_of_the_lecture_table():
    # In 227×227×3 → C1 96@11×11/4 valid 55×55 → S2 27×27 → C3 256@5×5 → S4 13×13 → C5 384, C6 384,
    # C7 256 @3×3 → S8 6×6×256 → F9 4096 → F10 4096 → out 1000.
    s8 = (((227 - 11) // 4 + 1 - 3) // 2 + 1 - 3) // 2 + 1
    s8 = (s8 - 3) // 2 + 1
    assert s8 == 6
    expected = (
        conv_params(11, 3, 96) + conv_params(5, 96, 256) + conv_params(3, 256, 384)
        + conv_params(3, 384, 384) + conv_params(3, 384, 256)
        + dense_params(s8 * s8 * 256, 4096) + dense_params(4096, 4096) + dense_params(4096, 1000)
    )
    s = built("alexnet")
    assert s["total"] == expected == 62_378_344
    assert s["layers"]["c1"]["output"] == (None, 55, 55, 96)
    assert s["layers"]["s8"]["output"] == (None, 6, 6, 256)
    dropouts = [name for name, layer in s["layers"].items() if layer["class"] == "Dropout"]
    assert dropouts == ["f9_dropout", "head_dropout"]  # 50% on the outputs of F9 and F10


def test_vgg16_matches_domain_and_keras_applications():
    ours = built("vgg16")
    assert ours["total"] == 138_357_544 == built_keras("VGG16")["total"]
    assert {n: layer["weights"] for n, layer in ours["layers"].items() if layer["weights"]} == {
        n: layer["weights"] for n, layer in built_keras("VGG16")["layers"].items() if layer["weights"]
    }


def test_vgg19_matches_keras_applications():
    assert built("vgg19")["total"] == 143_667_240 == built_keras("VGG19")["total"]


@pytest.mark.parametrize("depth, function", [(50, "ResNet50"), (101, "ResNet101"), (152, "ResNet152")])
def test_bottleneck_resnets_match_keras_applications(depth, function):
    ours, theirs = built(f"resnet{depth}"), built_keras(function)
    assert ours["total"] == theirs["total"]
    assert ours["non_trainable"] == theirs["non_trainable"]
    # Same layer names and weight shapes: keras' ImageNet weights load by name.
    assert {n: layer["weights"] for n, layer in ours["layers"].items() if layer["weights"]} == {
        n: layer["weights"] for n, layer in theirs["layers"].items() if layer["weights"]
    }
    if depth == 50:
        assert ours["total"] == 25_636_712


def test_se_resnet50_adds_exactly_the_squeeze_excitation_parameters():
    channels = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3  # each bottleneck unit's output
    se = sum(dense_params(c, c // 16) + dense_params(c // 16, c) for c in channels)
    assert built("se_resnet50")["total"] == 25_636_712 + se == 28_167_704


#: DOMAIN.md: (input channels, exact conv weights, exact conv MACs) of each inception module.
GOOGLENET_EXACT = {
    "3a": (192, 163_328, 128_049_152), "3b": (256, 388_096, 304_267_264),
    "4a": (480, 375_552, 73_608_192), "4b": (512, 448_512, 87_908_352),
    "4c": (512, 509_440, 99_850_240), "4d": (512, 604_672, 118_515_712),
    "4e": (528, 867_328, 169_996_288), "5a": (832, 1_042_432, 51_079_168),
    "5b": (832, 1_442_816, 70_697_984),
}


@pytest.mark.parametrize("module", list(GOOGLENET_EXACT))
def test_googlenet_module_weights_match_domain_exact_column(module):
    channels, weights, macs = GOOGLENET_EXACT[module]
    layers = {n: layer for n, layer in built("googlenet")["layers"].items() if n.startswith(f"inception_{module}_")}
    convs = [layer for layer in layers.values() if layer["class"] == "Conv2D"]
    assert len(convs) == 6
    assert sum(math.prod(c["kernel"]) for c in convs) == weights
    assert sum(math.prod(c["kernel"]) * c["output"][1] * c["output"][2] for c in convs) == macs
    assert layers[f"inception_{module}_1x1"]["input"][-1] == channels
    # The paper's columns ride along as metadata, beside (never instead of) the exact figures.
    row = REGISTERED["googlenet"]["paper_table"][module]
    assert (row["exact_weights"], row["exact_macs"]) == (weights, macs)
    assert {"params", "ops"} <= set(row)


def test_googlenet_stem_and_shapes():
    s = built("googlenet")
    kernels = {name: math.prod(layer["kernel"]) for name, layer in s["layers"].items() if layer["kernel"]}
    assert kernels["conv1_7x7_s2"] == 9_408
    assert kernels["conv2_3x3_reduce"] + kernels["conv2_3x3"] == 114_688
    assert s["layers"]["conv1_7x7_s2"]["output"] == (None, 112, 112, 64)
    outputs = {m: s["layers"][f"inception_{m}_output"]["output"][1:] for m in GOOGLENET_EXACT}
    assert outputs == {
        "3a": (28, 28, 256), "3b": (28, 28, 480), "4a": (14, 14, 512), "4b": (14, 14, 512), "4c": (14, 14, 512),
        "4d": (14, 14, 528), "4e": (14, 14, 832), "5a": (7, 7, 832), "5b": (7, 7, 1024),
    }
    assert s["layers"]["head_dropout"]["class"] == "Dropout"


def test_single_conv_is_the_lecture_layer():
    s = built("single_conv")
    conv = s["layers"]["conv"]
    assert sum(math.prod(w) for w in conv["weights"]) == (5 * 5 * 3 + 1) * 200 == 15_200
    assert conv["output"] == (None, 150, 100, 200)
    assert math.prod(conv["kernel"][:3]) * 150 * 100 * 200 == 225_000_000  # multiplications


def test_mobilenet_v2_matches_domain():
    assert built("mobilenet_v2")["total"] == 3_538_984


# --- the contract, for every registered architecture -----------------------------------------


@pytest.mark.parametrize("name", OURS)
def test_builds_at_default_shape_with_softmax_head(name):
    info = REGISTERED[name]
    signature = inspect.signature(factory(name))
    assert signature.parameters["input_shape"].default == tuple(info["default_input_shape"])
    s = built(name)
    classes = signature.parameters["num_classes"].default
    assert s["output"] == (None, classes)
    head = s["layers"]["predictions"]
    assert head["class"] == "Dense" and head["activation"] == "softmax"


@pytest.mark.parametrize("name", OURS + BRIDGE_SAMPLE)
def test_builds_at_its_minimum_size_with_and_without_top(name):
    shape = small_shape(name)
    top = built(name, shape, 3)
    assert top["output"] == (None, 3)
    features = built(name, shape, 3, include_top=False)
    if REGISTERED[name].get("convolutional", True):
        assert len(features["output"]) == 4 and min(features["output"][1:]) >= 1
    else:
        assert len(features["output"]) == 2
    assert "predictions" not in features["layers"]


@pytest.mark.parametrize("name", OURS + ["keras-xception", "keras-nasnetlarge"])
def test_too_small_input_and_no_classes_are_parameter_errors(name):
    build = factory(name)
    size = REGISTERED[name]["min_input_size"]
    channels = REGISTERED[name]["default_input_shape"][2]
    if size > 1:
        with pytest.raises(ParameterError, match=rf"too small for {name}.*minimum {size}x{size}"):
            build(input_shape=(size - 1, size + 10, channels))
    with pytest.raises(ParameterError, match=r"num_classes must be >= 1 \(got 0\)"):
        build(input_shape=small_shape(name), num_classes=0)
    with pytest.raises(ParameterError, match="height x width x channels"):
        build(input_shape=(64, 64))


def test_dropout_out_of_range_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"dropout for resnet34 must be in \[0, 1\)"):
        factory("resnet34")(input_shape=(32, 32, 3), dropout=1.0)


def test_resnet34_without_batchnorm_gives_convs_biases():
    s = built("resnet34", (32, 32, 3), 10)
    plain = factory("resnet34")(input_shape=(32, 32, 3), num_classes=10, batchnorm=False)
    try:
        assert not any(type(layer).__name__ == "BatchNormalization" for layer in plain.layers)
        assert len(plain.get_layer("conv2_block1_1_conv").weights) == 2
        assert _count(plain.non_trainable_weights) == 0
        # BN's trainable γ and β (as many as its 17,024 moving statistics) go, conv biases come.
        assert plain.count_params() == s["trainable"] - 17_024 + sum(
            layer["kernel"][-1] for layer in s["layers"].values() if layer["class"] == "Conv2D"
        )
    finally:
        del plain
        keras.backend.clear_session()


def test_mixed_precision_keeps_a_float32_softmax():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = factory("resnet18")(input_shape=(32, 32, 3), num_classes=4)
        out = model(np.zeros((1, 32, 32, 3), "float32"))
        assert model.get_layer("conv1_conv").compute_dtype == "float16"
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.sum(out)), 1.0, rtol=1e-5)
    finally:
        keras.config.set_dtype_policy(previous)
        keras.backend.clear_session()


# --- registration ------------------------------------------------------------------------------


def test_registration_metadata_and_factories():
    assert set(OURS) >= {
        "mlp_bn", "lenet5", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet", "resnet18", "resnet34",
        "resnet50", "resnet101", "resnet152", "se_resnet50", "mobilenet_v2", "xception", "inception_v3",
        "single_conv",
    }
    for name, info in REGISTERED.items():
        json.dumps({k: v for k, v in info.items() if k != "factory"})  # metadata is JSON-serialisable
        assert info["summary"] and info["family"] and info["paper"]["year"]
        assert len(info["default_input_shape"]) == 3
        assert 1 <= info["min_input_size"] <= min(info["default_input_shape"][:2])
        build = factory(name)
        params = list(inspect.signature(build).parameters.values())
        assert [p.name for p in params[:2]] == ["input_shape", "num_classes"], name
        assert "include_top" in inspect.signature(build).parameters
        assert all(p.kind is p.KEYWORD_ONLY for p in params[2:]), name
        assert (inspect.getdoc(build) or "").strip(), f"{name} has no docstring"
        module, _, attr = info["preprocess"].partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
    for name in OURS:
        assert str(REGISTERED[name]["paper"]["year"]) in inspect.getdoc(factory(name)), f"{name}: no reference"


def test_listing_never_imports_keras():
    code = (
        "import sys, cnnreg.builtin.architectures as z\n"
        "from cnnreg.builtin.architectures import mlp, lenet, alexnet, vgg, googlenet, resnet, single_conv, "
        "applications, preprocess\n"
        "class R:\n    def add(self, *a, **k): pass\n"
        "z.register_architectures(R())\n"
        "assert not {'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_core_registry_lists_the_zoo():
    import cnnreg

    names = {c.name for c in cnnreg.components("architecture") if c.provider == "cnnreg"}
    assert set(REGISTERED) <= names


# --- the keras.applications bridge -------------------------------------------------------------


def test_bridge_table_covers_every_keras_application():
    public = {
        n for n in dir(keras.applications)
        if n[:1].isupper() and inspect.isfunction(getattr(keras.applications, n))
    }
    table = {function for function, *_ in applications.APPLICATIONS.values()}
    assert table == public, f"missing: {sorted(public - table)}; gone: {sorted(table - public)}"
    for key, (function, family, size, min_size) in applications.APPLICATIONS.items():
        assert key == function.lower() and f"keras-{key}" in REGISTERED
        assert getattr(keras.applications, function).__module__.rsplit(".", 1)[-1] == family
        module = getattr(keras.applications, family)
        assert callable(module.preprocess_input) and callable(module.decode_predictions)
        # Keras itself refuses one pixel less than the table's minimum (NASNet on torch: any shape).
        unavailable = keras.backend.backend() == "torch" and function.startswith("NASNet")
        size_error = f"at least {min_size}x{min_size}"
        with pytest.raises(ValueError, match=f"{size_error}|not available with the torch backend" if unavailable else size_error):
            getattr(keras.applications, function)(
                weights=None, include_top=False, input_shape=(min_size - 1, min_size - 1, 3)
            )
        bound = getattr(applications, f"keras_{key}")
        assert inspect.signature(bound).parameters["input_shape"].default == (size, size, 3)
        assert "app" not in inspect.signature(bound).parameters


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="a limitation of Keras' torch backend")
def test_nasnet_on_torch_is_one_line():
    with pytest.raises(ParameterError, match="keras-nasnetmobile: NASNetMobile is not available with the torch backend"):
        applications.keras_nasnetmobile(num_classes=10)


def test_keras_application_rejects_unknown_models_and_bad_weights(tmp_path):
    with pytest.raises(ParameterError, match="did you mean 'resnet50'"):
        applications.keras_application(app="resnet5")
    with pytest.raises(ParameterError, match="1000 classes"):
        applications.keras_resnet50(num_classes=10, weights="imagenet")
    with pytest.raises(ParameterError, match="does not exist"):
        applications.keras_resnet50(weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ParameterError, match="must be none, imagenet or a .h5"):
        applications.keras_resnet50(weights="imagenett")


def test_keras_application_loads_a_local_weights_file_and_rejects_a_mismatch(tmp_path):
    model = applications.keras_mobilenetv3small(input_shape=(32, 32, 3), num_classes=5)
    model.save_weights(tmp_path / "small.weights.h5")
    reloaded = applications.keras_mobilenetv3small(input_shape=(32, 32, 3), num_classes=5,
                                                   weights=str(tmp_path / "small.weights.h5"))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), reloaded.get_weights()))
    with pytest.raises(ParameterError, match=r"small.weights.h5 does not match keras-mobilenetv3small: .*shape"):
        applications.keras_mobilenetv3small(input_shape=(32, 32, 3), num_classes=7,
                                            weights=str(tmp_path / "small.weights.h5"))
    keras.backend.clear_session()


def test_imagenet_weights_offline_fail_fast_with_instructions(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr(socket.socket, "connect", offline)
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))  # an empty cache
    start = time.monotonic()
    with pytest.raises(ParameterError) as error:
        applications.keras_resnet50(input_shape=(32, 32, 3), include_top=False, weights="imagenet")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "models") in message and "KERAS_HOME" in message and "weights=PATH" in message
    assert socket.getaddrinfo is offline  # the download guard put the real lookup back
    keras.backend.clear_session()


def test_network_timeouts_bound_a_hanging_dns_lookup(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: time.sleep(3))
    start = time.monotonic()
    with pytest.raises(OSError, match="DNS lookup"), applications._network_timeouts(0.2):
        socket.getaddrinfo("weights.example", 443)
    assert time.monotonic() - start < 2


# --- preprocessing -----------------------------------------------------------------------------


def test_preprocess_functions():
    pixels = np.array([0, 51, 255], dtype="uint8")
    np.testing.assert_array_equal(preprocess.scale_0_1(pixels), np.array([0, 0.2, 1], "float32"))
    assert preprocess.scale_0_1(pixels).dtype == np.float32
    np.testing.assert_allclose(preprocess.scale_minus1_1(pixels), [-1, -0.6, 1], atol=1e-6)
    tensor = preprocess.scale_0_1(keras.ops.convert_to_tensor(pixels))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor), [0, 0.2, 1], atol=1e-7)
