"""Training runs: assembling components into a Keras training loop, run directories, resume.

    from cnnreg.training import RunConfig, train
    outcome = train(RunConfig("lenet5", epochs=5), run_dir="runs/lenet5")
    outcome.test["accuracy"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnreg.training.config import RunConfig

__all__ = ["RunConfig", "train", "resume"]


def train(config: RunConfig, run_dir: str | Path | None = None, *, progress: Any = None):
    """Resolve, build and train ``config``; write the run directory; return the outcome.

    ``run_dir`` defaults to ``runs/<UTC time>-<arch>-<dataset>/``; in a multi-process run only
    process 0 writes it.  ``progress`` is an optional
    Keras callback (the CLI passes its progress display).
    """
    from cnnreg.training import loop, rundir
    from cnnreg.training.model import prepare
    from cnnreg.training.config import resolve
    from cnnreg.training.config import run_names

    plan = prepare(resolve(config))
    if run_dir is not None:
        target = Path(run_dir)
    elif plan.distribution.is_chief:
        target = rundir.new_run_dir(Path("runs"), *run_names(plan))
    else:
        target = None  # multi-process: only process 0 writes a run directory
    return loop.start(plan, target, argv=["cnnreg.training.train"], progress=progress)


def resume(run_dir: str | Path, *, progress: Any = None, launch: dict[str, Any] | None = None):
    """Continue an interrupted run from its last completed epoch (``launch``: the multi-process
    arguments ``coordinator``, ``num_processes``, ``process_id``, ``timeout``)."""
    from cnnreg.training import resume as resume_module

    return resume_module.resume(Path(run_dir), progress=progress, launch=launch)
