"""What a run leaves to look at: curves.png, evaluation with confusion.png, predictions."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnreg import files
from cnnreg.errors import CnnregError, choices_text
from cnnreg.training import rundir


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, train vs validation, written atomically."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
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
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_ylim(0, 1.0)
    fig.tight_layout()
    files.save_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def load_run_model(run_dir: Path):
    """A run's best model, ``model.keras``; a missing, damaged or refused file is one line."""
    run_dir = Path(run_dir)
    path = run_dir / "model.keras"
    if not path.exists() and not path.is_symlink():
        data = rundir.load_manifest(run_dir)
        if data.get("status") == "completed":
            raise CnnregError(f"model.keras in {run_dir} is missing (the run completed {data.get('epochs_done')} epochs); "
                              f"`cnnreg rerun {run_dir}` trains it again")
        if data.get("epochs_done"):
            raise CnnregError(f"model.keras in {run_dir} is missing; `cnnreg resume {run_dir}` puts the newest "
                              "checkpoint in its place")
        raise CnnregError(f"run {run_dir} has no model.keras yet (no epoch completed)")
    if os.path.realpath(path) != os.path.join(os.path.realpath(run_dir), "model.keras"):
        raise CnnregError(f"model.keras in {run_dir} leads outside the run directory; refusing to follow it")
    _import_keras_objects(run_dir)
    return load_keras_file(path, f"model.keras in {run_dir}", compile=False)


def load_keras_file(path: Path, what: str, *, compile: bool):
    """``keras.models.load_model`` in Keras' safe mode (no code from the file runs).  A missing
    file, one cut short or otherwise damaged, and safe mode's refusal are one line each."""
    import zipfile

    import keras

    if not Path(path).exists():
        raise CnnregError(f"{what} is missing")
    # Keras calls a file that is not a complete zip "File not found": say what it is
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member: a flipped byte fails its CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise CnnregError(f"{what} is damaged (cut short or not a .keras file)") from None
    if bad is not None:
        raise CnnregError(f"{what} is damaged ({bad} fails its checksum)")
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError ... here
        text = str(exc)
        if "safe_mode" in text:
            kind = "a Lambda layer" if "Lambda" in text else "Python code"
            raise CnnregError(f"{what} contains {kind} (arbitrary code); refusing to load it (Keras safe mode)") from None
        first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        raise CnnregError(f"{what} cannot be loaded, it may be damaged: {first}") from None


def _import_keras_objects(run_dir: Path) -> None:
    """Import the ``keras_objects`` module of a run's architecture (:func:`import_keras_objects`)."""
    from cnnreg.training.run import run_architecture

    try:
        component = run_architecture(rundir.load_manifest(run_dir), run_dir)
    except CnnregError:
        return  # the plugin is gone: load_model will say which class it cannot find
    import_keras_objects(component)


def import_keras_objects(component) -> None:
    """Import the module an architecture names in its ``keras_objects`` metadata (where a plugin
    registers its custom layers), so that Keras can deserialise a saved model of it.  The module
    comes from the installed plugin's registration, never from the file being loaded."""
    import importlib

    module = component.metadata.get("keras_objects")
    if module:
        importlib.import_module(module)


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
        probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float64")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
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
    plt.close(fig)


@dataclass
class Trained:
    """A trained classifier to evaluate or predict with: a run's best model, or a weights entry
    (``lenet5.digits``, ``keras-resnet50.imagenet``) with its input shape, preprocessing and
    class names."""

    what: str  #: how messages name it: "run RUN", "weights NAME"
    component: Any  #: its registered architecture
    architecture: str  #: its spec
    input_shape: tuple[int, int, int]
    resize: str
    preprocess: Callable[[Any], Any]
    load_model: Callable[[], Any]
    class_names: Callable[[], list[str]]
    dataset: str | None = None  #: what it was trained on, the default for evaluation
    run_dir: Path | None = None
    data: dict[str, Any] | None = None  #: a run's manifest
    entry: Any = None
    backend: str | None = None


def open_trained(text: str | Path) -> Trained:
    """A run directory, or a registered weights name (when no such path exists).  One line for
    a path that is neither, with the closest weights names when it looks like one."""
    from cnnreg.training.pretrained import ENTRY_NAME, weights_names
    from cnnreg.plugins import get_host

    text = str(text)
    path = Path(text)
    if not path.exists() and not path.is_symlink() and ENTRY_NAME.fullmatch(text) and "/" not in text:
        registry = get_host().registry
        names = weights_names(registry)
        if text.lower() in {n.lower() for n in names}:
            return trained_entry(registry.get("weights", text))
        raise CnnregError(f"'{text}' is neither a run directory nor a weights name"
                          + choices_text(text, names, hint="see `cnnreg list weights`"))
    return trained_run(path)


def trained_run(run_dir: Path) -> Trained:
    """A run's best model, with what its manifest says (checked before anything loads)."""
    from cnnreg.training.run import run_architecture, run_preprocess

    run_dir = Path(run_dir)
    data = rundir.load_manifest(run_dir)
    config = rundir.run_config(data, run_dir)
    preprocess = run_preprocess(data, run_dir)  # refused before any data is loaded
    shape = rundir.input_shape(data, run_dir)
    return Trained(
        what=f"run {run_dir}", component=run_architecture(data, run_dir), architecture=config.architecture,
        input_shape=shape, resize=data.get("resize", "stretch"),  # runs written before the resize modes stretched
        preprocess=preprocess, load_model=lambda: load_run_model(run_dir),
        class_names=lambda: rundir.manifest_field(data, "class_names", run_dir, list),
        dataset=config.dataset, run_dir=run_dir, data=data,
        backend=config.backend if isinstance(config.backend, str) else None,
    )


