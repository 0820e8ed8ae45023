"""A run's loggers (``--log``), each call bounded in time: a tracker that is down, slow or
broken costs one warning line and is dropped for the rest of the run; training goes on and the
run directory keeps everything (:mod:`cnnreg.kinds.loggers` has the contract).

The loggers' ids (an MLflow run id ...) are kept in the manifest under ``trackers``, by logger
spec, so that ``cnnreg resume`` continues the same tracker runs.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError

__all__ = ["Trackers", "flat_params", "metric_row", "resolve_loggers", "run_tags", "FILES"]

#: The run directory's files each logger gets at the end, when they exist.
FILES = ("model.keras", "curves.png", "run.json")


class Trackers:
    """The run's loggers behind one guard.  ``warn(line)`` says when one fails."""

    def __init__(self, loggers: list[tuple[str, Any]], warn: Callable[[str], None] | None = None) -> None:
        self.loggers = list(loggers)  # (spec, Logger)
        self.failed: dict[str, str] = {}
        self.warn = warn or (lambda line: None)
        self.ids: dict[str, str] = {}
        self.sent: dict[str, int] = {}  # the last epoch each logger has
        self.spent: dict[str, float] = {}  # seconds the run waited for each logger

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def callbacks(self) -> list[Any]:
        found = []
        for spec, logger in self.live():
            found.extend(self._call(spec, logger, "callbacks", logger.callbacks, bounded=False) or [])
        return found

    def live(self) -> list[tuple[str, Any]]:
        return [(spec, logger) for spec, logger in self.loggers if spec not in self.failed]

    def start(self, run_dir: Path, manifest: dict[str, Any], *, resuming: bool = False, epochs_done: int = 0) -> dict[str, str]:
        """Start every logger (continuing the tracker runs the manifest names when
        ``resuming``), then log the parameters of a new run: ``{spec: run_id}`` to keep."""
        from cnnreg.kinds.loggers import TrackedRun

        known = manifest.get("trackers") if isinstance(manifest.get("trackers"), dict) else {}
        tags = run_tags(manifest)
        ids = {}
        for spec, logger in self.live():
            previous = known.get(spec, {}).get("run_id") if isinstance(known.get(spec), dict) else None
            run = TrackedRun(run_dir=Path(run_dir), manifest=manifest, name=Path(run_dir).name, tags=dict(tags),
                             resume_id=previous if resuming and isinstance(previous, str) else None,
                             epochs_done=epochs_done)
            if not self._call(spec, logger, "start", lambda: logger.start(run) or True):
                continue
            if logger.run_id:
                ids[spec] = str(logger.run_id)
            sent = known.get(spec, {}).get("epochs") if isinstance(known.get(spec), dict) else None
            self.sent[spec] = sent if run.resume_id is not None and type(sent) is int else 0
            waited = known.get(spec, {}).get("seconds") if isinstance(known.get(spec), dict) else None
            if run.resume_id is not None and isinstance(waited, (int, float)):
                self.spent[spec] = self.spent.get(spec, 0.0) + float(waited)
            if run.resume_id is None:
                params = flat_params(manifest)
                self._call(spec, logger, "log_params", lambda: logger.log_params(params))
        self.ids = ids
        return ids

    def metrics(self, values: dict[str, float], step: int) -> None:
        """One epoch's numbers to every logger that does not have that epoch yet."""
        for spec, logger in self.live():
            if step <= self.sent.get(spec, 0):
                continue
            if self._call(spec, logger, "log_metrics", lambda: logger.log_metrics(dict(values), step) or True):
                self.sent[spec] = step

    def catch_up(self, history: list[dict[str, Any]]) -> None:
        """On a resume: the epochs on record that a logger did not get (the run was killed
        between writing an epoch and logging it)."""
        for row in history:
            self.metrics(metric_row(row), int(row["epoch"]))

    def record(self) -> dict[str, dict[str, Any]]:
        """What the manifest keeps under ``trackers``: each logger's run id and last epoch."""
        return {spec: {"run_id": run_id, "epochs": self.sent.get(spec, 0), "seconds": round(self.spent.get(spec, 0.0), 3)}
                for spec, run_id in self.ids.items()}

    def end(self, run_dir: Path, status: str, test: dict[str, Any] | None, step: int) -> None:
        """The test metrics, the files, the status."""
        final = {f"test_{k}": float(v) for k, v in (test or {}).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        for spec, logger in self.live():
            if final:
                self._call(spec, logger, "log_metrics", lambda: logger.log_metrics(dict(final), step))
            for name in FILES:
                path = Path(run_dir) / name
                if path.is_file() and spec not in self.failed:
                    self._call(spec, logger, "log_file", lambda: logger.log_file(path))
            if spec not in self.failed:
                self._call(spec, logger, "end", lambda: logger.end(status))

    def _call(self, spec: str, logger: Any, what: str, call: Callable[[], Any], *, bounded: bool = True) -> Any:
        """``call()`` within ``logger.timeout`` seconds; an error or a timeout marks the logger
        failed, with one warning."""
        if not bounded:
            try:
                return call()
            except Exception as exc:  # a logger's own bug: one warning, the run goes on
                self._fail(spec, f"{what}: {_line(exc)}")
                return None
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - reported below, in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"cnnreg-logger-{spec}", daemon=True)
        started = time.perf_counter()
        thread.start()
        timeout = float(getattr(logger, "timeout", 30.0) or 30.0)
        thread.join(timeout)
        self.spent[spec] = self.spent.get(spec, 0.0) + time.perf_counter() - started
        if thread.is_alive():
            self._fail(spec, f"{what} took more than {timeout:g} s")
            return None
        if "error" in box:
            self._fail(spec, f"{what}: {_line(box['error'])}")
            return None
        return box.get("value")

    def _fail(self, spec: str, reason: str) -> None:
        if spec in self.failed:
            return
        self.failed[spec] = reason
        self.warn(f"logger {spec} stopped ({reason}); training goes on without it, the run directory has "
                  "everything: `cnnreg log RUN --log SPEC` sends it later")


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300] if not isinstance(exc, CnnregError) else text[:300]


