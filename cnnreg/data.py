"""The dataset contract: what a dataset component returns, and how it is fitted to a model.

A dataset factory returns a :class:`Dataset`: train / validation / test :class:`Split` s of raw
pixel values (``0..255``, shape ``(N, H, W, C)``) with integer labels, the class names and the
natural image shape.  cnnreg does the rest (resizing to the model's input, channel conversion,
the architecture's ``preprocess``, augmentation of the training split, shuffling, batching), so
a dataset plugin only provides examples and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnreg.errors import ParameterError

__all__ = ["Split", "Dataset", "split_indices", "fit_images"]


@dataclass
class Split:
    """Images ``x`` (N, H, W, C) with pixel values in 0..255 and integer labels ``y`` (N,)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim == 3:  # (N, H, W) grayscale
            self.x = self.x[..., None]
        self.y = np.asarray(self.y).astype("int64").reshape(-1)
        if self.x.ndim != 4 or len(self.x) != len(self.y):
            raise ValueError(f"a split needs x (N, H, W, C) and y (N,), got {self.x.shape} and {self.y.shape}")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, indices: np.ndarray) -> "Split":
        return Split(self.x[indices], self.y[indices])


@dataclass
class Dataset:
    """What a dataset component returns."""

    name: str
    class_names: list[str]
    train: Split
    validation: Split | None = None
    test: Split | None = None
    #: Input shape the model is built for unless the user or pretrained weights ask otherwise,
    #: and why (shown in the run header).
    default_input_shape: tuple[int, int, int] | None = None
    input_shape_reason: str = ""
    needs_network: bool = False
    #: Files that could not be read, skipped (counted in the run header).
    skipped: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.train.x.shape[1:])  # type: ignore[return-value]

    def sizes(self) -> dict[str, int]:
        return {
            name: len(split)
            for name, split in (("train", self.train), ("validation", self.validation), ("test", self.test))
            if split is not None
        }

    def split(self, name: str) -> Split:
        split = {"train": self.train, "validation": self.validation, "val": self.validation, "test": self.test}.get(name)
        if split is None:
            valid = [n for n, s in (("train", self.train), ("validation", self.validation), ("test", self.test)) if s is not None]
            raise ParameterError(f"dataset '{self.name}' has no '{name}' split (valid: {', '.join(valid)})")
        return split


def split_indices(
    labels: np.ndarray, fractions: Sequence[float], *, seed: int
) -> list[np.ndarray]:
    """Seeded, stratified split of ``range(len(labels))`` into parts of the given fractions.

    The last part takes the remainder, so ``(0.75, 0.15, 0.10)`` gives train, validation, test.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    bounds = np.cumsum(fractions)[:-1]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        cuts = np.round(bounds * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, cuts)):
            part.extend(chunk.tolist())
    return [rng.permutation(np.array(p, dtype=np.int64)) for p in parts]


def fit_images(x: np.ndarray, shape: tuple[int, int, int], *, batch: int = 512) -> np.ndarray:
    """Resize ``x`` (N, H, W, C) to ``shape`` (H, W, C) and convert channels; float32 0..255.

    Grayscale becomes RGB by repetition; RGB becomes grayscale by the ITU-R 601 luma weights.
    Resizing is bilinear (keras.ops, any backend) and is skipped when the size already matches.
    """
    height, width, channels = shape
    x = np.asarray(x)
    if x.shape[-1] != channels:
        if x.shape[-1] == 1 and channels == 3:
            x = np.repeat(x, 3, axis=-1)
        elif x.shape[-1] in (3, 4) and channels == 1:
            x = (x[..., :3].astype("float32") @ np.array([0.299, 0.587, 0.114], "float32"))[..., None]
        elif x.shape[-1] == 4 and channels == 3:
            x = x[..., :3]
        else:
            raise ParameterError(f"cannot convert images with {x.shape[-1]} channels to {channels}")
    x = x.astype("float32", copy=False)
    if x.shape[1:3] == (height, width):
        return x
    import keras

    out = np.empty((len(x), height, width, x.shape[-1]), dtype="float32")
    for start in range(0, len(x), batch):
        chunk = keras.ops.image.resize(x[start : start + batch], (height, width), interpolation="bilinear")
        out[start : start + batch] = keras.ops.convert_to_numpy(chunk)
    return np.clip(out, 0.0, 255.0)


def describe(dataset: Dataset) -> dict[str, Any]:
    """A JSON-ready description for run manifests and ``cnnreg data info``."""
    return {
        "name": dataset.name,
        "classes": list(dataset.class_names),
        "image_shape": list(dataset.image_shape),
        "sizes": dataset.sizes(),
        "skipped": len(dataset.skipped),
    }