def trained_entry(component) -> Trained:
    """A weights entry: a published cnnreg run (file ``model``) or a keras.applications
    classifier (file ``top``).  Files are fetched (cached, hash-checked) when the model loads."""
    from cnnreg.plugins import get_host
    from cnnreg.spec import parse
    from cnnreg.training.run import checked_preprocess
    from cnnreg.kinds.weights import entry_of

    entry = entry_of(component)
    spec = parse(entry.architecture)
    arch = get_host().registry.get("architecture", spec.name)
    params = {k: v for k, v in arch.resolve(spec.params).items() if k not in ("weights", "include_top")}
    manifest = entry.manifest if isinstance(entry.manifest, dict) else {}
    value = entry.preprocess if entry.preprocess is not None else manifest.get("preprocess")
    preprocess = checked_preprocess(value, arch, f"weights {entry.name}: field 'preprocess'", none_is_own=True)
    resize = manifest.get("resize") if manifest.get("resize") in ("stretch", "crop", "pad") else "stretch"
    if "model" in entry.files:
        def load():
            from cnnreg.zoo.cache import fetch_entry

            path = fetch_entry(entry, "model")
            import_keras_objects(arch)
            return load_keras_file(path, f"the file of weights {entry.name} ({path})", compile=False)
    elif "top" in entry.files:
        def load():
            from cnnreg.zoo.cache import fetch_entry

            path = fetch_entry(entry, "top")
            return arch.load()(input_shape=tuple(entry.input_shape), num_classes=entry.num_classes,
                               include_top=True, weights=str(path), **params)
    else:
        raise CnnregError(f"weights {entry.name} hold a base without a classifier (files: {', '.join(entry.files)}); "
                          f"fine-tune it: `cnnreg run {arch.name} --weights {entry.name} --dataset D`")

    def names() -> list[str]:
        from cnnreg.zoo.cache import class_names

        found = list(class_names(entry))
        if len(found) != entry.num_classes:
            raise CnnregError(f"weights {entry.name}: {len(found)} class names for {entry.num_classes} classes")
        return found

    return Trained(
        what=f"weights {entry.name}", component=arch, architecture=entry.architecture,
        input_shape=tuple(entry.input_shape), resize=resize, preprocess=preprocess, load_model=load,
        class_names=names, dataset=entry.dataset, entry=entry,
    )


def evaluate_run(run_dir: Path, split: str = "test", dataset: str | None = None) -> dict[str, Any]:
    """Evaluate a run's best model on one split of its dataset (or ``dataset``); writes confusion.png."""
    return evaluate(trained_run(Path(run_dir)), split, dataset)


def split_plan(trained: Trained, split: str, dataset: str | None = None):
    """``(split, config, plan)``: one split of the dataset ``trained`` was trained on (or
    ``dataset``), loaded at its input shape with its preprocessing, as ``cnnreg evaluate`` and
    ``cnnreg attack`` read it.  ``val``/``valid`` name the validation split; a missing split is one line."""
    from cnnreg.training.run import RunConfig, prepare_data, resolve

    if split in ("val", "valid"):
        split = "validation"
    if trained.data is not None:
        config = rundir.run_config(trained.data, trained.run_dir)
        config.dataset = dataset or config.dataset
    else:
        if not (dataset or trained.dataset):
            raise CnnregError(f"{trained.what} do not say what they were trained on: give --dataset")
        config = RunConfig(architecture=trained.architecture, dataset=dataset or trained.dataset, batch_size=64)
    config.freeze_base, config.fine_tune_epochs = False, 0
    # the weights it started from are not needed (nor looked up): they are in the model
    plan = prepare_data(resolve(config, weights=False), input_shape=trained.input_shape, splits=(split,))
    plan.preprocess = trained.preprocess
    plan.dataset.split(split)  # one-line error for a missing split
    return split, config, plan


def evaluate(trained: Trained, split: str = "test", dataset: str | None = None) -> dict[str, Any]:
    """Evaluate a run's model or a weights entry on one split of a dataset (default: the one it
    was trained on).  A run writes confusion.png into its directory."""
    from cnnreg.training.loop import held_out

    split, config, plan = split_plan(trained, split, dataset)
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


def predict_images(run_dir: Path, images: list[Path], top: int = 3) -> list[dict[str, Any]]:
    """Top-``top`` classes and probabilities per image with a run's best model."""
    return predict(trained_run(Path(run_dir)), images, top)


def predict(trained: Trained, images: list[Path], top: int = 3) -> list[dict[str, Any]]:
    """Top-``top`` classes and probabilities per image, preprocessed exactly as in training
    (same decoder, resize, channels and preprocess function)."""
    from cnnreg.kinds.datasets import fit_images
    from cnnreg.images import read_image

    shape = trained.input_shape
    classes = trained.class_names()
    arrays = []
    for path in images:  # training's decoder and pixel limit; a file it refuses is one line
        arrays.append(fit_images(read_image(path, shape[2])[None], shape, resize=trained.resize)[0])
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
