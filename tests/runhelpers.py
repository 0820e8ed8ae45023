"""Helpers shared by the tests of training runs (imported by test modules; not a test file)."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from cnnreg.testing import CliResult, run_cli
from cnnreg.training import loop


def interrupted_run(run_dir: Path, *args: str, after: int = 2) -> CliResult:
    """`cnnreg run ARGS --run-dir RUN_DIR` stopped by Ctrl-C (as the loop sees it) once epoch
    ``after`` is on record: what a user's Ctrl-C between epochs leaves."""
    save_epoch = loop.save_epoch

    def stop(plan, target, model, state, epoch, **options):
        save_epoch(plan, target, model, state, epoch, **options)
        if len(state["history"]) == after:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "save_epoch", stop)
        return run_cli("run", *args, "--run-dir", str(run_dir))


def one_line(result, *needles: str) -> None:
    """Exit status 2 and one `error:` line on stderr holding every needle."""
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:"), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def history(run_dir: Path) -> list[dict]:
    """A run's history.csv, one dict per epoch."""
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def script_on_backend(script: str, backend: str, env: dict) -> subprocess.CompletedProcess:
    """``script`` in a new Python with ``KERAS_BACKEND=backend`` (a process picks its backend
    once); skips when that is this process's backend (the test checked it here) or not installed."""
    import keras

    if backend == keras.backend.backend():
        pytest.skip("checked in this process")
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(env, KERAS_BACKEND=backend), timeout=300)
