"""TensorFlow Datasets as cnnreg datasets (``mnist``, ``tf_flowers``, ... and ``tfds:NAME``).

Needs the optional ``tensorflow-datasets`` package (``pip install tensorflow-datasets
importlib_resources``); it is imported only when such a data set is built, never when the
entries are registered or listed.  Before TFDS is imported, the data directory is listed: data
that is neither prepared there nor downloadable gets one line saying where to put it
(:func:`cnnreg.datasets.catalog.ensure_available`) instead of TFDS' minutes of retries.
"""

from __future__ import annotations

from typing import Any, Literal

from cnnreg.datasets import catalog
from cnnreg.errors import CnnregError, ParameterError

__all__ = ["load", "tfds_dataset"]

Resize = Literal["stretch", "crop", "pad"]


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:
        raise CnnregError(f"TFDS datasets need tensorflow-datasets ({exc}): {catalog.INSTALL}") from None
    return tfds


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _keys(info, name: str) -> tuple[str, str]:
    """The image and label features: the supervised keys, else the first Image / ClassLabel."""
    tfds = _import_tfds()
    if info.supervised_keys and len(info.supervised_keys) == 2 and all(isinstance(k, str) for k in info.supervised_keys):
        image, label = info.supervised_keys
        if isinstance(info.features[image], tfds.features.Image) and isinstance(info.features[label], tfds.features.ClassLabel):
            return image, label
    images = [k for k, f in info.features.items() if isinstance(f, tfds.features.Image)]
    labels = [k for k, f in info.features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not images or not labels:
        raise CnnregError(f"TFDS dataset '{name}' is not image classification (it needs an Image and a ClassLabel feature)")
    return images[0], ("label" if "label" in labels else labels[0])


def load(
    name: str,
    *,
    split: str | None = None,
    validation: str | None = None,
    test: str | None = None,
    data_dir: str | None = None,
    resize: str = "stretch",
    download: bool = True,
):
    """A :class:`cnnreg.kinds.datasets.Dataset` of ``tf.data`` splits from the TFDS builder ``name``."""
    from cnnreg.kinds.datasets import Dataset

    directory = catalog.data_dir(data_dir)
    entry = catalog.BY_NAME.get(name.split("/")[0].split(":")[0])
    for value in (split, validation, test):
        if value:
            catalog.parse_split(value, valid=entry.splits if entry else None, dataset=name)
    tfds = _import_tfds()
    if entry is None:
        catalog.check_name(name)
    on_disk = catalog.ensure_available(name, directory, download=download)
    try:
        builder = tfds.builder(name, data_dir=directory)
    except Exception as exc:  # an unknown config or version, say
        raise CnnregError(f"TFDS cannot open '{name}': {_one_line(exc)}") from None
    if not builder.is_prepared():  # e.g. another version is on disk
        if not download:
            raise catalog.not_available(name, directory, "download=false")
        if on_disk and not catalog.network_reachable():
            raise catalog.not_available(name, directory, f"{catalog.PROBE_HOST[0]} cannot be reached (offline?)")
        try:
            builder.download_and_prepare()
        except ImportError as exc:
            raise CnnregError(f"preparing '{name}' needs another package ({exc}): {catalog.INSTALL}") from None
        except Exception as exc:
            raise CnnregError(f"downloading and preparing '{name}' failed: {_one_line(exc)}") from None
    info = builder.info
    image_key, label_key = _keys(info, name)
    available = list(info.splits) or list(entry.splits if entry else ())
    chosen = catalog.default_splits(available) if available else {"train": "train", "validation": None, "test": None}
    given = {"train": split, "validation": validation, "test": test}
    strings = {k: (given[k] if given[k] is not None else chosen.get(k)) for k in given}
    strings = {k: v for k, v in strings.items() if v and str(v).lower() != "none"}
    for value in strings.values():
        catalog.parse_split(value, valid=available or None, dataset=name)
    splits = {k: _split(tfds, builder, v, image_key, label_key) for k, v in strings.items()}
    feature = info.features[image_key]
    shape = tuple(feature.shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    uniform = shape[0] is not None and shape[1] is not None
    names = list(info.features[label_key].names)
    description = " / ".join(f"{k} {v}" for k, v in strings.items())
    return Dataset(
        name=name,
        class_names=names,
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        shape=shape,  # type: ignore[arg-type]
        default_input_shape=shape if uniform else None,  # type: ignore[arg-type]
        input_shape_reason=f"{name}'s image size" if uniform else f"{name}'s images vary in size",
        needs_network=True,
        resize=resize,
        location=str(builder.data_dir),
        local=True,
        description=f"TFDS {info.full_name}: {description}",
    )


def _split(tfds, builder, text: str, image_key: str, label_key: str):
    """One split as ``(image, label)`` examples with a known size and a cheap label reader."""
    from cnnreg.kinds.datasets import Split

    read_config = tfds.ReadConfig(try_autocache=False)
    try:
        ds = builder.as_dataset(split=text, shuffle_files=False, read_config=read_config)
    except Exception as exc:
        raise ParameterError(f"split '{text}' of {builder.name}: {_one_line(exc)}") from None
    ds = ds.map(lambda ex: (ex[image_key], ex[label_key]))
    size = int(ds.cardinality())
    if size < 0:
        size = int(builder.info.splits[text].num_examples)

    def read_labels():
        import numpy as np

        skip = {image_key: tfds.decode.SkipDecoding()}
        raw = builder.as_dataset(split=text, shuffle_files=False, decoders=skip, read_config=read_config)
        labels = raw.map(lambda ex: ex[label_key]).batch(8192)
        return np.concatenate([np.asarray(b) for b in labels.as_numpy_iterator()] or [np.zeros(0, "int64")])

    return Split(examples=ds, size=size, read_labels=read_labels)


def tfds_dataset(
    name: str,
    split: str | None = None,
    validation: str | None = None,
    test: str | None = None,
    data_dir: str | None = None,
    resize: Resize = "stretch",
    download: bool = True,
):
    """Any TFDS image-classification data set: ``tfds:NAME`` (``NAME/CONFIG`` and
    ``NAME:VERSION`` work too), e.g. ``tfds:beans`` or ``tfds:imagenette/160px-v2``.

    ``split``, ``validation`` and ``test`` are TFDS split strings (``train[:80%]``,
    ``train[10%:25%]+test``); by default the data set's own splits, with 15% of train held out
    for validation when it has no validation split, and the lecture's ``train[25%:]`` /
    ``train[10%:25%]`` / ``train[:10%]`` when it only has a train split.  ``data_dir`` (default
    ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``) is where prepared data is looked for and
    downloads go; ``download=false`` never downloads.  ``resize``: stretch, crop or pad.
    Needs ``pip install tensorflow-datasets importlib_resources``.
    """
    return load(name, split=split, validation=validation, test=test, data_dir=data_dir, resize=resize, download=download)


def _entry(name: str):
    entry = catalog.BY_NAME[name]
    default = catalog.default_splits(entry.splits)

    def factory(
        split: str | None = None,
        validation: str | None = None,
        test: str | None = None,
        data_dir: str | None = None,
        resize: Resize = "stretch",
        download: bool = True,
    ):
        return load(name, split=split, validation=validation, test=test, data_dir=data_dir, resize=resize, download=download)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"{entry.summary} (TensorFlow Datasets '{name}').\n\n"
        f"Splits: ``split={default['train']}``, ``validation={default['validation']}``, "
        f"``test={default['test']}`` by default; any TFDS split string overrides them "
        "(``tf_flowers:split=train[:50%]``).  ``data_dir`` (default ``$TFDS_DATA_DIR`` or "
        "``~/tensorflow_datasets``) holds the prepared data; ``download=false`` never downloads; "
        "``resize``: stretch, crop (keep the aspect ratio) or pad.\n"
        f"Needs ``{catalog.INSTALL}``."
    )
    return factory


mnist = _entry("mnist")
fashion_mnist = _entry("fashion_mnist")
kmnist = _entry("kmnist")
cifar10 = _entry("cifar10")
cifar100 = _entry("cifar100")
svhn_cropped = _entry("svhn_cropped")
tf_flowers = _entry("tf_flowers")
imagenette = _entry("imagenette")
oxford_iiit_pet = _entry("oxford_iiit_pet")
caltech101 = _entry("caltech101")
stanford_dogs = _entry("stanford_dogs")
cats_vs_dogs = _entry("cats_vs_dogs")
rock_paper_scissors = _entry("rock_paper_scissors")
horses_or_humans = _entry("horses_or_humans")
beans = _entry("beans")
food101 = _entry("food101")


def curated() -> dict[str, Any]:
    """Name → factory of every curated entry (checked by the tests against the catalog)."""
    return {entry.name: globals()[entry.name] for entry in catalog.CATALOG}
