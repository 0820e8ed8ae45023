"""TensorFlow Datasets entries: the curated list, the split grammar, where data lives, offline checks.

Nothing here imports TensorFlow or ``tensorflow_datasets``: registering the entries, checking a
split string and finding out that the data is missing and the network unreachable all happen
before anything heavy is loaded, so an offline machine gets its one-line answer at once.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError, ParameterError, choices_text

__all__ = ["CATALOG", "TfdsEntry", "parse_split", "default_splits", "data_dir", "prepared_on_disk",
           "network_reachable", "ensure_available", "check", "INSTALL"]

INSTALL = "pip install tensorflow-datasets importlib_resources"
#: The host TFDS downloads most data sets from; reaching it says "online".
PROBE_HOST = ("storage.googleapis.com", 443)


@dataclass(frozen=True)
class TfdsEntry:
    """A curated TFDS image-classification data set, with facts shown by ``cnnreg list/show``."""

    name: str
    summary: str
    splits: tuple[str, ...]
    classes: int
    examples: int
    image_shape: tuple[int | None, int | None, int]
    tags: tuple[str, ...] = ()


CATALOG: tuple[TfdsEntry, ...] = (
    TfdsEntry("mnist", "70,000 28x28 handwritten digits (LeCun et al.), 10 classes", ("train", "test"), 10, 70_000, (28, 28, 1), ("grayscale",)),
    TfdsEntry("fashion_mnist", "70,000 28x28 Zalando clothing images, 10 classes (the lecture's BN example)", ("train", "test"), 10, 70_000, (28, 28, 1), ("grayscale", "lecture")),
    TfdsEntry("kmnist", "70,000 28x28 Kuzushiji (cursive Japanese) characters, 10 classes", ("train", "test"), 10, 70_000, (28, 28, 1), ("grayscale",)),
    TfdsEntry("cifar10", "60,000 32x32 colour images, 10 classes (Krizhevsky 2009)", ("train", "test"), 10, 60_000, (32, 32, 3)),
    TfdsEntry("cifar100", "60,000 32x32 colour images, 100 classes (Krizhevsky 2009)", ("train", "test"), 100, 60_000, (32, 32, 3)),
    TfdsEntry("svhn_cropped", "Street View house-number digits, 32x32, 10 classes", ("train", "test", "extra"), 10, 630_420, (32, 32, 3)),
    TfdsEntry("tf_flowers", "3,670 flower photos, 5 classes: the lecture's transfer-learning data set", ("train",), 5, 3_670, (None, None, 3), ("lecture",)),
    TfdsEntry("imagenette", "Imagenette: 10 easy ImageNet classes (fast.ai), full-size photos", ("train", "validation"), 10, 13_394, (None, None, 3)),
    TfdsEntry("oxford_iiit_pet", "Oxford-IIIT Pet: 37 cat and dog breeds, 7,349 photos", ("train", "test"), 37, 7_349, (None, None, 3)),
    TfdsEntry("caltech101", "Caltech-101: 101 object categories + background, 9,144 photos", ("train", "test"), 102, 9_144, (None, None, 3)),
    TfdsEntry("stanford_dogs", "Stanford Dogs: 120 dog breeds, 20,580 ImageNet photos", ("train", "test"), 120, 20_580, (None, None, 3)),
    TfdsEntry("cats_vs_dogs", "Kaggle/Microsoft cats vs dogs, 23,262 photos, 2 classes", ("train",), 2, 23_262, (None, None, 3)),
    TfdsEntry("rock_paper_scissors", "2,892 300x300 CGI hands: rock, paper, scissors", ("train", "test"), 3, 2_892, (300, 300, 3)),
    TfdsEntry("horses_or_humans", "1,283 300x300 CGI horses and humans, 2 classes", ("train", "test"), 2, 1_283, (300, 300, 3)),
    TfdsEntry("beans", "1,295 500x500 bean-leaf photos: 2 diseases and healthy", ("train", "validation", "test"), 3, 1_295, (500, 500, 3)),
    TfdsEntry("food101", "Food-101: 101,000 photos of 101 dishes", ("train", "validation"), 101, 101_000, (None, None, 3)),
)

BY_NAME = {entry.name: entry for entry in CATALOG}

# --- the split grammar ----------------------------------------------------------------------
_BOUND = r"[+-]?\d+%?"
_PART = re.compile(rf"^(?P<name>[A-Za-z_][A-Za-z0-9_-]*)(?:\[(?P<start>{_BOUND})?:(?P<end>{_BOUND})?\])?(?:\((?:closest|pct1_dropremainder)\))?$")
SPLIT_HELP = "write NAME or NAME[START:END] (an index or a percentage, e.g. train[:10%], train[10%:25%]), joined by '+'"


def parse_split(text: str, *, valid: tuple[str, ...] | list[str] | None = None, dataset: str = "") -> list[str]:
    """Check a TFDS split string (``train[:10%]``, ``train[10%:25%]+test``); return its split names.

    Raises :class:`ParameterError` with one line for bad syntax, a percentage outside -100..100 or
    (when ``valid`` is given) an unknown split name, with the closest valid one.
    """
    where = f"split '{text}'" + (f" of {dataset}" if dataset else "")
    if not text or not text.strip():
        raise ParameterError(f"empty {where}; {SPLIT_HELP}")
    names = []
    for part in text.replace(" ", "").split("+"):
        match = _PART.match(part)
        if match is None:
            raise ParameterError(f"bad {where}: '{part}' is not a split; {SPLIT_HELP}")
        for bound in (match["start"], match["end"]):
            if bound and bound.endswith("%") and not -100 <= int(bound[:-1]) <= 100:
                raise ParameterError(f"bad {where}: {bound} is outside -100%..100%")
        names.append(match["name"])
    if valid:
        for name in names:
            if name not in valid:
                raise ParameterError(f"unknown split '{name}' in {where}" + choices_text(name, valid))
    return names


def default_splits(available: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Train / validation / test split strings for a data set with these splits.

    Only ``train``: the lecture's ``train[25%:]`` / ``train[10%:25%]`` / ``train[:10%]``.  Train
    and test: 15% of train held out for validation.  Train and validation: the validation split is
    the test set and 15% of train is held out.  All three: used as they are.
    """
    have = set(available)
    if {"train", "validation", "test"} <= have:
        return {"train": "train", "validation": "validation", "test": "test"}
    if {"train", "test"} <= have:
        return {"train": "train[:85%]", "validation": "train[85%:]", "test": "test"}
    if {"train", "validation"} <= have:
        return {"train": "train[:85%]", "validation": "train[85%:]", "test": "validation"}
    if "train" in have:
        return {"train": "train[25%:]", "validation": "train[10%:25%]", "test": "train[:10%]"}
    raise CnnregError(f"this data set has no 'train' split (it has: {', '.join(sorted(have)) or 'none'}); give split=...")


