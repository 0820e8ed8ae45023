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
    """Select the backend (one-line error when unknown or not installed)."""
    from cnnreg.backends import select

    return select(name)
