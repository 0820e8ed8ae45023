"""`cnnreg summary / estimate / compare`: the cost model through the CLI.

Models are built symbolically (nothing is trained); single_conv and resnet34 only.
"""

from __future__ import annotations

import json
import types

import pytest

import cnnreg
from cnnreg import testing
from cnnreg.testing import run_cli

LECTURE = ("summary", "single_conv:filters=200,kernel=5", "--input-shape", "150x100x3", "--batch", "100")


def run_json(*args):
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["cnnreg"] == cnnreg.__version__
    return data


def line_of(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


# --- cnnreg summary ---------------------------------------------------------------------------


def test_summary_reproduces_the_lectures_worked_layer():
    data = run_json(*LECTURE)
    conv = next(r for r in data["summary"]["rows"] if r["name"] == "conv")
    assert conv["params"] == 15_200
    assert conv["macs"] == 225_000_000 and conv["flops"] == 450_000_000
    assert conv["output_shape"] == [150, 100, 200]
    assert conv["activation_bytes"] == 12_000_000  # float32, one instance
    assert data["summary"]["macs"] == data["summary"]["flops"] // 2
    budget = data["budget"]
    assert budget["batch_size"] == 100 and budget["precision"] == "float32" and budget["optimizer"] == "adam"
    terms = {t["name"]: t for t in budget["terms"]}
    assert list(terms) == ["weights", "gradients", "optimizer slots", "activations", "input batch", "workspace"]
    assert sum(t["bytes"] for t in terms.values()) == budget["total_bytes"]
    # the conv's output for the batch (1.2 GB) is what is kept for backprop (+ 0.08 MB of head)
    assert 100 * conv["activation_bytes"] == 1_200_000_000
    assert 1_200_000_000 <= terms["activations"]["bytes"] < 1_200_000_000 * 1.001

    result = run_cli(*LECTURE)
    assert result.exit_code == 0, result.stderr
    row = line_of(result.stdout, "conv (Conv2D)")
    for number in ("(150, 100, 200)", "15,200", "225,000,000", "12,000,000", "60,800"):
        assert number in row, row
    text = result.stdout
    assert "conv (Conv2D), 12,000,000 bytes = 12.0 MB = 11.4 MiB per instance" in text
    assert "at batch 100: 1,200,000,000 bytes = 1.20 GB = 1.12 GiB" in text
    assert "450,004,000" in line_of(text, "FLOPs per instance")
    for label in ("MB (10^6 bytes)", "MiB (2^20 bytes)", "share", "workspace", "input batch", "optimizer slots"):
        assert label in text
    assert "none: every layer has a cost rule" in text


def test_summary_resnet34_with_10_classes_matches_the_lecture():
    data = run_json("summary", "resnet34", "--classes", "10")
    s = data["summary"]
    assert (s["total_params"], s["trainable_params"], s["non_trainable_params"]) == (21_306_826, 21_289_802, 17_024)
    assert s["input_shapes"] == [[224, 224, 3]] and s["output_shapes"] == [[10]]  # default input from metadata
    assert data["budget"] is None and s["uncounted"] == []
    result = run_cli("summary", "resnet34", "--classes", "10", "--batch", "32")
    assert result.exit_code == 0, result.stderr
    assert "21,306,826" in line_of(result.stdout, "total params")
    assert "21,289,802" in line_of(result.stdout, "trainable params")
    assert "17,024" in line_of(result.stdout, "non-trainable params")
    assert "training memory at batch 32 (float32, adam)" in result.stdout


def test_summary_default_classes_come_from_the_architecture():
    # single_conv's factory says 10 classes; without --classes that is what is built
    s = run_json("summary", "single_conv")["summary"]
    assert s["output_shapes"] == [[10]] and s["input_shapes"] == [[150, 100, 3]]


def test_summary_precision_sets_activation_bytes_and_is_restored():
    import keras

    data = run_json("summary", "single_conv", "--precision", "mixed_bfloat16", "--batch", "2")
    conv = next(r for r in data["summary"]["rows"] if r["name"] == "conv")
    assert conv["activation_bytes"] == 6_000_000 and data["summary"]["precision"] == "mixed_bfloat16"
    assert {t["name"] for t in data["budget"]["terms"]} >= {"16-bit weight copies"}
    assert keras.config.dtype_policy().name == "float32"


def test_summary_optimizer_spec_counts_its_slots():
    def slots(optimizer):
        budget = run_json("summary", "single_conv", "--batch", "1", "--optimizer", optimizer)["budget"]
        return budget["optimizer"], next(t["bytes"] for t in budget["terms"] if t["name"] == "optimizer slots")

    name, momentum = slots("sgd:momentum=0.9")
    assert name == "momentum" and momentum == 17_210 * 4
    assert slots("sgd") == ("sgd", 0)


# --- a plugin architecture with a nested block and a layer the cost model does not know ----------


def _tiny(input_shape=(16, 16, 3), num_classes=4):
    """A conv in a nested Sequential block, a custom layer, a dense head."""
    import keras

    class Mystery(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

        def compute_output_shape(self, shape):
            return shape

    inputs = keras.Input(input_shape, name="image")
    block = keras.Sequential([keras.layers.Conv2D(8, 3, padding="same", name="block_conv")], name="block")
    x = Mystery(name="mystery")(block(inputs))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_custom")


def _tiny_plugin():
    module = types.ModuleType("tinyplug")

    @cnnreg.hookimpl
    def register_architectures(registry):
        registry.add("tiny_custom", _tiny, default_input_shape=(16, 16, 3), min_input_size=8)

    module.register_architectures = register_architectures
    return module


def test_unknown_layer_type_is_a_warning_naming_it_not_an_error():
    with testing.plugin(_tiny_plugin(), name="tinyplug"):
        result = run_cli("summary", "tiny_custom")
        data = run_json("summary", "tiny_custom", "--batch", "4")
    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "mystery (Mystery)" in warning[0], result.stderr
    assert "Traceback" not in result.stderr
    row = line_of(result.stdout, "mystery (Mystery)")
    assert "?" in row  # MACs and ops unknown, not 0
    assert "mystery (Mystery)" in line_of(result.stdout, "not costed")
    assert data["summary"]["uncounted"] == ["mystery (Mystery)"]
    assert data["budget"]["batch_size"] == 4


def test_nested_blocks_collapse_unless_expand():
    with testing.plugin(_tiny_plugin(), name="tinyplug"):
        collapsed = run_cli("summary", "tiny_custom")
        expanded = run_cli("summary", "tiny_custom", "--expand")
        data = run_json("summary", "tiny_custom", "--expand")
    assert "block (Sequential)" in collapsed.stdout and "block_conv" not in collapsed.stdout
    assert "└ block_conv (Conv2D)" in expanded.stdout
    conv = next(r for r in data["summary"]["rows"] if r["name"] == "block_conv")
    assert conv["depth"] == 1 and conv["parent"] == "block" and conv["macs"] == 16 * 16 * 8 * 3 * 3 * 3
    block = line_of(collapsed.stdout, "block (Sequential)")
    assert f"{16 * 16 * 8 * 27:,}" in block  # the collapsed row carries the total of its layers


# --- cnnreg estimate --------------------------------------------------------------------------


def test_estimate_finds_the_largest_batch_and_ranks_remedies():
    from cnnreg.analysis import max_batch_size, summarize

    data = run_json("estimate", "single_conv", "--device-memory", "1GB", "--batch", "100")
    model = cnnreg.build("architecture", "single_conv", input_shape=(150, 100, 3), num_classes=10)
    assert data["max_batch_size"] == max_batch_size(summarize(model), "1GB") > 0
    assert data["device"] == {"name": None, "memory_bytes": 10**9, "detected": False, "given": "1GB"}
    assert data["fits"] is False and data["batch_size"] == 100 and data["budget"]["batch_size"] == 100
    saved = [r["saved_bytes"] for r in data["remedies"]]
    assert saved == sorted(saved, reverse=True) and len(saved) >= 4
    keys = {r["key"] for r in data["remedies"]}
    assert {"halve_batch", "mixed_precision", "smaller_input", "devices_2"} <= keys

    result = run_cli("estimate", "single_conv", "--device-memory", "1GB", "--batch", "100")
    assert result.exit_code == 0, result.stderr
    assert f"largest batch that fits: {data['max_batch_size']}" in result.stdout
    assert "batch 100 does not fit" in result.stdout
    for title in ("smaller mini-batch", "16-bit floats", "2 devices (data parallel)"):
        assert title in result.stdout


def test_estimate_that_fits_has_no_remedies_and_without_batch_shows_the_largest():
    data = run_json("estimate", "single_conv", "--device-memory", "80GiB", "--batch", "1")
    assert data["fits"] is True and data["remedies"] == [] and data["device"]["memory_bytes"] == 80 * 2**30
    data = run_json("estimate", "single_conv", "--device-memory", "1GB")
    assert data["batch_size"] == data["max_batch_size"] and data["fits"] is True


def test_estimate_platform_cpu_models_the_cpu_plan():
    """keras.applications' ResNet50 has biased convolutions before BatchNormalization: one more
    copy each on a CPU (the cost model's CPU rules); the GPU budget is the default."""
    from cnnreg.analysis import summarize, training_budget

    args = ("estimate", "keras-resnet50", "--input-shape", "32x32x3", "--classes", "10", "--device-memory", "8GB",
            "--batch", "4")
    gpu, cpu = run_json(*args), run_json(*args, "--platform", "cpu")
    assert gpu["budget"]["platform"] == "gpu" and cpu["budget"]["platform"] == "cpu"
    summary = summarize(cnnreg.build("architecture", "keras-resnet50", input_shape=(32, 32, 3), num_classes=10))
    assert summary.cpu_extra_elements > 0
    assert gpu["budget"]["total_bytes"] == training_budget(summary, batch_size=4).total_bytes
    assert cpu["budget"]["total_bytes"] == training_budget(summary, batch_size=4, platform="cpu").total_bytes
    assert cpu["budget"]["total_bytes"] - gpu["budget"]["total_bytes"] == 4 * 4 * summary.cpu_extra_elements


def test_estimate_uses_the_detected_gpu(monkeypatch):
    from cnnreg import backends

    monkeypatch.setattr(backends, "devices", lambda: [{"name": "Fake GPU", "kind": "gpu", "memory_bytes": 2 * 10**9}])
    data = run_json("estimate", "single_conv", "--batch", "8")
    assert data["device"] == {"name": "Fake GPU", "memory_bytes": 2 * 10**9, "detected": True, "given": None}


def test_estimate_without_gpu_needs_device_memory(monkeypatch):
    from cnnreg import backends

    monkeypatch.setattr(backends, "devices", lambda: [])
    result = run_cli("estimate", "single_conv", "--batch", "8")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: no GPU detected: --device-memory is needed")
    assert result.stderr.count("\n") == 1


# --- cnnreg compare ---------------------------------------------------------------------------


def test_compare_side_by_side():
    args = ("compare", "single_conv", "resnet34", "--input-shape", "64x64x3", "--classes", "10", "--batch", "8")
    data = run_json(*args)
    assert data["batch_size"] == 8 and data["precision"] == "float32" and data["optimizer"] == "adam"
    rows = {m["name"]: m for m in data["models"]}
    assert rows["resnet34"]["params"] == 21_306_826 and rows["single_conv"]["params"] == 17_210
    assert rows["resnet34"]["input_shape"] == [64, 64, 3] and rows["resnet34"]["num_classes"] == 10
    for row in rows.values():
        assert row["flops"] == 2 * row["macs"] and row["budget_bytes"] > 0 and row["batch_size"] == 8
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    assert "21,306,826" in line_of(result.stdout, "parameters")
    assert "single_conv" in result.stdout and "training, batch 8 (MiB)" in result.stdout


# --- mistakes: one line, exit status 2 ----------------------------------------------------------


@pytest.mark.parametrize(
    "args, start",
    [
        (("summary", "resnet34", "--batch", "0"), "error: --batch must be >= 1 (got 0)"),
        (("estimate", "resnet34", "--device-memory", "8GB", "--batch", "0"), "error: --batch must be >= 1 (got 0)"),
        (("compare", "resnet34", "vgg16", "--batch", "0"), "error: --batch must be >= 1 (got 0)"),
        (("summary", "resnet34", "--precision", "float8"), "error: unknown precision 'float8'; did you mean 'float32'?"),
        (("summary", "resnet34", "--optimizer", "adamm"), "error: unknown optimizer 'adamm'; did you mean 'adam'?"),
        (("compare", "resnet34", "vgg16", "--optimizer", "unknown"), "error: unknown optimizer 'unknown' (valid: "),
        (("estimate", "resnet34", "--device-memory", "80XB"), "error: --device-memory: invalid memory size '80XB'"),
        (("summary", "resnt34"), "error: unknown architecture 'resnt34'; did you mean 'resnet34'?"),
        (("compare", "resnet34", "vgg61"), "error: unknown architecture 'vgg61'; did you mean"),
        (("summary", "resnet34", "--input-shape", "16x16x3"),
         "error: input shape 16x16x3 is too small for resnet34 (minimum 32x32)"),
        (("summary", "resnet34", "--classes", "0"), "error: --classes must be >= 1 (got 0)"),
        (("summary", "resnet34", "--input-shape", "224x224"),
         "error: --input-shape must be a tuple like NxNxN with 3 values (got '224x224')"),
        (("summary", "resnet34", "--input-shape", "0x32x3"), "error: --input-shape must be height x width x channels"),
        (("summary", "resnet34:dropout=2"), "error: architecture 'resnet34' parameter 'dropout' must be in [0, 1)"),
        (("compare", "resnet34"), "error: compare needs two or more architectures (got 'resnet34')"),
        (("estimate", "resnet34", "--device-memory", "8GB", "--platform", "cpuu"),
         "error: unknown platform 'cpuu'; did you mean 'cpu'?"),
        (("estimate", "resnet34", "--device-memory", "8GB", "--method", "compiled", "--platform", "cpu"),
         "error: --platform is for --method analytic"),
    ],
)
def test_mistakes_get_one_line_and_status_2(args, start):
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(start), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["summary", "estimate", "compare"])
def test_help_shows_an_example(command):
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"cnnreg {command} " in result.stdout
