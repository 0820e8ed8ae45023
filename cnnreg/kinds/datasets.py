"""The dataset kind: what a dataset component returns, and how it is fitted to a model.

A dataset factory returns a :class:`Dataset`: train / validation / test :class:`Split` s, the
class names and the natural image shape.  A split holds its examples in one of three forms:

* NumPy arrays: ``Split(x, y)`` with ``x`` of shape (N, H, W, C), pixel values 0..255;
* image files: ``Split(files=[...], y=labels)`` (decoded by :func:`cnnreg.images.read_image`,
  the decoder ``cnnreg predict`` uses too; files that do not decode or are over the pixel limit
  are skipped and counted);
* a ``tf.data.Dataset`` of ``(image, label)`` with ``image`` uint8 (H, W, C), sizes may vary:
  ``Split(examples=ds, size=N)``.

cnnreg does the rest (decoding, resizing to the model's input with the dataset's ``resize``
mode, channel conversion, the architecture's ``preprocess``, augmentation of the training split,
caching, seeded shuffling, batching, prefetching), so a dataset plugin only provides examples and
labels.  Files and ``tf.data`` splits go through :mod:`cnnreg.datasets.pipeline` (TensorFlow's
``tf.data``, which feeds any Keras backend); arrays go to Keras directly.

Any dataset can be cut down to some of its classes and a few training images per class
(:meth:`Dataset.select`, :func:`class_indices`): the ``classes`` and ``per_class`` parameters
every ``--dataset`` spec takes (:func:`cnnreg.datasets.build_dataset`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnreg.errors import ParameterError
from cnnreg.kinds import KindSpec, Scaffold

if TYPE_CHECKING:  # NumPy is imported where it is used: `cnnreg list` reads this module
    import numpy as np

__all__ = [
    "KIND", "Split", "Dataset", "RESIZE_MODES", "split_indices", "class_indices", "fit_images", "class_counts",
    "class_weights", "imbalance", "describe",
]

#: How images are brought to the model's input size: ``stretch`` (ignore the aspect ratio),
#: ``crop`` (centre crop to the target's aspect ratio, then resize) or ``pad`` (pad with black to
#: the target's aspect ratio, then resize).
RESIZE_MODES = ("stretch", "crop", "pad")

#: Largest / smallest class ratio above which ``cnnreg data info`` flags a split as imbalanced.
IMBALANCE_RATIO = 1.5


@dataclass
class Split:
    """One split: NumPy arrays ``x`` / ``y``, image ``files`` with labels ``y``, or ``tf.data``
    ``examples`` of ``(image, label)`` with ``size`` examples (see the module docstring)."""

    x: Any = None
    y: Any = None
    files: list[str] | None = None
    examples: Any = None
    size: int | None = None
    #: For ``examples`` splits: returns the labels without decoding images (a label count).
    read_labels: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import numpy as np

        forms = sum(v is not None for v in (self.x, self.files, self.examples))
        if forms != 1:
            raise ValueError("a split needs exactly one of x (arrays), files or examples (tf.data)")
        if self.y is not None:
            self.y = np.asarray(self.y).astype("int64").reshape(-1)
        if self.x is not None:
            if self.x.ndim == 3:  # (N, H, W) grayscale
                self.x = self.x[..., None]
            if self.y is None or self.x.ndim != 4 or len(self.x) != len(self.y):
                shape = None if self.y is None else self.y.shape
                raise ValueError(f"a split needs x (N, H, W, C) and y (N,), got {self.x.shape} and {shape}")
        elif self.files is not None:
            self.files = [str(f) for f in self.files]
            if self.y is None or len(self.files) != len(self.y):
                raise ValueError("a split of files needs one label per file in y")
        elif self.size is None:
            raise ValueError("a tf.data split needs its number of examples: Split(examples=ds, size=N)")

    @property
    def kind(self) -> str:
        """``arrays``, ``files`` or ``examples``."""
        return "arrays" if self.x is not None else "files" if self.files is not None else "examples"

    def __len__(self) -> int:
        if self.kind == "examples" and self.y is None:
            return int(self.size or 0)
        return len(self.y)

    def labels(self) -> np.ndarray:
        """Integer labels of every example (read once, without decoding, for ``examples`` splits)."""
        import numpy as np

        if self.y is None:
            if self.read_labels is None:
                raise ValueError("this split cannot tell its labels without a pass over the data")
            self.y = np.asarray(self.read_labels()).astype("int64").reshape(-1)
        return self.y

    def take(self, indices: np.ndarray) -> "Split":
        if self.kind == "arrays":
            return Split(self.x[indices], self.y[indices])
        if self.kind == "files":
            return Split(files=[self.files[i] for i in indices], y=self.y[indices])
        raise ValueError("a tf.data split cannot be indexed")

    def select(self, rows: np.ndarray, labels: np.ndarray | None = None) -> "Split":
        """The examples at ``rows`` (in split order), with new ``labels`` when given.

        A ``tf.data`` split is filtered by position (``enumerate`` + ``filter``), so its order
        must be the order of :meth:`labels`, as it is for TFDS splits read without shuffling.
        """
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        y = self.labels()[rows] if labels is None else np.asarray(labels, dtype=np.int64)
        if self.kind != "examples":
            picked = self.take(rows)
            picked.y = y
            return picked
        import tensorflow as tf

        keep = np.zeros(len(self.labels()), dtype=bool)
        keep[rows] = True
        relabel = np.full(len(keep), -1, dtype=np.int64)
        relabel[rows] = y
        keep_t, relabel_t = tf.constant(keep), tf.constant(relabel)
        examples = self.examples.enumerate().filter(lambda i, ex: tf.gather(keep_t, i))
        examples = examples.map(lambda i, ex: (ex[0], tf.gather(relabel_t, i)))
        return Split(examples=examples, size=len(rows), y=y)


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
    #: Natural image shape (H, W, C) when the splits are not arrays; None for a side that varies.
    shape: tuple[int | None, int | None, int] | None = None
    #: How images are fitted to the model's input: one of :data:`RESIZE_MODES`.
    resize: str = "stretch"
    #: Where the data lives and whether it is on this machine (``cnnreg data info``).
    location: str = ""
    local: bool = True

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            from cnnreg.errors import choices_text

            raise ParameterError(f"unknown resize mode '{self.resize}'" + choices_text(self.resize, RESIZE_MODES))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple:
        """(H, W, C) of the images; H and W are None when they vary."""
        if self.shape is not None:
            return tuple(self.shape)
        if self.train.kind != "arrays":
            raise ValueError(f"dataset '{self.name}' must give its image shape (Dataset(shape=...))")
        return tuple(int(d) for d in self.train.x.shape[1:])

    def splits(self) -> dict[str, Split]:
        """The splits that exist, in the order train, validation, test."""
        return {n: s for n, s in (("train", self.train), ("validation", self.validation), ("test", self.test)) if s is not None}

    def sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits().items()}

    def split(self, name: str) -> Split:
        split = {"train": self.train, "validation": self.validation, "val": self.validation, "test": self.test}.get(name)
        if split is None:
            raise ParameterError(f"dataset '{self.name}' has no '{name}' split (valid: {', '.join(self.splits())})")
        return split

    def select(self, classes: Sequence[int] | None = None, per_class: int | None = None, *, seed: int = 0) -> "Dataset":
        """Only ``classes`` (indices into :attr:`class_names`; None keeps all), and at most
        ``per_class`` training examples of each.

        Kept classes are relabelled 0..k-1 in the dataset's order (``classes`` is a set: its
        order does not matter), and ``class_names`` follow.  The cap draws, for each class, the
        first ``per_class`` of a permutation seeded by ``(seed, class index)``: the draw of a
        class does not depend on which other classes are kept, and a smaller cap picks a subset
        of a larger one's images.  Validation and test keep every example of the kept classes,
        so accuracies stay comparable across caps.  A split left empty becomes None.
        """
        import numpy as np

        n = self.num_classes
        kept = sorted({int(c) for c in (range(n) if classes is None else classes)})
        if not kept or kept[0] < 0 or kept[-1] >= n:
            raise ParameterError(f"dataset '{self.name}': classes must be indices 0-{n - 1} (got {kept or 'none'})")
        if per_class is not None and per_class < 1:
            raise ParameterError(f"dataset '{self.name}': per_class must be >= 1 (got {per_class})")
        relabel = np.full(n, -1, dtype=np.int64)
        relabel[kept] = np.arange(len(kept))
        chosen: dict[str, Split | None] = {}
        for name, split in self.splits().items():
            if split.y is None and split.read_labels is None:
                raise ParameterError(
                    f"dataset '{self.name}' cannot keep some classes or images: its tf.data {name} split gives no "
                    "labels without a pass over the images (Split(..., read_labels=...) in the dataset's plugin)"
                )
            labels = split.labels()
            new = np.where((labels >= 0) & (labels < n), relabel[np.clip(labels, 0, n - 1)], -1)
            rows = np.flatnonzero(new >= 0)
            if name == "train" and per_class is not None:
                rows = _cap_per_class(labels, rows, per_class, seed)
            chosen[name] = split.select(rows, new[rows]) if len(rows) else None
        if chosen["train"] is None:
            kept_names = ", ".join(self.class_names[i] for i in kept)
            raise ParameterError(f"dataset '{self.name}' has no training examples of the classes kept ({kept_names})")
        return dataclasses.replace(
            self, class_names=[self.class_names[i] for i in kept], train=chosen["train"],
            validation=chosen.get("validation"), test=chosen.get("test"),
        )


def _cap_per_class(labels: np.ndarray, rows: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """At most ``per_class`` of ``rows`` per label, drawn with a seed per class (see Dataset.select)."""
    import numpy as np

    picked = []
    for label in np.unique(labels[rows]):
        members = rows[labels[rows] == label]
        rng = np.random.default_rng([int(seed) % 2**63, int(label)])
        picked.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(picked)) if picked else rows


def class_indices(text: str, class_names: Sequence[str], *, dataset: str = "dataset") -> list[int]:
    """``classes=`` text → sorted class indices, e.g. ``5-9``, ``0,2,4``, ``daisy,tulips``.

    Items are separated by commas; each is a class name (exact, else case-insensitive), or an
    index 0..n-1, or a range ``A-B`` of names or indices (both ends included).  A name wins over
    an index: in a folder whose classes are named ``1``, ``2``, ``10``, ``classes=2`` is the
    class named ``2``.  Raises :class:`ParameterError` with one line naming the valid choices.
    """
    from cnnreg.errors import suggestion_text
    from cnnreg.spec import shown

    names = [str(c) for c in class_names]
    n = len(names)

    def one(item: str) -> int | None:
        if item in names:
            return names.index(item)
        folded = [i for i, name in enumerate(names) if name.lower() == item.lower()]
        if len(folded) == 1:
            return folded[0]
        if item.isdigit() and int(item) < n:
            return int(item)
        return None

    def unknown(item: str) -> ParameterError:
        if names == [str(i) for i in range(n)]:  # digits: the names are the indices
            valid = f"0-{n - 1}, a range such as 0-{min(4, n - 1)} or a list such as 0,{min(2, n - 1)}"
        else:
            listed = ", ".join(names[:30]) + (f", ... {n - 30} more" if n > 30 else "")
            valid = f"names {listed}, or indices 0-{n - 1}; a range such as 0-{min(2, n - 1)}, a list such as {names[0]},{names[-1]}"
        hint = "" if item.isdigit() else suggestion_text(item, names)
        return ParameterError(f"{dataset}: classes={shown(text)}: no class '{shown(item)}'{hint} (valid: {valid})")

    indices: set[int] = set()
    for item in (piece.strip() for piece in str(text).split(",")):
        if not item:
            raise ParameterError(f"{dataset}: classes={shown(text)} has an empty item; write e.g. classes=0,2 or classes=0-4")
        found = one(item)
        if found is not None:
            indices.add(found)
            continue
        cuts = [(item[:i].strip(), item[i + 1 :].strip()) for i, ch in enumerate(item) if ch == "-"]
        ends = [(one(a), one(b)) for a, b in cuts]
        ends = [(lo, hi) for lo, hi in ends if lo is not None and hi is not None]
        if not ends:
            if len(cuts) == 1 and all(cuts[0]) and (one(cuts[0][0]) is None) != (one(cuts[0][1]) is None):
                raise unknown(cuts[0][0] if one(cuts[0][0]) is None else cuts[0][1])  # "5-12": name the bad end
            raise unknown(item)
        lo, hi = ends[0]
        if lo > hi:
            raise ParameterError(
                f"{dataset}: classes={shown(text)}: the range '{shown(item)}' is empty; write {names[hi]}-{names[lo]}"
            )
        indices.update(range(lo, hi + 1))
    return sorted(indices)


def split_indices(
    labels: np.ndarray, fractions: Sequence[float], *, seed: int
) -> list[np.ndarray]:
    """Seeded, stratified split of ``range(len(labels))`` into parts of the given fractions.

    The last part takes the remainder, so ``(0.75, 0.15, 0.10)`` gives train, validation, test.
    """
    import numpy as np

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


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, C) with C in 1..4 → ``channels`` (1 or 3).

    Grayscale becomes RGB by repetition; RGB becomes grayscale by the ITU-R 601 luma weights;
    an alpha channel is dropped (as Pillow's ``convert("RGB")`` does).
    """
    import numpy as np

    have = x.shape[-1]
    if have == channels:
        return x
    if have == 2:  # grayscale + alpha
        x, have = x[..., :1], 1
        if channels == 1:
            return x
    if have == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if have in (3, 4) and channels == 1:
        return (x[..., :3].astype("float32") @ np.array([0.299, 0.587, 0.114], "float32"))[..., None]
    if have == 4 and channels == 3:
        return x[..., :3]
    raise ParameterError(f"cannot convert images with {have} channels to {channels}")


