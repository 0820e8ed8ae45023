"""JAX-only services (imported only when Keras runs on JAX)."""

from __future__ import annotations

from typing import Any


def make_deterministic() -> None:
    # XLA on CPU is deterministic; on GPU determinism needs XLA_FLAGS set before jax starts
    # (--xla_gpu_deterministic_ops=true), which a running process cannot change.
    return None


def devices() -> list[dict[str, Any]]:
    import jax

    found = []
    for device in jax.devices():
        if device.platform == "cpu":
            continue
        stats = device.memory_stats() or {}
        capability = getattr(device, "compute_capability", None)  # "9.0" on NVIDIA GPUs
        found.append({"name": device.device_kind, "kind": device.platform, "memory_bytes": stats.get("bytes_limit"),
                      "compute_capability": tuple(int(p) for p in str(capability).split(".")) if capability else None})
    return found


def peak_memory_bytes(index: int = 0) -> int | None:
    import jax

    stats = jax.devices()[index].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def versions() -> dict[str, str]:
    import jax

    return {"jax": jax.__version__}


def initialize_distributed(coordinator: str, num_processes: int, process_id: int, *, timeout: int = 60) -> None:
    """Join a multi-process JAX run; a coordinator that cannot be reached fails within ``timeout``."""
    import socket
    import time

    import jax

    from cnnreg.errors import CnnregError

    if process_id != 0:
        # jax aborts the whole process (SIGABRT) when the coordinator never answers, so check
        # that it can be reached first, for at most ``timeout`` seconds.
        host, _, port = coordinator.rpartition(":")
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=max(0.1, min(2.0, deadline - time.monotonic()))).close()
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise CnnregError(f"cannot join the JAX coordinator at {coordinator} within {timeout} s: {exc}") from None
                time.sleep(0.5)
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id,
            initialization_timeout=timeout,
        )
    except Exception as exc:  # jax raises RuntimeError/XlaRuntimeError with multi-line text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CnnregError(f"cannot join the JAX coordinator at {coordinator} within {timeout} s: {first[:200]}") from None


def input_gradient(fn, x):
    """``(fn(x), d fn / d x)`` with ``jax.value_and_grad`` (traces ``fn``; works inside ``jit``)."""
    import jax
    import jax.numpy as jnp

    return jax.value_and_grad(fn)(jnp.asarray(x))


def compile_function(fn, variables):
    """``jax.jit`` of ``fn`` run in a ``keras.StatelessScope`` that maps ``variables`` to values
    passed as arguments: the weights are inputs of the compiled code, not constants folded into
    it (a large model would take long to compile).  It compiles again for a new batch size."""
    import jax
    import keras

    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*args)

    compiled = jax.jit(pure)

    def call(*args):
        return compiled([v.value for v in variables], *args)

    return call


def wrap_train_step(model, apply, *, seed):
    """The pure ``train_step(state, data)`` calling ``apply`` first (see
    :func:`cnnreg.backends.wrap_train_step`).

    JAX's step is a function of its ``state`` = (trainable, non-trainable, optimizer, metrics
    values), not of the variables (whose values are stale inside ``jit``): the transform runs in
    a ``keras.StatelessScope`` mapping the model's variables to the state's values, so its
    logits and input gradients are those of this step's weights, and whatever it would assign is
    dropped.  Its random numbers come from a key folded from ``seed``, the optimizer's step count
    read from the state, and the call's index within the step."""
    import itertools

    import jax
    import keras

    _check_not_nnx()
    own = type(model).train_step

    def train_step(state, data):
        trainable, non_trainable, optimizer_variables, _ = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        iteration = optimizer_variables[_iterations_index(model.optimizer)]
        key = jax.random.fold_in(jax.random.PRNGKey(seed), iteration)
        calls = itertools.count()

        def uniform(shape, low, high):
            shape = tuple(int(d) for d in shape)
            return jax.random.uniform(jax.random.fold_in(key, next(calls)), shape, "float32", low, high)

        mapping = [*zip(model.trainable_variables, trainable), *zip(model.non_trainable_variables, non_trainable)]
        with keras.StatelessScope(state_mapping=mapping):
            x, y = apply(x, y, uniform, iteration)
        x, y = jax.lax.stop_gradient(x), jax.lax.stop_gradient(y)
        return own(model, state, keras.utils.pack_x_y_sample_weight(x, y, sample_weight))

    return train_step


def _iterations_index(optimizer) -> int:
    """Where the optimizer's step count sits in the state's optimizer values (the order of
    ``optimizer.variables``; a LossScaleOptimizer's count is its inner optimizer's)."""
    counter = optimizer.iterations
    for index, variable in enumerate(optimizer.variables):
        if variable is counter:
            return index
    for index, variable in enumerate(optimizer.variables):
        if variable.path == counter.path:
            return index
    raise RuntimeError(f"the optimizer's step count is not among its variables ({type(optimizer).__name__})")


def _check_not_nnx() -> None:
    """With Flax NNX enabled Keras jits ``type(model).train_step``: an instance's step is ignored."""
    import keras

    enabled = getattr(keras.config, "is_nnx_enabled", lambda: False)
    if enabled():
        from cnnreg.errors import CnnregError

        raise CnnregError("adversarial training (a training-step transform) does not work with Keras' Flax NNX "
                          "mode on JAX; unset KERAS_NNX_ENABLED")
