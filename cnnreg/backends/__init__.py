"""Backend-specific services behind one neutral interface.

The core (architectures, initialisers, regularisers, analysis, training loop) uses Keras 3 APIs
only.  What needs a framework — op determinism, device lists and their memory, peak memory —
lives in ``cnnreg.backends.tensorflow`` / ``.jax`` / ``.torch``, imported only for the backend
in use.
"""

from __future__ import annotations

import importlib
from typing import Any


def _module():
    import keras

    name = keras.backend.backend()
    try:
        return importlib.import_module(f"cnnreg.backends.{name}")
    except ImportError:
        return None


def make_deterministic() -> None:
    """Make ops deterministic where the backend supports it (reruns reproduce on the CPU)."""
    module = _module()
    if module is not None:
        module.make_deterministic()


def devices() -> list[dict[str, Any]]:
    """Accelerators: ``[{"name": ..., "kind": "gpu", "memory_bytes": ...}]``; empty on CPU."""
    module = _module()
    return module.devices() if module is not None else []


def framework_versions() -> dict[str, str]:
    module = _module()
    return module.versions() if module is not None else {}
