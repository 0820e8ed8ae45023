"""Finding keras-cv: a missing or broken install is one clear line, not a traceback."""

from __future__ import annotations

import importlib.util
from typing import Any

from cnnreg.errors import PluginError

INSTALL = "pip install 'keras-cv==0.9.*' (it needs TensorFlow: pip install 'cnnreg[tensorflow]')"


def available() -> bool:
    """Whether keras-cv looks installed (without importing it, which imports TensorFlow)."""
    try:
        return importlib.util.find_spec("keras_cv") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["keras_cv"] is None
        return False


def check(what: str) -> None:
    """Raise :class:`PluginError` now (before any training) when keras-cv is not installed."""
    if not available():
        raise PluginError(f"{what} needs keras-cv, which is not installed; {INSTALL}")


def keras_cv(what: str) -> Any:
    """Import and return keras_cv, or raise :class:`PluginError` with one line."""
    try:
        import keras_cv
    except ImportError as exc:
        raise PluginError(f"{what} needs keras-cv, which cannot be imported ({exc}); {INSTALL}") from None
    return keras_cv
