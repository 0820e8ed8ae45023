"""Residual networks (He, Zhang, Ren & Sun 2015) and SE-ResNet (Hu, Shen & Sun 2017).

- ``resnet18`` / ``resnet34``: the lecture's residual unit (two 3×3 convs without bias, each
  followed by BN; a 1×1/2 conv + BN skip when the shape changes), exactly the lecture's Keras
  ResNet-34.
- ``resnet50`` / ``resnet101`` / ``resnet152``: bottleneck units (1×1 → 3×3 → 1×1 ×4) exactly as
  keras.applications ResNet v1 builds them (conv biases, BN epsilon 1.001e-5, the same layer
  names), so parameter counts match and their ImageNet weights load by layer name.
- ``se_resnet50``: the ResNet-50 bottleneck with a squeeze-and-excitation block (ratio 16)
  before the addition.

Layers are named ``conv<stage>_block<unit>_<part>`` as in keras.applications
(``conv3_block1_0_conv`` is the projection skip of the first unit of stage 3).
"""

from __future__ import annotations

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs, classifier

#: The input is reduced 32-fold; 32 gives a 1×1 final map.
MIN_SIZE = 32
#: Residual units per stage (stages conv2..conv5 with 64, 128, 256, 512 filters).
UNITS = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
    "se_resnet50": (3, 4, 6, 3),
}
STAGE_FILTERS = (64, 128, 256, 512)
#: BN epsilon of keras.applications' ResNets (from the Caffe models).
KERAS_BN_EPSILON = 1.001e-5
#: Squeeze-and-excitation reduction ratio (Hu et al., the paper's default).
SE_RATIO = 16


def _basic_resnet(name, input_shape, num_classes, include_top, batchnorm, dropout):
    """ResNet-18/34: the lecture's model, with the residual unit spelled out as named layers."""
    import keras

    shape = check_inputs(name, input_shape, num_classes, MIN_SIZE)
    check_dropout(name, dropout)
    layers = keras.layers

    def conv_bn(x, filters, kernel, strides, label):
        # Convs feed BN, whose shift makes a bias redundant; without BN they keep their bias.
        x = layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=not batchnorm, name=f"{label}_conv"
        )(x)
        return layers.BatchNormalization(name=f"{label}_bn")(x) if batchnorm else x

    def unit(x, filters, strides, label):
        z = conv_bn(x, filters, 3, strides, f"{label}_1")
        z = layers.Activation("relu", name=f"{label}_1_relu")(z)
        z = conv_bn(z, filters, 3, 1, f"{label}_2")
        skip = conv_bn(x, filters, 1, strides, f"{label}_0") if strides > 1 else x
        z = layers.Add(name=f"{label}_add")([z, skip])
        return layers.Activation("relu", name=f"{label}_out")(z)

    inputs = keras.Input(shape=shape, name="input")
    x = conv_bn(inputs, 64, 7, 2, "conv1")
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    prev = 64
    for stage, (filters, units) in enumerate(zip(STAGE_FILTERS, UNITS[name]), start=2):
        for i in range(1, units + 1):
            x = unit(x, filters, 1 if filters == prev else 2, f"conv{stage}_block{i}")
            prev = filters
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name=name)


