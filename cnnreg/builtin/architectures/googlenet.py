"""GoogLeNet / Inception v1 (Szegedy et al. 2014), per the paper's table (lecture slide 39).

Layers of module ``3a`` are named ``inception_3a_1x1``, ``inception_3a_3x3_reduce``,
``inception_3a_3x3``, ``inception_3a_5x5_reduce``, ``inception_3a_5x5``, ``inception_3a_pool``,
``inception_3a_pool_proj`` and ``inception_3a_output`` (the Caffe model's names, with ``_`` for
``/`` because Keras forbids ``/`` in layer names).
"""

from __future__ import annotations

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs, classifier

#: Every conv and pool is 'same', so any size builds; 32 gives the 1×1 map of stride 32.
MIN_SIZE = 32

#: Filter counts: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
#: Max-pools 3×3/2 come before these modules.
POOL_BEFORE = ("4a", "5a")

#: The paper's printed "params" and "ops" columns (2-10% off its own filter counts) beside the
#: exact conv weights (kernels only: no biases, no BN) and conv multiply-accumulates computed
#: from the filter counts at 224×224×3.  The model reproduces the exact columns.
PAPER_TABLE = {
    "3a": {"params": 159_000, "ops": 128_000_000, "exact_weights": 163_328, "exact_macs": 128_049_152},
    "3b": {"params": 380_000, "ops": 304_000_000, "exact_weights": 388_096, "exact_macs": 304_267_264},
    "4a": {"params": 364_000, "ops": 73_000_000, "exact_weights": 375_552, "exact_macs": 73_608_192},
    "4b": {"params": 437_000, "ops": 88_000_000, "exact_weights": 448_512, "exact_macs": 87_908_352},
    "4c": {"params": 463_000, "ops": 100_000_000, "exact_weights": 509_440, "exact_macs": 99_850_240},
    "4d": {"params": 580_000, "ops": 119_000_000, "exact_weights": 604_672, "exact_macs": 118_515_712},
    "4e": {"params": 840_000, "ops": 170_000_000, "exact_weights": 867_328, "exact_macs": 169_996_288},
    "5a": {"params": 1_072_000, "ops": 54_000_000, "exact_weights": 1_042_432, "exact_macs": 51_079_168},
    "5b": {"params": 1_388_000, "ops": 71_000_000, "exact_weights": 1_442_816, "exact_macs": 70_697_984},
}


def googlenet(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    batchnorm: bool = False,
    dropout: DropoutRate = 0.4,
):
    """GoogLeNet (Inception v1): a 7×7/2 stem, nine inception modules, global average pooling.

    Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke & Rabinovich (2014), "Going
    Deeper with Convolutions".  conv 7×7/2 64 → max-pool 3×3/2 → conv 1×1 64 → conv 3×3 192 →
    max-pool → 3a, 3b → max-pool → 4a–4e → max-pool → 5a, 5b → global average pool (the
    paper's 7×7 average pool at 224×224) → ``dropout`` 40% → linear + softmax.  Each module
    concatenates 1×1, 1×1→3×3, 1×1→5×5 and 3×3 max-pool→1×1 branches; ReLU after every conv.
    Left out, as in most reimplementations: local response normalisation and the two
    auxiliary classifiers used only in training.  Per-module filter counts: ``MODULES``;
    the paper's and the exact per-module figures: ``PAPER_TABLE``.

    ``batchnorm=True`` adds BN after every convolution (the convs then drop their biases), as
    in BN-Inception.  ``include_top=False`` returns the 5b feature map (7×7×1024 at 224×224).
    """
    import keras

    shape = check_inputs("googlenet", input_shape, num_classes, MIN_SIZE)
    check_dropout("googlenet", dropout)
    layers = keras.layers

    def conv(x, filters, kernel, name, strides=1):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not batchnorm, name=name)(x)
        if batchnorm:
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    def inception(x, label):
        n1, n3r, n3, n5r, n5, pool_proj = MODULES[label]
        name = f"inception_{label}"
        b1 = conv(x, n1, 1, f"{name}_1x1")
        b3 = conv(conv(x, n3r, 1, f"{name}_3x3_reduce"), n3, 3, f"{name}_3x3")
        b5 = conv(conv(x, n5r, 1, f"{name}_5x5_reduce"), n5, 5, f"{name}_5x5")
        bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
        bp = conv(bp, pool_proj, 1, f"{name}_pool_proj")
        return layers.Concatenate(name=f"{name}_output")([b1, b3, b5, bp])

    inputs = keras.Input(shape=shape, name="input")
    x = conv(inputs, 64, 7, "conv1_7x7_s2", strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = conv(x, 64, 1, "conv2_3x3_reduce")
    x = conv(x, 192, 3, "conv2_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)
    for label in MODULES:
        if label in POOL_BEFORE:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{int(label[0]) - 1}_3x3_s2")(x)
        x = inception(x, label)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name="googlenet")
