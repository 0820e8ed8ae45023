"""Training on several devices with the engines that exist: ``tf.distribute.MirroredStrategy``
on TensorFlow, ``keras.distribution.DataParallel`` on JAX (across machines through
``jax.distributed.initialize``).  Never a home-made one.

The global batch is split across the devices, so it must be a multiple of their number; every
split is trimmed to a multiple of it too (at most devices − 1 examples), because the last partial
batch of an epoch must also divide evenly.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from cnnreg.errors import CnnregError, choices_text

MODES = ("auto", "none", "mirrored", "data-parallel")
#: The distribution engine of each backend (Keras' torch backend has none).
NATIVE = {"tensorflow": "mirrored", "jax": "data-parallel"}


@dataclass
class Distribution:
    """How a run is spread over devices."""

    mode: str = "none"  # none | mirrored | data-parallel
    devices: list[str] = field(default_factory=list)
    processes: int = 1
    strategy: Any = None  # tf.distribute.MirroredStrategy for "mirrored"
    process_index: int = 0  # this process (multi-process JAX); 0 writes the run directory
    note: str = ""  # a warning for the run header (devices that go unused)

    @property
    def replicas(self) -> int:
        return max(1, len(self.devices)) if self.mode != "none" else 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory (process 0, or the only one)."""
        return self.process_index == 0

    def shard(self, n: int) -> slice:
        """This process's contiguous share of ``n`` examples (all of them with one process)."""
        share = n // self.processes
        return slice(self.process_index * share, (self.process_index + 1) * share)

    def scope(self):
        """Build and compile inside this (MirroredStrategy needs it; the others need nothing)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self, batch_size: int) -> str:
        if self.mode == "none":
            return "one device"
        per = batch_size // self.replicas
        hosts = f" on {self.processes} processes" if self.processes > 1 else ""
        return f"{self.mode} over {self.replicas} devices{hosts} ({', '.join(self.devices)}): batch {batch_size} = {self.replicas} × {per}"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "devices": list(self.devices), "processes": self.processes}


def check_args(mode: str, backend: str, *, coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> str:
    """Validate the options before keras is imported; returns the normalised mode."""
    mode = (mode or "auto").strip().lower().replace("_", "-")
    if mode not in MODES:
        raise CnnregError(f"unknown --distribute '{mode}'" + choices_text(mode, MODES))
    if mode in ("mirrored", "data-parallel") and mode != NATIVE.get(backend):
        engine = {"mirrored": "tensorflow", "data-parallel": "jax"}[mode]
        instead = f"on {backend} use {NATIVE[backend]}" if backend in NATIVE else f"Keras' {backend} backend trains on one device: use none"
        raise CnnregError(f"--distribute {mode} needs the {engine} backend ({instead})")
    num_processes = num_processes if num_processes is not None else env_int("JAX_NUM_PROCESSES")
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is not None and num_processes > 1:
        if backend != "jax":
            raise CnnregError("--num-processes needs the jax backend (multi-host training uses jax.distributed)")
        if not coordinator:
            raise CnnregError("--num-processes 2 or more needs --coordinator HOST:PORT (or JAX_COORDINATOR_ADDRESS)")
        if ":" not in coordinator or not coordinator.rsplit(":", 1)[1].isdigit():
            raise CnnregError(f"--coordinator must be HOST:PORT (got '{coordinator}')")
        pid = process_id if process_id is not None else env_int("JAX_PROCESS_ID")
        if pid is None or not 0 <= pid < num_processes:
            raise CnnregError(f"--process-id must be in 0..{num_processes - 1} (got {pid})")
        if mode == "none":
            raise CnnregError("--num-processes 2 or more trains data-parallel; use --distribute auto or data-parallel, not none")
    elif num_processes is not None and num_processes < 1:
        raise CnnregError(f"--num-processes must be >= 1 (got {num_processes})")
    return mode


def env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() else None


def setup(mode: str, *, coordinator: str | None = None, num_processes: int | None = None,
          process_id: int | None = None, timeout: int = 60) -> Distribution:
    """Start the distribution (imports keras). Call before the model is built."""
    import keras

    backend = keras.backend.backend()
    mode = check_args(mode, backend, coordinator=coordinator, num_processes=num_processes, process_id=process_id)
    processes = 1
    num_processes = num_processes if num_processes is not None else env_int("JAX_NUM_PROCESSES")
    if backend == "jax" and num_processes and num_processes > 1:
        from cnnreg.backends.jax import initialize_distributed

        initialize_distributed(
            coordinator or os.environ["JAX_COORDINATOR_ADDRESS"], num_processes,
            process_id if process_id is not None else env_int("JAX_PROCESS_ID"), timeout=timeout,
        )
        processes = num_processes
    if mode == "none":
        return Distribution()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        if mode == "auto" and len(devices) < 2:
            return Distribution()
        # Several processes: each one feeds its own share of every global batch (cnnreg shards
        # the data itself), so Keras must not shard it again.
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices, auto_shard_dataset=processes == 1))
        import jax

        return Distribution("data-parallel", list(devices), processes, process_index=jax.process_index())
    if backend == "tensorflow":
        from cnnreg.backends.tensorflow import mirrored_strategy

        strategy, devices = mirrored_strategy(auto=mode == "auto")
        if strategy is None:
            return Distribution()
        return Distribution("mirrored", devices, 1, strategy)
    # torch: Keras' torch backend has no distribution API, so a run uses one device.
    return Distribution(note=_torch_note())


def _torch_note() -> str:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2:
        return ""
    return (f"{count} GPUs, but Keras' torch backend trains on one; --backend jax (data-parallel) or "
            "tensorflow (mirrored) uses them all")


def trim(n: int, replicas: int) -> int:
    """The number of examples kept so that every batch divides evenly over ``replicas``."""
    return n - n % replicas


def check_batch(batch_size: int, distribution: Distribution) -> None:
    if batch_size % distribution.replicas:
        raise CnnregError(
            f"--batch-size {batch_size} must be a multiple of the {distribution.replicas} devices "
            f"of --distribute {distribution.mode} (e.g. {distribution.replicas * max(1, batch_size // distribution.replicas)})"
        )
