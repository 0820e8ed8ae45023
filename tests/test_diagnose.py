"""`plain_net` and `cnnreg diagnose`: exact parameter counts, per-layer statistics checked by hand
(NumPy forward and backward pass) on every backend, the --json schema, the figure, the ratio
warning and one-line mistakes.  Models are tiny (8x8 digits, Dense layers of 5 to 16 units)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnreg.testing import run_cli

keras = pytest.importorskip("keras")

import cnnreg  # noqa: E402
from cnnreg.errors import ParameterError  # noqa: E402

# --- plain_net ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth, width, channels, classes", [(1, 4, 1, 3), (5, 8, 3, 10)])
def test_plain_net_conv_parameters_match_the_hand_formula(depth, width, channels, classes):
    model = cnnreg.build("architecture", f"plain_net:depth={depth},width={width}", input_shape=(6, 7, channels),
                         num_classes=classes)
    expected = (9 * channels + 1) * width + (depth - 1) * (9 * width + 1) * width + (width + 1) * classes
    assert model.count_params() == expected
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.name for c in convs] == [f"conv{i}" for i in range(1, depth + 1)]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" and c.activation.__name__ == "relu" for c in convs)
    assert all(type(c.kernel_initializer).__name__ == "HeNormal" for c in convs)  # what suits ReLU
    assert not any("Normalization" in type(layer).__name__ or "Add" == type(layer).__name__ for layer in model.layers)
    assert model.get_layer("predictions").activation.__name__ == "softmax"
    base = cnnreg.build("architecture", f"plain_net:depth={depth},width={width},include_top=false",
                        input_shape=(6, 7, channels), num_classes=classes)
    assert tuple(base.output.shape) == (None, 6, 7, width)


@pytest.mark.parametrize("activation, init", [("tanh", "GlorotUniform"), ("sigmoid", "GlorotUniform"),
                                              ("selu", "LecunNormal"), ("relu", "HeNormal")])
def test_plain_net_dense_parameters_and_initialiser_per_activation(activation, init):
    model = cnnreg.build("architecture", f"plain_net:depth=4,width=7,conv=false,activation={activation}",
                         input_shape=(5, 4, 2), num_classes=3)
    assert model.count_params() == (5 * 4 * 2 + 1) * 7 + 3 * (7 + 1) * 7 + (7 + 1) * 3
    dense = [layer for layer in model.layers if layer.name.startswith("dense")]
    assert len(dense) == 4 and all(d.activation.__name__ == activation for d in dense)
    assert all(type(d.kernel_initializer).__name__ == init for d in dense)
    base = cnnreg.build("architecture", "plain_net:depth=4,width=7,conv=false,include_top=false",
                        input_shape=(5, 4, 2), num_classes=3)
    assert tuple(base.output.shape) == (None, 7)


def test_plain_net_mistakes_are_one_line():
    from cnnreg.builtin.architectures.plain import plain_net

    with pytest.raises(ParameterError, match=r"depth must be an integer from 1 to 1000 \(got 0\)"):
        plain_net(depth=0)
    with pytest.raises(ParameterError, match=r"activation must be one of relu, tanh, selu, sigmoid"):
        plain_net(activation="gelu")
    result = run_cli("summary", "plain_net:depth=1001")
    assert result.exit_code == 2 and "depth" in result.stderr and "1000" in result.stderr


# --- layer statistics by hand, on every backend -------------------------------------------------------

BY_HAND = r"""
import keras, numpy as np, cnnreg
from cnnreg.analysis.diagnose import layer_statistics

def reference(weights, x, y, activation):
    f = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[activation]
    df = {"relu": lambda z: (z > 0).astype(float), "tanh": lambda z: 1 - np.tanh(z) ** 2}[activation]
    w1, b1, w2, b2, w3, b3 = [w.astype("float64") for w in weights]
    h = x.reshape(len(x), -1).astype("float64")
    z1 = h @ w1 + b1; a1 = f(z1); z2 = a1 @ w2 + b2; a2 = f(z2)
    logits = a2 @ w3 + b3
    p = np.exp(logits - logits.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log((p * y).sum(1)))
    g2 = (p - y) / len(x) @ w3.T          # d mean cross-entropy / d a2
    g1 = (g2 * df(z2)) @ w2.T             # d loss / d a1
    return loss, [(a1, g1, w1), (a2, g2, w2)]

