"""Fixup residual networks: ResNets without BatchNorm that train from the first step.

Zhang, Dauphin & Ma (2019), "Fixup Initialization: Residual Learning Without Normalization".
Each residual unit is the lecture's unit with the BN layers taken out and Fixup's scalars put
in: a bias (initialised to 0) before each convolution and before each activation, and a
multiplier (initialised to 1) followed by a bias at the end of the branch::

    x ─ +b1a ─ conv ─ +b1b ─ ReLU ─ +b2a ─ conv ─ ×s ─ +b2b ─┐
      └─────────────────── skip ─────────────────────────────(+)─ ReLU

The skip is the input itself, or (where the shape changes) a projection of ``x + b1a``.
Initialisation: the classifier and the last convolution of every branch are zero, the other
branch convolutions are He normal scaled by L^(-1/(2m-2)) (L branches of m convolutions; see
:func:`cnnreg_fixup.initialisers.fixup`), the stem and projections plain He normal.  At the
start every branch is the identity, so the network's output variance does not grow with depth.

- ``fixup_resnet18`` / ``fixup_resnet34``: the lecture's ImageNet layout (7×7/2 stem, max-pool,
  basic units with 64, 128, 256, 512 × ``width``/64 filters, 1×1/2 projection skips), m = 2.
- ``fixup_resnet50`` / ``fixup_resnet101``: bottleneck units (1×1 → 3×3 → 1×1 × 4), m = 3.
- ``fixup_resnet20`` / ``32`` / ``56`` / ``110``: the CIFAR networks of He et al. (6n + 2 layers,
  3×3 stem, 16, 32, 64 filters) as the Fixup paper trains them, with parameter-free skips
  (1×1/2 average pooling, channels doubled with zeros).

``fixup=false`` keeps the same layers but initialises every convolution He normal and the
classifier with Keras' default, as if the BN layers had simply been removed: the baseline
Fixup is measured against.  The scalars are real Keras layers
(:mod:`cnnreg_fixup.layers`), so ``model.keras`` files save and load.
"""

from __future__ import annotations

import textwrap
from typing import Annotated

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs
from cnnreg.spec import Range

#: Units per stage.  ImageNet layout: stages of 64, 128, 256, 512 filters (× width / 64).
UNITS = {
    "fixup_resnet18": (2, 2, 2, 2),
    "fixup_resnet34": (3, 4, 6, 3),
    "fixup_resnet50": (3, 4, 6, 3),
    "fixup_resnet101": (3, 4, 23, 3),
}
#: CIFAR layout: depth 6n + 2 → n units in each of three stages of 16, 32, 64 filters.
CIFAR_DEPTHS = (20, 32, 56, 110)
#: ImageNet layout reduces the input 32-fold, the CIFAR layout 4-fold.
MIN_SIZE, CIFAR_MIN_SIZE = 32, 8

Width = Annotated[int, Range(1, 4096)]


def _initialisers(fixup: bool, branches: int, m: int):
    """Makers of the (stem and projections, branch layers, last branch layer, classifier)
    initialisers.  Each layer needs its own: one unseeded Keras initializer object draws the same
    values at every call, which would make every branch of a stage start identical."""
    import keras

    from cnnreg_fixup.initialisers import fixup as fixup_init

    he = keras.initializers.HeNormal
    if not fixup:
        return he, he, he, keras.initializers.GlorotUniform
    return he, lambda: fixup_init(branches, m), keras.initializers.Zeros, keras.initializers.Zeros


def _head(x, num_classes, dropout, classifier_init):
    import keras

    from cnnreg_fixup.layers import ScalarBias

    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = ScalarBias(name="head_bias")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(
        num_classes, activation="softmax", kernel_initializer=classifier_init(), dtype="float32", name="predictions"
    )(x)


