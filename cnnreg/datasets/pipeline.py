"""The tf.data input pipeline for image files and ``tf.data`` splits (imports TensorFlow).

Per split, :class:`Source` fits the examples to the model's input::

    files:     cnnreg.images.read_image (Pillow; channels converted) → resize  ┐ parallel,
    tf.data:   image → channels converted → resize                            ┘ uint8 out

and, when every split fits in :data:`CACHE_FRACTION` of the machine's memory, keeps the result
in memory (one parallel pass at the start of the run: files that fail to decode are skipped and
counted before training starts, and later epochs never decode again).  A split that does not
fit is decoded again each epoch.  :func:`training_batches` then builds::

    epoch e: seeded permutation (numpy, seed and e) → gather / decode → batch
          → augmentation (training split only, in AUGMENT_LANES parallel lanes)
          → preprocess → one-hot (→ mixup/cutmix) → prefetch

so batch ``i`` of epoch ``e`` holds the same images whatever happened before (a rerun, a resume),
exactly like the NumPy path (:func:`cnnreg.training.batches.make_batches`).  :func:`held_out_batches`
does the same without shuffling or augmentation.  tf.data feeds every Keras backend; with the
TensorFlow backend augmentation and preprocessing run in the graph, with the others through
``tf.numpy_function``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from cnnreg.errors import CnnregError

__all__ = ["CACHE_FRACTION", "Source", "prepare_sources", "training_batches", "held_out_batches",
           "array_batches", "steady", "on_tensorflow", "fit_tensor", "decode_file", "memory_bytes"]

#: Share of the machine's memory the in-memory caches of all splits together may use.
CACHE_FRACTION = 0.25
#: Augmentation lanes (see :func:`training_batches`): fixed rather than the core count, so that a
#: rerun on another machine draws the same augmentations.
AUGMENT_LANES = 4
#: Shuffle buffer of a ``tf.data`` split that is streamed (too large to cache).
STREAM_SHUFFLE_BUFFER = 10_000


def _tf():
    import tensorflow as tf

    return tf


def memory_bytes() -> int:
    """Physical memory of this machine (bytes); 8 GiB when it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


# --- one image ------------------------------------------------------------------------------


def decode_file(path: Any, channels: int):
    """An image file → float32 (H, W, ``channels``) by :func:`cnnreg.images.read_image`, the
    decoder ``cnnreg predict`` uses too (a file that fails raises, for ``ignore_errors``)."""
    from cnnreg.images import max_pixels, read_image

    tf = _tf()
    limit = max_pixels()  # read once, here: a bad setting is one line, not a failure per file

    def read(p):  # the path arrives as bytes (in tf.data) or a 0-d array of bytes (eagerly)
        return read_image(os.fsdecode(np.asarray(p).item()), channels, limit)

    image = tf.numpy_function(read, [path], tf.uint8, stateful=False)
    return tf.cast(tf.ensure_shape(image, [None, None, channels]), tf.float32)


