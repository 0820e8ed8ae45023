"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998)."""

from __future__ import annotations

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs, classifier

#: 32 → conv 5×5 valid 28 → pool 14 → conv 5×5 valid 10 → pool 5; 16 is the least giving a 1×1 map.
MIN_SIZE = 16


def lenet5(
    input_shape: tuple[int, int, int] = (32, 32, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    batchnorm: bool = False,
    dropout: DropoutRate = 0.0,
):
    """LeNet-5: conv 6@5×5 → avg-pool → conv 16@5×5 → avg-pool → dense 120 → 84 → softmax (tanh).

    LeCun, Bottou, Bengio & Haffner (1998), "Gradient-Based Learning Applied to Document
    Recognition".  Modernised as in most textbooks: plain tanh units, average pooling without
    trainable coefficients, a full C3 connection table, C5 as a dense layer and a softmax
    output instead of RBF units.  61,706 parameters at 32×32×1 with 10 classes.

    ``batchnorm=True`` adds BN after each conv and hidden dense layer (their biases are then
    dropped).  ``dropout`` is applied before the output layer.  ``include_top=False`` returns the
    S4 feature map (5×5×16 at 32×32).
    """
    import keras

    shape = check_inputs("lenet5", input_shape, num_classes, MIN_SIZE)
    check_dropout("lenet5", dropout)
    layers = keras.layers

    def unit(x, layer, name):
        x = layer(x)
        if batchnorm:
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("tanh", name=f"{name}_tanh")(x)

    inputs = keras.Input(shape=shape, name="input")
    x = unit(inputs, layers.Conv2D(6, 5, use_bias=not batchnorm, name="c1"), "c1")
    x = layers.AveragePooling2D(2, name="s2")(x)
    x = unit(x, layers.Conv2D(16, 5, use_bias=not batchnorm, name="c3"), "c3")
    x = layers.AveragePooling2D(2, name="s4")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = unit(x, layers.Dense(120, use_bias=not batchnorm, name="c5"), "c5")
        x = unit(x, layers.Dense(84, use_bias=not batchnorm, name="f6"), "f6")
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name="lenet5")
