"""Options shared by the commands that build models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def backend_option():
    return typer.Option(
        None, "--backend",
        help="Keras backend: tensorflow (default), jax or torch; also KERAS_BACKEND. Set before keras loads.",
    )


def coordinator_option():
    return typer.Option(None, "--coordinator", help="Multi-host JAX: the coordinator HOST:PORT (or JAX_COORDINATOR_ADDRESS).")


def num_processes_option():
    return typer.Option(None, "--num-processes", help="Multi-host JAX: number of processes (or JAX_NUM_PROCESSES).")


def process_id_option():
    return typer.Option(None, "--process-id", help="Multi-host JAX: this process's index (or JAX_PROCESS_ID).")


def coordinator_timeout_option():
    return typer.Option(60, "--coordinator-timeout", help="Seconds to wait for the JAX coordinator.")


def launch(coordinator: Optional[str], num_processes: Optional[int], process_id: Optional[int], timeout: int) -> dict:
    """The per-process launch arguments of a multi-process run (not part of its config)."""
    return {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id, "timeout": timeout}


def use_backend(name: Optional[str]) -> str:
    """Select the backend (one-line error when unknown or not installed). Imports nothing."""
    from cnnreg.backends import select

    return select(name)


def load_framework() -> None:
    """Import keras for a command that needs it; on TensorFlow without TensorFlow's native
    start-up chatter on stderr, on JAX and PyTorch without TensorFlow (until a tf.data
    pipeline needs it). Call after every option has been checked."""
    import os

    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from cnnreg.backends.tensorflow import quiet_import, split_cpu

        quiet_import()
        if os.environ.get("CNNREG_LOGICAL_CPUS", "").isdigit():  # test aid: several CPU devices
            split_cpu(int(os.environ["CNNREG_LOGICAL_CPUS"]))
    import keras

    if keras.backend.backend() != "tensorflow":  # not imported at all unless tf.data needs it
        from cnnreg.backends.tensorflow import hide_until_imported

        hide_until_imported()


def check_out_folder(out: Path) -> None:
    """``--out``: a folder that can be written, made if missing, checked before any model loads
    (a folder that cannot be written costs nothing)."""
    from cnnreg.files import writable_folder

    writable_folder(out, "--out")


def parse_shape(text: Optional[str], *, positive: bool = True) -> Optional[tuple[int, int, int]]:
    """``--input-shape HxWxC`` (``64x64x3``); None when not given.  ``positive``: each side >= 1
    here (a run checks the shape with the rest of its config instead)."""
    if text is None:
        return None
    from cnnreg.errors import ParameterError
    from cnnreg.spec import coerce

    shape = coerce(text, tuple[int, int, int], where="--input-shape")
    if positive and min(shape) < 1:
        raise ParameterError(f"--input-shape must be height x width x channels, each >= 1 (got '{text}')")
    return shape


def use_backend_of(trained) -> None:
    """Select the backend of a trained model (a run's, or the default for a weights entry) and
    load it, once the manifest has passed its checks."""
    use_backend(trained.backend)
    load_framework()
