"""A sweep as an Optuna study: its storage, its trials as ordinary runs, its summary and plots.

**One study, any number of workers.**  Every ``cnnreg sweep`` with the same ``--study`` and
``--storage`` joins the same study: the first to arrive creates it, records the sweep's
definition in it (a later worker with other options is refused in one line) and enqueues the
work: one trial per grid cell, or ``--trials`` open trials for a sampler to fill in
(``Study.enqueue_trial``).  Workers then take enqueued trials until none is left
(``Study.optimize``, one trial at a time), so that ``--trials`` is exact however workers race:
Optuna moves a trial from waiting to running in one compare-and-set of the storage, and a trial
a worker asks for when the queue has just run dry is recorded as surplus and never runs.

**A dead worker.**  The storage keeps a heartbeat of every running trial (every ``heartbeat``
seconds); a trial not heard from for twice that is failed by the next worker that starts a trial
and put back in the queue (``RetryHeartbeatStaleTrialCallback``), where a worker runs it again.

**Storage.**  By default a study lives in ``sweeps/<study>/study.db``: SQLite in WAL mode, with a
60 s wait for the lock, which two or three workers on one machine share without "database is
locked" errors.  ``--storage postgresql://...`` (or ``mysql://``) is the same study for workers
on many machines; an unreachable one is one line within 10 s.

**Trials are runs.**  A trial runs its configuration once per seed, each an ordinary run
directory ``sweeps/<study>/trial-0007-<arch>[-seedN]/`` whose manifest names the study and the
trial (``cnnreg resume``, ``runs``, ``evaluate``, ``attack`` work on it); the trial records its
run directories and per-seed values, and its value is their mean.  A pruned trial (median or
Hyperband pruning on the per-epoch metric) keeps its run directory and history, with the status
``pruned``.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError, ParameterError, choices_text, first_line
from cnnreg.spec import shown
from cnnreg.sweeps.space import Space

__all__ = [
    "DEFAULT_ROOT", "SAMPLERS", "PRUNERS", "METRICS", "Sweep", "check_name", "storage_of", "open_storage", "open_study",
    "work", "summary", "plot", "redact", "quiet_optuna", "require_optuna", "PopLock",
]

#: Where studies keep their files (the local store, the trials' run directories, the plots).
DEFAULT_ROOT = Path("sweeps")
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "hyperband")
#: What a trial's value can be, and which way is better.
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize", "accuracy": "maximize", "loss": "minimize",
           "test_accuracy": "maximize", "test_loss": "minimize"}
#: Seconds a worker waits for the worker that creates the study to finish enqueueing its trials.
READY_TIMEOUT = 60.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_TICKET = "cnnreg_ticket"
_SURPLUS = "cnnreg_surplus"


class SurplusTrial(Exception):
    """A trial asked for when the queue had just run dry: recorded, never run."""


class TrialFailed(Exception):
    """A trial whose run failed (a NaN loss, a full disk): recorded as failed, not retried."""


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's own log lines (a line per trial, a warning per caught failure) and its
    experimental-feature warnings are not for our users: cnnreg says what happened itself."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def require_optuna():
    """Optuna, or one line saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise CnnregError("sweeps need Optuna: pip install 'cnnreg[sweep]' (or pip install optuna)") from None
    return optuna


# --- the study's storage ---------------------------------------------------------------------------


def check_name(study: str) -> str:
    """A study name: letters, digits, ``_``, ``-``, ``.`` (it names a folder)."""
    if not isinstance(study, str) or not _NAME.match(study):
        raise ParameterError(f"--study '{shown(str(study))}' must be letters, digits, '_', '-' and '.', starting with a "
                             "letter or digit (it names the folder sweeps/STUDY)")
    return study