def _bottleneck_resnet(name, input_shape, num_classes, include_top, batchnorm, dropout, se=False):
    """ResNet-50/101/152 v1 as keras.applications builds them, optionally with SE blocks."""
    import keras

    shape = check_inputs(name, input_shape, num_classes, MIN_SIZE)
    check_dropout(name, dropout)
    layers = keras.layers

    def bn(x, label):
        return layers.BatchNormalization(epsilon=KERAS_BN_EPSILON, name=f"{label}_bn")(x) if batchnorm else x

    def squeeze_excite(x, channels, label):
        s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{label}_se_squeeze")(x)
        s = layers.Dense(channels // SE_RATIO, activation="relu", name=f"{label}_se_reduce")(s)
        s = layers.Dense(channels, activation="sigmoid", name=f"{label}_se_expand")(s)
        return layers.Multiply(name=f"{label}_se_scale")([x, s])

    def unit(x, filters, strides, project, label):
        if project:
            skip = bn(layers.Conv2D(4 * filters, 1, strides=strides, name=f"{label}_0_conv")(x), f"{label}_0")
        else:
            skip = x
        z = bn(layers.Conv2D(filters, 1, strides=strides, name=f"{label}_1_conv")(x), f"{label}_1")
        z = layers.Activation("relu", name=f"{label}_1_relu")(z)
        z = bn(layers.Conv2D(filters, 3, padding="same", name=f"{label}_2_conv")(z), f"{label}_2")
        z = layers.Activation("relu", name=f"{label}_2_relu")(z)
        z = bn(layers.Conv2D(4 * filters, 1, name=f"{label}_3_conv")(z), f"{label}_3")
        if se:
            z = squeeze_excite(z, 4 * filters, label)
        z = layers.Add(name=f"{label}_add")([skip, z])
        return layers.Activation("relu", name=f"{label}_out")(z)

    inputs = keras.Input(shape=shape, name="input")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = bn(layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x), "conv1")
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, units) in enumerate(zip(STAGE_FILTERS, UNITS[name]), start=2):
        for i in range(1, units + 1):
            strides = 2 if i == 1 and stage > 2 else 1
            x = unit(x, filters, strides, i == 1, f"conv{stage}_block{i}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name=name)


def resnet18(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = True,
    dropout: DropoutRate = 0.0,
):
    """ResNet-18: the lecture's residual units, 2 × 64, 2 × 128, 2 × 256, 2 × 512 filters.

    He, Zhang, Ren & Sun (2015), "Deep Residual Learning for Image Recognition".  conv 7×7/2 64
    (no bias, same) → BN → ReLU → max-pool 3×3/2 same → residual units → global average pool →
    softmax.  Unit: conv 3×3 → BN → ReLU → conv 3×3 → BN, plus the input (or a 1×1/2 conv +
    BN where the shape changes), then ReLU.

    ``batchnorm=False`` drops every BN layer; the convolutions then get biases.  ``dropout``
    is applied before the output layer.  ``include_top=False`` returns the last unit's
    feature map (7×7×512 at 224×224).
    """
    return _basic_resnet("resnet18", input_shape, num_classes, include_top, batchnorm, dropout)


def resnet34(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = True,
    dropout: DropoutRate = 0.0,
):
    """ResNet-34, exactly the lecture's Keras model: units 3 × 64, 4 × 128, 6 × 256, 3 × 512.

    He, Zhang, Ren & Sun (2015), "Deep Residual Learning for Image Recognition".  conv 7×7/2 64
    (no bias, same) → BN → ReLU → max-pool 3×3/2 same → 16 residual units → global average pool
    → softmax.  Unit: conv 3×3 → BN → ReLU → conv 3×3 → BN, plus the input (or a 1×1/2 conv +
    BN where the shape changes), then ReLU.  At 224×224×3 with 10 classes: 21,306,826
    parameters, 17,024 of them non-trainable (the lecture's summary).

    ``batchnorm=False`` drops every BN layer; the convolutions then get biases.  ``dropout``
    is applied before the output layer.  ``include_top=False`` returns the last unit's
    feature map (7×7×512 at 224×224).
    """
    return _basic_resnet("resnet34", input_shape, num_classes, include_top, batchnorm, dropout)


def resnet50(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = True,
    dropout: DropoutRate = 0.0,
):
    """ResNet-50 v1: bottleneck units 3, 4, 6, 3, exactly as keras.applications.ResNet50.

    He, Zhang, Ren & Sun (2015), "Deep Residual Learning for Image Recognition".  Bottleneck:
    1×1 (stride 2 in a stage's first unit) → 3×3 → 1×1 × 4 filters, BN after each, a 1×1
    projection skip in each stage's first unit.  Convs keep their biases and BN uses epsilon
    1.001e-5 as in keras.applications: 25,636,712 parameters at 224×224×3 with 1000 classes.

    ``batchnorm=False`` drops every BN layer.  ``dropout`` is applied before the output layer.
    ``include_top=False`` returns the conv5 feature map (7×7×2048 at 224×224).
    """
    return _bottleneck_resnet("resnet50", input_shape, num_classes, include_top, batchnorm, dropout)


def resnet101(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = True,
    dropout: DropoutRate = 0.0,
):
    """ResNet-101 v1: bottleneck units 3, 4, 23, 3, exactly as keras.applications.ResNet101.

    He, Zhang, Ren & Sun (2015), "Deep Residual Learning for Image Recognition".  See
    ``resnet50`` for the unit.  ``batchnorm=False`` drops every BN layer.  ``dropout`` is
    applied before the output layer.  ``include_top=False`` returns the conv5 feature map.
    """
    return _bottleneck_resnet("resnet101", input_shape, num_classes, include_top, batchnorm, dropout)


def resnet152(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = True,
    dropout: DropoutRate = 0.0,
):
    """ResNet-152 v1: bottleneck units 3, 8, 36, 3, exactly as keras.applications.ResNet152.

    He, Zhang, Ren & Sun (2015), "Deep Residual Learning for Image Recognition".  See
    ``resnet50`` for the unit.  ``batchnorm=False`` drops every BN layer.  ``dropout`` is
    applied before the output layer.  ``include_top=False`` returns the conv5 feature map.
    """
    return _bottleneck_resnet("resnet152", input_shape, num_classes, include_top, batchnorm, dropout)


def se_resnet50(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = True,
    dropout: DropoutRate = 0.0,
):
    """SE-ResNet-50: ResNet-50 with a squeeze-and-excitation block (ratio 16) in every unit.

    Hu, Shen & Sun (2017), "Squeeze-and-Excitation Networks" (ILSVRC 2017 winner).  After the
    unit's last BN, before the addition: global average pool → Dense C/16 ReLU → Dense C
    sigmoid → channel-wise rescale.  Otherwise exactly ``resnet50``; the SE blocks add
    Σ (2·C²/16 + C/16 + C) = 2,530,992 parameters (28,167,704 in all at 224×224×3, 1000 classes).

    ``batchnorm=False`` drops every BN layer.  ``dropout`` is applied before the output layer.
    ``include_top=False`` returns the conv5 feature map (7×7×2048 at 224×224).
    """
    return _bottleneck_resnet("se_resnet50", input_shape, num_classes, include_top, batchnorm, dropout, se=True)
