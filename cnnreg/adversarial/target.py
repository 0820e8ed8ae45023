"""The model an attack perturbs, seen from [0, 1] pixel space (:class:`cnnreg.attacks.AttackTarget`).

Attacks differentiate the softmax cross-entropy of the model's **logits**, not of its
probabilities: a confident prediction (p = 1.0 in float32) has a zero gradient through the
softmax, which would leave such inputs untouched and make a model look robust when it is not.
:func:`logits_function` finds the logits of every cnnreg classifier (a ``Dense`` with a softmax
activation, or a softmax layer, last); any other model falls back to ``log p``.

:class:`ModelTarget` is the one implementation of the target; :func:`eager_target` makes it for
``cnnreg attack`` (the model's own preprocessing applied to ``x * 255``, batches of any size),
and a training step makes it from the step's weights and :class:`PixelSpace` (the training
batches arrive preprocessed; the adversarial regulariser maps them back to pixels and forth).
The gradient itself is :func:`cnnreg.backends.input_gradient`, the same on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnreg.errors import CnnregError

__all__ = ["ModelTarget", "PixelSpace", "eager_target", "logits_function", "cross_entropy"]


def logits_function(model) -> Callable[[Any], Any]:
    """``f(x_model) -> logits`` for ``model`` (inference mode).

    For a last layer that is a ``Dense`` with a softmax activation (every cnnreg classifier's
    ``predictions``), its input through a model sharing the weights, then the same Dense without
    the softmax; for a last ``Softmax``/``Activation("softmax")`` layer, its input; otherwise the
    log of the model's probabilities (clipped at 1e-12).  The functions read the weights when
    called, so they see every update (and a training step's state on JAX)."""
    import keras
    from keras import ops

    last = model.layers[-1] if getattr(model, "layers", None) else None
    if last is not None and _is_softmax(getattr(last, "activation", None)) and hasattr(last, "kernel"):
        features = keras.Model(model.inputs, last.input, name=f"{model.name}_features")

        def through_dense(x):
            h = features(x, training=False)
            z = ops.matmul(ops.cast(h, "float32"), ops.cast(last.kernel, "float32"))
            if getattr(last, "use_bias", False):
                z = z + ops.cast(last.bias, "float32")
            return z

        return through_dense
    if last is not None and (type(last).__name__ == "Softmax" or
                             (type(last).__name__ == "Activation" and _is_softmax(last.activation))):
        before = keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
        return lambda x: ops.cast(before(x, training=False), "float32")
    return lambda x: ops.log(ops.clip(ops.cast(model(x, training=False), "float32"), 1e-12, 1.0))


def _is_softmax(activation: Any) -> bool:
    import keras

    if activation is None:
        return False
    if activation is keras.activations.softmax:
        return True
    return getattr(activation, "__name__", "") == "softmax"


def cross_entropy(logits: Any, y: Any) -> Any:
    """The summed softmax cross-entropy ``-Σ y · log_softmax(logits)`` (a scalar)."""
    from keras import ops

    return -ops.sum(ops.cast(y, "float32") * ops.log_softmax(logits, axis=-1))


class ModelTarget:
    """An :class:`cnnreg.attacks.AttackTarget`: ``logits(to_model(x))`` with the gradient of its
    cross-entropy taken by :func:`cnnreg.backends.input_gradient`.

    ``to_model`` maps [0, 1] pixels to the model's input; ``uniform(shape, low, high)`` gives the
    random numbers; ``batch_size`` (eager use only) splits large inputs into chunks."""

    def __init__(self, logits: Callable[[Any], Any], to_model: Callable[[Any], Any], *,
                 uniform: Callable[[tuple[int, ...], float, float], Any], training: bool = False,
                 batch_size: int | None = None) -> None:
        self._logits, self._to_model, self._uniform = logits, to_model, uniform
        self.training = training
        self.batch_size = batch_size

    def logits(self, x: Any) -> Any:
        from keras import ops

        parts = [self._logits(self._to_model(chunk)) for chunk in self._chunks(x)]
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        from keras import ops

        from cnnreg.backends import input_gradient

        losses, grads = [], []
        for chunk, labels in zip(self._chunks(x), self._chunks(y)):
            value, grad = input_gradient(lambda t, labels=labels: cross_entropy(self._logits(self._to_model(t)), labels), chunk)
            losses.append(value)
            grads.append(grad)
        if len(grads) == 1:
            return losses[0], grads[0]
        return ops.sum(ops.stack(losses)), ops.concatenate(grads, axis=0)

    def uniform(self, shape: tuple[int, ...], low: float, high: float) -> Any:
        return self._uniform(tuple(shape), low, high)

    def _chunks(self, x: Any) -> list[Any]:
        n = x.shape[0]
        if self.batch_size is None or n is None or n <= self.batch_size:
            return [x]
        return [x[i:i + self.batch_size] for i in range(0, n, self.batch_size)]


def eager_target(model, preprocess: Callable[[Any], Any], *, batch_size: int = 128, seed: int = 0) -> ModelTarget:
    """The target ``cnnreg attack`` uses: the model's ``preprocess`` (0..255 pixels, through
    ``keras.ops``) applied to ``x * 255``; random numbers from ``numpy.random.default_rng(seed)``."""
    from keras import ops

    rng = np.random.default_rng(seed)
    logits = logits_function(model)

    def to_model(x):
        return ops.cast(preprocess(ops.cast(x, "float32") * 255.0), "float32")

    def uniform(shape, low, high):
        return ops.convert_to_tensor(rng.uniform(low, high, size=shape).astype("float32"))

    return ModelTarget(logits, to_model, uniform=uniform, training=False, batch_size=batch_size)


class PixelSpace:
    """A preprocessing that is affine per pixel, ``x_model = x01 · Mᵀ + b`` over the channels
    (scaling, mean/std normalisation, a channel flip), found by probing it with NumPy images;
    :meth:`to_pixels` and :meth:`from_pixels` map batches with ``keras.ops`` (traceable)."""

    def __init__(self, matrix: np.ndarray, offset: np.ndarray) -> None:
        self.matrix = np.asarray(matrix, dtype="float64")
        self.offset = np.asarray(offset, dtype="float64")
        self.inverse = np.linalg.inv(self.matrix)

    @classmethod
    def probe(cls, preprocess: Callable[[Any], Any], channels: int, *, what: str = "the preprocessing") -> "PixelSpace":
        """Measure ``preprocess`` (0..255 pixels in); one line when it is not affine per pixel."""
        def run(images: np.ndarray) -> np.ndarray:
            return np.asarray(preprocess(np.array(images, dtype="float32")), dtype="float64")

        zero = run(np.zeros((1, 2, 2, channels)))
        offset = zero[0, 0, 0]
        basis = np.zeros((channels, 1, 2, 2, channels))
        for c in range(channels):
            basis[c, ..., c] = 255.0
        matrix = np.stack([run(basis[c])[0, 0, 0] - offset for c in range(channels)], axis=1)
        probe = np.random.default_rng(0).uniform(0, 255, size=(2, 3, 3, channels))
        expected = (probe / 255.0) @ matrix.T + offset
        got = run(probe)
        scale = 1e-4 * (1.0 + np.abs(expected).max())
        if got.shape != expected.shape or not np.allclose(got, expected, atol=scale, rtol=0):
            raise CnnregError(f"adversarial training needs {what} to be affine per pixel (a scale, a mean and a "
                              "std per channel, a channel order), so that eps can be measured in pixels")
        if abs(np.linalg.det(matrix)) < 1e-12:
            raise CnnregError(f"adversarial training cannot invert {what}: it maps different pixels to the same input")
        return cls(matrix, offset)

    def from_pixels(self, x01: Any) -> Any:
        """[0, 1] pixels → the model's input."""
        from keras import ops

        return ops.matmul(ops.cast(x01, "float32"), ops.convert_to_tensor(self.matrix.T.astype("float32"))) + \
            ops.convert_to_tensor(self.offset.astype("float32"))

    def to_pixels(self, x_model: Any) -> Any:
        """The model's input → [0, 1] pixels."""
        from keras import ops

        centred = ops.cast(x_model, "float32") - ops.convert_to_tensor(self.offset.astype("float32"))
        return ops.matmul(centred, ops.convert_to_tensor(self.inverse.T.astype("float32")))
