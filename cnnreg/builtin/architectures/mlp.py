"""Multilayer perceptrons: the lecture's BatchNorm MLP (Géron ch. 11)."""

from __future__ import annotations

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs, classifier


def mlp_bn(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    batchnorm: bool = True,
    dropout: DropoutRate = 0.0,
):
    """The lecture's BatchNorm MLP: Flatten → BN → Dense 300 → BN → Dense 100 → BN → softmax.

    Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep Network Training by Reducing
    Internal Covariate Shift"; the Keras model of Géron, *Hands-On ML*, ch. 11.  The hidden
    layers use ReLU and He-normal initialisation.  A BN layer first replaces a StandardScaler.
    At 28×28×1 with 10 classes: 271,346 parameters, 2,368 of them non-trainable (the BN moving
    means and variances: 2 × (784 + 300 + 100)).

    ``batchnorm=False`` drops the three BN layers.  ``dropout`` is applied before the output
    layer.  Not convolutional: ``include_top=False`` returns the last hidden layer (2-D).
    """
    import keras

    shape = check_inputs("mlp_bn", input_shape, num_classes, 1)
    check_dropout("mlp_bn", dropout)

    def bn(x, name):
        return keras.layers.BatchNormalization(name=name)(x) if batchnorm else x

    inputs = keras.Input(shape=shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = bn(x, "bn_input")
    x = keras.layers.Dense(300, activation="relu", kernel_initializer="he_normal", name="hidden1")(x)
    x = bn(x, "bn_hidden1")
    x = keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal", name="hidden2")(x)
    x = bn(x, "bn_hidden2")
    if include_top:
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name="mlp_bn")
