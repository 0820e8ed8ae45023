"""cnnreg.analysis: layer table, MACs, activation bytes, training budget, max batch, remedies.

Exact where the lecture and DOMAIN.md give exact numbers. Models are built symbolically only
(never trained); the three keras.applications models are built once each and summarised.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import pytest

keras = pytest.importorskip("keras")

from cnnreg.analysis import (  # noqa: E402
    OPTIMIZER_SLOTS,
    Workspace,
    compare,
    format_bytes,
    format_mb,
    format_mib,
    max_batch_size,
    oom_remedies,
    optimizer_slots,
    parse_memory,
    summarize,
    training_budget,
)
from cnnreg.analysis.summary import UncountedLayerWarning  # noqa: E402
from cnnreg.errors import ParameterError  # noqa: E402

L = keras.layers


def one_layer(input_shape, layer):
    inp = keras.Input(input_shape)
    return keras.Model(inp, layer(inp))


def only_layer_row(model):
    s = summarize(model)
    rows = [r for r in s.rows if r.type != "InputLayer"]
    assert len(rows) == 1
    return rows[0]


# --- the lecture's worked numbers ---------------------------------------------------------------


def test_lecture_worked_layer():
    """Input 150×100×3 → Conv2D(200, 5×5, same): 15,200 params, 225 M MACs, 12 MB, 1.2 GB at 100."""
    model = one_layer((150, 100, 3), L.Conv2D(200, 5, strides=1, padding="same"))
    s = summarize(model)
    row = [r for r in s.rows if r.type == "Conv2D"][0]
    assert row.params == 15_200
    assert row.macs == 225_000_000 and row.flops == 450_000_000
    assert row.output_shape == (150, 100, 200)
    assert row.activation_bytes == 12_000_000
    assert s.macs == 225_000_000 and s.saved_activation_bytes == 12_000_000
    budget = training_budget(s, batch_size=100)
    assert budget.term("activations").bytes == 1_200_000_000
    assert format_mb(row.activation_bytes) == "12.0 MB"
    assert format_bytes(budget.term("activations").bytes) == "1.20 GB"


def test_inception_branch_naive_vs_reduced():
    inp = keras.Input((28, 28, 192))
    naive = summarize(keras.Model(inp, L.Conv2D(32, 5, padding="same")(inp)))
    assert naive.macs == 120_422_400
    inp = keras.Input((28, 28, 192))
    reduce = L.Conv2D(16, 1, name="reduce")(inp)
    out = L.Conv2D(32, 5, padding="same", name="conv5")(reduce)
    reduced = summarize(keras.Model(inp, out))
    assert reduced.row("reduce").macs == 2_408_448
    assert reduced.row("conv5").macs == 10_035_200
    assert reduced.macs == 12_443_648


def test_lecture_bn_model_totals_match_keras():
    model = keras.Sequential([
        keras.Input((28, 28)),
        L.Flatten(),
        L.BatchNormalization(),
        L.Dense(300, activation="relu", kernel_initializer="he_normal"),
        L.BatchNormalization(),
        L.Dense(100, activation="relu", kernel_initializer="he_normal"),
        L.BatchNormalization(),
        L.Dense(10, activation="softmax"),
    ])
    s = summarize(model)
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (271_346, 268_978, 2_368)
    assert s.total_params == model.count_params()
    assert [r.params for r in s.rows if r.type == "BatchNormalization"] == [3_136, 1_200, 400]
    assert s.macs == 784 * 300 + 300 * 100 + 100 * 10
    bn = [r for r in s.rows if r.type == "BatchNormalization"][0]
    assert bn.other_ops == 2 * 784 and bn.macs == 0
    flatten = s.rows[0]
    assert flatten.rule == "structural" and flatten.macs == flatten.other_ops == flatten.saved_elements == 0
    # fused relu: bias + activation, one op each per output; softmax 3
    dense = [r for r in s.rows if r.type == "Dense"]
    assert [d.other_ops for d in dense] == [600, 200, 10 + 30]


# --- keras.applications against published figures ----------------------------------------------

# Published MACs at 224×224×3, 1000 classes (DOMAIN.md): VGG16 15.47 G, ResNet50 3.86 G,
# MobileNetV2 0.30 G. Tolerance: 1%.
APPLICATIONS = {
    "VGG16": (15.47e9, 138_357_544),
    "ResNet50": (3.86e9, 25_636_712),
    "MobileNetV2": (0.30e9, 3_538_984),
}


@pytest.fixture(scope="module")
def applications():
    out = {}
    for name in APPLICATIONS:
        keras.backend.clear_session()
        model = getattr(keras.applications, name)(weights=None)
        out[name] = (summarize(model), model.count_params(),
                     sum(math.prod(v.shape) for v in model.trainable_weights))
    keras.backend.clear_session()
    return out


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_applications_macs_within_1_percent(applications, name):
    s, count, trainable = applications[name]
    published, params = APPLICATIONS[name]
    assert s.macs == pytest.approx(published, rel=0.01)
    assert s.total_params == count == params
    assert s.trainable_params == trainable
    assert s.total_params == s.trainable_params + s.non_trainable_params
    assert s.uncounted == []
    json.dumps(s.to_dict())


def test_resnet50_remedies_ranked_by_bytes_saved(applications):
    s = applications["ResNet50"][0]
    advice = oom_remedies(s, "8GiB", 256)
    assert not advice.fits
    keys = [r.key for r in advice.remedies]
    for key in ("halve_batch", "mixed_precision", "freeze_base", "smaller_input", "fewer_layers",
                "devices_2", "devices_4", "devices_8"):
        assert key in keys
    saved = [r.saved_bytes for r in advice.remedies]
    assert saved == sorted(saved, reverse=True)
    for r in advice.remedies:
        assert r.total_bytes == advice.budget.total_bytes - r.saved_bytes
        assert r.fits == (r.total_bytes <= parse_memory("8GiB"))
    by = {r.key: r for r in advice.remedies}
    assert by["devices_2"].total_bytes == training_budget(s, batch_size=128).total_bytes
    assert by["halve_batch"].total_bytes == by["devices_2"].total_bytes
    assert advice.max_batch_size == max_batch_size(s, "8GiB")
    assert oom_remedies(s, "80GiB", 8).remedies == []
    json.dumps(advice.to_dict())


def test_compare_rows(applications):
    rows = compare({"resnet": applications["ResNet50"][0], "mobile": applications["MobileNetV2"][0]},
                   batch_size=16, precision="mixed_bfloat16", optimizer="sgd")
    assert [r.name for r in rows] == ["resnet", "mobile"]
    assert rows[0].macs > rows[1].macs and rows[0].params == 25_636_712
    assert rows[0].budget_bytes == training_budget(applications["ResNet50"][0], batch_size=16,
                                                   precision="mixed_bfloat16", optimizer="sgd").total_bytes
    json.dumps([r.to_dict() for r in rows])


# --- per-layer rules against hand formulae ----------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "layer", "macs"),
    [
        # strided, valid: 8×8 → 3×3 output; 3·3·4 MACs per output value, 6 filters
        ((8, 8, 4), L.Conv2D(6, 3, strides=2), 3 * 3 * 6 * (3 * 3 * 4)),
        # dilated 'same': output 8×8, the dilation changes no MAC count
        ((8, 8, 4), L.Conv2D(6, 3, dilation_rate=2, padding="same"), 8 * 8 * 6 * (3 * 3 * 4)),
        # grouped: each filter sees 4/2 channels
        ((8, 8, 4), L.Conv2D(6, 3, groups=2, padding="same"), 8 * 8 * 6 * (3 * 3 * 2)),
        # depthwise, multiplier 2: 6×6 outputs × 4 channels × 2 × 9
        ((8, 8, 4), L.DepthwiseConv2D(3, depth_multiplier=2), 6 * 6 * 4 * 2 * 9),
        # separable: depthwise (6·6·4·9) + pointwise (6·6·4·5)
        ((8, 8, 4), L.SeparableConv2D(5, 3), 6 * 6 * 4 * 9 + 6 * 6 * 4 * 5),
        # transpose, stride 2: every input value is spread over 3·3·5 outputs
        ((4, 4, 3), L.Conv2DTranspose(5, 3, strides=2), 4 * 4 * 3 * 9 * 5),
        ((10, 3), L.Conv1D(4, 3), 8 * 4 * 3 * 3),
        ((4, 4, 4, 2), L.Conv3D(3, 2), 3 * 3 * 3 * 3 * (8 * 2)),
        # Dense on a sequence: per position
        ((7, 16), L.Dense(8), 7 * 16 * 8),
        ((7, 16), L.EinsumDense("abc,cd->abd", output_shape=(7, 8)), 7 * 16 * 8),
    ],
    ids=["strided", "dilated", "grouped", "depthwise", "separable", "transpose", "conv1d", "conv3d",
         "dense-nd", "einsum"],
)
def test_conv_and_dense_rules(shape, layer, macs):
    row = only_layer_row(one_layer(shape, layer))
    assert row.macs == macs
    assert row.rule != "uncounted"


def test_other_ops_never_fold_into_macs():
    inp = keras.Input((8, 8, 4))
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    b = L.BatchNormalization(name="bn")(a)
    c = L.Add(name="add")([a, b])
    d = L.MaxPooling2D(2, name="pool")(c)
    e = L.Dropout(0.5, name="drop")(d)
    f = L.GlobalAveragePooling2D(name="gap")(e)
    s = summarize(keras.Model(inp, f))
    n = 8 * 8 * 4
    assert s.row("conv").macs == n * 9 * 4 and s.row("conv").other_ops == 2 * n  # bias + relu
    assert (s.row("bn").macs, s.row("bn").other_ops) == (0, 2 * n)
    assert (s.row("add").macs, s.row("add").other_ops) == (0, n)
    assert s.row("pool").other_ops == 4 * 4 * 4 * 4  # outputs × window
    assert s.row("drop").other_ops == 0 and s.row("drop").rule == "inference_identity"
    assert s.row("gap").other_ops == 4 * 4 * 4
    assert s.macs == n * 9 * 4
    assert s.other_ops == 2 * n + 2 * n + n + 4 * 4 * 4 * 4 + 4 * 4 * 4


def test_kept_activations_follow_fusion_rules():
    inp = keras.Input((8, 8, 4))
    a = L.Conv2D(4, 3, padding="same", name="conv")(inp)
    b = L.BatchNormalization(name="bn")(a)
    c = L.ReLU(name="relu")(b)
    d = L.Conv2D(4, 3, padding="same", activation="relu", name="fused")(c)
    e = L.BatchNormalization(name="bn2")(d)
    f = L.Conv2D(2, 1, name="head")(e)
    s = summarize(keras.Model(inp, L.Flatten(name="flat")(f)))
    n = 8 * 8 * 4
    saved = {r.name: r.saved_elements for r in s.rows}
    assert saved["conv"] == n and saved["bn"] == 0 and saved["relu"] == n  # BN fused into ReLU
    assert saved["fused"] == 2 * n  # pre- and post-activation
    assert saved["bn2"] == n  # read by a conv: kept
    assert saved["flat"] == 0
    assert s.saved_elements == sum(saved.values())


def test_a_separable_convolution_keeps_its_depthwise_result():
    """XLA keeps the depthwise half's output for the pointwise half's backward pass: measured on a
    stack of SeparableConv2D (docs/cost-model.md, structural fixes), 2 copies of the layer's size."""
    inp = keras.Input((8, 8, 4))
    a = L.SeparableConv2D(6, 3, depth_multiplier=2, name="sep")(inp)  # depthwise 6x6x8, output 6x6x6
    b = L.SeparableConv2D(6, 3, padding="same", activation="relu", name="sep_relu")(a)  # 6x6x6, output 6x6x6
    c = L.DepthwiseConv2D(3, padding="same", name="dw")(b)
    s = summarize(keras.Model(inp, c))
    saved = {r.name: r.saved_elements for r in s.rows}
    assert saved["sep"] == 6 * 6 * 6 + 6 * 6 * 8
    assert saved["sep_relu"] == 2 * 6 * 6 * 6 + 6 * 6 * 6
    assert saved["dw"] == 6 * 6 * 6  # a depthwise convolution alone keeps its output only


