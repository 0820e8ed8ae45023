"""A run's data: the dataset loaded and fitted to the model's input (:func:`prepare_data`),
the training batches ``model.fit`` takes (:func:`training_data`, :func:`make_batches`) and the
held-out splits (:func:`held_out`).

NumPy splits go to Keras directly or through :func:`make_batches` (seeded per epoch, so a
resumed run sees the same batches); files and ``tf.data`` splits go through
:mod:`cnnreg.datasets.pipeline`.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from cnnreg.errors import CnnregError
from cnnreg.kinds.regularisers import augmentation_layers
from cnnreg.training.config import Plan
from cnnreg.training.saved import preprocess_of


def prepare_data(
    plan: Plan, *, input_shape: tuple[int, int, int] | None = None, splits: tuple[str, ...] | None = None
) -> Plan:
    """Load the dataset, choose the input shape (and say why), fit every split to it.

    NumPy splits are resized here (:func:`cnnreg.kinds.datasets.fit_images`); files and tf.data splits
    become :mod:`cnnreg.datasets.pipeline` sources (decoded, resized and, when they fit, cached
    in memory).  ``splits`` limits the work to those splits (``cnnreg evaluate``).
    """
    from cnnreg.kinds.datasets import class_weights, fit_images

    config = plan.config
    ds = plan.dataset_component
    if "tfds" in ds.component.tags:  # TensorFlow Datasets imports TensorFlow: quietly, and seeded
        needs_tensorflow(config.seed)
    from cnnreg.datasets import build_dataset

    if plan.dataset is None:  # check_split may have built it, before keras loaded
        plan.dataset = build_dataset(ds.component, ds.params)  # with the spec's classes= / per_class=
    dataset = plan.dataset
    if dataset.num_classes < 2:
        raise CnnregError(f"dataset '{dataset.name}' has {dataset.num_classes} class; at least 2 are needed")
    arch = plan.architecture.component
    source = plan.source if splits is None else None  # evaluation takes the run's shape
    bridge = "weights" in {p.name for p in arch.parameters()}
    wants_rgb = arch.metadata.get("channels") == 3 or (source is not None and source.wants_rgb(bridge))
    trained_at = source.input_shape() if source is not None else None
    if input_shape is not None:
        plan.input_shape, plan.input_reason = tuple(input_shape), "the run's input shape"
    elif config.input_shape:
        plan.input_shape, plan.input_reason = tuple(config.input_shape), "--input-shape"
    elif trained_at is not None:  # the weights were trained on it: every layer fits
        plan.input_shape, plan.input_reason = trained_at, f"the input shape of the weights ({source.describe()})"
    else:
        shape = dataset.default_input_shape or dataset.image_shape
        reason = dataset.input_shape_reason or "the dataset's image size"
        if shape[0] is None or shape[1] is None:  # images of many sizes: the architecture's own
            height, width = (arch.metadata.get("default_input_shape") or (224, 224, 3))[:2]
            shape = (height, width, shape[2])
            reason += f"; {arch.name}'s default {height}x{width}"
        minimum = int(arch.metadata.get("min_input_size") or 1)
        if min(shape[:2]) < minimum:
            shape = (max(shape[0], minimum), max(shape[1], minimum), shape[2])
            reason += f"; raised to {arch.name}'s minimum {minimum}x{minimum}"
        if wants_rgb and shape[2] != 3:
            shape = (shape[0], shape[1], 3)
            reason += "; grayscale repeated to 3 channels for RGB weights"
        plan.input_shape, plan.input_reason = tuple(int(d) for d in shape), reason
    plan.preprocess_ref, plan.preprocess = preprocess_of(arch)
    wanted = {n: s for n, s in dataset.splits().items() if splits is None or n in splits}
    check_arrays_fit(dataset.name, [s for s in wanted.values() if s.kind == "arrays"], plan.input_shape)
    for name, split in wanted.items():
        if split.kind == "arrays":
            plan.arrays[name] = (fit_images(split.x, plan.input_shape, resize=dataset.resize), split.y)
    if any(split.kind != "arrays" for split in wanted.values()):
        needs_tensorflow(config.seed)  # files and tf.data splits go through tf.data
        from cnnreg.datasets.pipeline import prepare_sources

        plan.streams = prepare_sources(dataset, plan.input_shape, tuple(wanted))
    if dataset.skipped:
        shown = ", ".join(dataset.skipped[:5]) + (f", ... {len(dataset.skipped) - 5} more" if len(dataset.skipped) > 5 else "")
        plan.warnings.append(f"skipped {len(dataset.skipped)} unreadable image file(s): {shown}")
    if config.class_weight == "balanced" and "train" in wanted:
        plan.class_weights = class_weights(dataset.train.labels(), dataset.num_classes)
        low, high = min(plan.class_weights.values()), max(plan.class_weights.values())
        plan.notes.append(f"class weights (balanced): {low:.3g} to {high:.3g}")
    return plan


#: Share of the machine's memory a dataset's arrays, resized to the input shape, may take.
ARRAYS_FRACTION = 0.5


def check_arrays_fit(name: str, splits: list, input_shape: tuple[int, int, int]) -> None:
    """Refuse, in one line and before anything is allocated, NumPy splits that would not fit in
    memory once resized to ``input_shape`` (float32): ``--input-shape 4000x4000x1`` on digits is
    115 GB, which the operating system would grant and then kill the process for."""
    from cnnreg.analysis.units import format_bytes
    from cnnreg.datasets.pipeline import memory_bytes

    height, width, channels = input_shape
    examples = sum(len(s.x) for s in splits if tuple(s.x.shape[1:]) != (height, width, channels))
    need = examples * height * width * channels * 4
    room = int(memory_bytes() * ARRAYS_FRACTION)
    if need > room:
        raise CnnregError(f"dataset '{name}' at {height}x{width}x{channels} would take {format_bytes(need)} in memory "
                          f"({examples:,} images as float32), more than {format_bytes(room)} (half of this machine's "
                          "memory); choose a smaller --input-shape")


def needs_tensorflow(seed: int) -> None:
    """Import TensorFlow for tf.data (TFDS, image folders) without its native start-up lines,
    and give it the run's seed when Keras runs on another backend (there ``prepare`` left it
    unimported, so ``keras.utils.set_random_seed`` did not seed it)."""

    if "tensorflow" in sys.modules:
        return
    from cnnreg.backends.tensorflow import quiet_import

    try:
        quiet_import()
    except ImportError:
        return  # the dataset's own code says what to install
    import keras

    if keras.backend.backend() != "tensorflow":
        import tensorflow as tf

        tf.random.set_seed(seed)


def training_data(plan: Plan, *, first_epoch: int = 0) -> dict[str, Any]:
    """``model.fit`` arguments for the training split.

    Files and tf.data splits go through :func:`cnnreg.datasets.pipeline.training_batches`.
    NumPy arrays without augmentation or batch transforms: on TensorFlow through
    :func:`cnnreg.datasets.pipeline.array_batches` (the order of :func:`make_batches`, a new one
    each epoch), elsewhere to ``fit`` directly (Keras shuffles them, seeded by
    ``keras.utils.set_random_seed``); otherwise a :func:`make_batches` dataset produces them.
    """
    extra = {"class_weight": plan.class_weights} if plan.class_weights else {}
    regularisers = [reg for _, reg in plan.regularisers]
    if "train" in plan.streams:
        from cnnreg.datasets import pipeline
        from cnnreg.kinds.regularisers import combine_batch_transforms

        def make_augment(lane: int):  # each lane its own layers, seeded apart
            import keras

            seed = plan.config.seed + 7919 * lane
            return keras.Sequential(augmentation_layers(regularisers, seed), name=f"augmentation_{lane}")

        augments = bool(augmentation_layers(regularisers, plan.config.seed))
        transform = combine_batch_transforms([t for _, reg in plan.regularisers if (t := reg.batch_transform()) is not None])
        batches = pipeline.training_batches(plan, plan.streams["train"], first_epoch=first_epoch,
                                            make_augment=make_augment if augments else None, batch_transform=transform)
        return {"x": batches, "steps_per_epoch": plan.steps_per_epoch, "shuffle": False, **extra}
    arrays = plain_arrays(plan)
    if arrays is None:
        return {"x": make_batches(plan, first_epoch=first_epoch), "shuffle": False, **extra}
    x, y = arrays
    from cnnreg.datasets.pipeline import array_batches, on_tensorflow

    if on_tensorflow():
        batches = array_batches(x, y, batch_size=plan.config.batch_size, seed=plan.config.seed, first_epoch=first_epoch)
        return {"x": batches, "steps_per_epoch": plan.steps_per_epoch, "shuffle": False, **extra}
    return {"x": x, "y": y, "shuffle": True, "batch_size": plan.config.batch_size, **extra}


def plain_arrays(plan: Plan) -> tuple[np.ndarray, np.ndarray] | None:
    """The NumPy training split preprocessed, with one-hot labels, when batches need nothing
    else (no augmentation, no batch transform, one process); None otherwise (a stream, or
    :func:`make_batches`)."""
    regularisers = [reg for _, reg in plan.regularisers]
    if "train" in plan.streams or processes(plan) > 1 or augmentation_layers(regularisers, plan.config.seed) or any(
        reg.batch_transform() for reg in regularisers
    ):
        return None
    x, y = plan.arrays["train"]
    return plan.preprocess(np.array(x, dtype="float32", copy=True)), np.eye(plan.dataset.num_classes, dtype="float32")[y]


def held_out_pipeline(x: np.ndarray, y: np.ndarray | None = None, *, batch_size: int):
    """Arrays of a held-out split for ``model.evaluate`` / ``predict`` on TensorFlow: one pass of
    :func:`cnnreg.datasets.pipeline.array_batches` (no stall when Keras drops its iterator);
    None on the other backends, which take the arrays themselves."""
    from cnnreg.datasets.pipeline import array_batches, on_tensorflow

    return array_batches(x, y, batch_size=batch_size) if on_tensorflow() else None


def make_batches(plan: Plan, *, first_epoch: int = 0):
    """Training batches: seeded shuffle per epoch, augmentation, preprocess, one-hot labels.

    Batch ``i`` of epoch ``e`` depends only on (seed, e, i), so a resumed or rerun run sees the
    same batches.  The epoch counter lives here (advanced by Keras' ``on_epoch_end``) rather
    than in a callback, because Keras may fetch the next epoch's first batches early.  Without
    augmentation (whose Keras layers keep RNG state) batches are prepared by worker threads.

    With several processes (multi-host JAX) every process draws the same global batch and keeps
    its own contiguous part of it, so the global batch is the one a single process would train on.
    """
    import os

    import keras

    x, y = plan.arrays["train"]
    num_classes = plan.dataset.num_classes
    augment_layers = augmentation_layers([reg for _, reg in plan.regularisers], plan.config.seed)
    from cnnreg.kinds.regularisers import combine_batch_transforms

    batch_transform = combine_batch_transforms([t for _, reg in plan.regularisers if (t := reg.batch_transform()) is not None])
    preprocess = plan.preprocess
    pre = None if augment_layers else preprocess(np.array(x, dtype="float32", copy=True))
    augment = keras.Sequential(augment_layers, name="augmentation") if augment_layers else None
    eye = np.eye(num_classes, dtype="float32")
    seed, batch_size = plan.config.seed, plan.config.batch_size
    parts = processes(plan)
    rank = plan.distribution.process_index if parts > 1 else 0
    workers = 1 if augment is not None else max(1, min(4, (os.cpu_count() or 1) - 1))

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=4)
            self.epoch = first_epoch
            self._orders: dict[int, np.ndarray] = {}

        def order(self, epoch: int) -> np.ndarray:
            if epoch not in self._orders:
                self._orders = {epoch: np.random.default_rng([seed, epoch]).permutation(len(y))}
            return self._orders[epoch]

        def __len__(self):
            return math.ceil(len(y) / batch_size)

        def on_epoch_end(self):
            self.epoch += 1

        def __getitem__(self, index):
            epoch = self.epoch
            rows = np.sort(self.order(epoch)[index * batch_size : (index + 1) * batch_size])
            if parts > 1:  # this process's part of the global batch (its length divides evenly)
                share = len(rows) // parts
                rows = rows[rank * share : (rank + 1) * share]
            labels = eye[y[rows]]
            if augment is None:
                images = pre[rows]
            else:
                images = keras.ops.convert_to_numpy(augment(x[rows], training=True)).astype("float32")
                images = preprocess(images)
            if batch_transform is not None:
                rng = np.random.default_rng([seed, epoch, index, 7])
                images, labels = batch_transform(images, labels, rng)
            return images, labels

    return Batches()


def processes(plan: Plan) -> int:
    return plan.distribution.processes if plan.distribution is not None else 1


def held_out(plan: Plan, name: str, *, shard: bool = False):
    """A validation or test split, preprocessed with one-hot labels: ``(x, y)`` arrays, or a
    batched tf.data dataset for files and tf.data splits; None when the split does not exist.

    ``shard``: with several processes, only this process's contiguous share (they evaluate
    their shares together, each with batches of ``batch_size / processes``).
    """
    if name in plan.streams:
        from cnnreg.datasets.pipeline import held_out_batches

        return held_out_batches(plan, plan.streams[name], shard=shard)
    if name not in plan.arrays:
        return None
    x, y = plan.arrays[name]
    if shard and processes(plan) > 1:
        part = plan.distribution.shard(len(y))
        x, y = x[part], y[part]
    return plan.preprocess(np.array(x, dtype="float32", copy=True)), np.eye(plan.dataset.num_classes, dtype="float32")[y]