def run_tags(manifest: dict[str, Any]) -> dict[str, str]:
    """Tags for a tracker run: architecture, dataset, cnnreg version, and a sweep trial's study
    and trial number."""
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    versions = (manifest.get("environment") or {}).get("versions") if isinstance(manifest.get("environment"), dict) else {}
    tags = {"architecture": config.get("architecture"), "dataset": config.get("dataset"),
            "cnnreg_version": (versions or {}).get("cnnreg") if isinstance(versions, dict) else None}
    sweep = manifest.get("sweep") if isinstance(manifest.get("sweep"), dict) else {}
    tags.update({"sweep_study": sweep.get("study"), "sweep_trial": sweep.get("trial")})
    return {k: str(v) for k, v in tags.items() if v is not None}


def flat_params(manifest: dict[str, Any]) -> dict[str, str]:
    """The resolved configuration as ``{"config.epochs": "10", "resolved.optimizer.params.learning_rate": "0.001"}``:
    the command line's choices and every component with its parameters."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}", item)
        else:
            flat[prefix] = value if isinstance(value, str) else ("" if value is None else _text(value))

    for key in ("config", "resolved"):
        if isinstance(manifest.get(key), dict):
            walk(key, manifest[key])
    return flat


def _text(value: Any) -> str:
    import json

    return json.dumps(value, default=str) if isinstance(value, (list, dict, bool)) else str(value)


def metric_row(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a history.csv row, as written there (epoch is the step, phase is text)."""
    return {k: float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def resolve_loggers(registry, specs: list[str] | None) -> list[tuple[Any, Any]]:
    """``[(Resolved, Logger)]`` for ``--log`` specs (default
    :data:`cnnreg.kinds.loggers.DEFAULT_LOGGERS`; ``none`` for none); a factory that does not
    return a Logger is one line."""
    from cnnreg.errors import PluginError
    from cnnreg.kinds.loggers import DEFAULT_LOGGERS, Logger
    from cnnreg.training.config import Resolved

    specs = list(DEFAULT_LOGGERS if specs is None else specs)
    if [s.strip().lower() for s in specs] == ["none"]:
        return []
    if any(s.strip().lower() == "none" for s in specs):
        raise CnnregError("--log none means no logger: give it alone")
    found = []
    for text in specs:
        component, params = registry.resolve("logger", text)
        made = component.load()(**params)
        if not isinstance(made, Logger):
            raise PluginError(f"logger '{component.name}' from {component.provider} returned {type(made).__name__}, "
                              "not a cnnreg.kinds.loggers.Logger (see docs/plugins.md)")
        found.append((Resolved(component, params), made))
    return found