# --- where the data lives -------------------------------------------------------------------


def data_dir(given: str | None = None) -> str:
    """``given``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets`` (TFDS' own rule)."""
    return os.path.expanduser(given or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def _base_and_config(name: str) -> tuple[str, str | None]:
    bare = name.split(":")[0]  # NAME[/CONFIG][:VERSION]
    base, _, config = bare.partition("/")
    return base, config or None


def prepared_on_disk(name: str, directory: str) -> bool | None:
    """Whether ``directory`` holds a prepared copy of ``name`` (a ``dataset_info.json`` under
    ``NAME/[CONFIG/]VERSION/``); None when it cannot be listed (a ``gs://`` path, say)."""
    if "://" in directory:
        return None
    base, config = _base_and_config(name)
    root = Path(directory) / base
    if config:
        root = root / config
    if not root.is_dir():
        return False
    return any(root.glob("*/dataset_info.json")) or any(root.glob("*/*/dataset_info.json"))


def network_reachable(timeout: float = 3.0) -> bool:
    """Whether TFDS' download host answers within ``timeout`` seconds (a thread, so a slow DNS
    lookup cannot hang us)."""
    import socket

    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(PROBE_HOST, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def not_available(name: str, directory: str, why: str) -> CnnregError:
    """The one-line error for data that is neither on disk nor downloadable."""
    base, config = _base_and_config(name)
    target = Path(directory) / base
    return CnnregError(
        f"dataset '{name}' is not prepared in {directory} and {why}: on a machine with network run "
        f"`{INSTALL} && tfds build {name} --data_dir DIR`, then copy DIR/{base}/ to {target}/ here "
        f"(or give {base}:data_dir=DIR, or set TFDS_DATA_DIR=DIR)"
    )


def ensure_available(name: str, directory: str, *, download: bool) -> bool:
    """True when the data is on disk; False when it must (and can) be downloaded; else raise."""
    on_disk = prepared_on_disk(name, directory)
    if on_disk or on_disk is None:
        return True
    if not download:
        raise not_available(name, directory, "download=false")
    if not network_reachable():
        raise not_available(name, directory, f"{PROBE_HOST[0]} cannot be reached (offline?)")
    return False


def check_name(name: str) -> None:
    """An unknown TFDS builder name gets one line with the closest names (``tensorflow_datasets``
    lists its builders without importing TensorFlow)."""
    import tensorflow_datasets as tfds

    base = _base_and_config(name)[0]
    known = tfds.list_builders(with_community_datasets=False)
    if base not in known:
        raise ParameterError(f"unknown TFDS dataset '{base}'" + choices_text(base, known, limit=12, hint="see https://www.tensorflow.org/datasets/catalog"))


def check(name: str, params: dict[str, Any]) -> None:
    """Resolve-time check of a TFDS entry: split syntax (and names, for curated entries), then
    whether the data is on disk or downloadable.  No TensorFlow is imported."""
    import importlib.util

    dataset = str(params.get("name") or name)
    if importlib.util.find_spec("tensorflow_datasets") is None:
        raise CnnregError(f"dataset '{dataset}' comes from TensorFlow Datasets, which is not installed: {INSTALL}")
    entry = BY_NAME.get(_base_and_config(dataset)[0])
    if entry is None:
        check_name(dataset)
    valid = entry.splits if entry else None
    for key in ("split", "validation", "test"):
        value = params.get(key)
        if value is not None and str(value).lower() not in ("none", ""):
            parse_split(str(value), valid=valid, dataset=str(dataset))
    ensure_available(str(dataset), data_dir(params.get("data_dir")), download=bool(params.get("download", True)))