def fit_images(
    x: np.ndarray, shape: tuple[int, int, int], *, resize: str = "stretch", batch: int = 512
) -> np.ndarray:
    """Resize ``x`` (N, H, W, C) to ``shape`` (H, W, C) and convert channels; float32 0..255.

    ``resize`` is one of :data:`RESIZE_MODES`: ``stretch`` ignores the aspect ratio; ``crop``
    cuts the largest centred window of the target's aspect ratio first (like
    ``tf.image.crop_and_resize`` on a central box); ``pad`` adds black borders to reach it.
    Resizing is bilinear (keras.ops, any backend) and is skipped when the size already matches.
    """
    import numpy as np

    if resize not in RESIZE_MODES:
        from cnnreg.errors import choices_text

        raise ParameterError(f"unknown resize mode '{resize}'" + choices_text(resize, RESIZE_MODES))
    height, width, channels = shape
    x = convert_channels(np.asarray(x), channels).astype("float32", copy=False)
    if x.shape[1:3] == (height, width):
        return x
    import keras

    options = {"crop_to_aspect_ratio": resize == "crop", "pad_to_aspect_ratio": resize == "pad"}
    out = np.empty((len(x), height, width, x.shape[-1]), dtype="float32")
    for start in range(0, len(x), batch):
        chunk = keras.ops.image.resize(x[start : start + batch], (height, width), interpolation="bilinear", **options)
        out[start : start + batch] = keras.ops.convert_to_numpy(chunk)
    return np.clip(out, 0.0, 255.0)


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    """Examples per class (``num_classes`` entries)."""
    import numpy as np

    return np.bincount(np.asarray(labels, dtype="int64"), minlength=num_classes)[:num_classes].tolist()


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Keras ``class_weight`` for ``balanced`` weighting: ``n / (classes × n_class)``.

    Every class then contributes the same total weight to the loss (scikit-learn's
    ``compute_class_weight("balanced")``); classes absent from ``labels`` get weight 1.
    """
    import numpy as np

    counts = np.asarray(class_counts(labels, num_classes), dtype="float64")
    total, present = counts.sum(), int((counts > 0).sum())
    return {i: float(total / (present * c)) if c else 1.0 for i, c in enumerate(counts)}


def imbalance(counts: Sequence[int]) -> float | None:
    """Largest / smallest class count (None when a class is empty or there is no data)."""
    counts = [int(c) for c in counts]
    if not counts or min(counts) == 0:
        return None
    return max(counts) / min(counts)


def describe(dataset: Dataset) -> dict[str, Any]:
    """A JSON-ready description for run manifests."""
    return {
        "name": dataset.name,
        "classes": list(dataset.class_names),
        "image_shape": list(dataset.image_shape),
        "sizes": dataset.sizes(),
        "skipped": len(dataset.skipped),
        "resize": dataset.resize,
    }


#: What ``cnnreg plugin new --kind dataset`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Generated stripes: horizontal vs vertical (no download)",
        needs_network=False,
    )
''',
    factories='''\
"""The dataset's factory: returns a cnnreg.Dataset of 0..255 images and integer labels."""

