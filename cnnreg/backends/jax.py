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
