"""The ``wandb`` logger: wandb's Python API (``wandb.init``, ``Run.log``, ``Run.finish``), not its
Keras callbacks, which do not support Keras 3.  The contract it keeps:
:mod:`cnnreg.kinds.loggers`; cnnreg bounds every call in time."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Literal

from cnnreg.kinds.loggers import Logger, TrackedRun
from cnnreg.spec import Range


class WandbLogger(Logger):
    """A W&B run named after the run directory; resume continues it by its id."""

    def __init__(self, project: str, entity: str | None, mode: str, dir: str | None, timeout: float) -> None:  # noqa: A002
        self.project, self.entity, self.mode, self.dir, self.timeout = project, entity, mode, dir, timeout
        self.label = f"Weights & Biases project {project} ({mode})"

    def start(self, run: TrackedRun) -> None:
        import wandb

        folder = Path(self.dir).expanduser() if self.dir else run.run_dir
        folder.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(silent=True, console="off", init_timeout=self.timeout)
        self.run = wandb.init(
            project=self.project, entity=self.entity, mode=self.mode, dir=str(folder), name=run.name,
            id=run.resume_id, resume="allow" if run.resume_id else None, tags=[f"{k}={v}" for k, v in run.tags.items()],
            settings=settings, reinit="create_new",
        )
        self.run_id = self.run.id

    def log_params(self, params: dict[str, str]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_file(self, path: Path) -> None:
        target = Path(self.run.dir) / Path(path).name  # the run's files: what W&B shows and syncs
        shutil.copyfile(path, target)
        self.run.save(str(target), base_path=self.run.dir, policy="now")

    def end(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "completed" else 1)


def wandb_logger(
    project: str = "cnnreg",
    entity: str | None = None,
    mode: Literal["online", "offline", "disabled"] = "online",
    dir: str | None = None,  # noqa: A002 - the parameter users write
    timeout: Annotated[float, Range(1, 3600)] = 30.0,
) -> Logger:
    """A Weights & Biases run in ``project`` (``mode=offline``: written under ``dir``, default the
    run directory, for ``wandb sync``); every call gives up after ``timeout`` seconds."""
    return WandbLogger(project, entity, mode, dir, timeout)