def to_channels(image: Any, channels: int):
    """uint8/float (H, W, 1..4) → float32 (H, W, ``channels``): gray repeated to RGB, RGB to the
    ITU-R 601 luma, alpha dropped — as :func:`cnnreg.kinds.datasets.convert_channels` does."""
    tf = _tf()
    image = tf.cast(image, tf.float32)
    have = tf.shape(image)[-1]
    rgb = tf.cond(have < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
    if channels == 3:
        return tf.ensure_shape(rgb, [None, None, 3])
    gray = tf.reduce_sum(rgb * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
    gray = tf.cond(have < 3, lambda: image[..., :1], lambda: gray)  # gray stays exactly gray
    return tf.ensure_shape(gray, [None, None, 1])


def fit_tensor(image: Any, size: tuple[int, int], resize: str = "stretch"):
    """float32 (H, W, C) → float32 ``size`` + (C,), bilinear, like ``keras.ops.image.resize``
    with ``crop_to_aspect_ratio`` (crop) or ``pad_to_aspect_ratio`` (pad, black) so that the
    training pipeline and :func:`cnnreg.kinds.datasets.fit_images` (``cnnreg predict``) agree."""
    tf = _tf()
    target_h, target_w = size
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    if resize == "crop":
        crop_h = tf.maximum(tf.minimum(height, tf.cast(tf.cast(width * target_h, tf.float32) / target_w, tf.int32)), 1)
        crop_w = tf.maximum(tf.minimum(width, tf.cast(tf.cast(height * target_w, tf.float32) / target_h, tf.int32)), 1)
        top = tf.cast(tf.cast(height - crop_h, tf.float32) / 2, tf.int32)
        left = tf.cast(tf.cast(width - crop_w, tf.float32) / 2, tf.int32)
        image = image[top : top + crop_h, left : left + crop_w, :]
    elif resize == "pad":
        pad_h = tf.maximum(height, tf.cast(tf.cast(width * target_h, tf.float32) / target_w, tf.int32))
        pad_w = tf.maximum(width, tf.cast(tf.cast(height * target_w, tf.float32) / target_h, tf.int32))
        top = tf.cast(tf.cast(pad_h - height, tf.float32) / 2, tf.int32)
        left = tf.cast(tf.cast(pad_w - width, tf.float32) / 2, tf.int32)
        image = tf.pad(image, [[top, top], [left, left], [0, 0]])
    return tf.image.resize(image, (target_h, target_w), method="bilinear")


def _to_uint8(image: Any):
    tf = _tf()
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


# --- a split fitted to the model's input -----------------------------------------------------


class Source:
    """A files or ``tf.data`` split fitted to ``shape`` (H, W, C) with the ``resize`` mode."""

    def __init__(self, split: Any, *, shape: tuple[int, int, int], resize: str, name: str, root: str = "") -> None:
        self.split, self.shape, self.resize, self.name, self.root = split, tuple(shape), resize, name, root
        #: uint8 (N, H, W, C) tensor once cached in memory (:meth:`cache`), else None.
        self.images: Any = None
        #: Indices (in split order) of the examples that decoded, once cached.
        self.kept: np.ndarray | None = None
        self.labels: np.ndarray | None = split.y
        #: Examples that could not be decoded: "path (reason)".
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.labels) if self.labels is not None else len(self.split)

    @property
    def nbytes(self) -> int:
        height, width, channels = self.shape
        return len(self.split) * height * width * channels

    def fit(self, image: Any):
        """One decoded image (any size and channels) → uint8 ``shape``."""
        return _to_uint8(fit_tensor(to_channels(image, self.shape[2]), self.shape[:2], self.resize))

    def load(self, path: Any, *, cache: bool = True):
        """One image file → ``shape``: uint8 to cache, float32 (not rounded) when streamed."""
        image = fit_tensor(decode_file(path, self.shape[2]), self.shape[:2], self.resize)
        return _to_uint8(image) if cache else image

    def examples(self):
        """``(index, uint8 image, label)`` in split order; undecodable examples dropped."""
        tf = _tf()
        autotune = tf.data.AUTOTUNE
        if self.split.kind == "files":
            ds = tf.data.Dataset.from_tensor_slices((np.arange(len(self.split.files)), self.split.files, self.split.y))
            ds = ds.map(lambda i, path, y: (i, self.load(path), y), num_parallel_calls=autotune, deterministic=False)
        else:
            ds = self.split.examples.enumerate()
            ds = ds.map(lambda i, ex: (i, self.fit(ex[0]), tf.cast(ex[1], tf.int64)), num_parallel_calls=autotune, deterministic=False)
        return ds.ignore_errors()

    def cache(self) -> None:
        """Decode and resize every example once, in parallel, into memory; count failures."""
        tf = _tf()
        n = len(self.split)
        images = np.zeros((n, *self.shape), dtype=np.uint8)
        labels = np.full(n, -1, dtype=np.int64)
        ok = np.zeros(n, dtype=bool)
        for index, batch, y in self.examples().batch(256).as_numpy_iterator():
            keep = index < n
            images[index[keep]], labels[index[keep]], ok[index[keep]] = batch[keep], y[keep], True
        if self.split.kind == "files":
            for i in np.flatnonzero(~ok):
                self.skipped.append(f"{self._relative(self.split.files[i])} ({self._reason(self.split.files[i])})")
        elif not ok.all():
            self.skipped.extend(f"{self.name} example {i} (does not decode)" for i in np.flatnonzero(~ok)[:100])
        self.kept = np.flatnonzero(ok)
        if not ok.all():
            images, labels = images[ok], labels[ok]
        if not len(labels):
            raise CnnregError(f"no example of the {self.name} split could be decoded")
        self.images, self.labels = tf.convert_to_tensor(images), labels

    def trim(self, n: int) -> None:
        """Keep the first ``n`` cached examples (several devices: every batch must split evenly)."""
        self.images, self.labels, self.kept = self.images[:n], self.labels[:n], self.kept[:n]

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.root) if self.root and path.startswith(self.root) else path

    def _reason(self, path: str) -> str:
        """Why a file failed in the pipeline: the decoder's own reason (too large, truncated...)."""
        from cnnreg.images import ImageError, read_image

        try:
            read_image(path, self.shape[2])
        except ImageError as exc:
            return exc.reason
        return "does not decode"


