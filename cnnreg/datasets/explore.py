"""What ``cnnreg data info`` and ``cnnreg data show`` compute (the CLI only renders it).

:func:`info` loads a dataset spec and counts the examples of every class in every split
(folders are counted from the file listing, TFDS splits with one pass that skips image
decoding), and flags class imbalance.  :func:`sample_grid` draws labelled samples of a split,
optionally through augmentation regularisers, into a PNG.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from cnnreg.errors import CnnregError, ParameterError

__all__ = ["load", "info", "sample_grid"]


def load(text: str):
    """``--dataset`` text → ``(component, params, Dataset)``."""
    from cnnreg.datasets import build_dataset, resolve_dataset

    component, params = resolve_dataset(text)
    return component, params, build_dataset(component, params)


def info(text: str) -> dict[str, Any]:
    """Classes, examples per class and split, image shape, where the data lives, imbalance."""
    from cnnreg.kinds.datasets import IMBALANCE_RATIO, class_counts, imbalance
    from cnnreg.spec import format_spec

    component, params, dataset = load(text)
    names = list(dataset.class_names)
    counts = {split: class_counts(s.labels(), len(names)) for split, s in dataset.splits().items()}
    total = [sum(c[i] for c in counts.values()) for i in range(len(names))]
    ratios = {split: imbalance(c) for split, c in counts.items()}
    train = counts.get("train", total)
    largest, smallest = int(np.argmax(train)), int(np.argmin(train))
    ratio = imbalance(train)
    return {
        "dataset": format_spec(component.name, params),
        "component": component.name,
        "provider": f"{component.provider} {component.provider_version}",
        "description": dataset.description,
        "classes": names,
        "num_classes": len(names),
        "image_shape": list(dataset.image_shape),
        "image_shape_note": dataset.input_shape_reason,
        "default_input_shape": list(dataset.default_input_shape) if dataset.default_input_shape else None,
        "resize": dataset.resize,
        "sizes": dataset.sizes(),
        "total": sum(dataset.sizes().values()),
        "counts": counts,
        "class_totals": total,
        "imbalance": {
            "ratio": ratio, "ratios": ratios, "threshold": IMBALANCE_RATIO,
            "imbalanced": ratio is None or ratio > IMBALANCE_RATIO,
            "largest": {"class": names[largest], "train": train[largest]},
            "smallest": {"class": names[smallest], "train": train[smallest]},
        },
        "location": dataset.location or _default_location(component),
        "local": dataset.local,
        "needs_network": bool(component.metadata.get("needs_network", dataset.needs_network)),
        "skipped": list(dataset.skipped),
    }


def _default_location(component) -> str:
    if component.name == "digits":
        return "inside the scikit-learn package"
    if component.name == "synthetic":
        return "generated in memory"
    return ""


def _augmenter(specs: list[str], seed: int):
    """``--augment`` specs → (keras layers, batch transform, labels for the title)."""
    from cnnreg.plugins import get_host
    from cnnreg.kinds.regularisers import augmentation_layers, combine_batch_transforms

    registry = get_host().registry
    layers, transforms, labels = [], [], []
    for text in specs:
        component, params = registry.resolve("regulariser", text)
        reg = component.load()(**params)
        made = augmentation_layers([reg], seed)
        transform = reg.batch_transform()
        if not made and transform is None:
            augmenting = sorted(c.name for c in registry.components("regulariser") if c.metadata.get("role") in ("augmentation", "batch augmentation"))
            raise ParameterError(f"--augment {text}: regulariser '{component.name}' does not augment images (augmentations: {', '.join(augmenting)})")
        layers.extend(made)
        if transform is not None:
            transforms.append(transform)
        labels.append(text)
    return layers, combine_batch_transforms(transforms), labels


def _samples(dataset, split_name: str, n: int, seed: int, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded random examples of a split as float32 0..255 at ``shape``, with labels."""
    from cnnreg.kinds.datasets import fit_images

    split = dataset.split(split_name)
    rng = np.random.default_rng(seed)
    if split.kind == "arrays":
        rows = np.sort(rng.choice(len(split), size=min(n, len(split)), replace=False))
        return fit_images(split.x[rows], shape, resize=dataset.resize), split.y[rows]
    if split.kind == "files":
        from cnnreg.images import ImageError, max_pixels, read_image

        images, labels = [], []
        limit = max_pixels()
        for i in rng.permutation(len(split.files)):
            try:
                pixels = read_image(split.files[i], shape[2], limit)  # the run's decoder and pixel limit
            except ImageError:
                continue  # the run skips it too
            images.append(fit_images(pixels[None], shape, resize=dataset.resize)[0])
            labels.append(split.y[i])
            if len(images) == n:
                break
        return np.stack(images), np.asarray(labels)
    from cnnreg.datasets.pipeline import Source

    source = Source(split, shape=shape, resize=dataset.resize, name=split_name)
    batch = next(source.examples().take(n).batch(n).as_numpy_iterator())
    return batch[1].astype("float32"), batch[2]


