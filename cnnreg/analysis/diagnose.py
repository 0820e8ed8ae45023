"""Initialisation health: how activations and gradients change from layer to layer at the start.

The criterion of Glorot & Bengio (2010) and He et al. (2015): at initialisation the variance of
the activations (forward) and of the gradients (backward) should stay the same from layer to
layer.  :func:`layer_statistics` measures it on one batch for any functional Keras model, and
:func:`plot` draws the result; ``cnnreg diagnose`` (:mod:`cnnreg.training.diagnose`) builds an
architecture spec once per initialiser, exactly as ``cnnreg run`` would, and compares them.
This module is pure: a model and a batch in, numbers out.

Hidden layers are the outputs of the layers with a nonlinearity (a Dense or convolution with
a fused activation other than linear, or an Activation / ReLU / LeakyReLU / ELU / PReLU layer),
the model's output layer excepted.  The gradient of the loss with respect to each of them is
taken in one backward pass: the model is re-wired (its layers shared, not copied) with a
*probe* after each hidden layer that adds a tensor which is zero in value; the gradient with
respect to that tensor is the gradient with respect to the layer's output.  The probes are one
flat vector differentiated by :func:`cnnreg.backends.input_gradient`, so the same code runs on
TensorFlow, JAX and PyTorch.  Nothing imports keras until a function runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cnnreg.errors import CnnregError

#: A forward or backward ratio outside this band (a decade either way) gets a warning line.
HEALTHY = (0.1, 10.0)
#: Beyond this band the warning says the activations or gradients vanish / explode (a deep
#: plain net under the wrong initialiser: Glorot at depth 30 with ReLU, 4·10⁻⁵); between the two
#: bands it says they shrink or grow by more than a decade (He's initialisation of a narrow
#: plain net drifts there too: docs/diagnose.md, finite width).
VANISHING = (1e-3, 1e3)
#: Activations whose units can die (output 0 for every example) and how saturation is judged.
DEAD = ("relu", "relu6")
SATURATION = {"tanh": "|a| > 0.99", "sigmoid": "a < 0.01 or a > 0.99", "hard_sigmoid": "a < 0.01 or a > 0.99"}
#: The split the batch comes from (as a training step sees it).
SPLIT = "train"
#: The most probe elements (batch × hidden units) one backward pass takes: 2 GB of float32.
MAX_PROBE = 500_000_000
#: Layer classes that are an activation by themselves, and the name they report.
_ACTIVATION_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "prelu"}


# --- one model ---------------------------------------------------------------------------------


def activation_of(layer) -> str | None:
    """The nonlinearity ``layer`` applies (``"relu"``, ``"tanh"`` ...), or None for none."""
    kind = type(layer).__name__
    if kind in _ACTIVATION_LAYERS:
        if kind == "ReLU" and getattr(layer, "max_value", None) == 6:
            return "relu6"
        if kind == "ReLU" and getattr(layer, "negative_slope", 0):
            return "leaky_relu"
        return _ACTIVATION_LAYERS[kind]
    function = getattr(layer, "activation", None)
    if not callable(function):
        return None
    name = getattr(function, "__name__", None) or type(function).__name__
    return None if name in ("linear", "identity") else name.lower()


def hidden_layers(model) -> list[tuple[Any, str]]:
    """``(layer, activation)`` for each hidden layer of ``model`` in graph order (top level;
    the output layers, the classifier, excluded)."""
    outputs = {id(t) for t in model.outputs}
    found = []
    for layer in model.layers:
        activation = activation_of(layer)
        if activation is not None and id(_output(layer)) not in outputs:
            found.append((layer, activation))
    return found


def _output(layer):
    try:
        return layer.output
    except (AttributeError, ValueError):  # a layer called several times: not the model's output
        return None


class _Slot:
    """Where a probe finds the tensor it adds (a plain object: Keras would copy a dict or a
    list set on a layer into its own tracked container)."""

    delta: Any = None


def _probe_class():
    import keras

    class Probe(keras.layers.Layer):
        """Adds ``slot.delta`` (a tensor of zeros, differentiated) to its input; nothing when
        the slot is empty."""

        def __init__(self, slot: _Slot, **kwargs):
            super().__init__(**kwargs)
            self.slot = slot

        def call(self, x):
            delta = self.slot.delta
            return x if delta is None else x + keras.ops.cast(delta, x.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

    return Probe


def _functional(model):
    import keras

    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    if not hasattr(model, "_nodes_by_depth") or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise CnnregError(f"model {model.name} must be a functional Keras model with one input and one output to be "
                          "diagnosed")
    return model


def layer_statistics(model, x, y_onehot, *, training: bool = True) -> dict[str, Any]:
    """Per hidden layer of ``model`` on the batch ``x`` (the model's input, preprocessed) with
    one-hot labels: activation mean and std, the dead fraction (ReLU: units whose output is 0
    for every example of the batch; a unit is one output element, per position for a
    convolution), the saturated fraction (tanh: values with |a| > 0.99; sigmoid: below 0.01 or
    above 0.99), the std of the gradient of the mean cross-entropy with respect to the layer's
    output, and the std of the kernel of the last Conv/Dense layer up to it.  ``training``:
    the forward pass of a training step (BatchNorm on the batch's statistics, dropout active);
    nothing is assigned (a ``keras.StatelessScope``), the model is left as it was.

    Returns ``{"loss": ..., "forward_ratio": ..., "backward_ratio": ..., "layers": [...]}``."""
    import keras
    from keras import ops

    from cnnreg import backends

    model = _functional(model)
    hidden = hidden_layers(model)
    if not hidden:
        raise CnnregError(f"model {model.name} has no hidden layer with a nonlinearity (a Dense or convolution with "
                          "an activation, or an activation layer) before its output: nothing to diagnose")
    wanted = {id(layer): activation for layer, activation in hidden}
    Probe = _probe_class()
    probes: list[tuple[Any, str, _Slot, Any]] = []  # (layer, activation, slot, probe output)

    def call_function(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if id(layer) in wanted and not isinstance(out, (list, tuple)):
            slot = _Slot()
            out = Probe(slot, name=f"cnnreg_probe_{len(probes) + 1}")(out)
            probes.append((layer, wanted[id(layer)], slot, out))
        return out

    probed = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call_function)
    both = keras.Model(probed.input, [probed.outputs[0], *(p[3] for p in probes)], name=f"{model.name}_probed")
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y_onehot, dtype="float32")
    n = len(x)
    shapes = [tuple(int(d) for d in p[3].shape[1:]) for p in probes]
    sizes = [n * math.prod(shape) for shape in shapes]
    if sum(sizes) > MAX_PROBE:
        raise CnnregError(f"the batch's hidden activations hold {sum(sizes):,} values (over {MAX_PROBE:,}): use a "
                          "smaller --batch or input shape")

    with keras.StatelessScope():
        outputs = both(x, training=training)
        predictions = np.asarray(ops.convert_to_numpy(outputs[0]), dtype="float64")
        activations = [np.asarray(ops.convert_to_numpy(a)) for a in outputs[1:]]
        del outputs

        def loss_of(delta):
            offset = 0
            for (_, _, slot, _), shape, size in zip(probes, shapes, sizes):
                slot.delta = ops.reshape(delta[offset:offset + size], (n, *shape))
                offset += size
            try:
                return ops.mean(keras.losses.categorical_crossentropy(y, probed(x, training=training)))
            finally:
                for _, _, slot, _ in probes:
                    slot.delta = None

        loss, gradient = backends.input_gradient(loss_of, np.zeros(sum(sizes), dtype="float32"))
    gradient = np.asarray(ops.convert_to_numpy(gradient))
    kernels = _kernel_sources(model)
    layers, offset = [], 0
    for index, ((layer, activation, _, _), a, shape, size) in enumerate(zip(probes, activations, shapes, sizes), 1):
        g = gradient[offset:offset + size]
        offset += size
        source = kernels.get(id(layer))
        dead = float(np.mean(np.all(a <= 0, axis=0))) if activation in DEAD else None
        if activation == "tanh":
            saturated = float(np.mean(np.abs(a) > 0.99))
        elif activation in SATURATION:
            saturated = float(np.mean((a < 0.01) | (a > 0.99)))
        else:
            saturated = None
        layers.append({
            "index": index, "name": layer.name, "type": type(layer).__name__, "activation": activation,
            "shape": list(shape), "units": math.prod(shape),
            "mean": float(a.mean(dtype="float64")), "std": float(a.std(dtype="float64")), "dead": dead,
            "saturated": saturated, "grad_std": float(g.std(dtype="float64")),
            "weights_std": float(np.std(ops.convert_to_numpy(source.kernel))) if source is not None else None,
            "weights_layer": source.name if source is not None else None,
        })
    loss = float(np.asarray(ops.convert_to_numpy(loss)))
    if not math.isfinite(loss):  # the probe pass agrees with the forward pass; say it plainly if not
        loss = float(-np.mean(np.log(np.clip((predictions * y).sum(axis=1), 1e-12, 1.0))))
    forward, backward = ratios(layers)
    return {"loss": loss, "forward_ratio": forward, "backward_ratio": backward, "layers": layers}


def _kernel_sources(model) -> dict[int, Any]:
    """Hidden layer id → the last layer with a kernel up to it, in the model's layer order."""
    last, found = None, {}
    for layer in model.layers:
        if getattr(layer, "kernel", None) is not None:
            last = layer
        found[id(layer)] = last
    return found


def ratios(layers: Sequence[dict[str, Any]]) -> tuple[float | None, float | None]:
    """``forward_ratio`` = activation std of the last hidden layer / the first's;
    ``backward_ratio`` = gradient std at the first hidden layer / at the last.  None where the
    denominator is 0 or a value is not finite."""
    def divide(a: float, b: float) -> float | None:
        if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
            return None
        return a / b

    first, last = layers[0], layers[-1]
    return divide(last["std"], first["std"]), divide(first["grad_std"], last["grad_std"])


# --- the figure ---------------------------------------------------------------------------------


def plot(result: dict[str, Any], path: Path) -> None:
    """diagnose.png in the manner of Glorot & Bengio's figures: the std of the activations
    (forward) and of the gradients (backward) per hidden layer, one line per initialiser, on a
    log scale; written atomically."""
    from cnnreg.files import save_atomic

    fig = figure(result)
    save_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png"))


def figure(result: dict[str, Any]):
    """The matplotlib Figure that :func:`plot` writes."""
    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.4), dpi=100)
    axes = fig.subplots(1, 2)
    panels = (("std", "forward_ratio", "forward: activation std", "last / first"),
              ("grad_std", "backward_ratio", "backward: std of d loss / d activation", "first / last"))
    for ax, (key, ratio_key, title, how) in zip(axes, panels):
        for one in result["results"]:
            layers = one["layers"]
            values = np.array([layer[key] for layer in layers], dtype="float64")
            ratio = one[ratio_key]
            ratio_text = "n/a" if ratio is None else f"{ratio:.2g}"
            ax.plot([layer["index"] for layer in layers], np.where(values > 0, values, np.nan), "-o", markersize=3,
                    label=f"{one['label']} (ratio {ratio_text})")
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole: no 2.5th layer
        ax.set_title(f"{title}\n(ratio: {how})", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("standard deviation (log scale)")
    shape = "x".join(map(str, result["input_shape"]))
    fig.suptitle(f"{result['architecture']} at initialisation: {result['batch']} training examples of "
                 f"{result['dataset']} at {shape} ({result['backend']})", fontsize=11)
    fig.tight_layout()
    return fig
