"""Built-in plugin: the datasets.

``digits`` (the default of ``cnnreg run``) is scikit-learn's copy of the UCI optical
handwritten digits: 1,797 real 8×8 grayscale images of the digits 0–9, shipped inside the
scikit-learn package.  ``synthetic`` is random images for benchmarks and smoke tests.
``folder:PATH`` reads your own images (:mod:`cnnreg.datasets.folder`); ``mnist``,
``tf_flowers``, ... and ``tfds:NAME`` come from TensorFlow Datasets (:mod:`cnnreg.datasets.tfds`,
an optional dependency).  Every factory outside this module is a lazy ``"module:attr"`` string:
registering them imports neither TensorFlow nor ``tensorflow_datasets``.
"""

from __future__ import annotations

from typing import Annotated

from cnnreg.hookspecs import hookimpl
from cnnreg.spec import Range

Fraction = Annotated[float, Range(0, 1, min_inclusive=True, max_inclusive=False)]


def digits(
    split_seed: int = 42,
    validation: Fraction = 0.15,
    test: Fraction = 0.10,
    size: Annotated[int, Range(8, 512)] = 32,
):
    """The 1,797 8×8 handwritten digits that ship with scikit-learn (no download).

    Pixel values 0–16 are scaled to 0–255.  The seeded split is stratified by class:
    75% train, 15% validation, 10% test by default.  Models are built for ``size``×``size``
    (default 32: the images are upsampled, which gives convolutional stems such as ResNet's
    7×7/2 + max-pool something to work on; ``--input-shape`` overrides it).
    """
    from cnnreg.kinds.datasets import Dataset, Split, split_indices

    images, labels = _load_digits()
    if validation + test >= 1:
        from cnnreg.errors import ParameterError

        raise ParameterError(f"digits: validation + test must be < 1 (got {validation} + {test})")
    x = (images.reshape(-1, 8, 8, 1) * (255.0 / 16.0)).astype("float32")
    y = labels.astype("int64")
    train, val, tst = split_indices(y, (1 - validation - test, validation, test), seed=split_seed)
    return Dataset(
        name="digits",
        class_names=[str(i) for i in range(10)],
        train=Split(x[train], y[train]),
        validation=Split(x[val], y[val]) if len(val) else None,
        test=Split(x[tst], y[tst]) if len(tst) else None,
        default_input_shape=(size, size, 1),
        input_shape_reason=f"digits are 8x8; upsampled to {size}x{size}",
        description="UCI optical handwritten digits (scikit-learn copy), 1,797 images, 10 classes",
    )


def _load_digits():
    """Read scikit-learn's digits.csv.gz directly (importing sklearn.datasets costs ~1 s)."""
    import importlib.util
    import os

    import numpy as np

    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
        if os.path.exists(path):
            data = np.loadtxt(path, delimiter=",")
            return data[:, :-1], data[:, -1].astype("int64")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        from cnnreg.errors import CnnregError

        raise CnnregError("the digits dataset ships with scikit-learn: pip install scikit-learn") from None
    bunch = load_digits()
    return bunch.data, bunch.target


def synthetic(
    shape: tuple[int, int, int] = (32, 32, 3),
    classes: Annotated[int, Range(2, None)] = 10,
    size: Annotated[int, Range(1, None)] = 512,
    split_seed: int = 42,
):
    """Random images with random labels (for benchmarks and smoke tests; nothing to learn).

    ``size`` training images of ``shape``; validation and test get an eighth as many each.
    """
    import numpy as np

    from cnnreg.kinds.datasets import Dataset, Split

    rng = np.random.default_rng(split_seed)
    held_out = max(1, size // 8)

    def make(n: int) -> Split:
        return Split(rng.integers(0, 256, (n, *shape), dtype=np.uint8).astype("float32"), rng.integers(0, classes, n))

    return Dataset(
        name="synthetic",
        class_names=[f"class_{i}" for i in range(classes)],
        train=make(size),
        validation=make(held_out),
        test=make(held_out),
        default_input_shape=tuple(shape),
        input_shape_reason="the synthetic images' own shape",
        description=f"{size} random {shape[0]}x{shape[1]}x{shape[2]} images, {classes} classes",
    )


@hookimpl
def register_datasets(registry):
    registry.add(
        "digits", digits, summary="1,797 8x8 handwritten digits shipped with scikit-learn (default)",
        tags=("offline", "grayscale"), needs_network=False, classes=10, examples=1797,
        image_shape=(8, 8, 1), primary="size",
    )
    registry.add(
        "synthetic", synthetic, summary="Random images and labels for benchmarks and smoke tests",
        tags=("offline",), needs_network=False, primary="size",
    )
    registry.add(
        "folder", "cnnreg.datasets.folder:folder", summary="Your own images: folder:PATH with one sub-folder per class",
        aliases=("images",), tags=("offline", "files"), needs_network=False, primary="path",
        check="cnnreg.datasets.folder:check",
    )
    registry.add(
        "tfds", "cnnreg.datasets.tfds:tfds_dataset", summary="Any TensorFlow Datasets image classifier: tfds:NAME",
        tags=("tfds",), needs_network=True, primary="name", check="cnnreg.datasets.catalog:check",
    )
    from cnnreg.datasets.catalog import CATALOG

    for entry in CATALOG:
        registry.add(
            entry.name, f"cnnreg.datasets.tfds:{entry.name}", summary=f"{entry.summary} (TFDS)",
            tags=("tfds", *entry.tags), needs_network=True, classes=entry.classes, examples=entry.examples,
            image_shape=entry.image_shape, splits=entry.splits, primary="split", check="cnnreg.datasets.catalog:check",
        )
