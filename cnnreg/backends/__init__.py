"""Backend-specific services behind one neutral interface.

The core (architectures, initialisers, regularisers, analysis, training loop) uses Keras 3 APIs
only.  What needs a framework — op determinism, device lists and their memory, peak memory —
lives in ``cnnreg.backends.tensorflow`` / ``.jax`` / ``.torch``, imported only for the backend
in use.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

#: Keras backends: the module that must be importable, and what to install for it.
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install tensorflow-cpu (or tensorflow[and-cuda] for GPUs)"),
    "jax": ("jax", "pip install jax (or jax[cuda12] for GPUs)"),
    "torch": ("torch", "pip install torch"),
}


def select(name: str | None = None, *, activate: bool = True) -> str:
    """Choose the Keras backend before keras is imported: ``name``, else ``KERAS_BACKEND``, else
    tensorflow.  One-line errors for an unknown or uninstalled backend, or for a process that
    has already loaded keras with another one."""
    from cnnreg.errors import CnnregError, choices_text

    chosen = (name or os.environ.get("KERAS_BACKEND") or "tensorflow").strip().lower()
    if chosen not in BACKENDS:
        raise CnnregError(f"unknown backend '{chosen}'" + choices_text(chosen, BACKENDS))
    module, install = BACKENDS[chosen]
    if importlib.util.find_spec(module) is None:
        raise CnnregError(f"backend '{chosen}' is not installed: {install}")
    if not activate:  # only check the name (the caller validates other options first)
        return chosen
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != chosen:
            raise CnnregError(
                f"keras is already loaded with the {loaded} backend in this process; "
                f"start a new process with --backend {chosen} or KERAS_BACKEND={chosen}"
            )
        return chosen
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


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