def test_a_cpu_plan_keeps_a_biased_output_that_a_normalisation_reads():
    """On a CPU the bias add is not fused into the convolution (measured, docs/cost-model.md):
    conv(bias) → BN keeps one more copy there; a GPU budget (the default) does not change."""
    inp = keras.Input((8, 8, 4))
    a = L.Conv2D(4, 3, padding="same", name="biased")(inp)
    b = L.BatchNormalization(name="bn")(a)
    c = L.Conv2D(4, 3, padding="same", use_bias=False, name="plain")(L.ReLU(name="relu")(b))
    d = L.BatchNormalization(name="bn2")(c)
    e = L.Conv2D(4, 3, padding="same", activation="relu", name="fused")(L.ReLU(name="relu2")(d))
    s = summarize(keras.Model(inp, L.BatchNormalization(name="bn3")(e)))
    n = 8 * 8 * 4
    extra = {r.name: r.cpu_extra_elements for r in s.rows}
    assert extra["biased"] == n and extra["plain"] == 0 and extra["fused"] == 0  # no bias; activation fused
    assert s.cpu_extra_elements == n and s.to_dict()["cpu_extra_elements"] == n
    gpu, cpu = (training_budget(s, batch_size=3, platform=p) for p in ("gpu", "cpu"))
    assert cpu.total_bytes - gpu.total_bytes == 3 * n * 4
    assert gpu.to_dict()["platform"] == "gpu" and training_budget(s, batch_size=3).total_bytes == gpu.total_bytes
    with pytest.raises(ParameterError, match="did you mean 'cpu'"):
        training_budget(s, batch_size=3, platform="cpuu")


