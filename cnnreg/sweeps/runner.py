"""Running a sweep: check every alternative before anything starts, join or create the study,
and run trials as ordinary runs until the study's queue is empty."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cnnreg.errors import ParameterError, choices_text
from cnnreg.sweeps import study as studies
from cnnreg.sweeps.space import Space, parse_space, run_options

__all__ = ["plan_sweep", "check_space", "run_sweep"]


def plan_sweep(architecture: str, options: Mapping[str, Any], *, seeds: Any = "0", trials: int | None = None,
               sampler: str | None = None, prune: str = "none", metric: str = "val_accuracy",
               direction: str | None = None, backend: str | None = None) -> studies.Sweep:
    """The sweep the options describe, every choice checked in one line each: the sampler
    (grid by default when every varied option is a list), the pruner, the metric and its
    direction, the number of trials (default: the grid's cells; 10 for a sampler)."""
    space = parse_space(options, seeds)
    if not space.dimensions:
        raise ParameterError("nothing to sweep: give an option several values, e.g. --init he_normal,glorot_uniform "
                             "or --lr 1e-4..1e-1:log")
    sampler = (sampler or ("grid" if space.all_lists else "tpe")).lower()
    if sampler not in studies.SAMPLERS:
        raise ParameterError(f"unknown sampler '{sampler}'" + choices_text(sampler, studies.SAMPLERS))
    if sampler == "grid" and not space.all_lists:
        ranges = ", ".join(d.name for d in space.dimensions if not d.is_list)
        raise ParameterError(f"--sampler grid needs lists of values; {ranges} is a range: give a list, "
                             "or --sampler random or tpe")
    prune = (prune or "none").lower()
    if prune not in studies.PRUNERS:
        raise ParameterError(f"unknown pruner '{prune}'" + choices_text(prune, studies.PRUNERS))
    if metric not in studies.METRICS:
        raise ParameterError(f"unknown metric '{metric}'" + choices_text(metric, studies.METRICS))
    if prune != "none" and metric.startswith("test_"):
        raise ParameterError(f"--prune {prune} needs a metric measured every epoch; {metric} is measured once, "
                             "at the end (use val_accuracy or val_loss)")
    direction = (direction or studies.METRICS[metric]).lower()
    if direction not in ("maximize", "minimize"):
        raise ParameterError(f"--direction must be maximize or minimize (got '{direction}')")
    cells = len(space.grid()) if sampler == "grid" else None
    if trials is None:
        trials = cells if cells is not None else 10
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ParameterError(f"--trials must be a whole number >= 1 (got {trials!r})")
    if cells is not None and trials > cells:
        raise ParameterError(f"--trials {trials} is more than the grid's {cells} cells; a grid runs each cell once")
    return studies.Sweep(architecture, space, sampler, prune, metric, direction, trials, backend)


def check_space(sweep: studies.Sweep) -> list[str]:
    """Resolve a run with every alternative and both ends of every range (the other options at
    their first value): a mistake in any of them is one line before the study starts.  Returns
    the warnings those runs would give (an initialiser that does not suit the activation), once
    each, so that a sweep says them once rather than at every trial."""
    from cnnreg.training.config import resolve, run_config

    space = sweep.space
    first = {d.name: d.choices[0] if d.is_list else d.low for d in space.dimensions}
    warnings: list[str] = []
    for dimension in space.dimensions:
        values = dimension.choices if dimension.is_list else (dimension.low, dimension.high)
        for value in values:
            options = run_options(space, {**first, dimension.name: value})
            config = run_config(sweep.architecture, **options, seed=space.seeds[0])
            config.backend = sweep.backend
            warnings += [w for w in resolve(config, weights=False).warnings if w not in warnings]
    return warnings


def run_sweep(sweep: studies.Sweep, name: str, *, storage: str | None = None, root: Path = studies.DEFAULT_ROOT,
              heartbeat: int = 30, report: Callable[[str], None] = print, warn: Callable[[str], None] | None = None,
              display: Any = None) -> dict[str, Any]:
    """Join or create study ``name`` and run its trials until none is left; the study's summary
    (:func:`cnnreg.sweeps.study.summary`) with ``ran``, the trials this worker ran, and
    ``files``, the plots.  ``report(line)`` is told each trial's outcome, ``warn(line)`` each
    warning of the sweep's runs once (before the first trial); the runs themselves are silent
    unless a ``display`` is given."""
    studies.check_name(name)
    warnings = check_space(sweep)  # every mistake in the options: one line, nothing started
    url, folder = studies.storage_of(name, storage, root)
    local = url.startswith("sqlite")  # SQLite locks no row: the local workers take turns
    lock = studies.PopLock(folder / ".take.lock" if local else None)
    lock.acquire()  # and one at a time makes the database's tables, the study and its queue
    try:
        study = studies.open_study(sweep, name, studies.open_storage(url, heartbeat=heartbeat))
    finally:
        lock.release()
    for line in warnings:
        (warn or _stderr)(line)
    with _no_retracing_warnings():
        runner = _runner(sweep, name, folder, studies.redact(url), report=report, display=display)
        ran = studies.work(study, runner, lock=lock)
    data = studies.summary(study)
    data["ran"] = ran
    data["storage"] = studies.redact(url)
    data["files"] = studies.plot(study, folder, data)
    return data


def _runner(sweep: studies.Sweep, name: str, folder: Path, storage: str, *, report: Callable[[str], None],
            display: Any) -> Callable[[Any], float]:
    """``run_trial(trial)``: the trial's configuration, trained once per seed, each an ordinary run
    directory; its value is the mean over the seeds."""
    import optuna

    from cnnreg.training.config import resolve, run_config
    from cnnreg.training.execute import RunDisplay, execute

    class SilentRun(RunDisplay):
        """A trial's run shows nothing: the sweep reports each trial in one line, and said the
        runs' warnings once before the first."""

        def __init__(self) -> None:
            super().__init__(quiet=True)

        def warn(self, line: str) -> None:
            pass

    space = sweep.space

    def run_trial(trial) -> float:
        params = _suggest(trial, space)
        options = run_options(space, params)
        shown = ", ".join(f"{k}={_text(v)}" for k, v in params.items())
        values: list[float] = []
        run_dirs: list[str] = []
        for index, seed in enumerate(space.seeds):
            config = run_config(sweep.architecture, **options, seed=seed)
            config.backend = sweep.backend
            plan = resolve(config)
            plan.record = {"sweep": {"study": name, "trial": trial.number, "seed": seed, "storage": storage,
                                     "params": params}}
            if index == 0 and sweep.prune != "none":
                plan.extra_callbacks = [studies.pruning_callback(trial, sweep.metric)]
            suffix = f"-seed{seed}" if len(space.seeds) > 1 else ""
            target = Path(folder) / f"trial-{trial.number:04d}-{_slug(sweep.architecture)}{suffix}"
            run_dirs.append(str(target))
            trial.set_user_attr("run_dirs", run_dirs)
            outcome = execute(plan, run_dir=target, display=display or SilentRun()).outcome
            if outcome.status == "pruned":
                trial.set_user_attr("message", outcome.message)
                report(f"trial {trial.number} ({shown}): {outcome.message} ({outcome.seconds:.1f} s) → {target}")
                raise optuna.TrialPruned(outcome.message)
            if outcome.status == "interrupted":
                raise KeyboardInterrupt
            if outcome.status != "completed":
                trial.set_user_attr("message", outcome.message)
                report(f"trial {trial.number} ({shown}): failed: {outcome.message} → {target}")
                raise studies.TrialFailed(outcome.message)
            value = studies.metric_value(outcome, sweep.metric)
            if value is None:
                message = f"the run has no {sweep.metric} (no such split?)"
                trial.set_user_attr("message", message)
                raise studies.TrialFailed(message)
            values.append(float(value))
            seed_text = f" seed {seed}" if len(space.seeds) > 1 else ""
            report(f"trial {trial.number}{seed_text} ({shown}): {sweep.metric} {value:.4f} "
                   f"({outcome.seconds:.1f} s) → {target}")
        mean, std = studies.seeds_summary(values)
        trial.set_user_attr("values", values)
        trial.set_user_attr("std", std)
        return mean

    return run_trial


def _stderr(line: str) -> None:
    import sys

    print(f"warning: {line}", file=sys.stderr)


@contextlib.contextmanager
def _no_retracing_warnings() -> Iterator[None]:
    """TensorFlow counts the graphs it traces over the whole process and warns of "retracing"
    once a few models have been evaluated: a worker trains one model after another on purpose,
    so its Python logger keeps to errors while the worker runs (put back after)."""
    import logging

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _suggest(trial, space: Space) -> dict[str, Any]:
    """The trial's value of every dimension (an enqueued grid cell's fixed values, or the
    sampler's), through Optuna's public suggest API."""
    params: dict[str, Any] = {}
    for d in space.dimensions:
        if d.is_list:
            params[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        elif d.integer:
            params[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)
        else:
            params[d.name] = trial.suggest_float(d.name, float(d.low), float(d.high), log=d.log)
    return params


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text.split(":")[0].split("/")[-1])


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "none" if value is None else str(value)
