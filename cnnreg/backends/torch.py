"""PyTorch-only services (imported only when Keras runs on PyTorch)."""

from __future__ import annotations

from typing import Any


def make_deterministic() -> None:
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)


def devices() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        {"name": torch.cuda.get_device_name(i), "kind": "gpu", "memory_bytes": torch.cuda.get_device_properties(i).total_memory,
         "compute_capability": tuple(torch.cuda.get_device_capability(i))}
        for i in range(torch.cuda.device_count())
    ]


def peak_memory_bytes(index: int = 0) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated(index)) if torch.cuda.is_available() else None


def versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__}