def test_a_cpu_plan_keeps_what_swish_and_gelu_need_for_their_derivative():
    inp = keras.Input((8, 8, 4))
    a = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inp)
    b = L.BatchNormalization(name="bn")(a)
    c = L.Activation("swish", name="swish")(b)
    d = L.BatchNormalization(name="bn2")(L.Conv2D(4, 3, padding="same", use_bias=False, name="conv2")(c))
    e = L.Activation("gelu", name="gelu")(L.ReLU(name="relu")(d))
    s = summarize(keras.Model(inp, e))
    n = 8 * 8 * 4
    extra = {r.name: r.cpu_extra_elements for r in s.rows}
    assert extra["bn"] == n and extra["bn2"] == 0  # swish needs its input; ReLU does not
    assert extra["gelu"] == 2 * n and extra["swish"] == extra["relu"] == extra["conv"] == 0


def test_budget_needs_known_input_size():
    model = keras.Sequential([keras.Input((None, None, 3)), L.Conv2D(4, 3), L.GlobalAveragePooling2D()])
    with pytest.warns(UncountedLayerWarning):
        s = summarize(model)
    assert len(s.uncounted) == 2
    with pytest.raises(ParameterError, match="unknown dimensions"):
        training_budget(s, batch_size=2)


def test_shared_layer_counted_per_call():
    shared = L.Dense(5, name="shared")
    a, b = keras.Input((3,)), keras.Input((3,))
    s = summarize(keras.Model([a, b], L.Add()([shared(a), shared(b)])))
    assert s.row("shared").calls == 2
    assert s.row("shared").macs == 2 * 3 * 5


