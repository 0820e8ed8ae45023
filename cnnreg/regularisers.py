"""The regulariser contract: what a regulariser component can change in a training run.

A regulariser factory returns a :class:`Regulariser`.  Override only what it changes:

* :meth:`Regulariser.architecture_params` — keyword parameters for the architecture factory
  (``dropout=0.5``, ``batchnorm=False``) when the architecture declares them;
* :meth:`Regulariser.kernel_regularizer` / :meth:`Regulariser.kernel_constraint` — a penalty or
  constraint put on the kernel of every Conv and Dense layer;
* :meth:`Regulariser.head_layers` — layers inserted before the classifier (dropout on any
  architecture);
* :meth:`Regulariser.augmentation` — Keras preprocessing layers applied to training images only
  (pixel values 0..255, before the architecture's ``preprocess``);
* :meth:`Regulariser.batch_transform` — a function on whole training batches with one-hot labels
  (mixup, cutmix);
* :meth:`Regulariser.loss_params` — arguments for the loss (``label_smoothing``);
* :meth:`Regulariser.callbacks` — Keras callbacks.

Everything here is backend-neutral Keras 3; keras is imported inside methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Regulariser", "combine_batch_transforms"]

#: ``f(x, y_onehot, rng) -> (x, y_onehot)`` on numpy training batches (numpy is not imported
#: here: plugin modules that subclass Regulariser must stay light).
BatchTransform = Callable[[Any, Any, Any], "tuple[Any, Any]"]


class Regulariser:
    """Base class: a regulariser that changes nothing. Subclasses override what they change."""

    #: Short text for the run header, e.g. ``"l2 1e-04 on 37 kernels"``.
    label: str = ""

    def architecture_params(self) -> dict[str, Any]:
        """Parameters for the architecture factory, applied only if it declares them."""
        return {}

    def required_architecture_params(self) -> tuple[str, ...]:
        """Names from :meth:`architecture_params` the architecture *must* accept (else an error)."""
        return ()

    def kernel_regularizer(self) -> Any | None:
        """A ``keras.regularizers.Regularizer`` for every Conv/Dense kernel, or None."""
        return None

    def kernel_constraint(self, kernel_rank: int) -> Any | None:
        """A ``keras.constraints.Constraint`` for a kernel of this rank, or None."""
        return None

    def head_layers(self) -> list[Any]:
        """Layers inserted between the features and the classifier (used when the
        architecture does not take the equivalent parameter)."""
        return []

    def augmentation(self, seed: int) -> list[Any]:
        """Keras layers applied to training images (0..255 pixels) in training only."""
        return []

    def batch_transform(self) -> BatchTransform | None:
        """``f(x, y_onehot, rng) -> (x, y_onehot)`` on training batches, or None."""
        return None

    def loss_params(self) -> dict[str, Any]:
        """Arguments for ``keras.losses.CategoricalCrossentropy``."""
        return {}

    def callbacks(self) -> list[Any]:
        return []

    def describe(self) -> str:
        return self.label or type(self).__name__


def combine_batch_transforms(transforms: list[BatchTransform]) -> BatchTransform | None:
    if not transforms:
        return None

    def apply(x, y, rng):
        for transform in transforms:
            x, y = transform(x, y, rng)
        return x, y

    return apply
