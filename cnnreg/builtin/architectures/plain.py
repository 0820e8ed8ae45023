"""A plain deep network for the initialisation experiments (Glorot & Bengio 2010; He et al. 2015)."""

from __future__ import annotations

from typing import Annotated, Literal

from cnnreg.kinds.architectures import check_inputs, classifier
from cnnreg.errors import ParameterError
from cnnreg.spec import Range

#: Up to 1000 hidden layers: far deeper than any plain net trains, small enough to build.
Depth = Annotated[int, Range(1, 1000)]
Width = Annotated[int, Range(1, 65536)]
ACTIVATIONS = ("relu", "tanh", "selu", "sigmoid")


def plain_net(
    input_shape: tuple[int, int, int] = (32, 32, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    depth: Depth = 10,
    width: Width = 32,
    activation: Literal["relu", "tanh", "selu", "sigmoid"] = "relu",
    conv: bool = True,
):
    """``depth`` hidden layers of one activation, no batch normalisation, no shortcuts.

    The network of the initialisation experiments: Glorot & Bengio (2010), "Understanding the
    difficulty of training deep feedforward neural networks" (deep tanh / sigmoid MLPs), and He,
    Zhang, Ren & Sun (2015), "Delving Deep into Rectifiers" (Fig. 3: a 30-layer plain ReLU net
    learns with their initialisation and not with Glorot's).  ``conv=true``: ``depth`` 3×3
    convolutions with ``width`` filters, stride 1, same padding (``conv1`` ... ``convN``), then
    global average pooling; ``conv=false``: Flatten, then ``depth`` Dense layers of ``width``
    units (``dense1`` ...).  The activation is fused into each layer, so every hidden layer is
    one Keras layer.  Kernels start from the initialiser that suits the activation (He normal
    for ReLU, Glorot uniform for tanh and sigmoid, LeCun normal for SELU); ``--init`` redraws
    them, biases start at 0.  Parameters, with C input channels, K classes, W = ``width``:
    conv (9C+1)W + (depth-1)(9W+1)W + (W+1)K; dense (H·W_in·C+1)W + (depth-1)(W+1)W + (W+1)K.
    ``include_top=False`` returns the last hidden layer (4-D with convolutions, 2-D without).
    """
    import keras

    from cnnreg.kinds.initialisers import suggest_for

    if activation not in ACTIVATIONS:
        raise ParameterError(f"plain_net activation must be one of {', '.join(ACTIVATIONS)} (got {activation!r})")
    for label, value, top in (("depth", depth, 1000), ("width", width, 65536)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ParameterError(f"plain_net {label} must be an integer from 1 to {top} (got {value!r})")
    shape = check_inputs("plain_net", input_shape, num_classes, 1)
    init = suggest_for(activation)
    inputs = keras.Input(shape=shape, name="input")
    x = inputs if conv else keras.layers.Flatten(name="flatten")(inputs)
    for i in range(1, depth + 1):
        if conv:
            x = keras.layers.Conv2D(width, 3, padding="same", activation=activation, kernel_initializer=init,
                                    name=f"conv{i}")(x)
        else:
            x = keras.layers.Dense(width, activation=activation, kernel_initializer=init, name=f"dense{i}")(x)
    if include_top:
        if conv:
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = classifier(x, num_classes)
    return keras.Model(inputs, x, name="plain_net")