def redact(url: str) -> str:
    """``url`` without its password (``postgresql://user:***@host/db``)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def storage_of(study: str, storage: str | None, root: Path) -> tuple[str, Path]:
    """The storage URL of ``study`` and its local folder (``root/study``): ``storage``, or the
    default SQLite file in that folder (made, in WAL mode).  One line for a URL of another kind."""
    from cnnreg.files import writable_folder

    folder = Path(root) / check_name(study)
    writable_folder(folder, "the sweep's folder")
    if storage is None:
        path = (folder / "study.db").resolve()
        _wal(path)
        return f"sqlite:///{path}", folder
    scheme = storage.partition("://")[0].lower().split("+")[0]
    if not storage.partition("://")[1] or scheme not in ("postgresql", "postgres", "mysql", "sqlite"):
        raise ParameterError(f"--storage '{shown(redact(storage))}' is not a database URL"
                             + choices_text(scheme, ["postgresql", "mysql", "sqlite"])
                             + " (e.g. postgresql://user:password@host:5432/cnnreg)")
    if scheme == "postgres":  # SQLAlchemy knows the scheme as postgresql only
        storage = "postgresql" + storage[len("postgres"):]
    return storage, folder


def _wal(path: Path) -> None:
    """Put a SQLite database in WAL mode (kept in the file): readers never wait for a writer, so
    ``cnnreg sweep show`` reads while workers write."""
    import sqlite3

    connection = sqlite3.connect(path, timeout=60)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def open_storage(url: str, *, heartbeat: int = 30):
    """Optuna's RDB storage at ``url`` with a heartbeat every ``heartbeat`` seconds and stale
    trials put back in the queue.  One line when the database cannot be reached (within 10 s)
    or its driver is missing."""
    optuna = require_optuna()
    import sqlalchemy.exc

    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise ParameterError(f"--heartbeat must be a whole number of seconds >= 1 (got {heartbeat!r})")
    url = _with_driver(url)
    scheme = url.partition("://")[0].lower().split("+")[0]
    if scheme == "sqlite":
        engine: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        engine = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    try:
        for attempt in range(5):
            try:
                with quiet_optuna():
                    return optuna.storages.RDBStorage(
                        url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                    )
            except sqlalchemy.exc.SQLAlchemyError as exc:
                if attempt == 4 or not _creation_race(exc):
                    raise
                time.sleep(0.5 + attempt)  # another worker is making the new database's tables
    except ImportError:  # SQLAlchemy found no driver for the URL's database
        driver = {"postgresql": "'psycopg[binary]'", "mysql": "mysqlclient (or pymysql, with a mysql+pymysql:// URL)"}.get(
            scheme, "its database driver")
        raise CnnregError(f"the study storage {redact(url)} needs a database driver: pip install {driver}") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ValueError) as exc:
        reason = first_line(getattr(exc, "orig", None) or exc)
        raise CnnregError(f"cannot reach the study storage {redact(url)}: {reason}") from None


def _creation_race(exc: Exception) -> bool:
    """Whether ``exc`` is two workers making a new database's tables at the same moment (a table
    or a row the other one made first), not a database that cannot be reached."""
    import sqlalchemy.exc

    text = str(getattr(exc, "orig", None) or exc).lower()
    return isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in text or "duplicate" in text


def _with_driver(url: str) -> str:
    """``postgresql://`` with the PostgreSQL driver that is installed: SQLAlchemy 2.1 takes
    psycopg (3) for a URL that names none, 2.0 psycopg2; either works."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme.lower() == "postgresql" and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2{sep}{rest}"
    return url


# --- the study ------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """What a sweep is: its architecture and search space, how it samples, prunes and scores,
    and how many trials it runs in all; :meth:`definition` is what its study records."""

    architecture: str
    space: Space
    sampler: str
    prune: str
    metric: str
    direction: str
    trials: int
    backend: str | None = None

    def definition(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "space": self.space.to_dict(), "sampler": self.sampler,
                "prune": self.prune, "metric": self.metric, "direction": self.direction, "trials": self.trials}


def open_study(sweep: Sweep, name: str, storage: Any):
    """Create ``name`` in ``storage`` with ``sweep``'s trials enqueued, or join it when it exists
    with the same definition (one line when it exists with another)."""
    optuna = require_optuna()
    sampler = optuna.samplers.TPESampler(seed=sweep.space.seeds[0]) if sweep.sampler == "tpe" else \
        optuna.samplers.RandomSampler(seed=sweep.space.seeds[0])
    pruner = {"none": optuna.pruners.NopPruner(), "median": optuna.pruners.MedianPruner(n_startup_trials=2),
              "hyperband": optuna.pruners.HyperbandPruner(min_resource=1)}[sweep.prune]
    definition = sweep.definition()
    with quiet_optuna():
        try:
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                        direction=sweep.direction)
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
            stored = _wait_for(study, "cnnreg_sweep", name)
            if stored != definition:
                raise CnnregError(f"study '{name}' exists with other options ({_difference(stored, definition)}); "
                                  "give another --study, or the same options to join it") from None
            _wait_for(study, "cnnreg_ready", name)
            return study
        study.set_user_attr("cnnreg_sweep", definition)
        if sweep.sampler == "grid":
            for ticket, cell in enumerate(sweep.space.grid()[: sweep.trials]):
                study.enqueue_trial(cell, user_attrs={_TICKET: ticket})
        else:
            for ticket in range(sweep.trials):
                study.enqueue_trial({}, user_attrs={_TICKET: ticket})
        study.set_user_attr("cnnreg_ready", True)
    return study


def _wait_for(study, key: str, name: str) -> Any:
    """A study attribute the worker that created the study sets (it may not have yet)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        value = study.user_attrs.get(key)
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise CnnregError(f"study '{name}' was not made by cnnreg sweep, or its first worker stopped before "
                              "enqueueing its trials; give another --study")
        time.sleep(0.2)