# --- nesting, custom layers -------------------------------------------------------------------


def _block(x, prefix=""):
    x = L.Conv2D(8, 3, padding="same", name=prefix + "c1")(x)
    x = L.BatchNormalization(name=prefix + "bn")(x)
    x = L.ReLU(name=prefix + "relu")(x)
    return L.Conv2D(4, 1, name=prefix + "c2")(x)


def test_nested_functional_same_as_flat():
    inp = keras.Input((16, 16, 3))
    flat = summarize(keras.Model(inp, L.Dense(2)(L.GlobalAveragePooling2D()(_block(inp)))))

    inner_in = keras.Input((16, 16, 3))
    inner = keras.Model(inner_in, _block(inner_in, "in_"), name="inner")
    outer_in = keras.Input((16, 16, 3))
    nested_model = keras.Model(outer_in, L.Dense(2)(L.GlobalAveragePooling2D()(inner(outer_in))))
    nested = summarize(nested_model)
    assert nested.macs == flat.macs and nested.other_ops == flat.other_ops
    assert nested.saved_elements == flat.saved_elements
    assert nested.total_params == flat.total_params == nested_model.count_params()
    row = nested.row("inner")
    assert row.rule == "container" and row.macs == flat.macs - 4 * 2 and row.depth == 0
    assert all(r.depth == 0 for r in nested.rows)
    expanded = summarize(nested_model, expand=True)
    child = expanded.row("inner/in_c1")
    assert child.depth == 1 and child.parent == "inner"
    assert sum(r.macs for r in expanded.rows if r.depth == 0) == nested.macs


def test_nested_model_with_unknown_input_size_is_reshaped():
    inner_in = keras.Input((None, None, 3))
    inner = keras.Model(inner_in, _block(inner_in), name="base")
    outer_in = keras.Input((16, 16, 3))
    s = summarize(keras.Model(outer_in, inner(outer_in)))
    assert s.macs == 16 * 16 * 8 * 27 + 16 * 16 * 4 * 8
    assert s.uncounted == []


