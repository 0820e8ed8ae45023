"""Options shared by the commands that build models."""

from __future__ import annotations

from typing import Optional

import typer


def backend_option():
    return typer.Option(
        None, "--backend",
        help="Keras backend: tensorflow (default), jax or torch; also KERAS_BACKEND. Set before keras loads.",
    )


def use_backend(name: Optional[str]) -> str:
    """Select the backend (one-line error when unknown or not installed). Imports nothing."""
    from cnnreg.backends import select

    return select(name)


def load_framework() -> None:
    """Import keras for a command that needs it; on TensorFlow without TensorFlow's native
    start-up chatter on stderr. Call after every option has been checked."""
    import os

    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from cnnreg.backends.tensorflow import quiet_import, split_cpu

        quiet_import()
        if os.environ.get("CNNREG_LOGICAL_CPUS", "").isdigit():  # test aid: several CPU devices
            split_cpu(int(os.environ["CNNREG_LOGICAL_CPUS"]))
    import keras  # noqa: F401
