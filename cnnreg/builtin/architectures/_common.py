"""Helpers shared by the architecture families: input checks and the classifier head.

Importing this module never imports keras; the layer helpers import it when called.
"""

from __future__ import annotations

from typing import Annotated

from cnnreg.errors import ParameterError
from cnnreg.spec import Range

#: The type of every ``dropout`` parameter: a rate in [0, 1).
DropoutRate = Annotated[float, Range(0, 1, max_inclusive=False)]


def shape_text(input_shape: tuple[int, ...]) -> str:
    """``(224, 224, 3)`` → ``"224x224x3"``."""
    return "x".join(str(d) for d in input_shape)


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
