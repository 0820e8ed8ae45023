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
        found.append({"name": device.device_kind, "kind": device.platform, "memory_bytes": stats.get("bytes_limit")})
    return found


def peak_memory_bytes(index: int = 0) -> int | None:
    import jax

    stats = jax.devices()[index].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def versions() -> dict[str, str]:
    import jax

    return {"jax": jax.__version__}