rng = np.random.default_rng(0)
x = rng.random((16, 3, 3, 1)).astype("float32")
y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
for activation in ("relu", "tanh"):
    model = cnnreg.build("architecture", f"plain_net:depth=2,width=5,conv=false,activation={activation}",
                         input_shape=(3, 3, 1), num_classes=3)
    weights = [rng.normal(0, 0.8, tuple(w.shape)).astype("float32") for w in model.weights]
    if activation == "relu":  # a unit that is never active: negative weights and bias
        weights[0][:, 0], weights[1][0] = -np.abs(weights[0][:, 0]), -1.0
    model.set_weights(weights)
    before = keras.ops.convert_to_numpy(model(x))
    stats = layer_statistics(model, x, y)
    loss, layers = reference(weights, x, y, activation)
    assert np.isclose(stats["loss"], loss, rtol=1e-5), (stats["loss"], loss)
    assert [l["name"] for l in stats["layers"]] == ["dense1", "dense2"]
    for got, (a, g, w) in zip(stats["layers"], layers):
        assert got["activation"] == activation and got["shape"] == [5] and got["units"] == 5
        for key, want in (("mean", a.mean()), ("std", a.std()), ("grad_std", g.std()), ("weights_std", w.std())):
            assert np.isclose(got[key], want, rtol=1e-4, atol=1e-9), (activation, got["name"], key, got[key], want)
        if activation == "relu":
            assert got["dead"] == np.mean(np.all(a <= 0, axis=0)) and got["saturated"] is None
        else:
            assert got["saturated"] == np.mean(np.abs(a) > 0.99) and got["dead"] is None
    if activation == "relu":
        assert stats["layers"][0]["dead"] >= 0.2  # the unit made dead
    else:
        assert 0 < stats["layers"][0]["saturated"] < 1
    first, last = stats["layers"]
    assert np.isclose(stats["forward_ratio"], last["std"] / first["std"])
    assert np.isclose(stats["backward_ratio"], first["grad_std"] / last["grad_std"])
    # the model is left as it was: same weights, same predictions
    assert all(np.array_equal(keras.ops.convert_to_numpy(v), w) for v, w in zip(model.weights, weights))
    assert np.array_equal(keras.ops.convert_to_numpy(model(x)), before)
