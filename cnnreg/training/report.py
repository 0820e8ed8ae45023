"""What a run leaves to look at: curves.png, evaluation with confusion.png, predictions."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnreg import files
from cnnreg.errors import CnnregError, choices_text
from cnnreg.training import rundir
from cnnreg.training.config import Plan, RunConfig
from cnnreg.training.saved import Trained, trained_run


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, train vs validation, written atomically."""
    if not history:
        return
    fig = curves_figure(history)
    files.save_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def curves_figure(history: list[dict[str, Any]]):
    """The matplotlib Figure that :func:`plot_curves` writes (``history`` not empty)."""
    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(10, 4), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, metric, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        for prefix, label, style in (("", "train", "-o"), ("val_", "validation", "-s")):
            values = [row.get(prefix + metric) for row in history]
            if any(v not in (None, "") for v in values):
                ax.plot(epochs, [np.nan if v in (None, "") else float(v) for v in values], style, label=label, markersize=3)
        phases = [row.get("phase") for row in history]
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                ax.axvline(epochs[i] - 0.5, color="grey", linestyle=":", label="fine-tuning starts")
        ax.set_title(title)
        if metric == "loss":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no epoch 1.5
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_ylim(0, 1.0)
    fig.tight_layout()
    return fig


def evaluate_model(model, x: Any, y_onehot: np.ndarray | None = None, *, batch_size: int = 64) -> dict[str, Any]:
    """Loss, accuracy, top-5 (≥ 5 classes) and per-class precision / recall.

    ``x`` and ``y_onehot`` are arrays, or ``x`` is an ``(x, y)`` pair or an iterable of
    ``(images, one-hot labels)`` batches (a tf.data dataset from the input pipeline).
    """
    if y_onehot is None and isinstance(x, tuple):
        x, y_onehot = x
    if y_onehot is None:
        parts, labels = [], []
        for images, onehot in x.as_numpy_iterator() if hasattr(x, "as_numpy_iterator") else x:
            parts.append(np.asarray(model.predict_on_batch(images), dtype="float64"))
            labels.append(np.asarray(onehot))
        probs, y_onehot = np.concatenate(parts), np.concatenate(labels)
    else:
        from cnnreg.training.batches import held_out_pipeline

        keras = sys.modules.get("keras")  # (an exported model is no Keras model: it takes arrays)
        batches = held_out_pipeline(x, batch_size=batch_size) if keras and isinstance(model, keras.Model) else None
        given = {"x": x, "batch_size": batch_size} if batches is None else {"x": batches}
        probs = np.asarray(model.predict(**given, verbose=0), dtype="float64")
    y = y_onehot.argmax(axis=1)
    predicted = probs.argmax(axis=1)
    n = probs.shape[1]
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))
    result: dict[str, Any] = {"loss": loss, "accuracy": float(np.mean(predicted == y)), "examples": int(len(y))}
    if n >= 5:
        top5 = np.argsort(-probs, axis=1)[:, :5]
        result["top5"] = float(np.mean([y[i] in top5[i] for i in range(len(y))]))
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (y, predicted), 1)
    result["confusion"] = confusion.tolist()
    precision = np.diag(confusion) / np.maximum(confusion.sum(axis=0), 1)
    recall = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    result["precision"], result["recall"] = precision.tolist(), recall.tolist()
    return result


def plot_confusion(confusion: list[list[int]], class_names: list[str], path: Path, title: str) -> None:
    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend

    matrix = np.asarray(confusion)
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig = Figure(figsize=(size, size), dpi=100)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90 if len(class_names) > 10 else 0)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(class_names) <= 20:
        peak = matrix.max() or 1
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black", fontsize=8)
    fig.tight_layout()
    files.save_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def evaluate_run(run_dir: Path, split: str = "test", dataset: str | None = None) -> dict[str, Any]:
    """Evaluate a run's best model on one split of its dataset (or ``dataset``); writes confusion.png."""
    return evaluate(trained_run(Path(run_dir)), split, dataset)


