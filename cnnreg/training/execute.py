"""Running a resolved plan: claim its run directory, load the data and build the model, choose
the learning rate (``--lr auto``), train, and show it all through a :class:`RunDisplay`.

``cnnreg run`` and ``rerun`` (:mod:`cnnreg.api.runs`) and every trial of a sweep
(:mod:`cnnreg.sweeps`) run through :func:`execute`.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError

__all__ = ["DEFAULT_ROOT", "RunDisplay", "Execution", "execute"]

#: Where a run goes when it is given no directory: ``runs/<UTC time>-<arch>-<dataset>/``.
DEFAULT_ROOT = Path("runs")


@dataclass
class Execution:
    """What :func:`execute` did: the plan, the training's outcome (None for a dry run) and, for a
    dry run, the manifest the run would write."""

    plan: Any
    outcome: Any
    manifest: dict[str, Any] | None = None


class RunDisplay:
    """How a run is shown while it goes (the CLI's subclass prints the header panel and the
    closing summary); this base shows warnings on stderr and the progress of training."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet

    def status(self, text: str) -> contextlib.AbstractContextManager:
        """A context shown while something slow happens (loading the data, a range test)."""
        return contextlib.nullcontext()

    def update(self, text: str) -> None:
        """Change what :meth:`status` shows."""

    def note(self, line: str) -> None:
        """A line about the run (what ``--lr auto`` chose, a process that is not the chief)."""
        if not self.quiet:
            print(line)

    def warn(self, line: str) -> None:
        """A warning line."""
        print(f"warning: {line}", file=sys.stderr)

    def prepared(self, plan: Any, *, resumed: int | None = None) -> None:
        """The run is resolved, its data loaded and its model built: before training starts
        (``resumed``: the epochs on record when a run goes on)."""
        for line in plan.warnings:
            self.warn(line)

    def dry_run(self, plan: Any) -> None:
        """What ``dry_run=True`` shows once everything is built: the model's layer summary."""
        plan.model.summary()

    def progress(self, steps_per_epoch: int) -> Any:
        """The Keras callback that shows training: a live bar in a notebook, a bar per epoch on
        a terminal, a line per epoch otherwise, nothing when quiet."""
        from rich.console import Console

        from cnnreg.training.progress import in_notebook, make_progress

        console = Console(highlight=False)
        if self.quiet:
            mode = "quiet"
        elif in_notebook():
            mode = "notebook"
        else:
            mode = "rich" if console.is_terminal else "plain"
        return make_progress(mode, console, steps_per_epoch)


def execute(plan: Any, *, run_dir: str | Path | None = None, dry_run: bool = False, display: RunDisplay | None = None,
            root: Path = DEFAULT_ROOT) -> Execution:
    """Claim the run directory (``run_dir``, else a new one under ``root``), then prepare and
    train ``plan`` (or only prepare it, ``dry_run``), showing it through ``display``."""
    display = display or RunDisplay()
    from cnnreg.training import rundir
    from cnnreg.training.config import run_names
    from cnnreg.training.resume import launch_rank

    # The run directory is checked, created, probed and locked before anything is loaded: a bad
    # run_dir, a read-only disk or another process training there costs no time.
    lock = None
    target = Path(run_dir) if run_dir is not None else None
    if not dry_run and launch_rank(plan.launch) == 0:
        if target is None:
            try:
                target = rundir.new_run_dir(Path(root), *run_names(plan))
            except OSError as exc:
                raise CnnregError(f"cannot create a run directory in {root}/ ({exc.strerror or exc})") from None
        lock = rundir.claim(target, fresh=True, created=run_dir is None)
    try:
        result = _train(plan, target, dry_run=dry_run, display=display)
    except BaseException:
        if lock is not None:
            lock.abandon()  # removes a directory it created that is still empty
        raise
    if lock is not None:
        lock.release()
    return result


def _train(plan: Any, target: Path | None, *, dry_run: bool, display: RunDisplay) -> Execution:
    from cnnreg.backends import load_keras
    from cnnreg.training import loop
    from cnnreg.training.model import prepare
    from cnnreg.training.steps import check_step_transforms

    load_keras()
    plan.warn = display.warn  # a tracker that stops during training says so in one line
    with display.status("loading data and building the model..."):
        prepare(plan, find_lr=False)  # the range test of --lr auto comes next, with its own progress
    if plan.config.lr == "auto":
        _choose_lr(plan, target, dry_run=dry_run, display=display)
    argv = ["cnnreg", *sys.argv[1:]]
    distribution = plan.distribution
    if not distribution.is_chief and not dry_run:  # process 0 reports and writes the run
        display.note(f"process {distribution.process_index} of {distribution.processes}: training with process 0, "
                     "which writes the run directory")
        return Execution(plan, loop.start(plan, None, argv=argv, progress=display.progress(plan.steps_per_epoch)))
    display.prepared(plan)
    if dry_run:
        check_step_transforms(plan, plan.model)  # what the run would check before writing anything
        display.dry_run(plan)
        return Execution(plan, None, loop.manifest(plan, status="dry-run", argv=argv))
    return Execution(plan, loop.start(plan, target, argv=argv, progress=display.progress(plan.steps_per_epoch)))


def _choose_lr(plan: Any, target: Path | None, *, dry_run: bool, display: RunDisplay) -> None:
    """``lr="auto"``: the range test, one line with its choice, and lr_find.png in the run
    directory; with ``dry_run`` only what would be done."""
    from cnnreg.training import lr_find

    if dry_run:
        display.note(f"--lr auto: a range test of {lr_find.DEFAULT_STEPS} steps from {lr_find.DEFAULT_START:g} to "
                     f"{lr_find.DEFAULT_END:g} would choose the learning rate (not run with --dry-run; "
                     "`cnnreg lr-find` runs it alone)")
        plan.optimizer.params["learning_rate"] = "auto"  # the header shows it so
        return

    def progress(done: int, total: int) -> None:
        display.update(f"--lr auto: range test, step {done} of {total}...")

    with display.status("--lr auto: range test..."):
        result = lr_find.choose_lr(plan, progress=progress)
    display.note(f"--lr auto: {lr_find.describe(result)}; training with lr {plan.config.lr:g}")
    if target is not None:
        lr_find.plot(result, target / "lr_find.png", title=f"--lr auto: {plan.architecture.spec} on {plan.dataset_component.spec}")
