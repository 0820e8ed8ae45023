"""Input preprocessing for the architectures cnnreg defines itself (trained from scratch).

Each architecture names its function in the metadata key ``preprocess`` as a lazy
``"module:attr"`` string; the keras.applications bridge names the family's own
``keras.applications.<family>:preprocess_input`` instead.  Like Keras' functions, these take
pixel values in [0, 255]; a NumPy array comes back as a float32 NumPy array, anything else
(a backend tensor, a ``tf.data`` element with the TensorFlow backend) goes through ``keras.ops``.
"""

from __future__ import annotations

from typing import Any


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