@dataclass
class HeldOut:
    """A held-out split of a dataset, chosen and checked by :func:`check_split` before keras
    loads; :func:`evaluate` and :func:`split_pixels` take it in place of the split's name."""

    split: str
    config: RunConfig
    plan: Plan


def check_split(trained: Trained, split: str, dataset: str | None = None) -> HeldOut:
    """One split of the dataset ``trained`` was trained on (or ``dataset``), checked without
    keras: the dataset spec resolved against its signature, the dataset built (a TFDS dataset,
    which needs TensorFlow, is built when its split is read) and the split's name looked up.
    ``val``/``valid`` name the validation split; a mistake is one line."""
    from cnnreg.datasets import build_dataset
    from cnnreg.training.config import resolve

    split = "validation" if split in ("val", "valid") else split
    if trained.data is not None:
        config = rundir.run_config(trained.data, trained.run_dir)
        config.dataset = dataset or config.dataset
    else:
        if not (dataset or trained.dataset):
            raise CnnregError(f"{trained.what} do not say what they were trained on: give --dataset")
        config = RunConfig(architecture=trained.architecture, dataset=dataset or trained.dataset, batch_size=64)
    config.freeze_base, config.fine_tune_epochs = False, 0
    # the weights it started from are not needed (nor looked up): they are in the model
    plan = resolve(config, weights=False)
    component = plan.dataset_component
    if split not in ("train", "validation", "test"):
        raise CnnregError(f"dataset '{component.component.name}' has no '{split}' split" + choices_text(split, ("train", "validation", "test")))
    if "tfds" not in component.component.tags:
        plan.dataset = build_dataset(component.component, component.params)
        plan.dataset.split(split)  # one-line error for a split this dataset lacks
    return HeldOut(split, config, plan)


def split_plan(trained: Trained, split: str | HeldOut, dataset: str | None = None) -> HeldOut:
    """The held-out split (see :func:`check_split`) loaded at ``trained``'s input shape with its
    preprocessing, as ``cnnreg evaluate`` and ``cnnreg attack`` read it."""
    from cnnreg.training.batches import prepare_data

    chosen = split if isinstance(split, HeldOut) else check_split(trained, split, dataset)
    plan = prepare_data(chosen.plan, input_shape=trained.input_shape, splits=(chosen.split,))
    plan.preprocess = trained.preprocess
    plan.dataset.split(chosen.split)  # one-line error for a missing split
    return chosen


def evaluate(trained: Trained, split: str | HeldOut = "test", dataset: str | None = None) -> dict[str, Any]:
    """Evaluate a run's model or a weights entry on one split of a dataset (default: the one it
    was trained on; ``split`` may be one :func:`check_split` chose).  A run writes
    confusion.png into its directory."""
    from cnnreg.training.batches import held_out

    chosen = split_plan(trained, split, dataset)
    split, config, plan = chosen.split, chosen.config, chosen.plan
    model = trained.load_model()
    if model.output_shape[-1] != plan.dataset.num_classes:
        raise CnnregError(f"{trained.what}: the model predicts {model.output_shape[-1]} classes, dataset "
                          f"{config.dataset} has {plan.dataset.num_classes}")
    result = evaluate_model(model, held_out(plan, split), batch_size=plan.config.batch_size)
    result["split"] = split
    result["dataset"] = config.dataset
    result["confusion_png"] = None
    if trained.run_dir is not None:
        path = Path(trained.run_dir) / "confusion.png"
        plot_confusion(result["confusion"], list(plan.dataset.class_names), path,
                       f"{trained.architecture} on {config.dataset} ({split})")
        result["confusion_png"] = str(path)
    result["class_names"] = list(plan.dataset.class_names)
    return result


