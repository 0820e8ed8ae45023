"""Sweeps from Python: ``cnnreg.sweep`` and ``cnnreg.show_sweep``, the functions under
``cnnreg sweep`` and ``cnnreg sweep show``.

    import cnnreg
    result = cnnreg.sweep("lenet5", init="he_normal,glorot_uniform", epochs=1, study="local")
    result.best["params"], result.best["value"]
    cnnreg.show_sweep("local").to_dict()

Every option of ``cnnreg run`` takes several values (``"he_normal,glorot_uniform"``, a Python
list, ``"1e-4..1e-1:log"``; see :mod:`cnnreg.sweeps.space`); ``seed`` values are replicates.
Several processes, on one machine or many (``storage="postgresql://..."``), run one study
together: each call is one worker, and returns when the study has no trial left to run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnreg.api.results import Result
from cnnreg.errors import CnnregError, choices_text
from cnnreg.version import __version__

__all__ = ["sweep", "show_sweep", "SweepResult", "DEFAULT_ROOT"]

#: Where studies keep their files: the local store, the trials' run directories, the plots.
DEFAULT_ROOT = Path("sweeps")


@dataclass(repr=False)
class SweepResult(Result):
    """A study's summary: its trials best first, the best one, the plots (and, from ``sweep``,
    the trials this worker ran)."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, **self.data}

    @property
    def trials(self) -> list[dict[str, Any]]:
        return self.data["trials"]

    @property
    def best(self) -> dict[str, Any] | None:
        return self.data["best"]

    def title(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in self.data["counts"].items() if n)
        best = self.best
        text = f"study {self.data['study']}: {counts or 'no trials'}"
        if best is not None:
            text += f"; best: trial {best['number']}, {self.data['metric']} {best['value']:.4f}"
        return text

    def table(self) -> tuple[list[str], list[list[Any]]]:
        names = sorted({k for row in self.trials for k in row["params"]})
        columns = ["trial", "state", *names, self.data.get("metric") or "value", "± std", "seconds", "run directory"]
        rows = [[r["number"], r["state"], *[r["params"].get(n) for n in names], r["value"], r["std"], r["seconds"],
                 r["run_dir"]] for r in self.trials]
        return columns, rows


def sweep(
    architecture: str,
    *,
    dataset: str = "digits",
    init: str | Sequence[str] | None = None,
    reg: Sequence[str] | str = (),
    clip: str | Sequence[str] | None = None,
    optimizer: str | Sequence[str] = "adam",
    lr: str | float | Sequence[float] | None = None,
    schedule: str | Sequence[str] | None = None,
    epochs: str | int | Sequence[int] = "10",
    batch_size: str | int | Sequence[int] = "32",
    precision: str | Sequence[str] = "float32",
    seed: str | int | Sequence[int] = "0",
    input_shape: str | None = None,
    weights: str = "none",
    freeze_base: bool = False,
    fine_tune_epochs: str | int = "0",
    fine_tune_lr: str | float | None = None,
    early_stop: str | int | None = None,
    bn_momentum: str = "auto",
    class_weight: str | None = None,
    log: Sequence[str] | str = (),
    trials: int | None = None,
    sampler: str | None = None,
    prune: str = "none",
    metric: str = "val_accuracy",
    direction: str | None = None,
    study: str | None = None,
    storage: str | None = None,
    root: str | Path = DEFAULT_ROOT,
    heartbeat: int = 30,
    quiet: bool = False,
    backend: str | None = None,
    report: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    display: Any = None,
) -> SweepResult:
    """Run trials of a sweep (``cnnreg sweep``): join study ``study`` (default: the
    architecture's name) in ``storage`` (default: ``root/STUDY/study.db``), or create it, and run
    its trials as ordinary runs until none is left.  ``sampler``: grid (default when every varied
    option is a list), random or tpe; ``trials``: the total over every worker (default: the
    grid's cells, or 10); ``prune``: none, median or hyperband on the per-epoch ``metric``.
    ``report(line)`` is told each trial's outcome (default: printed unless ``quiet``), ``warn(line)``
    each warning of the runs once (default: on stderr).  ``log``: the loggers of every trial
    (``--log``, not swept); a tracker run is tagged with the study and the trial number."""
    from cnnreg.backends import select
    from cnnreg.sweeps.runner import plan_sweep, run_sweep

    chosen = select(backend, activate=False)
    options = {
        "dataset": dataset, "init": init, "reg": reg, "clip": clip, "optimizer": optimizer, "lr": lr,
        "schedule": schedule, "epochs": epochs, "batch_size": batch_size, "precision": precision,
        "input_shape": input_shape, "weights": weights, "freeze_base": freeze_base,
        "fine_tune_epochs": fine_tune_epochs, "fine_tune_lr": fine_tune_lr, "early_stop": early_stop,
        "bn_momentum": bn_momentum, "class_weight": class_weight, "log": log,
    }
    plan = plan_sweep(architecture, options, seeds=seed, trials=trials, sampler=sampler, prune=prune, metric=metric,
                      direction=direction, backend=chosen)
    select(chosen)
    name = study or _default_name(architecture)
    say = report if report is not None else (lambda line: None) if quiet else print
    data = run_sweep(plan, name, storage=storage, root=Path(root), heartbeat=heartbeat, report=say, warn=warn,
                     display=display)
    return SweepResult(data)


def show_sweep(study: str, *, storage: str | None = None, root: str | Path = DEFAULT_ROOT) -> SweepResult:
    """A study's trials best first, its best trial and its plots (``cnnreg sweep show``): history,
    parallel coordinates, parameter importances, and each configuration's mean ± std when seeds
    replicate, written into ``root/STUDY/``.  It reads the study while workers run."""
    from cnnreg.sweeps import study as studies

    optuna = studies.require_optuna()
    studies.check_name(study)
    if storage is None and not (Path(root) / study / "study.db").is_file():
        found = sorted(p.parent.name for p in Path(root).glob("*/study.db"))
        raise CnnregError(f"no study '{study}' under {root}/" + choices_text(
            study, found, hint="start one with `cnnreg sweep ARCH ... --study NAME`, or give its --storage", none="there are none"))
    url, folder = studies.storage_of(study, storage, Path(root))
    store = studies.open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(store)]
    if study not in names:
        raise CnnregError(f"no study '{study}' in {studies.redact(url)}"
                          + choices_text(study, names, hint="start one with `cnnreg sweep ARCH ... --study NAME`", none="there are none"))
    with studies.quiet_optuna():
        loaded = optuna.load_study(study_name=study, storage=store)
    data = studies.summary(loaded)
    data["storage"] = studies.redact(url)
    data["files"] = studies.plot(loaded, folder, data)
    return SweepResult(data)


def _default_name(architecture: str) -> str:
    """A study's default name: the architecture's (``lenet5`` for ``lenet5:dropout=0.2``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in architecture.split(":")[0].split("/")[-1])
