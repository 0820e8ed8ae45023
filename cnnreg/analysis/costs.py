"""Per-layer cost rules: multiply-accumulates (MACs), other elementwise ops, activation bytes.

One rule per layer type, matched on the layer's class or its nearest base class in this table
(so a custom subclass of ``Conv2D`` is costed as a convolution). Shapes are per instance
(batch dimension removed); a layer called several times is costed once per call by the caller.

| rule | layer types | MACs | other ops | kept for backprop |
|---|---|---|---|---|
| conv | Conv1D/2D/3D (BaseConv) | out positions × filters × kernel volume × in channels / groups | bias 1 + fused activation 1 per output element | output; ×2 with a fused activation |
| depthwise | DepthwiseConv1D/2D | out positions × in channels × depth multiplier × kernel volume | bias + activation per output element | as conv |
| separable | SeparableConv1D/2D | depthwise part + out positions × (in channels × depth multiplier) × filters | bias + activation per output element | as conv, + the depthwise intermediate (out positions × in channels × multiplier) |
| conv_transpose | Conv1D/2D/3DTranspose | in positions × in channels × kernel volume × filters | bias + activation per output element | as conv |
| dense | Dense (N-D input: per position) | positions × in features × units | bias + activation per output element | as conv |
| einsum_dense | EinsumDense | product of every index size of the equation | bias + activation per output element | as conv |
| dot | Dot | output elements × contracted size | 0 | output |
| batch_norm | BatchNormalization | 0 | 2 per element (inference: scale, shift) | fused (*) |
| layer_norm | LayerNormalization, GroupNormalization | 0 | 7 per element (mean 1, variance 2, normalise 2, scale+shift 2) | fused (*) |
| rms_norm | RMSNormalization | 0 | 4 per element | fused (*) |
| unit_norm | UnitNormalization | 0 | 3 per element | fused (*) |
| activation | Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax | 0 | 1 per element (softmax, log_softmax: 3) | output (linear: none) |
| pooling | Max/AveragePooling1D/2D/3D | 0 | output elements × window volume | output |
| global_pooling | GlobalMax/AveragePooling*, AdaptiveMax/AveragePooling* | 0 | 1 per input element | output |
| merge | Add, Subtract, Multiply, Maximum, Minimum | 0 | (inputs − 1) per output element | fused (*) |
| average | Average | 0 | inputs per output element | fused (*) |
| concatenate | Concatenate | 0 | 1 per output element (copy) | output |
| rescaling | Rescaling, Normalization | 0 | 2 per element (scale, offset) | fused (*) |
| resample | UpSampling1D/2D/3D, Resizing | 0 | per output element: nearest 1, bilinear 4, bicubic/lanczos 16 | output |
| masking | Masking | 0 | 1 per element | fused (*) |
| lookup | Embedding | 0 | 0 | output |
| inference_identity | Dropout (all kinds), GaussianNoise, GaussianDropout, AlphaDropout, Random* augmentation | 0 | 0 (identity at inference; training mask work not counted) | output (training makes a new tensor) |
| identity_reg | ActivityRegularization | 0 | 0 | none |
| structural | InputLayer, Flatten, Reshape, Identity, Permute, RepeatVector, ZeroPadding*, Cropping* | 0 | 0 | none (views, or copies XLA folds into the consumer) |

(*) fused: elementwise layers are fused into their neighbours and recomputed in the backward
pass, so their output is kept only when some layer reading it is neither elementwise nor an
activation (BN → Conv keeps it; Conv → BN → ReLU keeps the conv and ReLU outputs only).

A layer type with no rule is reported as *uncounted* (never silently zero). Every count is an
integer; FLOPs = 2 × MACs. "Other ops" are elementary operations (one add, multiply, comparison
or function evaluation each) and are never folded into MACs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "RULES",
    "LayerCost",
    "Rule",
    "UnknownShapeError",
    "dtype_bytes",
    "weights_bytes",
    "saved_copies",
    "saved_intermediate",
    "cpu_extra_copies",
    "layer_cost",
    "rule_for",
]

Shape = tuple  # per-instance shape, batch dimension removed


class UnknownShapeError(ValueError):
    """A shape dimension a rule needs is unknown (None)."""


@dataclass(frozen=True)
class LayerCost:
    """The cost of one call of a layer, per instance."""

    macs: int
    other_ops: int
    rule: str


@dataclass(frozen=True)
class Rule:
    """How one layer type is costed. ``fn(layer, input_shapes, output_shapes) -> (macs, ops)``."""

    name: str
    fn: Callable[[object, list[Shape], list[Shape]], tuple[int, int]]
    saves: str  # "weight", "always", "fusible" or "never": see saved_copies()
    text: str


def _size(shape: Sequence) -> int:
    if any(d is None for d in shape):
        raise UnknownShapeError(f"unknown dimension in {tuple(shape)}")
    return math.prod(int(d) for d in shape)


def _split(layer, shape: Shape) -> tuple[Shape, int]:
    """(spatial dims, channels) of a per-instance conv/pool shape."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return tuple(shape[1:]), shape[0]
    return tuple(shape[:-1]), shape[-1]


