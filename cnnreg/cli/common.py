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
    """Select the backend (one-line error when unknown or not installed); on TensorFlow, load it
    now without its native start-up chatter on stderr."""
    from cnnreg.backends import select

    chosen = select(name)
    if chosen == "tensorflow":
        from cnnreg.backends.tensorflow import quiet_import

        quiet_import()
    return chosen