def _difference(stored: Any, definition: dict[str, Any]) -> str:
    if not isinstance(stored, dict):
        return "not a cnnreg sweep"
    keys = [k for k in sorted(set(stored) | set(definition)) if stored.get(k) != definition.get(k)]
    parts = []
    for key in keys[:3]:
        parts.append(f"{key} {_short(stored.get(key))} there, {_short(definition.get(key))} here")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- running trials --------------------------------------------------------------------------------


class PopLock:
    """An OS lock (``flock``) that the workers of one local study hold while they take a trial.

    SQLite cannot lock the row of the trial a worker takes (Optuna's ``SELECT ... FOR UPDATE``
    is ignored there), so two workers reading the queue at the same moment could both take the
    same trial.  Workers on one machine take turns instead: the lock is held from before Optuna
    fails the stale trials and takes a waiting one until the trial starts (the objective's first
    line releases it).  PostgreSQL and MySQL lock the row themselves: no file lock is needed."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.fd = path, None

    def acquire(self) -> None:
        if self.path is None:
            return
        import fcntl
        import os

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is None:
            return
        import os

        os.close(self.fd)  # closing the descriptor releases the flock
        self.fd = None


def work(study, run_trial: Callable[[Any], float], *, lock: PopLock | None = None) -> list[int]:
    """Take enqueued trials of ``study`` and run them with ``run_trial(trial) -> value`` until none
    is left; the numbers of the trials this worker ran.  A dead worker's trial is failed and
    re-queued first (its heartbeat stopped), so that it runs again.  ``lock``: the local
    workers' turn to take a trial (SQLite)."""
    optuna = require_optuna()
    from optuna.trial import TrialState

    lock = lock or PopLock(None)
    ran: list[int] = []

    def objective(trial) -> float:
        lock.release()  # the trial is this worker's: the next one may take one
        if _TICKET not in trial.user_attrs:
            trial.set_user_attr(_SURPLUS, True)
            raise SurplusTrial()
        ran.append(trial.number)
        trial.set_user_attr("host", socket.gethostname())
        return run_trial(trial)

    with quiet_optuna():
        while True:
            lock.acquire()
            try:
                optuna.storages.fail_stale_trials(study)
                if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                    return ran
                study.optimize(objective, n_trials=1, catch=(SurplusTrial, TrialFailed), gc_after_trial=False)
            finally:
                lock.release()


def metric_value(outcome: Any, metric: str) -> float | None:
    """A run's value of ``metric``: the best epoch's for a history column (the highest accuracy,
    the lowest loss), the test split's for ``test_*``; None when the run has none."""
    if metric.startswith("test_"):
        return None if not outcome.test else outcome.test.get(metric[len("test_"):])
    values = [row[metric] for row in outcome.history if isinstance(row.get(metric), (int, float))
              and math.isfinite(row[metric])]
    if not values:
        return None
    return max(values) if METRICS[metric] == "maximize" else min(values)


def pruning_callback(trial, metric: str):
    """A factory of the Keras callback that reports ``metric`` to ``trial`` after every epoch
    (steps count across the run's phases) and ends the run, ``pruned``, when the study's pruner
    says so.  The run directory keeps everything up to that epoch."""
    counter = iter(range(10**9))

    def make(plan):
        import keras

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                value = (logs or {}).get(metric)
                if value is None or not math.isfinite(float(value)):
                    return
                step = next(counter)
                trial.report(float(value), step=step)
                if trial.should_prune():
                    plan.stop = ("pruned", f"pruned by the sweep after epoch {step + 1} ({metric} {float(value):.4f})")
                    self.model.stop_training = True

        return Report()

    return make


# --- what a study holds ----------------------------------------------------------------------------


