"""TensorFlow services: imported for the TensorFlow backend, and on the others for keeping
TensorFlow out (:func:`hide_until_imported`) or bringing it in quietly for tf.data
(:func:`quiet_import`).  TensorFlow itself is imported inside the functions only."""

from __future__ import annotations

from typing import Any


def make_deterministic() -> None:
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def devices() -> list[dict[str, Any]]:
    import tensorflow as tf

    found = []
    for index, device in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(device)
        memory = None
        try:
            memory = tf.config.experimental.get_memory_info(f"GPU:{index}").get("limit")
        except (ValueError, RuntimeError):
            pass
        found.append({"name": details.get("device_name", device.name), "kind": "gpu", "memory_bytes": memory,
                      "compute_capability": details.get("compute_capability")})
    return found


def peak_memory_bytes(index: int = 0) -> int | None:
    import tensorflow as tf

    try:
        return int(tf.config.experimental.get_memory_info(f"GPU:{index}")["peak"])
    except (ValueError, RuntimeError, KeyError):
        return None


def versions() -> dict[str, str]:
    import tensorflow as tf

    return {"tensorflow": tf.__version__}


def quiet_import() -> None:
    """Import tensorflow with its C++ start-up lines (absl, oneDNN notices) sent to /dev/null.

    Those lines are written by native code straight to file descriptor 2 before any Python
    logging setting applies; Python-level errors still propagate normally.
    """
    import os
    import sys

    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        import tensorflow  # noqa: F401
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def hide_until_imported() -> None:
    """On the JAX and PyTorch backends, keep Keras from importing TensorFlow just because it is
    installed.  Keras asks its lazy ``tensorflow`` module whether it is ``available`` (which
    imports it) to seed it in ``set_random_seed`` and to recognise TensorFlow types when it
    serialises a model; without TensorFlow imported there is nothing of it to seed or recognise.
    From here on that module counts as available only once something has imported TensorFlow
    (a tf.data pipeline: :func:`cnnreg.training.batches.needs_tensorflow`).  Call after keras is
    imported, on a backend other than TensorFlow."""
    import sys

    try:
        from keras.src.utils import module_utils
    except ImportError:  # pragma: no cover - a Keras without it: nothing to adjust
        return
    lazy = getattr(module_utils, "tensorflow", None)
    kind = type(lazy)
    if lazy is None or getattr(kind, "_cnnreg_deferred", False) or not isinstance(getattr(kind, "available", None), property):
        return

    class Deferred(kind):
        _cnnreg_deferred = True

        @property
        def available(self):
            return "tensorflow" in sys.modules and kind.available.fget(self)

    lazy.__class__ = Deferred


def mirrored_strategy(*, auto: bool):
    """``(MirroredStrategy, device names)`` over the local GPUs (or, with none, the logical CPU
    devices when there are several, as in tests); ``(None, [])`` when ``auto`` finds one device."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < 2:
        if auto:
            return None, []
        from cnnreg.errors import CnnregError

        raise CnnregError("--distribute mirrored needs at least 2 devices (found 1)")
    return tf.distribute.MirroredStrategy(devices=devices), devices


def split_cpu(count: int) -> None:
    """Expose ``count`` logical CPU devices (call before TensorFlow initialises its devices)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def input_gradient(fn, x):
    """``(fn(x), d fn / d x)`` with a ``tf.GradientTape`` watching ``x`` only."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        value = fn(x)
    return value, tape.gradient(value, x)


def compile_function(fn, variables):
    """``tf.function`` of ``fn``, traced once at the first call with every argument's first
    dimension left open (no retracing for a last, smaller batch); the variables are read as
    ``tf.Variable``s by the graph itself."""
    import tensorflow as tf

    compiled = None

    def call(*args):
        nonlocal compiled
        args = [tf.convert_to_tensor(a) for a in args]
        if compiled is None:
            signature = [tf.TensorSpec((None,) + tuple(a.shape[1:]), a.dtype) for a in args]
            compiled = tf.function(fn, input_signature=signature, autograph=False)
        return compiled(*args)

    return call


def wrap_train_step(model, apply, *, seed):
    """``train_step(data)`` calling ``apply`` first (see :func:`cnnreg.backends.wrap_train_step`).

    Traced by Keras' ``tf.function`` (XLA when it compiles the model): the random numbers are
    ``tf.random.stateless_uniform`` with a seed folded from ``seed``, the call's index within
    the step, the optimizer's step count and the replica (under ``MirroredStrategy``)."""
    import itertools

    import keras
    import tensorflow as tf

    own = type(model).train_step

    def train_step(data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        iteration = tf.cast(tf.convert_to_tensor(model.optimizer.iterations), tf.int64)
        replica = tf.distribute.get_replica_context()
        replica_id = replica.replica_id_in_sync_group if replica is not None else 0
        calls = itertools.count()

        def uniform(shape, low, high):
            base = tf.constant([seed, next(calls)], dtype=tf.int64)
            key = tf.random.experimental.stateless_fold_in(base, iteration)
            key = tf.random.experimental.stateless_fold_in(key, tf.cast(replica_id, tf.int64))
            return tf.random.stateless_uniform(_shape(shape), seed=key, minval=low, maxval=high, dtype=tf.float32)

        x, y = apply(x, y, uniform, iteration)
        x, y = tf.stop_gradient(x), tf.stop_gradient(y)
        return own(model, keras.utils.pack_x_y_sample_weight(x, y, sample_weight))

    return train_step


def _shape(shape):
    """A shape of ints and scalar tensors (``keras.ops.shape`` of a batch of unknown size)."""
    import tensorflow as tf

    if any(d is None for d in shape):
        from cnnreg.errors import CnnregError

        raise CnnregError(f"random numbers of shape {tuple(shape)} inside a training step: pass keras.ops.shape(x), "
                          "not x.shape (the batch size is unknown while the step is traced)")
    if all(isinstance(d, int) for d in shape):
        return list(shape)
    return tf.stack([tf.cast(d, tf.int32) for d in shape])