def _activation_ops(layer, out_elements: int) -> int:
    """Ops of a fused (or stand-alone) activation over ``out_elements`` values."""
    act = getattr(layer, "activation", None)
    if act is None:
        return 0
    name = act if isinstance(act, str) else getattr(act, "__name__", type(act).__name__)
    name = name.lower()
    if name == "linear":
        return 0
    return (3 if "softmax" in name else 1) * out_elements


def _bias_ops(layer, out_elements: int) -> int:
    return out_elements if getattr(layer, "use_bias", False) else 0


def _epilogue(layer, outs: list[Shape]) -> int:
    n = _size(outs[0])
    return _bias_ops(layer, n) + _activation_ops(layer, n)


# --- rules --------------------------------------------------------------------------------


def _conv(layer, ins, outs):
    out_spatial, _ = _split(layer, outs[0])
    _, cin = _split(layer, ins[0])
    groups = getattr(layer, "groups", 1) or 1
    macs = _size(out_spatial) * layer.filters * _size(layer.kernel_size) * _size((cin,)) // groups
    return macs, _epilogue(layer, outs)


def _depthwise(layer, ins, outs):
    out_spatial, _ = _split(layer, outs[0])
    _, cin = _split(layer, ins[0])
    macs = _size(out_spatial) * _size((cin,)) * layer.depth_multiplier * _size(layer.kernel_size)
    return macs, _epilogue(layer, outs)


def _separable(layer, ins, outs):
    out_spatial, _ = _split(layer, outs[0])
    _, cin = _split(layer, ins[0])
    mid = _size((cin,)) * layer.depth_multiplier
    depthwise = _size(out_spatial) * mid * _size(layer.kernel_size)
    pointwise = _size(out_spatial) * mid * layer.filters
    return depthwise + pointwise, _epilogue(layer, outs)


def _conv_transpose(layer, ins, outs):
    in_spatial, cin = _split(layer, ins[0])
    macs = _size(in_spatial) * _size((cin,)) * _size(layer.kernel_size) * layer.filters
    return macs, _epilogue(layer, outs)


def _dense(layer, ins, outs):
    return _size(ins[0]) * layer.units, _epilogue(layer, outs)


def _einsum_dense(layer, ins, outs):
    equation = layer.equation.replace(" ", "")
    operands, _, _ = equation.partition("->")
    left, _, right = operands.partition(",")
    sizes: dict[str, int] = {}
    ellipsis = 1
    full_in = (1, *ins[0])  # batch of one: costs per instance
    for letters, shape in ((left, full_in), (right, tuple(layer.kernel.shape))):
        if "..." in letters:
            head, _, tail = letters.partition("...")
            n_ell = len(shape) - len(head) - len(tail)
            if letters is left:
                ellipsis = _size(shape[len(head) : len(head) + n_ell]) if n_ell else 1
            shape = shape[: len(head)] + shape[len(shape) - len(tail) :]
            letters = head + tail
        for letter, dim in zip(letters, shape):
            sizes[letter] = _size((dim,))
    return math.prod(sizes.values()) * ellipsis, _epilogue(layer, outs)


def _dot(layer, ins, outs):
    axes = layer.axes if isinstance(layer.axes, (list, tuple)) else (layer.axes, layer.axes)
    axis = axes[0]
    full = (1, *ins[0])
    contracted = full[axis]
    return _size(outs[0]) * _size((contracted,)), 0


def _per_element(k: int, *, source: str = "out"):
    def fn(layer, ins, outs):
        shapes = outs if source == "out" else ins
        return 0, k * sum(_size(s) for s in shapes)

    return fn


def _activation(layer, ins, outs):
    n = _size(outs[0])
    act = getattr(layer, "activation", None)
    if act is None:  # ReLU, LeakyReLU, PReLU, ELU, Softmax layers
        name = type(layer).__name__.lower()
        return 0, (3 if "softmax" in name else 1) * n
    return 0, _activation_ops(layer, n)


def _pooling(layer, ins, outs):
    return 0, _size(outs[0]) * _size(layer.pool_size)


def _merge(layer, ins, outs):
    return 0, (len(ins) - 1) * _size(outs[0])