def summary(study) -> dict[str, Any]:
    """The trials best first (complete ones by value, then running, pruned, failed, waiting),
    each with its state, parameters, value (the mean over its seeds, with their spread), run
    directories and duration; and the best.  Surplus trials (never run) are left out."""
    from optuna.trial import TrialState

    definition = study.user_attrs.get("cnnreg_sweep") or {}
    maximize = study.direction.name.lower() == "maximize"
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get(_SURPLUS):
            continue
        run_dirs = list(trial.user_attrs.get("run_dirs") or [])
        seconds = None
        if trial.datetime_start is not None and trial.datetime_complete is not None:
            seconds = round((trial.datetime_complete - trial.datetime_start).total_seconds(), 3)
        retried = trial.system_attrs.get("failed_trial")
        rows.append({
            # a waiting grid cell's values are its fixed parameters until it starts
            "number": trial.number, "state": trial.state.name.lower(),
            "params": dict(trial.params) or dict(trial.system_attrs.get("fixed_params") or {}),
            "value": trial.value if trial.state == TrialState.COMPLETE else None,
            "std": trial.user_attrs.get("std"), "values": trial.user_attrs.get("values"),
            "run_dir": run_dirs[0] if run_dirs else None, "run_dirs": run_dirs, "seconds": seconds,
            "message": trial.user_attrs.get("message"), "retry_of": retried,
        })
    order = {"complete": 0, "running": 1, "pruned": 2, "fail": 3, "waiting": 4}
    rows.sort(key=lambda r: (order.get(r["state"], 5),
                             -(r["value"] or 0) if maximize else (r["value"] or 0), r["number"]))
    complete = [r for r in rows if r["state"] == "complete"]
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in order}
    return {"study": study.study_name, "definition": definition, "direction": study.direction.name.lower(),
            "metric": definition.get("metric"), "counts": counts, "trials": rows,
            "best": complete[0] if complete else None}


def plot(study, folder: Path, data: dict[str, Any]) -> dict[str, str]:
    """Optuna's optimisation history, parallel coordinates and parameter importances, and the
    mean ± std of each configuration when seeds replicate, as PNGs in ``folder``; a plot that
    the trials so far cannot make (too few complete trials) is left out."""
    from cnnreg.files import save_atomic

    complete = [r for r in data["trials"] if r["state"] == "complete"]
    if not complete:
        return {}
    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views

    files: dict[str, str] = {}
    makers = {"history": views.plot_optimization_history}
    if complete[0]["params"] and len(complete) >= 2:
        makers["parallel"] = views.plot_parallel_coordinate
        # fANOVA (seeded): Optuna 5's default evaluator gives every parameter the same share
        # on a small grid (2 × 2: 0.5 and 0.5 where fANOVA finds 0.81 and 0.19)
        from optuna.importance import FanovaImportanceEvaluator

        makers["importance"] = lambda s: views.plot_param_importances(s, evaluator=FanovaImportanceEvaluator(seed=0))
    for key, make in makers.items():
        path = Path(folder) / f"{key}.png"
        # Optuna's plots set the ggplot style globally: inside rc_context it goes back after
        with matplotlib.rc_context(), quiet_optuna():
            try:
                axes = make(study)
            except (ValueError, RuntimeError, ZeroDivisionError):  # too few trials, no variance
                continue
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            save_atomic(path, lambda tmp, figure=figure: figure.savefig(tmp, format="png", dpi=100))
            plt.close(figure)
        files[key] = str(path)
    if any(len(r["values"] or []) > 1 for r in complete):
        path = Path(folder) / "seeds.png"
        _plot_seeds(complete, data.get("metric") or "value", path)
        files["seeds"] = str(path)
    return files


def _plot_seeds(rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    """Each configuration's mean ± std over its seeds, best first."""
    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend

    from cnnreg.files import save_atomic

    labels = [", ".join(f"{k}={_label(v)}" for k, v in r["params"].items()) or f"trial {r['number']}" for r in rows]
    means = [r["value"] for r in rows]
    spreads = [r["std"] or 0.0 for r in rows]
    figure = Figure(figsize=(8, 0.5 * len(rows) + 1.5), dpi=100)
    ax = figure.subplots()
    # points with error bars, on an axis that spans the values (bars from 0 would hide them)
    ax.errorbar(means, range(len(rows)), xerr=spreads, fmt="o", color="#1f4e8c", ecolor="#1f4e8c", capsize=4)
    for y, (mean, spread) in enumerate(zip(means, spreads)):
        ax.annotate(f"{mean:.4f} ± {spread:.4f}", (mean, y), xytext=(0, 7), textcoords="offset points",
                    ha="center", fontsize=8)
    low = min(m - s for m, s in zip(means, spreads))
    high = max(m + s for m, s in zip(means, spreads))
    margin = max(high - low, 1e-6) * 0.25
    ax.set_xlim(low - margin, high + margin)
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_xlabel(f"{metric}: mean ± std over {len(rows[0]['values'] or [])} seeds")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    save_atomic(path, lambda tmp: figure.savefig(tmp, format="png"))


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "none" if value is None else str(value)


def seeds_summary(values: list[float]) -> tuple[float, float | None]:
    """The mean of a trial's per-seed values and their standard deviation (None for one seed)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)