from typing import Annotated

from cnnreg.spec import Range


def $name(size: Annotated[int, Range(8, None)] = 400, image: Annotated[int, Range(4, 256)] = 16, seed: int = 0):
    """``size`` noisy grayscale images of horizontal (0) or vertical (1) stripes."""
    import numpy as np

    from cnnreg.kinds.datasets import Dataset, Split, split_indices

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size)
    stripes = (np.arange(image) // 2 % 2 * 255.0)[None, :].repeat(image, axis=0)
    x = np.where(labels[:, None, None] == 0, stripes.T[None], stripes[None])
    x = np.clip(x + rng.normal(0, 40, x.shape), 0, 255).astype("float32")[..., None]
    train, val, test = split_indices(labels, (0.7, 0.15, 0.15), seed=seed)
    return Dataset(
        name="$name",
        class_names=["horizontal", "vertical"],
        train=Split(x[train], labels[train]),
        validation=Split(x[val], labels[val]),
        test=Split(x[test], labels[test]),
    )
''',
    test='''

def test_splits_and_classes():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        data = cnnreg.build("dataset", "$name:size=100")
    assert data.class_names == ["horizontal", "vertical"]
    assert sum(data.sizes().values()) == 100 and data.train.x.shape[1:] == (16, 16, 1)
''',
)


KIND = KindSpec(
    "dataset", "datasets", words=("data",),
    contract=__name__,
    doc="""Add datasets: the factory returns a :class:`cnnreg.kinds.datasets.Dataset`: the train /
    validation / test splits and the class names.

    Say ``needs_network=True`` in the metadata when the data must be downloaded.  See
    cnnreg.kinds.datasets for the full contract.
    """,
    scaffold=SCAFFOLD,
)