def _average(layer, ins, outs):
    return 0, len(ins) * _size(outs[0])


def _resample(layer, ins, outs):
    method = str(getattr(layer, "interpolation", "nearest")).lower()
    k = 1 if method == "nearest" else 16 if method in ("bicubic", "lanczos3", "lanczos5") else 4
    return 0, k * _size(outs[0])


def _zero(layer, ins, outs):
    return 0, 0


def _table() -> dict[str, Rule]:
    rows = [
        ("conv", _conv, "weight", "BaseConv", "out positions × filters × kernel volume × in/groups"),
        ("depthwise", _depthwise, "weight", "BaseDepthwiseConv", "out positions × in ch × multiplier × kernel"),
        ("separable", _separable, "weight", "BaseSeparableConv", "depthwise + pointwise"),
        ("conv_transpose", _conv_transpose, "weight", "BaseConvTranspose", "in positions × in ch × kernel × filters"),
        ("dense", _dense, "weight", "Dense", "positions × in features × units"),
        ("einsum_dense", _einsum_dense, "weight", "EinsumDense", "product of the equation's index sizes"),
        ("dot", _dot, "weight", "Dot", "output elements × contracted size"),
        ("batch_norm", _per_element(2), "fusible", "BatchNormalization", "2 ops per element"),
        ("layer_norm", _per_element(7), "fusible", "LayerNormalization GroupNormalization", "7 ops per element"),
        ("rms_norm", _per_element(4), "fusible", "RMSNormalization", "4 ops per element"),
        ("unit_norm", _per_element(3), "fusible", "UnitNormalization", "3 ops per element"),
        ("activation", _activation, "always", "Activation ReLU LeakyReLU PReLU ELU Softmax",
         "1 op per element (softmax 3)"),
        ("pooling", _pooling, "always", "BasePooling", "output elements × window volume"),
        ("global_pooling", _per_element(1, source="in"), "always", "BaseGlobalPooling BaseAdaptivePooling",
         "1 op per input element"),
        ("merge", _merge, "fusible", "Add Subtract Multiply Maximum Minimum", "(inputs − 1) per output element"),
        ("average", _average, "fusible", "Average", "inputs per output element"),
        ("concatenate", _per_element(1), "always", "Concatenate", "1 copy per output element"),
        ("rescaling", _per_element(2), "fusible", "Rescaling Normalization", "2 ops per element"),
        ("resample", _resample, "always", "UpSampling1D UpSampling2D UpSampling3D Resizing",
         "nearest 1, bilinear 4, bicubic 16 per output element"),
        ("masking", _per_element(1), "fusible", "Masking", "1 op per element"),
        ("lookup", _zero, "always", "Embedding", "0 (table lookup)"),
        (
            "inference_identity",
            _zero,
            "always",
            "Dropout GaussianNoise GaussianDropout AlphaDropout RandomFlip RandomRotation "
            "RandomTranslation RandomZoom RandomContrast RandomBrightness",
            "0 (identity at inference)",
        ),
        ("identity_reg", _zero, "never", "ActivityRegularization", "0"),
        (
            "structural",
            _zero,
            "never",
            "InputLayer Flatten Reshape Identity Permute RepeatVector ZeroPadding1D ZeroPadding2D "
            "ZeroPadding3D Cropping1D Cropping2D Cropping3D",
            "0 (moves data only)",
        ),
    ]
    table: dict[str, Rule] = {}
    for name, fn, saves, classes, text in rows:
        for cls in classes.split():
            table[cls] = Rule(name, fn, saves, text)
    return table


RULES: dict[str, Rule] = _table()
"""Class name (of the layer or a base class) → its cost rule."""


def rule_for(layer) -> Rule | None:
    """The rule for ``layer``'s class or its nearest base class in :data:`RULES`, else None."""
    for cls in type(layer).__mro__:
        rule = RULES.get(cls.__name__)
        if rule is not None:
            return rule
    return None


def layer_cost(layer, input_shapes: Sequence[Shape], output_shapes: Sequence[Shape]) -> LayerCost | None:
    """Cost of one call of ``layer`` on per-instance shapes; None when no rule covers it.

    Raises :class:`UnknownShapeError` when a dimension the rule needs is None.
    """
    rule = rule_for(layer)
    if rule is None:
        return None
    macs, ops = rule.fn(layer, [tuple(s) for s in input_shapes], [tuple(s) for s in output_shapes])
    return LayerCost(int(macs), int(ops), rule.name)