print("OK", keras.backend.backend())
"""


def test_layer_statistics_by_hand():
    """In this process, on its backend (TensorFlow unless KERAS_BACKEND says otherwise)."""
    exec(compile(BY_HAND, "by_hand", "exec"), {})


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_layer_statistics_by_hand_on_the_other_backends(backend, subprocess_env):
    from runhelpers import script_on_backend

    proc = script_on_backend(BY_HAND, backend, subprocess_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"OK {backend}"


# --- the command --------------------------------------------------------------------------------------

DEEP = "plain_net:depth=24,width=16,conv=false"


def test_json_figure_and_ratio_warning(tmp_path):
    out = tmp_path / "diag"
    result = run_cli("diagnose", DEEP, "--init", "he_normal", "--init", "glorot_uniform", "--dataset",
                     "digits:size=8", "--batch", "32", "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cnnreg"] and data["architecture"] == DEEP and data["dataset"] == "digits:size=8"
    assert data["split"] == "train" and data["batch"] == 32 and data["seed"] == 0
    assert data["input_shape"] == [8, 8, 1] and data["hidden_layers"] == 24
    he, glorot = data["results"]
    assert (he["init"], glorot["init"]) == ("he_normal", "glorot_uniform")
    for one in (he, glorot):
        assert set(one) >= {"init", "label", "forward_ratio", "backward_ratio", "loss", "layers"}
        assert [layer["name"] for layer in one["layers"]] == [f"dense{i}" for i in range(1, 25)]
        for layer in one["layers"]:
            assert set(layer) >= {"index", "name", "type", "activation", "shape", "units", "mean", "std", "dead",
                                  "saturated", "grad_std", "weights_std", "weights_layer"}
            assert layer["activation"] == "relu" and 0 <= layer["dead"] <= 1 and layer["saturated"] is None
    # --init is applied to every kernel: std sqrt(2 / 16) for He, sqrt(1 / 16) for Glorot (fan_in = fan_out)
    assert np.median([layer["weights_std"] for layer in he["layers"][1:]]) == pytest.approx(0.354, rel=0.15)
    assert np.median([layer["weights_std"] for layer in glorot["layers"][1:]]) == pytest.approx(0.25, rel=0.15)
    # Glorot halves a ReLU layer's variance: (1/sqrt 2)^23 = 3.5e-4; He keeps it (up to finite width)
    assert glorot["forward_ratio"] < 1e-3 < he["forward_ratio"] < 1e3
    assert glorot["backward_ratio"] < 1e-3 < he["backward_ratio"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings == [f"warning: {data['warnings'][0]}"]
    assert warnings[0].startswith("warning: glorot_uniform: activations vanish") and "'he_normal' suits" in warnings[0]
    png = out / "diagnose.png"
    assert data["files"] == {"plot": str(png)}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert not [p for p in out.iterdir() if p.name != "diagnose.png"]  # no temporary file left


def test_table_with_the_architectures_own_initialiser_and_no_hidden_layers():
    result = run_cli("diagnose", "plain_net:depth=3,width=4,activation=tanh", "--dataset", "digits:size=8", "--batch", "8")
    assert result.exit_code == 0, result.output
    assert "3 hidden layers" in result.stdout and "architecture's own: forward ratio" in result.stdout
    assert "conv3" in result.stdout and "tanh" in result.stdout and "warning" not in result.stderr
    result = run_cli("diagnose", "single_conv:filters=2", "--dataset", "digits:size=8", "--batch", "4")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no hidden layer with a nonlinearity" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["plain_net", "--init", "he_normall"], "unknown initialiser 'he_normall'; did you mean 'he_normal'?"),
    (["plain_nett"], "unknown architecture 'plain_nett'; did you mean 'plain_net'?"),
    (["plain_net:activation=gelu"], "'gelu' is not allowed; did you mean 'selu'? (valid: relu, selu, sigmoid, tanh)"),
    (["plain_net", "--batch", "0"], "--batch must be an integer >= 1 (got 0)"),
    (["plain_net", "--dataset", "digitz"], "did you mean 'digits'?"),
    (["plain_net", "--backend", "jaxx"], "unknown backend 'jaxx'; did you mean 'jax'?"),
])
def test_mistakes_are_one_line(args, message):
    result = run_cli("diagnose", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_out_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    result = run_cli("diagnose", "plain_net", "--out", str(tmp_path / "file"))
    assert result.exit_code == 2 and "is a file, not a folder" in result.stderr


def test_a_ratio_beyond_a_decade_is_warned_and_beyond_three_says_vanish():
    """[0.1, 10] is the band (issue 25: Glorot at depth 20 gave 0.0015 and no warning when it was
    [1e-3, 1e3]); beyond [1e-3, 1e3] the line says vanish / explode."""
    from cnnreg.training.diagnose import ratio_warnings

    def result(forward, backward, spec="glorot_uniform"):
        return {"label": spec, "spec": spec, "forward_ratio": forward, "backward_ratio": backward,
                "layers": [{"activation": "relu"}] * 20}

    lines = ratio_warnings([result(0.0015, 0.0015), result(3e-5, 20.0), result(0.5, 2.0), result(0.09, 1.0, "he_normal")],
                           "plain_net:depth=20")
    assert len(lines) == 3
    assert lines[0].startswith("glorot_uniform: activations shrink by more than a decade (forward ratio 0.0015) and "
                               "gradients shrink by more than a decade") and "(outside [0.1, 10])" in lines[0]
    assert "activations vanish (forward ratio 3e-05) and gradients grow by more than a decade" in lines[1]
    assert lines[2].startswith("he_normal: activations shrink by more than a decade") and "needs batch normalisation" in lines[2]


def test_the_figures_tick_whole_layers_and_epochs():
    """Layers and epochs are whole numbers: no tick at layer 2.5 or epoch 1.5 (issue 25)."""
    from cnnreg.analysis.diagnose import figure
    from cnnreg.training.report import curves_figure

    layers = [{"index": i, "std": 1.0 / i, "grad_std": 0.5 * i} for i in (1, 2, 3)]
    result = {"results": [{"label": "he_normal", "layers": layers, "forward_ratio": 0.33, "backward_ratio": 3.0}],
              "input_shape": [8, 8, 1], "architecture": "plain_net", "batch": 8, "dataset": "digits", "backend": "tensorflow"}
    history = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "accuracy": 0.5, "val_accuracy": 0.4} for e in (1, 2, 3)]
    for fig in (figure(result), curves_figure(history)):
        fig.canvas.draw()
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
