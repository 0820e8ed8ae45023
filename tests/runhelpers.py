"""Helpers shared by the tests of training runs (imported by test modules; not a test file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnreg.testing import CliResult, run_cli
from cnnreg.training import loop


def interrupted_run(run_dir: Path, *args: str, after: int = 2) -> CliResult:
    """`cnnreg run ARGS --run-dir RUN_DIR` stopped by Ctrl-C (as the loop sees it) once epoch
    ``after`` is on record: what a user's Ctrl-C between epochs leaves."""
    save_epoch = loop.save_epoch

    def stop(plan, target, model, state, epoch):
        save_epoch(plan, target, model, state, epoch)
        if len(state["history"]) == after:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "save_epoch", stop)
        return run_cli("run", *args, "--run-dir", str(run_dir))
