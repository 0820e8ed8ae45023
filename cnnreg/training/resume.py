"""Resuming a run from its run directory after Ctrl-C, kill -9, a crash or a full disk.

``resume`` trusts nothing it reads back: a checkpoint is only ever a plain ``epoch-NNNN.keras``
inside ``checkpoint/``, loaded in Keras' safe mode; when ``state.json`` is missing or damaged the
newest whole checkpoint with a complete history wins, and a damaged newest checkpoint falls back
to the older one.  It starts over only when no epoch ever completed, and otherwise refuses in
one line (:func:`recover`).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from cnnreg import files
from cnnreg.errors import CnnregError
from cnnreg.training import rundir
from cnnreg.training.config import Plan, resolve
from cnnreg.training.loop import STATE, Outcome, fit, reason_text, start_trackers, tagged, worker_dir
from cnnreg.training.model import (
    apply_training_settings,
    compile_model,
    load_weights,
    prepare,
)
from cnnreg.training.rundir import CHECKPOINT_DIR


def resume(run_dir: Path, *, progress=None, launch: dict[str, Any] | None = None, report=None, announce=None) -> Outcome:
    """Continue an interrupted, crashed or failed run from its last completed epoch.

    ``launch``: the multi-process arguments (``--coordinator`` ...) when several processes
    resume it together; every process reads ``run_dir`` (shared storage), process 0 writes it
    (and holds its lock).  ``report(line)`` is told how the run was recovered when
    ``state.json`` or the newest checkpoint could not be used.  ``announce(plan, epochs_done)``
    is called once the run is recovered, before training goes on (the CLI prints the header).
    """
    run_dir = Path(run_dir)
    data = rundir.load_manifest(run_dir)
    if data.get("status") == "completed":
        raise CnnregError(f"run {run_dir} is already completed; use `cnnreg rerun {run_dir}` for a new run")
    config = rundir.run_config(data, run_dir)
    from cnnreg.training.saved import run_preprocess

    run_preprocess(data, run_dir)  # a manifest naming anything else is refused before anything loads
    chief = launch_rank(launch) == 0
    lock = rundir.claim(run_dir, fresh=False) if chief else contextlib.nullcontext()
    with lock:
        # The checkpoint holds the weights: what the run started from (--weights) is neither
        # loaded nor needed, unless no epoch completed (_resume loads it then).
        plan = resolve(config, weights=False)
        plan.launch = dict(launch or {})
        plan.warn = report
        try:
            shape = rundir.input_shape(data, run_dir)
        except CnnregError:
            shape = None  # worked out again from the config
        prepare(plan, input_shape=shape, pretrained=False)
        distribution = plan.distribution
        if not distribution.is_chief:  # train in step with process 0 into a scratch copy
            with worker_dir(plan) as scratch:
                files.write_json(scratch / rundir.MANIFEST, data)
                return tagged(plan, _resume(plan, run_dir, scratch, data, progress, report))
        for stale in [*run_dir.glob(".*.tmp*"), *run_dir.glob(f"{CHECKPOINT_DIR}/.*.tmp*")]:
            stale.unlink(missing_ok=True)  # half-written files of the killed process
        return _resume(plan, run_dir, run_dir, data, progress, report, announce)


def launch_rank(launch: dict[str, Any] | None) -> int:
    """This process's index in a multi-process launch (0 when there is one process), known
    before anything is started: process 0 writes and locks the run directory."""
    from cnnreg.training.distribute import env_int

    launch = launch or {}
    processes = launch.get("num_processes") or env_int("JAX_NUM_PROCESSES") or 1
    if processes <= 1:
        return 0
    rank = launch.get("process_id")
    return (rank if rank is not None else env_int("JAX_PROCESS_ID")) or 0


def _resume(plan: Plan, run_dir: Path, target: Path, data: dict[str, Any], progress, report, announce=None) -> Outcome:
    """Load the checkpoint of ``run_dir`` and train on, writing to ``target``."""
    from cnnreg.training.saved import import_keras_objects

    # the checkpoint holds the optimizer and its schedule: their Keras classes must be known
    import_keras_objects(plan.optimizer.component, plan.schedule[0].component if plan.schedule else None)
    recovered = recover(run_dir, data, report=report)
    chief = target == run_dir
    if recovered is None:  # no epoch ever completed: nothing is lost by starting again
        load_weights(plan, plan.model)
        if chief:
            try:
                _mark_running(target, {"epochs_done": 0})
            except OSError as exc:
                raise CnnregError(f"cannot write the run directory {run_dir}: {reason_text(exc)}") from None
        compile_model(plan, plan.model)
        if chief and announce is not None:
            announce(plan, 0)
        state = {"history": []}
        if chief:
            start_trackers(plan, target, state, resuming=True)
        return fit(plan, target, plan.model, state, progress=progress)
    model, state = recovered
    apply_training_settings(plan, model)
    plan.model = model
    if chief:
        try:
            _put_on_record(run_dir, state, report)
        except OSError as exc:
            raise CnnregError(f"cannot write the run directory {run_dir}: {reason_text(exc)}") from None
        if announce is not None:
            announce(plan, len(state["history"]))
        start_trackers(plan, target, state, resuming=True)
    return fit(plan, target, model, state, progress=progress)


def _put_on_record(run_dir: Path, state: dict[str, Any], report=None) -> None:
    """Make the run directory agree with the recovered checkpoint before training on: state.json
    points at it, history.csv ends with it, model.keras is its model (less the optimizer) when it is the best epoch."""
    import zipfile

    name = state["checkpoints"][-1]
    done = len(state["history"])
    if state["best_epoch"] != done and not zipfile.is_zipfile(run_dir / "model.keras"):
        # the best model is gone (deleted, cut short): the best from here on is what there is
        last = state["history"][-1].get(state["monitor"])
        state["best_epoch"], state["best_value"] = done, last if isinstance(last, (int, float)) else None
        if report is not None:
            report(f"model.keras in {run_dir} is missing or damaged: it is now epoch {done}'s model, "
                   "replaced by any better epoch to come")
    files.write_json(
        run_dir / CHECKPOINT_DIR / STATE,
        {"checkpoint": name, "checkpoints": [name], "epochs_done": done, "history": state["history"],
         "best_value": state["best_value"], "best_epoch": state["best_epoch"], "monitor": state["monitor"],
         "phase": state["resumed_phase"], "phase_epoch": sum(1 for row in state["history"] if row["phase"] == state["resumed_phase"])},
    )
    rundir.write_history(run_dir / "history.csv", state["history"])  # drop any row past the checkpoint
    if state["best_epoch"] == done:  # killed before model.keras was written, or it was lost
        rundir.save_without_optimizer(run_dir / CHECKPOINT_DIR / name, run_dir / "model.keras")
    _mark_running(run_dir, {"epochs_done": done, "best_epoch": state["best_epoch"], "best": {state["monitor"]: state["best_value"]}})


def _mark_running(run_dir: Path, fields: dict[str, Any]) -> None:
    data = rundir.load_manifest(run_dir)
    data.update(status="running", message="", process=rundir.process_record(), **fields)
    files.write_json(run_dir / rundir.MANIFEST, data)


def recover(run_dir: Path, data: dict[str, Any], *, report=None):
    """The model and training state to resume ``run_dir`` from, or None when no epoch ever
    completed (then starting again loses nothing).

    ``state.json`` says which checkpoint is current; without it (missing, cut short) the newest
    checkpoint file counts, its epoch taken from its name and its history from ``history.csv``.
    A checkpoint that is damaged, or whose epochs' history is not on record, gives way to the
    older one.  When none is left, one line refuses, naming what was wrong: never a silent
    restart from epoch 1.
    """
    from cnnreg.training.saved import load_keras_file

    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINT_DIR
    saved, problem = _read_state(run_dir)
    csv_rows = rundir.read_history(run_dir / "history.csv")
    committed = _epoch(saved["checkpoint"]) if saved else None
    files = []
    for path in folder.glob("epoch-*.keras") if folder.is_dir() else ():
        if rundir.CHECKPOINT_NAME.fullmatch(path.name):
            files.append((_epoch(path.name), rundir.checkpoint_path(run_dir, path.name)))
    files.sort(reverse=True)
    if saved and committed not in {n for n, _ in files}:
        files.insert(0, (committed, rundir.checkpoint_path(run_dir, saved["checkpoint"])))
    reasons = [problem] if problem else []
    for epochs, path in files:
        if committed is not None and epochs > committed:
            continue  # saved, but killed before its epoch went on record: that epoch is redone
        rows = (rundir.complete_rows(saved["history"], epochs) if saved else None) or rundir.complete_rows(csv_rows, epochs)
        label = f"{CHECKPOINT_DIR}/{path.name}"
        if rows is None:
            reasons.append(f"{label} has no complete history for its {epochs} epochs")
            continue
        try:
            model = load_keras_file(path, f"{label} in {run_dir}", compile=True)
        except CnnregError as exc:
            reasons.append(str(exc).replace(f" in {run_dir}", ""))
            continue
        if reasons and report is not None:
            report(f"{'; '.join(reasons)}: resuming {run_dir} from {label} (epoch {epochs})")
        return model, _state_from(rows, path.name)
    if saved is None and not data.get("epochs_done") and not rundir.complete_rows(csv_rows, 1):
        if files and report is not None:
            report(f"no epoch of {run_dir} had gone on record: starting again from epoch 1")
        return None
    raise CnnregError(f"cannot resume {run_dir}: {'; '.join(reasons) or 'checkpoint/ holds no checkpoint'}; "
                      f"`cnnreg rerun {run_dir}` trains it again from epoch 1")


def _read_state(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """state.json when it is whole (else None and what is wrong with it).  A checkpoint name in
    it that is not a plain ``epoch-NNNN.keras`` file inside ``checkpoint/`` is refused."""
    path = run_dir / CHECKPOINT_DIR / STATE
    if not path.exists():
        return None, f"{CHECKPOINT_DIR}/{STATE} is missing"
    try:
        saved = files.read_json(path, f"{CHECKPOINT_DIR}/{STATE}")
    except CnnregError as exc:
        return None, str(exc)
    if not isinstance(saved, dict):
        return None, f"{CHECKPOINT_DIR}/{STATE} is damaged"
    rundir.checkpoint_path(run_dir, saved.get("checkpoint"))
    for name in saved.get("checkpoints") or []:
        rundir.checkpoint_path(run_dir, name, field="checkpoints")
    return saved, ""


def _epoch(name: str) -> int:
    return int(rundir.CHECKPOINT_NAME.fullmatch(name).group(1))


def _state_from(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The training state after ``rows``: the best epoch recomputed from them."""
    monitor = "val_accuracy" if "val_accuracy" in rows[-1] else "accuracy"
    best_value, best_epoch = None, None
    for row in rows:
        value = row.get(monitor)
        if isinstance(value, (int, float)) and math.isfinite(value) and (best_value is None or value > best_value):
            best_value, best_epoch = float(value), row["epoch"]
    return {"history": [dict(row) for row in rows], "best_value": best_value, "best_epoch": best_epoch, "monitor": monitor,
            "resumed_phase": rows[-1]["phase"], "checkpoints": [name], "saved": len(rows)}
