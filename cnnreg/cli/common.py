"""Options shared by the commands that build models (their values go to the public functions)."""

from __future__ import annotations

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