def saved_copies(layer, consumers=None) -> int:
    """How many copies of this layer's output training keeps for backprop (0, 1 or 2).

    Modelled on what XLA keeps (calibrated on measured JAX peaks, docs/cost-model.md):
    weight layers keep their output, plus the pre-activation when an activation is fused in;
    activations, pooling, concatenation keep theirs; elementwise layers (BatchNormalization,
    Add, Rescaling...) are fused into their neighbours and recomputed, so their output is kept
    only when some consumer is neither elementwise nor an activation (e.g. BN → Conv).
    ``consumers``: the layers that read the output, or None when unknown (then it is kept).
    """
    rule = rule_for(layer)
    if rule is None:
        return 1  # unknown layers: assume they allocate, the cautious side
    if rule.saves == "weight":
        return 1 + (_activation_ops(layer, 1) > 0)
    if rule.saves == "never":
        return 0
    if rule.name == "activation" and hasattr(layer, "activation") and _activation_ops(layer, 1) == 0:
        return 0  # Activation("linear") returns its input
    if rule.saves == "fusible" and consumers:
        for consumer in consumers:
            other = rule_for(consumer)
            if other is None or (other.saves != "fusible" and other.name != "activation"):
                return 1
        return 0
    return 1


def saved_intermediate(layer, input_shapes: Sequence[Shape], output_shapes: Sequence[Shape]) -> int:
    """Values per instance a layer keeps for backprop *inside* itself, on top of its output.

    A separable convolution is two convolutions in one layer: the pointwise one needs its input,
    the depthwise result (out positions × in channels × depth multiplier), in the backward pass,
    and XLA keeps it (measured on a stack of SeparableConv2D: 2 copies of the layer's size, not 1;
    docs/cost-model.md). Every other rule: 0.
    """
    rule = rule_for(layer)
    if rule is None or rule.name != "separable":
        return 0
    out_spatial, _ = _split(layer, tuple(output_shapes[0]))
    _, cin = _split(layer, tuple(input_shapes[0]))
    return _size(out_spatial) * _size((cin,)) * layer.depth_multiplier


#: Activations whose derivative needs their input, not only their output (ReLU's, tanh's and
#: the sigmoid's can be had from the output).
INPUT_GRADIENT_ACTIVATIONS = ("silu", "swish", "gelu", "softplus", "mish", "hard_silu", "hard_swish", "log_sigmoid")


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    if act is None:
        return type(layer).__name__.lower()
    return (act if isinstance(act, str) else getattr(act, "__name__", type(act).__name__)).lower()


def cpu_extra_copies(layer, consumers=None) -> int:
    """Copies of this layer's output that XLA keeps on a CPU on top of :func:`saved_copies`.

    Measured on stacks of 3×3 convolutions, 8 blocks, batches 16 and 48 (docs/cost-model.md), in
    copies of the block's output kept per block; a GPU keeps what :func:`saved_copies` models:

    * the bias add is not fused into the convolution, so a biased weight layer read by a
      normalisation keeps its raw result and the biased one (Conv2D → BN → ReLU: 3 with a
      bias, 2 without): +1;
    * a normalisation (or other elementwise layer) read by an activation whose derivative needs
      its input (swish, GELU, ...: :data:`INPUT_GRADIENT_ACTIVATIONS`) is kept, not recomputed
      (Conv2D → BN → swish: 3, → ReLU: 2): +1;
    * GELU keeps two more tensors of its size for its derivative (Conv2D → GELU: 4.25, → ReLU:
      2.38 with the workspace): +2.
    """
    rule = rule_for(layer)
    if rule is None:
        return 0
    if rule.name == "activation":
        return 2 if _activation_name(layer) == "gelu" else 0
    consumers = list(consumers or ())
    if rule.saves == "fusible":
        return int(any(getattr(rule_for(c), "name", None) == "activation" and _activation_name(c) in
                       INPUT_GRADIENT_ACTIVATIONS for c in consumers))
    if rule.saves != "weight" or not getattr(layer, "use_bias", False) or _activation_ops(layer, 1):
        return 0
    return int(any(getattr(rule_for(c), "name", None) == "batch_norm" for c in consumers))


_BITS = re.compile(r"(\d+)")


def weights_bytes(variables) -> int:
    """Bytes of ``variables`` (Keras variables or anything with ``shape`` and ``dtype``), each
    counted once however often it is listed."""
    unique = {id(v): v for v in variables}.values()
    return sum(math.prod(v.shape) * dtype_bytes(v.dtype) for v in unique)


def dtype_bytes(dtype) -> int:
    """Bytes of one element of ``dtype`` (``"float32"`` → 4, ``"bfloat16"`` → 2, ``"bool"`` → 1)."""
    name = str(getattr(dtype, "name", dtype)).lower()
    if name == "bool":
        return 1
    match = _BITS.search(name)
    return max(1, int(match.group(1)) // 8) if match else 4