def split_pixels(trained, split: str | HeldOut, dataset: str | None, limit: int | None):
    """The split's first ``limit`` examples as float32 pixels (0..255) fitted to the model's
    input, with integer labels, the class names, the dataset's name and the split's name; read
    as ``cnnreg evaluate`` reads it (same resize, no preprocessing yet): what ``cnnreg attack``
    attacks and ``cnnreg export`` checks an export on."""
    chosen = split_plan(trained, split, dataset)
    split, config, plan = chosen.split, chosen.config, chosen.plan
    if split in plan.arrays:
        x, y = plan.arrays[split]
        x, y = np.asarray(x[:limit], dtype="float32"), np.asarray(y[:limit])
    elif split in plan.streams:
        x, y = stream_pixels(plan.streams[split], limit)
    else:
        raise CnnregError(f"dataset {config.dataset} has no {split} split")
    if not len(y):
        raise CnnregError(f"the {split} split of {config.dataset} has no examples")
    return x, np.asarray(y, dtype="int64"), list(plan.dataset.class_names), config.dataset, split


def stream_pixels(source, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A files / tf.data split's pixels: the cached images, else decoded in split order as
    :func:`cnnreg.datasets.pipeline.held_out_batches` decodes them (without preprocessing)."""
    if source.images is not None:
        images = np.asarray(source.images[:limit] if limit else source.images, dtype="float32")
        return images, np.asarray(source.labels[:len(images)])
    import tensorflow as tf

    if source.split.kind == "files":
        ds = tf.data.Dataset.from_tensor_slices((source.split.files, source.split.y))
        ds = ds.map(lambda path, y: (source.load(path, cache=False), y)).ignore_errors()
    else:
        ds = source.split.examples.map(lambda image, y: (source.fit(image), tf.cast(y, tf.int64))).ignore_errors()
    if limit:
        ds = ds.take(limit)
    xs, ys = [], []
    for images, labels in ds.batch(256).as_numpy_iterator():
        xs.append(np.asarray(images, dtype="float32"))
        ys.append(np.asarray(labels))
    if not xs:
        return np.zeros((0, *source.shape), dtype="float32"), np.zeros((0,), dtype="int64")
    return np.concatenate(xs), np.concatenate(ys)


def predict_images(run_dir: Path, images: list[Path], top: int = 3) -> list[dict[str, Any]]:
    """Top-``top`` classes and probabilities per image with a run's best model."""
    return predict(trained_run(Path(run_dir)), images, top)


def decode_images(trained: Trained, images: list[Path]) -> list[np.ndarray]:
    """Each image file decoded as training decodes it (same decoder, pixel limit and channels),
    without keras: a file that is missing, not an image or too large is one line."""
    from cnnreg.images import read_image

    return [read_image(path, trained.input_shape[2]) for path in images]


def predict(trained: Trained, images: list[Path], top: int = 3, *, decoded: list[np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Top-``top`` classes and probabilities per image, preprocessed exactly as in training
    (same decoder, resize, channels and preprocess function); ``decoded`` are the images as
    :func:`decode_images` read them, when they have been read already."""
    from cnnreg.kinds.datasets import fit_images

    shape = trained.input_shape
    classes = trained.class_names()
    decoded = decode_images(trained, images) if decoded is None else decoded
    arrays = [fit_images(pixels[None], shape, resize=trained.resize)[0] for pixels in decoded]
    model = trained.load_model()
    probs = np.asarray(model.predict(trained.preprocess(np.stack(arrays)), verbose=0))
    if probs.shape[-1] != len(classes):
        raise CnnregError(f"{trained.what}: the model predicts {probs.shape[-1]} classes, {len(classes)} are named")
    top = max(1, min(top, len(classes)))
    results = []
    for path, p in zip(images, probs):
        order = np.argsort(-p)[:top]
        results.append({"image": str(path), "top": [{"class_id": int(i), "class": classes[i], "probability": float(p[i])} for i in order]})
    return results