def prepare_sources(dataset: Any, shape: tuple[int, int, int], names: tuple[str, ...] | None = None) -> dict[str, Source]:
    """Sources for the files / tf.data splits of ``dataset``; cached in memory when all fit.

    Decoding failures are added to ``dataset.skipped`` and the split sizes shrink accordingly.
    """
    splits = {n: s for n, s in dataset.splits().items() if s.kind != "arrays" and (names is None or n in names)}
    sources = {n: Source(s, shape=shape, resize=dataset.resize, name=n, root=dataset.location) for n, s in splits.items()}
    if sum(s.nbytes for s in sources.values()) <= CACHE_FRACTION * memory_bytes():
        for name, source in sources.items():
            source.cache()
            dataset.skipped.extend(source.skipped)
            split = splits[name]
            # keep the split's own view (sizes, label counts) in step with what decoded
            if split.kind == "files":
                split.files = [split.files[i] for i in source.kept]
            else:
                split.size = len(source.labels)
            split.y = source.labels
    return sources


# --- batches ---------------------------------------------------------------------------------


def _batch_rows(size: int, *, batch_size: int, seed: int, first_epoch: int, lane: int = 0, lanes: int = 1,
                rank: int = 0, processes: int = 1):
    """``(epoch, index, rows)`` of every ``lanes``-th batch from ``first_epoch`` on, starting
    with the ``lane``-th: epoch ``e`` is the permutation ``default_rng([seed, e])`` of the
    examples (the NumPy path's order), cut into batches.  With several ``processes``, process
    ``rank`` gets its contiguous part of each (sorted) global batch.

    Python runs once an epoch (the permutation), not once a batch: a generator of batches,
    which holds the GIL for each, took ResNet-34's epochs on digits from 4.5 s to 7.7 s."""
    tf = _tf()

    def permutation(epoch):
        return np.random.default_rng([seed, int(epoch)]).permutation(size).astype(np.int64)

    def epoch_rows(epoch):
        order = tf.ensure_shape(tf.numpy_function(permutation, [epoch], tf.int64, stateful=False), [size])
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return batches.map(lambda index, rows: (epoch, index, rows))

    ds = tf.data.Dataset.counter(first_epoch).flat_map(epoch_rows)
    if lanes > 1:
        ds = ds.shard(lanes, lane)  # batch g of the run goes to lane g % lanes
    if processes > 1:
        def share(epoch, index, rows):
            part = tf.shape(rows)[0] // processes
            return epoch, index, tf.sort(rows)[rank * part : (rank + 1) * part]

        ds = ds.map(share)
    return ds


