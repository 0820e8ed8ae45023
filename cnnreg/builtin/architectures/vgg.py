"""VGG-11/13/16/19 (Simonyan & Zisserman 2014), layer names as in keras.applications."""

from __future__ import annotations

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs, classifier

#: Five 2×2/2 max-pools: 32 gives a 1×1 final map.
MIN_SIZE = 32
FILTERS = (64, 128, 256, 512, 512)
#: Convolutions per block, configurations A, B, D and E of the paper's Table 1.
CONVS_PER_BLOCK = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}


def _vgg(name, input_shape, num_classes, include_top, batchnorm, dropout):
    import keras

    shape = check_inputs(name, input_shape, num_classes, MIN_SIZE)
    check_dropout(name, dropout)
    layers = keras.layers
    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    for block, (filters, convs) in enumerate(zip(FILTERS, CONVS_PER_BLOCK[name]), start=1):
        for i in range(1, convs + 1):
            label = f"block{block}_conv{i}"
            if batchnorm:
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=label)(x)
                x = layers.BatchNormalization(name=f"{label}_bn")(x)
                x = layers.Activation("relu", name=f"{label}_relu")(x)
            else:
                x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=label)(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        if dropout:
            x = layers.Dropout(dropout, name="fc1_dropout")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name=name)


_DOC_TAIL = """

    Simonyan & Zisserman (2014), "Very Deep Convolutional Networks for Large-Scale Image
    Recognition".  Blocks of 3×3 same convolutions (ReLU) each followed by a 2×2/2 max-pool;
    64, 128, 256, 512, 512 filters; then Flatten → fc1 4096 → fc2 4096 → softmax, with
    ``dropout`` (the paper's 50%) after fc1 and fc2.  Layer names follow keras.applications.
    ``batchnorm=True`` adds BN after every convolution (the convs then drop their biases).
    ``include_top=False`` returns the block5_pool feature map (7×7×512 at 224×224).
    """


def vgg11(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = False,
    dropout: DropoutRate = 0.5,
):
    return _vgg("vgg11", input_shape, num_classes, include_top, batchnorm, dropout)


def vgg13(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = False,
    dropout: DropoutRate = 0.5,
):
    return _vgg("vgg13", input_shape, num_classes, include_top, batchnorm, dropout)


def vgg16(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = False,
    dropout: DropoutRate = 0.5,
):
    return _vgg("vgg16", input_shape, num_classes, include_top, batchnorm, dropout)


def vgg19(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = False,
    dropout: DropoutRate = 0.5,
):
    return _vgg("vgg19", input_shape, num_classes, include_top, batchnorm, dropout)


vgg11.__doc__ = "VGG-11 (configuration A): 8 convolutions in blocks of 1, 1, 2, 2, 2." + _DOC_TAIL
vgg13.__doc__ = "VGG-13 (configuration B): 10 convolutions in blocks of 2, 2, 2, 2, 2." + _DOC_TAIL
vgg16.__doc__ = (
    "VGG-16 (configuration D): 13 convolutions in blocks of 2, 2, 3, 3, 3." + _DOC_TAIL
    + "138,357,544 parameters at 224×224×3 with 1000 classes (as keras.applications.VGG16).\n"
)
vgg19.__doc__ = (
    "VGG-19 (configuration E): 16 convolutions in blocks of 2, 2, 4, 4, 4." + _DOC_TAIL
    + "143,667,240 parameters at 224×224×3 with 1000 classes (as keras.applications.VGG19).\n"
)
