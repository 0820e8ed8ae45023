"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), exactly the lecture's table."""

from __future__ import annotations

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs, classifier

#: C1 11×11/4 valid and three 3×3/2 valid max-pools: 67 is the least size giving a 1×1 S8 map.
MIN_SIZE = 67


def alexnet(
    input_shape: tuple[int, int, int] = (227, 227, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = False,
    dropout: DropoutRate = 0.5,
):
    """AlexNet as in the lecture's table: 5 convolutions, 3 overlapping max-pools, 2 × 4096 dense.

    Krizhevsky, Sutskever & Hinton (2012), "ImageNet Classification with Deep Convolutional
    Neural Networks".  Input 227×227×3; C1 96@11×11/4 valid → S2 max-pool 3×3/2 → C3 256@5×5
    same → S4 max-pool 3×3/2 → C5 384@3×3 → C6 384@3×3 → C7 256@3×3 → S8 max-pool 3×3/2 →
    F9 4096 → F10 4096 → softmax; ReLU throughout, ``dropout`` (50%) on the outputs of F9 and
    F10.  Single-tower (no two-GPU split) and without local response normalisation:
    62,378,344 parameters at 227×227×3 with 1000 classes.

    ``batchnorm=True`` puts BN after each convolution instead (the convs then drop their
    biases).  ``include_top=False`` returns the S8 feature map (6×6×256 at 227×227).
    """
    import keras

    shape = check_inputs("alexnet", input_shape, num_classes, MIN_SIZE)
    check_dropout("alexnet", dropout)
    layers = keras.layers

    def conv(x, filters, kernel, name, strides=1, padding="same"):
        x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=not batchnorm, name=name)(x)
        if batchnorm:
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    inputs = keras.Input(shape=shape, name="input")
    x = conv(inputs, 96, 11, "c1", strides=4, padding="valid")
    x = layers.MaxPooling2D(3, strides=2, name="s2")(x)
    x = conv(x, 256, 5, "c3")
    x = layers.MaxPooling2D(3, strides=2, name="s4")(x)
    x = conv(x, 384, 3, "c5")
    x = conv(x, 384, 3, "c6")
    x = conv(x, 256, 3, "c7")
    x = layers.MaxPooling2D(3, strides=2, name="s8")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="f9")(x)
        if dropout:
            x = layers.Dropout(dropout, name="f9_dropout")(x)
        x = layers.Dense(4096, activation="relu", name="f10")(x)
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name="alexnet")