def _epoch_batches(source: Source, *, batch_size: int, seed: int, first_epoch: int, lane: int = 0, lanes: int = 1,
                   rank: int = 0, processes: int = 1):
    """``(uint8 images, labels, epoch, index)`` batches, one epoch after another (every
    ``lanes``-th batch, from the ``lane``-th, for cached and file splits; with several
    processes, this process's part of each, cached splits only)."""
    tf = _tf()
    autotune = tf.data.AUTOTUNE
    options = {"batch_size": batch_size, "seed": seed, "first_epoch": first_epoch, "lane": lane, "lanes": lanes}
    if source.images is not None:
        images, labels = source.images, tf.constant(source.labels)
        ds = _batch_rows(len(source), **options, rank=rank, processes=processes)
        return ds.map(lambda e, i, rows: (tf.gather(images, rows), tf.gather(labels, rows), e, i))
    if source.split.kind == "files":
        paths, labels = tf.constant(source.split.files), tf.constant(source.split.y)

        def batch(e, i, rows):  # decoded in parallel; a file that fails is left out of its batch
            ds = tf.data.Dataset.from_tensor_slices(rows)
            ds = ds.map(lambda j: (source.load(tf.gather(paths, j), cache=False), tf.gather(labels, j)), num_parallel_calls=autotune)
            return ds.ignore_errors().batch(batch_size).map(lambda x, y: (x, y, e, i))

        return _batch_rows(len(source.split.files), **options).flat_map(batch)
    # a tf.data split too large to cache: shuffle buffer, new order each epoch (seeded); one lane
    ds = source.split.examples.shuffle(STREAM_SHUFFLE_BUFFER, seed=seed * 1_000_003 + first_epoch, reshuffle_each_iteration=True)
    ds = ds.map(lambda image, y: (source.fit(image), tf.cast(y, tf.int64)), num_parallel_calls=autotune)
    steps = math.ceil(len(source.split) / batch_size)
    ds = ds.ignore_errors().batch(batch_size).repeat().enumerate()
    return ds.map(lambda k, batch: (batch[0], batch[1], first_epoch + k // steps, k % steps))


def steady(ds):
    """``ds`` without tf.data's autotuning thread.  Keras makes a new iterator of a finite
    dataset every epoch and every validation pass, and an iterator's destructor waits for that
    thread: on 2 busy cores it slept through the wake-up about 1 epoch in 3 and held training
    still for 4-5 s (docs/performance.md, "The README's main job").  Without it, a parallel map
    given AUTOTUNE runs on as many threads as there are cores."""
    tf = _tf()
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def array_batches(x: np.ndarray, y: np.ndarray | None = None, *, batch_size: int, seed: int | None = None,
                  first_epoch: int = 0):
    """NumPy arrays (preprocessed images, one-hot labels) for Keras on TensorFlow.

    With a ``seed``: the training split, epoch after epoch, for ``model.fit(ds, steps_per_epoch=...)``
    (one iterator for the whole fit); epoch ``e`` is the permutation ``default_rng([seed, e])``,
    the order of :func:`cnnreg.training.batches.make_batches`, so a resumed run sees the batches
    it would have seen.  (Keras' own pipeline for arrays draws its permutation with a stateful
    op that starts over with every new iterator once a global seed is set: every epoch would
    see the same order.)  Without: one pass in order (validation, predictions).  Both
    :func:`steady`."""
    tf = _tf()
    if seed is None:
        ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(batch_size)
        return steady(ds.prefetch(1))
    images, labels = tf.constant(x), tf.constant(y)
    rows = _batch_rows(len(x), batch_size=batch_size, seed=seed, first_epoch=first_epoch)
    return steady(rows.map(lambda e, i, batch: (tf.gather(images, batch), tf.gather(labels, batch))).prefetch(2))


def on_tensorflow() -> bool:
    """Whether Keras runs on TensorFlow: tf.data work then stays in the graph."""
    import keras

    return keras.backend.backend() == "tensorflow"


def _finish(ds, plan, *, augment=None, batch_transform=None, buffer=None, streamed=False):
    """uint8 batches (+ epoch, index) → augmented, preprocessed, one-hot, prefetched batches.

    ``streamed``: the split is not cached, so a batch may be short of files that failed to
    decode; with several devices such a batch is cut to a multiple of their number.
    """
    tf = _tf()
    height, width, channels = plan.input_shape
    num_classes, preprocess, seed = plan.dataset.num_classes, plan.preprocess, plan.config.seed
    in_graph = on_tensorflow()
    if augment is not None:
        if in_graph:  # Keras layers keep their RNG state: one batch after another, reproducibly
            ds = ds.map(lambda x, y, e, i: (augment(tf.cast(x, tf.float32), training=True), y, e, i))
        else:
            import keras

            def run(x):
                return np.asarray(keras.ops.convert_to_numpy(augment(x.astype("float32"), training=True)), dtype="float32")

            ds = ds.map(lambda x, y, e, i: (tf.numpy_function(run, [x], tf.float32), y, e, i))
    if in_graph:
        prepare = lambda x: tf.cast(preprocess(tf.cast(x, tf.float32)), tf.float32)  # noqa: E731
    else:
        prepare = lambda x: tf.numpy_function(lambda a: np.asarray(preprocess(a.astype("float32")), dtype="float32"), [x], tf.float32)  # noqa: E731

    def finish(x, y, e, i):
        images = tf.ensure_shape(prepare(x), [None, height, width, channels])
        onehot = tf.one_hot(y, num_classes, dtype=tf.float32)
        if batch_transform is not None:
            def mix(a, b, epoch, index):
                rng = np.random.default_rng([seed, int(epoch), int(index), 7])
                a, b = batch_transform(a, b, rng)
                return np.asarray(a, dtype="float32"), np.asarray(b, dtype="float32")

            images, onehot = tf.numpy_function(mix, [images, onehot, e, i], (tf.float32, tf.float32))
            images = tf.ensure_shape(images, [None, height, width, channels])
            onehot = tf.ensure_shape(onehot, [None, num_classes])
        return images, onehot

    parallel = None if batch_transform is not None and not in_graph else tf.data.AUTOTUNE
    ds = ds.map(finish, num_parallel_calls=parallel)
    replicas = plan.distribution.replicas if getattr(plan, "distribution", None) is not None else 1
    if replicas > 1 and streamed:  # cached splits are trimmed once, up front (run.prepare)
        ds = ds.map(lambda x, y: (x[: tf.shape(x)[0] // replicas * replicas], y[: tf.shape(y)[0] // replicas * replicas]))
        ds = ds.filter(lambda x, y: tf.shape(x)[0] > 0)
    return ds.prefetch(buffer or tf.data.AUTOTUNE)


def training_batches(plan: Any, source: Source, *, first_epoch: int = 0, make_augment=None, batch_transform=None):
    """The training split, epoch after epoch: ``model.fit(ds, steps_per_epoch=...)``.

    ``make_augment(lane)`` builds the augmentation (a Keras model) of one lane.  Keras' random
    layers keep RNG state, so each lane augments its batches one after another; the
    :data:`AUGMENT_LANES` lanes run in parallel and their batches are taken in turn (batch ``g``
    from lane ``g % AUGMENT_LANES``), which keeps reruns reproducible.
    """
    options = {"batch_size": plan.config.batch_size, "seed": plan.config.seed, "first_epoch": first_epoch}
    distribution = getattr(plan, "distribution", None)
    if distribution is not None and distribution.processes > 1:
        options.update(rank=distribution.process_index, processes=distribution.processes)
    streamed = source.images is None
    if make_augment is None:
        return _finish(_epoch_batches(source, **options), plan, batch_transform=batch_transform, streamed=streamed)
    lanes = AUGMENT_LANES if source.images is not None or source.split.kind == "files" else 1
    parts = [
        _finish(_epoch_batches(source, **options, lane=lane, lanes=lanes), plan, augment=make_augment(lane),
                batch_transform=batch_transform, buffer=2, streamed=streamed)
        for lane in range(lanes)
    ]
    if lanes == 1:
        return parts[0]
    tf = _tf()
    turns = tf.data.Dataset.range(lanes).repeat()
    return tf.data.Dataset.choose_from_datasets(parts, turns).prefetch(tf.data.AUTOTUNE)


def held_out_batches(plan: Any, source: Source, *, shard: bool = False):
    """A validation or test split in its own order, one pass (no augmentation).

    ``shard``: with several processes, this process's contiguous share (cached splits), in
    batches of ``batch_size / processes``.
    """
    tf = _tf()
    batch_size = plan.config.batch_size
    distribution = getattr(plan, "distribution", None)
    if shard and distribution is not None and distribution.processes > 1 and source.images is not None:
        part = distribution.shard(len(source))
        ds = tf.data.Dataset.from_tensor_slices((source.images[part.start : part.stop], source.labels[part]))
        batch_size //= distribution.processes
    elif source.images is not None:
        ds = tf.data.Dataset.from_tensor_slices((source.images, source.labels))
    elif source.split.kind == "files":
        ds = tf.data.Dataset.from_tensor_slices((source.split.files, source.split.y))
        ds = ds.map(lambda path, y: (source.load(path, cache=False), y), num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    else:
        ds = source.split.examples.map(lambda image, y: (source.fit(image), tf.cast(y, tf.int64)), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.ignore_errors()
    ds = ds.batch(batch_size).map(lambda x, y: (x, y, tf.constant(0, tf.int64), tf.constant(0, tf.int64)))
    return _finish(ds, plan, streamed=source.images is None)
