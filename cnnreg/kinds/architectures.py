"""The architecture kind: a factory that builds a ``keras.Model`` classifier.

``factory(input_shape, num_classes, *, include_top=True, **params)`` returns a ``keras.Model``
built from Keras 3 layers only (it runs on the TensorFlow, JAX and PyTorch backends).  cnnreg
supplies ``input_shape`` (H, W, C) and ``num_classes``; ``include_top=False`` returns the
feature extractor without its classifier.  Everything else in the signature is a user parameter
(``resnet34:batchnorm=false``).  docs/architectures.md has the whole contract (the classifier
layer, layer names, errors) and every metadata key.

An architecture names how its inputs are prepared in the metadata key ``preprocess``, a lazy
``"module:attr"`` string of a function of 0..255 pixels (NumPy arrays, or tensors through
``keras.ops``).  Architectures trained from scratch usually take one of the functions below;
the keras.applications bridge names each family's own ``preprocess_input``.  A manifest or a
weights entry names the preprocessing by such a string: cnnreg only ever uses the function the
architecture registered, or one of :data:`PREPROCESS` (nothing read from a file is imported).

Factories check their arguments with :func:`check_inputs` and :func:`check_dropout` (one line,
exit status 2, for a shape that is too small), type a dropout rate as :data:`DropoutRate`, and end
with :func:`classifier`, the head every cnnreg classifier has.
"""

from __future__ import annotations

from typing import Annotated, Any

from cnnreg.errors import ParameterError
from cnnreg.kinds import KindSpec, Scaffold
from cnnreg.spec import Range, shape_text

__all__ = [
    "KIND", "scale_0_1", "scale_minus1_1", "identity", "PREPROCESS", "DEFAULT_PREPROCESS", "DropoutRate", "check_inputs",
    "check_dropout", "classifier",
]


def _scale(x: Any, divisor: float, offset: float) -> Any:
    try:
        import numpy as np

        if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
            return np.asarray(x, dtype="float32") / np.float32(divisor) + np.float32(offset)
    except ImportError:  # pragma: no cover - numpy comes with keras
        pass
    from keras import ops

    return ops.cast(x, "float32") / divisor + offset


def scale_0_1(x: Any) -> Any:
    """Scale pixels from [0, 255] to [0, 1]: ``x / 255`` (float32)."""
    return _scale(x, 255.0, 0.0)


def scale_minus1_1(x: Any) -> Any:
    """Scale pixels from [0, 255] to [-1, 1]: ``x / 127.5 - 1`` (float32, Inception style)."""
    return _scale(x, 127.5, -1.0)


def identity(x: Any) -> Any:
    """Leave the input unchanged (for data that is already scaled)."""
    return x


#: The preprocessing an architecture has when its metadata names none.
DEFAULT_PREPROCESS = f"{__name__}:scale_0_1"

#: cnnreg's own preprocessing functions, by short name and by reference: what a manifest or a
#: weights entry may name besides the architecture's registered one.  The references of
#: cnnreg 0.1's module (``cnnreg.builtin.architectures.preprocess``), which older runs and
#: zoos wrote, name the same functions.
PREPROCESS: dict[str, Any] = {}
for _function in (scale_0_1, scale_minus1_1, identity):
    for _key in (_function.__name__, f"{__name__}:{_function.__name__}",
                 f"cnnreg.builtin.architectures.preprocess:{_function.__name__}"):
        PREPROCESS[_key] = _function
del _function, _key


# --- what factories use: checks and the classifier head -----------------------------------------

#: The type of every ``dropout`` parameter: a rate in [0, 1).
DropoutRate = Annotated[float, Range(0, 1, max_inclusive=False)]


def check_inputs(name: str, input_shape: tuple[int, int, int], num_classes: int, min_size: int) -> tuple[int, int, int]:
    """Check an architecture's framework arguments; return ``input_shape`` as a tuple of ints.

    Raises :class:`ParameterError` with one line when the shape is not height × width × channels,
    is smaller than ``min_size`` × ``min_size``, or when ``num_classes`` < 1.
    """
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ParameterError(
            f"input shape {input_shape!r} for {name} must be height x width x channels, e.g. 224x224x3"
        ) from None
    if len(shape) != 3 or min(shape) < 1:
        raise ParameterError(
            f"input shape {shape_text(shape)} for {name} must be height x width x channels, e.g. 224x224x3"
        )
    if min(shape[:2]) < min_size:
        raise ParameterError(
            f"input shape {shape_text(shape)} is too small for {name} (minimum {min_size}x{min_size})"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ParameterError(f"num_classes must be >= 1 (got {num_classes})")
    return shape


def check_dropout(name: str, dropout: float) -> float:
    """Reject a dropout rate outside [0, 1) when a factory is called directly from Python."""
    if not 0 <= dropout < 1:
        raise ParameterError(f"dropout for {name} must be in [0, 1) (got {dropout})")
    return float(dropout)


def classifier(x, num_classes: int, *, dropout: float = 0.0):
    """Optional dropout, then ``Dense(num_classes, softmax)`` named ``predictions``.

    The Dense layer computes in float32 so the softmax stays stable under mixed precision.
    """
    import keras

    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


#: What ``cnnreg plugin new --kind architecture`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",  # lazy: imported when the architecture is built or shown
        summary="A small convolutional network (conv-BN-ReLU blocks, global pooling)",
        default_input_shape=(32, 32, 3),
        min_input_size=8,
        family="$name",
        activation="relu",
        batchnorm=True,
        preprocess="cnnreg.kinds.architectures:scale_0_1",
    )
''',
    factories='''\
"""The architecture's factory: factory(input_shape, num_classes, *, include_top=True, **params)."""

from typing import Annotated

from cnnreg.spec import Range


def $name(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: Annotated[int, Range(1, 1024)] = 32,
    blocks: Annotated[int, Range(1, 8)] = 3,
    dropout: Annotated[float, Range(0, 1, max_inclusive=False)] = 0.0,
):
    """A small CNN: ``blocks`` × (conv 3×3 → BN → ReLU → max-pool), doubling ``width``."""
    import keras

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for block in range(blocks):
        x = keras.layers.Conv2D(width * 2**block, 3, padding="same", use_bias=False, name=f"block{block + 1}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{block + 1}_bn")(x)
        x = keras.layers.ReLU(name=f"block{block + 1}_relu")(x)
        if min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(name=f"block{block + 1}_pool")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, x, name="$name")
''',
    test='''

def test_it_builds_with_the_requested_classes():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        model = cnnreg.build("architecture", "$name:width=8,blocks=2", input_shape=(16, 16, 3), num_classes=4)
    assert model.output_shape == (None, 4)
''',
)


KIND = KindSpec(
    "architecture", "architectures", words=("arch", "archs", "model", "models"),
    supplied=("input_shape", "num_classes"),
    framework=("include_top", "weights", "input_tensor", "pooling", "classifier_activation"),
    contract=__name__,
    doc="""Add architectures: ``registry.add(name, factory, summary=..., **metadata)``.

    The factory is ``factory(input_shape, num_classes, *, include_top=True, **params) ->
    keras.Model`` built from Keras 3 layers only.  Useful metadata: ``default_input_shape``,
    ``min_input_size``, ``family``, ``paper``, ``activation``, ``batchnorm``, ``preprocess``
    (a ``"module:attr"`` string; default :data:`cnnreg.kinds.architectures.DEFAULT_PREPROCESS`)
    and ``weights`` (name → ``{"url": ..., "sha256": ...}``).  See cnnreg.kinds.architectures
    and docs/architectures.md for the full contract.
    """,
    scaffold=SCAFFOLD,
)