def sample_grid(
    text: str, output: Path, *, n: int = 16, split: str = "train", augment: list[str] | None = None,
    seed: int = 0, size: int | None = None,
) -> dict[str, Any]:
    """Draw ``n`` labelled samples of ``split`` (through the ``augment`` regularisers) to a PNG."""
    if n < 1 or n > 400:
        raise ParameterError(f"--n must be in 1..400 (got {n})")
    if size is not None and not 8 <= size <= 1024:
        raise ParameterError(f"--size must be in 8..1024 (got {size})")
    if not 0 <= seed <= 2**32 - 1:
        raise ParameterError(f"--seed must be in 0..4294967295 (got {seed})")
    output = Path(output)
    if not output.parent.is_dir():
        raise CnnregError(f"folder {output.parent} does not exist (for -o {output})")
    layers, transform, labels = _augmenter(list(augment or []), seed)
    component, params, dataset = load(text)
    natural = dataset.image_shape
    if size is not None:
        shape = (size, size, natural[2])
    elif dataset.default_input_shape:  # what a model sees by default (digits: upsampled to 32x32)
        shape = tuple(dataset.default_input_shape)
    elif natural[0] is None or natural[1] is None:
        shape = (160, 160, natural[2])
    else:
        shape = tuple(natural)
    if split in ("val", "valid"):
        split = "validation"
    images, y = _samples(dataset, split, n, seed, shape)
    names = list(dataset.class_names)
    weights = np.eye(len(names), dtype="float32")[y]
    if layers:
        import keras

        keras.utils.set_random_seed(seed)
        augmenter = keras.Sequential(layers)
        images = np.asarray(keras.ops.convert_to_numpy(augmenter(images, training=True)), dtype="float32")
    if transform is not None:
        images, weights = transform(images, weights, np.random.default_rng([seed, 7]))
    titles = []
    for row in weights:
        order = np.argsort(-row)
        if len(order) > 1 and row[order[1]] > 1e-3:
            titles.append(f"{names[order[0]]} {row[order[0]]:.2f}\n{names[order[1]]} {row[order[1]]:.2f}")
        else:
            titles.append(names[order[0]])
    caption = f"{dataset.name}: {split}, {len(images)} samples at {shape[0]}x{shape[1]} ({dataset.resize})"
    if labels:
        caption += "; augment: " + ", ".join(labels)
    _draw(images, titles, caption, output)
    return {
        "path": str(output), "dataset": text, "split": split, "shape": list(shape), "augment": labels,
        "samples": [{"class": title.replace("\n", " / ")} for title in titles],
    }


def _draw(images: np.ndarray, titles: list[str], caption: str, output: Path) -> None:
    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend

    from cnnreg.files import save_atomic

    count = len(images)
    cols = min(count, max(1, math.ceil(math.sqrt(count))))
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(2.1 * cols, 2.3 * rows + 0.5), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        pixels = np.clip(image, 0, 255) / 255.0
        if pixels.shape[-1] == 1:
            ax.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(pixels, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    fig.suptitle(caption, fontsize=10)
    fig.tight_layout()
    save_atomic(output, lambda tmp: fig.savefig(tmp, format="png"))
