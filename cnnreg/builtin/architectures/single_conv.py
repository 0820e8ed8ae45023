"""The lecture's worked convolutional layer ("Getting a handle on parameters") as a model."""

from __future__ import annotations

from typing import Annotated, Literal

from cnnreg.kinds.architectures import check_inputs, classifier
from cnnreg.errors import ParameterError
from cnnreg.spec import Range

PositiveInt = Annotated[int, Range(1, None)]


def single_conv(
    input_shape: tuple[int, int, int] = (150, 100, 3),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    filters: PositiveInt = 200,
    kernel: PositiveInt = 5,
    stride: PositiveInt = 1,
    padding: Literal["same", "valid"] = "same",
    activation: Literal["linear", "relu"] = "linear",
):
    """One Conv2D named ``conv``, then global average pooling and a softmax classifier.

    The lecture's worked example (Géron (2019), *Hands-On Machine Learning*, ch. 14): a 150×100×3 input, 200 5×5
    filters, stride 1, same padding → (5·5·3 + 1)·200 = 15,200 parameters, 225 million
    multiplications, 12 MB of float32 output per instance.  Change ``filters``, ``kernel``,
    ``stride`` and ``padding`` to see how parameters, operations and memory move.
    ``activation`` is linear by default, so that the layer's one output is all it keeps for
    backprop (1.2 GB at batch 100, as in the lecture); ``activation=relu`` keeps a second copy.
    ``include_top=False`` returns the conv's feature map.
    """
    import keras

    for label, value in (("filters", filters), ("kernel", kernel), ("stride", stride)):
        if value < 1:
            raise ParameterError(f"single_conv {label} must be >= 1 (got {value})")
    shape = check_inputs("single_conv", input_shape, num_classes, kernel if padding == "valid" else 1)
    inputs = keras.Input(shape=shape, name="input")
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, activation=activation, name="conv")(inputs)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = classifier(x, num_classes)
    return keras.Model(inputs, x, name="single_conv")