def _fixup_resnet(name, input_shape, num_classes, include_top, width, fixup, dropout):
    """ImageNet layout: 7×7/2 stem, max-pool, four stages of basic or bottleneck units."""
    import keras

    from cnnreg_fixup.layers import ScalarBias, ScalarMultiplier

    shape = check_inputs(name, input_shape, num_classes, MIN_SIZE)
    check_dropout(name, dropout)
    layers = keras.layers
    bottleneck = name in ("fixup_resnet50", "fixup_resnet101")
    m = 3 if bottleneck else 2
    units = UNITS[name]
    plain, branch, last, classifier = _initialisers(fixup, sum(units), m)

    def conv(x, filters, kernel, strides, init, label):
        return layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                             kernel_initializer=init(), name=f"{label}_conv")(x)

    def unit(x, filters, strides, project, label):
        out = 4 * filters if bottleneck else filters
        shifted = ScalarBias(name=f"{label}_1_bias_in")(x)
        if bottleneck:
            z = conv(shifted, filters, 1, 1, branch, f"{label}_1")
            z = layers.Activation("relu", name=f"{label}_1_relu")(ScalarBias(name=f"{label}_1_bias_out")(z))
            z = conv(ScalarBias(name=f"{label}_2_bias_in")(z), filters, 3, strides, branch, f"{label}_2")
            z = layers.Activation("relu", name=f"{label}_2_relu")(ScalarBias(name=f"{label}_2_bias_out")(z))
            z = conv(ScalarBias(name=f"{label}_3_bias_in")(z), out, 1, 1, last, f"{label}_3")
            end = f"{label}_3"
        else:
            z = conv(shifted, filters, 3, strides, branch, f"{label}_1")
            z = layers.Activation("relu", name=f"{label}_1_relu")(ScalarBias(name=f"{label}_1_bias_out")(z))
            z = conv(ScalarBias(name=f"{label}_2_bias_in")(z), out, 3, 1, last, f"{label}_2")
            end = f"{label}_2"
        z = ScalarBias(name=f"{end}_bias_out")(ScalarMultiplier(name=f"{end}_scale")(z))
        skip = conv(shifted, out, 1, strides, plain, f"{label}_0") if project else x
        z = layers.Add(name=f"{label}_add")([z, skip])
        return layers.Activation("relu", name=f"{label}_out")(z)

    inputs = keras.Input(shape=shape, name="input")
    x = conv(inputs, width, 7, 2, plain, "conv1")
    x = layers.Activation("relu", name="conv1_relu")(ScalarBias(name="conv1_bias")(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    channels = width
    for stage, count in enumerate(units, start=2):
        filters = width * 2 ** (stage - 2)
        for i in range(1, count + 1):
            strides = 2 if i == 1 and stage > 2 else 1
            out = 4 * filters if bottleneck else filters
            x = unit(x, filters, strides, strides > 1 or out != channels, f"conv{stage}_block{i}")
            channels = out
    if include_top:
        x = _head(x, num_classes, dropout, classifier)
    return keras.Model(inputs, x, name=name)


def _fixup_cifar_resnet(depth, input_shape, num_classes, include_top, width, fixup, dropout):
    """CIFAR layout (He et al. 2015, sec. 4.2): 3×3 stem, three stages of n = (depth - 2) / 6 units."""
    import keras

    from cnnreg_fixup.layers import ScalarBias, ScalarMultiplier

    name = f"fixup_resnet{depth}"
    shape = check_inputs(name, input_shape, num_classes, CIFAR_MIN_SIZE)
    check_dropout(name, dropout)
    layers = keras.layers
    n = (depth - 2) // 6
    plain, branch, last, classifier = _initialisers(fixup, 3 * n, 2)

    def conv(x, filters, strides, init, label):
        return layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                             kernel_initializer=init(), name=f"{label}_conv")(x)

    def unit(x, filters, strides, label):
        shifted = ScalarBias(name=f"{label}_1_bias_in")(x)
        z = conv(shifted, filters, strides, branch, f"{label}_1")
        z = layers.Activation("relu", name=f"{label}_1_relu")(ScalarBias(name=f"{label}_1_bias_out")(z))
        z = conv(ScalarBias(name=f"{label}_2_bias_in")(z), filters, 1, last, f"{label}_2")
        z = ScalarBias(name=f"{label}_2_bias_out")(ScalarMultiplier(name=f"{label}_2_scale")(z))
        skip = x
        if strides > 1:  # option A: subsample, then double the channels with zeros (no parameters)
            skip = layers.AveragePooling2D(1, strides=strides, name=f"{label}_0_pool")(shifted)
            zeros = layers.Rescaling(0.0, name=f"{label}_0_zeros")(skip)
            skip = layers.Concatenate(name=f"{label}_0_pad")([skip, zeros])
        z = layers.Add(name=f"{label}_add")([z, skip])
        return layers.Activation("relu", name=f"{label}_out")(z)

    inputs = keras.Input(shape=shape, name="input")
    x = conv(inputs, width, 1, plain, "conv1")
    x = layers.Activation("relu", name="conv1_relu")(ScalarBias(name="conv1_bias")(x))
    for stage in range(3):
        for i in range(1, n + 1):
            strides = 2 if i == 1 and stage > 0 else 1
            x = unit(x, width * 2**stage, strides, f"conv{stage + 2}_block{i}")
    if include_top:
        x = _head(x, num_classes, dropout, classifier)
    return keras.Model(inputs, x, name=name)


_IMAGENET_DOC = """{title}

    Zhang, Dauphin & Ma (2019), "Fixup Initialization: Residual Learning Without
    Normalization".
    {layout}
    No BatchNorm: Fixup's scalar biases and multipliers instead, the last convolution of each
    of the {branches} residual branches and the classifier initialised to zero, the other
    branch convolutions He normal × {scale}.

    ``width`` is the stem's filters (64 in the paper; stages get width × 1, 2, 4, 8).
    ``fixup=false``: same layers, He normal convolutions and a default (Glorot) classifier,
    the no-BN baseline.  ``dropout`` is applied before the classifier.  ``include_top=False``
    returns the last unit's feature map.
    """

_CIFAR_DOC = """Fixup ResNet-{depth}: He et al.'s CIFAR ResNet without BatchNorm, {n} units per stage.

    Zhang, Dauphin & Ma (2019), "Fixup Initialization: Residual Learning Without
    Normalization".  3×3 stem → three stages of {n} basic units with width × 1, 2, 4 filters
    (16, 32, 64 in the paper) → global average pool → softmax.  Where a stage halves the size,
    the skip is a 1×1/2 average pool with its channels doubled by zeros (no parameters).
    The last convolution of each of the {branches} branches and the classifier start at zero,
    the first convolution of each branch is He normal × 1/sqrt({branches}).

    ``fixup=false``: same layers, He normal convolutions and a default (Glorot) classifier,
    the no-BN baseline.  ``dropout`` is applied before the classifier.  ``include_top=False``
    returns the last feature map.
    """


def _imagenet_factory(name: str, title: str, layout: str):
    units = UNITS[name]
    m = 3 if name in ("fixup_resnet50", "fixup_resnet101") else 2
    L = sum(units)

    def factory(
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        *,
        include_top: bool = True,
        width: Width = 64,
        fixup: bool = True,
        dropout: DropoutRate = 0.0,
    ):
        return _fixup_resnet(name, input_shape, num_classes, include_top, width, fixup, dropout)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = _IMAGENET_DOC.format(
        title=title, layout=textwrap.fill(layout, 92, initial_indent="    ", subsequent_indent="    ").strip(),
        branches=L, scale=f"{L}^(-1/{2 * m - 2}) = {L ** (-1 / (2 * m - 2)):.3f}"
    )
    return factory


def _cifar_factory(depth: int):
    def factory(
        input_shape: tuple[int, int, int] = (32, 32, 3),
        num_classes: int = 10,
        *,
        include_top: bool = True,
        width: Width = 16,
        fixup: bool = True,
        dropout: DropoutRate = 0.0,
    ):
        return _fixup_cifar_resnet(depth, input_shape, num_classes, include_top, width, fixup, dropout)

    n = (depth - 2) // 6
    factory.__name__ = factory.__qualname__ = f"fixup_resnet{depth}"
    factory.__doc__ = _CIFAR_DOC.format(depth=depth, n=n, branches=3 * n)
    return factory


_BASIC = ("7×7/2 stem (no bias) → bias → ReLU → max-pool 3×3/2 → basic units (two 3×3 convs) "
          "{units} → global average pool → bias → softmax.")
_BOTTLENECK = ("7×7/2 stem (no bias) → bias → ReLU → max-pool 3×3/2 → bottleneck units "
               "(1×1 → 3×3 with the stride, as in the Fixup code → 1×1 × 4) {units} → global average "
               "pool → bias → softmax.")

fixup_resnet18 = _imagenet_factory(
    "fixup_resnet18", "Fixup ResNet-18: the lecture's ResNet-18 without BatchNorm, Fixup-initialised.",
    _BASIC.format(units="2, 2, 2, 2"))
fixup_resnet34 = _imagenet_factory(
    "fixup_resnet34", "Fixup ResNet-34: the lecture's ResNet-34 without BatchNorm, Fixup-initialised.",
    _BASIC.format(units="3, 4, 6, 3"))
fixup_resnet50 = _imagenet_factory(
    "fixup_resnet50", "Fixup ResNet-50: bottleneck ResNet-50 without BatchNorm, Fixup-initialised.",
    _BOTTLENECK.format(units="3, 4, 6, 3"))
fixup_resnet101 = _imagenet_factory(
    "fixup_resnet101", "Fixup ResNet-101: bottleneck ResNet-101 without BatchNorm, Fixup-initialised.",
    _BOTTLENECK.format(units="3, 4, 23, 3"))
fixup_resnet20 = _cifar_factory(20)
fixup_resnet32 = _cifar_factory(32)
fixup_resnet56 = _cifar_factory(56)
fixup_resnet110 = _cifar_factory(110)