def test_sequential_inside_functional():
    seq = keras.Sequential([keras.Input((10,)), L.Dense(4), L.Dense(2)], name="seq")
    inp = keras.Input((10,))
    s = summarize(keras.Model(inp, seq(inp)), expand=True)
    assert s.macs == 10 * 4 + 4 * 2
    assert [r.path for r in s.rows if r.depth == 1] == ["seq/" + l.name for l in seq.layers]


class Residual(keras.layers.Layer):
    """A custom block owning sublayers: costed from its sublayers' build shapes."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = L.Conv2D(filters, 3, padding="same")
        self.bn = L.BatchNormalization()

    def call(self, x):
        return x + self.bn(self.conv(x))

    def compute_output_shape(self, input_shape):
        return input_shape


class Mystery(keras.layers.Layer):
    def call(self, x):
        return keras.ops.sin(x)


def test_custom_layer_with_sublayers_is_walked():
    inp = keras.Input((8, 8, 4))
    s = summarize(keras.Model(inp, Residual(4, name="res")(inp)), expand=True)
    assert s.macs == 8 * 8 * 4 * 36
    row = s.row("res")
    assert row.rule == "container" and len(row.children) == 2
    assert s.uncounted == []


def test_unknown_layer_is_listed_as_uncounted():
    inp = keras.Input((4,))
    model = keras.Model(inp, L.Dense(3)(Mystery(name="mystery")(inp)))
    with pytest.warns(UncountedLayerWarning, match="mystery"):
        s = summarize(model)
    assert s.uncounted == ["mystery (Mystery)"]
    assert s.row("mystery").rule == "uncounted" and not s.row("mystery").counted
    assert s.macs == 12
    assert s.to_dict()["uncounted"] == ["mystery (Mystery)"]


# --- memory budget ------------------------------------------------------------------------------


def mlp(trainable=True):
    model = keras.Sequential([keras.Input((100,)), L.Dense(50), L.Dense(10)])
    model.trainable = trainable
    return model


def test_budget_weights_grads_slots_adam_is_four_copies():
    s = summarize(mlp())
    params = 100 * 50 + 50 + 50 * 10 + 10
    b = training_budget(s, batch_size=8, optimizer="adam")
    fixed = sum(b.term(t).bytes for t in ("weights", "gradients", "optimizer slots"))
    assert fixed == 4 * params * 4
    assert b.term("optimizer slots").bytes == 2 * params * 4
    assert b.total_bytes == sum(t.bytes for t in b.terms)
    assert b.total_bytes == b.fixed_bytes + 8 * b.per_instance_bytes
    assert sum(t.share for t in b.terms) == pytest.approx(1.0)
    assert training_budget(s, batch_size=8, optimizer="sgd").term("optimizer slots").bytes == 0
    json.dumps(b.to_dict())


def test_frozen_model_has_no_gradients_or_slots():
    s = summarize(mlp(trainable=False))
    b = training_budget(s, batch_size=4, optimizer="adam")
    assert b.term("gradients").bytes == 0 and b.term("optimizer slots").bytes == 0
    assert b.term("activations").bytes == 0  # no gradient flows, nothing is kept
    assert b.term("weights").bytes == s.param_bytes > 0
    # frozen="base" on a trainable model: only the head (the last Dense) trains
    head = training_budget(summarize(mlp()), batch_size=4, frozen="base")
    assert head.trainable_params == 50 * 10 + 10


def test_mixed_precision_halves_activation_bytes():
    model = one_layer((150, 100, 3), L.Conv2D(200, 5, padding="same"))
    assert summarize(model, precision="mixed_float16").activation_bytes * 2 == summarize(model).activation_bytes
    s = summarize(model)
    f32 = training_budget(s, batch_size=10)
    f16 = training_budget(s, batch_size=10, precision="mixed_bfloat16")
    assert f16.term("activations").bytes * 2 == f32.term("activations").bytes
    assert f16.term("weights").bytes == f32.term("weights").bytes  # float32 master weights
    assert f16.term("16-bit weight copies").bytes == 15_200 * 2


def test_max_batch_size_is_largest_fitting():
    s = summarize(one_layer((32, 32, 3), L.Conv2D(16, 3, padding="same")))
    device = parse_memory("100MB")
    b = max_batch_size(s, device, optimizer="adam")
    assert b >= 1
    assert training_budget(s, batch_size=b).total_bytes <= device
    assert training_budget(s, batch_size=b + 1).total_bytes > device
    assert max_batch_size(s, "1MB") == 0
    ws = Workspace(fraction=0.5, largest_layers=0, fixed_bytes=0)
    b2 = max_batch_size(s, device, workspace=ws)
    assert training_budget(s, batch_size=b2, workspace=ws).total_bytes <= device
    assert training_budget(s, batch_size=b2 + 1, workspace=ws).total_bytes > device


def test_optimizer_slots_table_and_instances():
    assert OPTIMIZER_SLOTS["sgd"] == 0 and OPTIMIZER_SLOTS["adam"] == 2 and OPTIMIZER_SLOTS["rmsprop"] == 1
    assert optimizer_slots(keras.optimizers.SGD(momentum=0.9)) == ("momentum", 1)
    assert optimizer_slots(keras.optimizers.SGD(momentum=0.9, nesterov=True)) == ("nesterov", 1)
    assert optimizer_slots(keras.optimizers.RMSprop(centered=True))[1] == 2
    assert optimizer_slots(keras.optimizers.Adam(amsgrad=True))[1] == 3
    with pytest.raises(ParameterError, match="did you mean 'adam'"):
        optimizer_slots("adan")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch size"),
        ({"batch_size": 2, "precision": "float16"}, "precision"),
        ({"batch_size": 2, "optimizer": "sgdd"}, "did you mean 'sgd'"),
        ({"batch_size": 2, "frozen": "bsae"}, "did you mean 'base'"),
    ],
)
def test_budget_validation(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        training_budget(summarize(mlp()), **kwargs)


# --- units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("80GiB", 80 * 2**30), ("16GB", 16 * 10**9), ("512MiB", 512 * 2**20), ("1.5TB", 1_500_000_000_000),
     ("16 gb", 16 * 10**9), ("1000", 1000), (2048, 2048)],
)
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["80XB", "GB", "-1GB", "", "1.2.3GB"])
def test_parse_memory_rejects_bad_strings(text):
    with pytest.raises(ParameterError, match="KiB, MiB, GiB|positive") as info:
        parse_memory(text)
    assert "\n" not in str(info.value)


def test_format_units_are_labelled():
    assert format_mb(12_000_000) == "12.0 MB"
    assert format_mib(2**20) == "1.0 MiB"
    assert format_bytes(1_200_000_000) == "1.20 GB"
    assert format_bytes(3 * 2**30, binary=True) == "3.00 GiB"
    assert format_bytes(512) == "512 B"


def test_package_import_stays_light():
    code = ("import sys, cnnreg.analysis, cnnreg.analysis.memory, cnnreg.analysis.advice; "
            "print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- GoogLeNet (architecture zoo) ---------------------------------------------------------------


def test_googlenet_per_module_macs_exact():
    googlenet_module = pytest.importorskip("cnnreg.builtin.architectures.googlenet")
    keras.backend.clear_session()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncountedLayerWarning)
        s = summarize(googlenet_module.googlenet())
    keras.backend.clear_session()
    for label, ref in googlenet_module.PAPER_TABLE.items():
        convs = [r for r in s.leaves if r.name.startswith(f"inception_{label}_") and r.rule == "conv"]
        assert len(convs) == 6
        assert sum(r.macs for r in convs) == ref["exact_macs"], label
    # stem on 3 input channels (DOMAIN.md): 118 M and 359.7 M MACs
    assert s.row("conv1_7x7_s2").macs == 112 * 112 * 64 * 7 * 7 * 3 == 118_013_952
    assert s.row("conv2_3x3_reduce").macs + s.row("conv2_3x3").macs == pytest.approx(359.7e6, rel=1e-3)


def test_every_rule_is_documented():
    from pathlib import Path

    from cnnreg.analysis.costs import RULES

    text = (Path(__file__).parent.parent / "docs" / "cost-model.md").read_text()
    for rule in {r.name for r in RULES.values()}:
        assert f"| {rule} |" in text, rule


def test_memory_check_script_help_needs_no_backend():
    from pathlib import Path

    script = Path(__file__).parent.parent / "benchmarks" / "memory_check.py"
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=True)
    assert "--quick" in out.stdout and "--json" in out.stdout
