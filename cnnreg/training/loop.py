"""The training loop: ``model.fit`` with cnnreg's callbacks, writing the run directory as it goes.

Per checkpointed epoch, in this order: the checkpoint (model + optimizer state) is saved to a
new file, ``checkpoint/state.json`` is rewritten to point at it and the one before (with the
history so far), checkpoints older than those two are removed, then ``history.csv``,
``model.keras`` (when the validation metric improved since the last checkpoint) and ``run.json``.
Every write goes to a temporary name and is renamed, so a kill -9 at any moment leaves the
previous consistent state, from which ``resume`` continues.  The model is serialised at the
epoch's end; the writing happens in a background thread while the next epoch trains
(:mod:`cnnreg.training.writer`), and training ends only once it is done.

Which epochs are checkpointed is ``--checkpoint`` (:func:`checkpoint_due`): by default every
epoch of a model whose checkpoint is under 64 MB, and for larger ones at most one per minute of
training, plus the last epoch of each phase.  Between checkpoints an epoch writes only
``history.csv`` and ``run.json``, and an improved model waits in memory for the next checkpoint:
a kill -9 or Ctrl-C then loses at most that minute of training, which ``resume`` repeats.

A process holds the run directory's OS lock (:func:`cnnreg.training.rundir.acquire`) while it
trains into it.  Resuming is :mod:`cnnreg.training.resume`; the manifest (``run.json``) is
written by :func:`manifest`.
"""

from __future__ import annotations

import contextlib
import math
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnreg import files
from cnnreg.errors import CnnregError
from cnnreg.training import rundir
from cnnreg.training.trackers import Trackers, metric_row
from cnnreg.training.writer import EpochWriter
from cnnreg.training.batches import held_out, held_out_pipeline, processes, training_data
from cnnreg.training.config import Plan
from cnnreg.training.model import compile_model, model_summary, set_base_trainable
from cnnreg.training.steps import (
    check_step_transforms,
    install_step_transforms,
    step_transforms_removed,
)
from cnnreg.version import __version__

CHECKPOINT_DIR = rundir.CHECKPOINT_DIR


STATE = "state.json"


class NaNLoss(Exception):
    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__(f"loss became NaN or Inf at epoch {epoch + 1}, batch {batch + 1}")
        self.epoch, self.batch = epoch, batch


class WriteFailed(Exception):
    """Writing the run directory failed mid-run (a full disk, a directory made read-only)."""

    def __init__(self, error: OSError, epoch: int) -> None:
        super().__init__(str(error))
        self.error, self.epoch = error, epoch


@dataclass
class Outcome:
    run_dir: Path
    status: str
    history: list[dict[str, Any]]
    best_epoch: int | None
    best: dict[str, Any]
    test: dict[str, Any] | None
    seconds: float
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _callbacks(plan: Plan, run_dir: Path, state: dict[str, Any], progress, phase: str, writer: EpochWriter):
    import keras

    class Recorder(keras.callbacks.Callback):
        """Checkpoint, history, best model and curves at the end of every epoch."""

        _epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            _raise_if_interrupted(state)
            self._epoch = epoch
            self._started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            _raise_if_interrupted(state)
            _track(writer.poll, run_dir, state, self.model)  # an epoch whose files are written goes to the trackers
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True
                state["nan"] = (self._epoch, batch)

        def on_epoch_end(self, epoch, logs=None):
            _raise_if_interrupted(state)  # before anything of this epoch is written
            if state.get("nan"):
                return
            logs = {k: float(v) for k, v in (logs or {}).items()}
            if not all(math.isfinite(v) for v in logs.values()):
                state["nan"] = (epoch, plan.steps_per_epoch - 1)
                self.model.stop_training = True
                return
            row = {"epoch": len(state["history"]) + 1, "phase": phase, "lr": _current_lr(self.model), **logs,
                   "seconds": round(time.perf_counter() - self._started, 3)}
            _track(writer.wait, run_dir, state, self.model)  # the epoch before is on record
            state["history"].append(row)
            state["saving"] = True  # a Ctrl-C now waits until the epoch's snapshot is taken
            try:
                save_epoch(plan, run_dir, self.model, state, epoch, writer=writer)
            except OSError as exc:  # told apart from other OSErrors of fit (reading data)
                self.model.stop_training = True
                raise WriteFailed(exc, row["epoch"]) from exc
            finally:
                state.pop("saving", None)
            _raise_if_interrupted(state)

        def on_train_end(self, logs=None):
            # the phase ended (its last epoch, early stopping, a caller's stop) with an epoch that
            # was not checkpointed: checkpoint it now, while the model still is that epoch's
            if state.get("nan") or not state["history"] or state.get("checkpointed", 0) >= len(state["history"]):
                return
            _track(writer.wait, run_dir, state, self.model)
            try:
                checkpoint(plan, run_dir, self.model, state, writer=writer)
            except OSError as exc:
                raise WriteFailed(exc, len(state["history"])) from exc

    callbacks = [Recorder()]
    for _, reg in plan.regularisers:
        callbacks.extend(reg.callbacks())
    if plan.config.early_stop:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=plan.config.early_stop))
    if plan.schedule is not None:
        callbacks.extend(plan.schedule[1].callbacks())
    callbacks.extend(make(plan) for make in plan.extra_callbacks)
    if state.get("trackers"):
        callbacks.extend(state["trackers"].callbacks())
    if progress is not None:
        callbacks.append(progress)
    return callbacks


def _track(finished: Callable[[], list[dict[str, Any]]], run_dir: Path, state: dict[str, Any], model=None) -> None:
    """Send the trackers the rows of the epochs whose files ``finished()`` (the writer's wait or
    poll) says are checkpointed: a tracker never has an epoch the run lacks (a run stopped
    between checkpoints goes back to its last one).  A write that failed is
    :class:`WriteFailed`, and training stops."""
    try:
        rows = [row for written in finished() for row in written]  # each job: the rows it put on record
    except OSError as exc:
        if model is not None:
            model.stop_training = True
        raise WriteFailed(exc, getattr(exc, "epoch", len(state["history"]))) from exc
    if state.get("trackers") and rows:
        for row in rows:
            state["trackers"].metrics(metric_row(row), row["epoch"])
        keep_tracker_ids(run_dir, state["trackers"])


def _raise_if_interrupted(state: dict[str, Any]) -> None:
    """Re-raise a Ctrl-C that Keras swallowed: its ``pythonify_logs`` wraps the conversion of
    each batch's logs, where the JAX backend waits for the step, in a bare ``except: pass``."""
    if state.get("sigint"):
        raise KeyboardInterrupt


@contextlib.contextmanager
def _catch_ctrl_c(state: dict[str, Any]):
    """While training, Ctrl-C also leaves a flag that the callbacks check (see above); while an
    epoch's checkpoint, history and manifest are written, it only leaves the flag, so that
    they stay consistent with each other."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # not ours to change: another thread, or a process that ignores or handles Ctrl-C itself
        return

    def interrupted(signum, frame):
        state["sigint"] = True
        if not state.get("saving"):
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        state.pop("sigint", None)


def _current_lr(model) -> float:
    import keras

    optimizer = model.optimizer
    lr = optimizer.learning_rate
    try:
        return float(keras.ops.convert_to_numpy(lr))
    except Exception:
        return float("nan")


#: ``--checkpoint auto``: every epoch while a checkpoint (the model's and the optimizer's
#: variables) is smaller than this ...
CHEAP_BYTES = 64 << 20
#: ... else at most one checkpoint per this many seconds of training (and one at the end): the
#: 256 MB of ResNet-34 with Adam cost 1-3 s of a 7-10 s epoch on 2 cores, every epoch.
AUTO_SECONDS = 60.0


def checkpoint_due(plan: Plan, model, state: dict[str, Any]) -> bool:
    """Whether the epoch that just ended is checkpointed (``--checkpoint``): ``epoch`` always,
    ``SECONDS`` once that much training passed since the last checkpoint, ``auto`` always for a
    checkpoint under :data:`CHEAP_BYTES`, else as ``SECONDS`` = :data:`AUTO_SECONDS`.  A
    distributed run checkpoints every epoch (saving is collective there)."""
    from cnnreg.training.config import checkpoint_seconds

    if plan.distribution is not None and plan.distribution.mode != "none":
        return True
    seconds = checkpoint_seconds(plan.config.checkpoint)
    if seconds is None:
        if state.get("checkpoint_bytes") is None:
            state["checkpoint_bytes"] = variables_bytes(model)
        if state["checkpoint_bytes"] < CHEAP_BYTES:
            return True
        seconds = AUTO_SECONDS
    return time.monotonic() - state.get("checkpoint_time", 0.0) >= seconds


def variables_bytes(model) -> int:
    """Bytes of the model's and its optimizer's variables: about the size of a checkpoint."""
    from cnnreg.analysis.costs import weights_bytes

    return weights_bytes([*model.weights, *(getattr(getattr(model, "optimizer", None), "variables", None) or [])])


def save_epoch(plan: Plan, run_dir: Path, model, state: dict[str, Any], epoch: int, *,
               writer: EpochWriter | None = None) -> None:
    """After epoch ``epoch`` (0-based) completed: the best epoch so far is updated, and the
    epoch is checkpointed when :func:`checkpoint_due` says so (:func:`checkpoint`).  Otherwise
    only ``history.csv`` and ``run.json`` are written, by ``writer`` while the next epoch trains
    (here, without one), and a model that improved is kept in memory (its weights, a third of a
    checkpoint with Adam) until the next checkpoint writes it as ``model.keras``."""
    history = list(state["history"])  # the rows so far: the next epoch appends to the state's own
    done = len(history)
    monitor = "val_accuracy" if "val_accuracy" in history[-1] else "accuracy"
    value = history[-1].get(monitor)
    improved = state.get("best_value") is None or (value is not None and value > state["best_value"])
    if improved:
        state["best_value"], state["best_epoch"] = value, done
    state["monitor"] = monitor
    if checkpoint_due(plan, model, state):
        checkpoint(plan, run_dir, model, state, writer=writer)
        return
    if improved:
        state["pending"] = model.get_weights()  # NumPy copies: the next steps change the model's

    def write() -> dict[str, Any]:
        rundir.write_history(run_dir / "history.csv", history)
        best_value, best_epoch = state.get("saved_best") or (None, None)  # what model.keras holds
        data = rundir.load_manifest(run_dir)
        data.update(status="running", epochs_done=done, best_epoch=best_epoch, best={monitor: best_value},
                    checkpoint_epoch=state.get("saved", 0))
        files.write_json(run_dir / rundir.MANIFEST, data)
        return []  # not on record for a resume yet: the trackers get it with the next checkpoint

    if writer is None:
        write()
    else:
        writer.submit(write, epoch=done)


def checkpoint(plan: Plan, run_dir: Path, model, state: dict[str, Any], *, writer: EpochWriter | None = None) -> None:
    """Checkpoint the last completed epoch: everything that must survive a kill -9.  The model
    is serialised now; the files are written by ``writer`` while the next epoch trains (here,
    without one), in the order of the module docstring.  A best epoch kept in memory since the
    last checkpoint is serialised too (its weights put in the model for the moment) and becomes
    ``model.keras``; ``state.json`` names the best epoch that ``model.keras`` holds at each moment.

    The last two checkpoints stay, so that a damaged newest one (a disk that lied) still leaves
    one to resume from."""
    from cnnreg.training.writer import snapshot, pause_for_tests

    checkpoint_dir = run_dir / CHECKPOINT_DIR
    history = list(state["history"])
    done = len(history)
    name = f"epoch-{done:04d}.keras"
    monitor, best = state["monitor"], (state.get("best_value"), state.get("best_epoch"))
    on_disk = state.get("saved_best") or (None, None)
    kept = [n for n in state.get("checkpoints", []) if n != name][-1:] + [name]
    recorded = history[state.get("checkpointed", 0):]  # the epochs this checkpoint puts on record
    state["checkpoint_time"], state["checkpointed"] = time.monotonic(), done
    serialised = snapshot(model)  # a consistent copy before the next step changes a weight
    if serialised is None:  # this Keras saves to files only: the checkpoint is written now
        files.save_atomic(checkpoint_dir / name, model.save)
    pending, best_model = state.pop("pending", None), None
    if best[1] != done and best[1] != on_disk[1] and pending is not None:
        current = model.get_weights()
        model.set_weights(pending)
        try:
            best_model = snapshot(model)
        finally:
            model.set_weights(current)

    def write() -> dict[str, Any]:
        if serialised is not None:
            def dump(tmp: str) -> None:
                with open(tmp, "wb") as handle:
                    handle.write(serialised.getbuffer())
                pause_for_tests()

            files.save_atomic(checkpoint_dir / name, dump)  # .epoch-NNNN.tmpPID.keras, then renamed

        def record(best_value, best_epoch) -> None:
            files.write_json(
                checkpoint_dir / STATE,
                {"checkpoint": name, "checkpoints": kept, "epochs_done": done, "history": history,
                 "best_value": best_value, "best_epoch": best_epoch, "monitor": monitor,
                 "phase": history[-1]["phase"], "phase_epoch": sum(1 for row in history if row["phase"] == history[-1]["phase"])},
            )

        # this epoch the best: resume rebuilds model.keras from the checkpoint if it is killed before
        # it is written; a best epoch before it: state.json names it only once model.keras holds it
        record(*(best if best[1] == done or best_model is None else on_disk))
        state["checkpoints"], state["saved"] = kept, done  # epoch `done` is now on record
        for old in checkpoint_dir.glob("epoch-*.keras"):
            if old.name not in kept:
                old.unlink(missing_ok=True)
        rundir.write_history(run_dir / "history.csv", history)
        if best[1] == done:  # the checkpoint less its optimizer state (a third of its size with Adam)
            rundir.save_without_optimizer(checkpoint_dir / name, run_dir / "model.keras")
        elif best_model is not None:
            rundir.save_without_optimizer(best_model, run_dir / "model.keras")
            record(*best)
        if best[1] == done or best_model is not None:
            state["saved_best"] = best
        data = rundir.load_manifest(run_dir)
        data.update(status="running", epochs_done=done, best_epoch=state.get("saved_best", best)[1],
                    best={monitor: state.get("saved_best", best)[0]}, checkpoint_epoch=done)
        files.write_json(run_dir / rundir.MANIFEST, data)
        return recorded

    if writer is None:
        write()
    else:
        writer.submit(write, epoch=done)


def start(plan: Plan, run_dir: Path | None, *, argv: list[str] | None = None, progress=None) -> Outcome:
    """Write the manifest and summary, then train (both phases for transfer learning).

    In a multi-process run only process 0 writes ``run_dir``.  The others train in step with it
    and, because saving a distributed Keras model is a collective operation, save in step too,
    into a scratch directory that is removed at the end (``run_dir`` may be None there).
    """
    if plan.distribution is not None and not plan.distribution.is_chief:
        with worker_dir(plan) as scratch:
            return tagged(plan, _start(plan, scratch, argv=argv, progress=progress))
    if run_dir is None:
        raise ValueError("start() needs a run directory")
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnregError(f"cannot create the run directory {run_dir} ({exc.strerror or exc})") from None
    with rundir.acquire(run_dir):  # the CLI took it already, before loading the data
        return _start(plan, run_dir, argv=argv, progress=progress)


@contextlib.contextmanager
def worker_dir(plan: Plan):
    """A scratch run directory for a process other than 0, removed at the end."""
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix=f"cnnreg-process{plan.distribution.process_index}-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def tagged(plan: Plan, outcome: Outcome) -> Outcome:
    """Mark the outcome of a process other than 0: ``extra["process"] = (index, processes)``."""
    outcome.extra["process"] = (plan.distribution.process_index, plan.distribution.processes)
    return outcome


def _start(plan: Plan, run_dir: Path, *, argv: list[str] | None = None, progress=None) -> Outcome:
    run_dir.mkdir(parents=True, exist_ok=True)
    check_step_transforms(plan, plan.model)  # a transform that cannot run: one line, nothing written
    env = environment()
    extra = {"environment": env, "process": rundir.process_record()}  # `cnnreg runs` tells a killed run by it
    try:
        files.write_json(run_dir / rundir.MANIFEST, manifest(plan, status="running", argv=argv, extra=extra))
        _write_summary(plan, run_dir)
    except OSError as exc:
        raise CnnregError(f"cannot write the run directory {run_dir}: {reason_text(exc)}") from None
    if plan.config.freeze_base:  # phase 1 trains the new head only (Keras: freeze, then compile)
        set_base_trainable(plan.model, False)
    compile_model(plan, plan.model)
    state: dict[str, Any] = {"history": []}
    start_trackers(plan, run_dir, state)
    return fit(plan, run_dir, plan.model, state, progress=progress)


def start_trackers(plan: Plan, run_dir: Path, state: dict[str, Any], *, resuming: bool = False) -> None:
    """Start the run's loggers (``--log``) on the manifest just written, keep their ids in it
    (``trackers``: what ``cnnreg resume`` continues) and put them in ``state``; on a resume, send
    a logger the epochs on record it did not get."""
    chief = plan.distribution is None or plan.distribution.is_chief
    if not plan.loggers or not chief:
        return
    trackers = Trackers([(resolved.spec, logger) for resolved, logger in plan.loggers], warn=plan.warn)
    trackers.start(run_dir, rundir.load_manifest(run_dir), resuming=resuming, epochs_done=len(state["history"]))
    if resuming:
        trackers.catch_up(state["history"])
    keep_tracker_ids(run_dir, trackers)
    state["trackers"] = trackers


def keep_tracker_ids(run_dir: Path, trackers: Trackers) -> None:
    """The loggers' run ids and last epochs into the manifest (``trackers``)."""
    record = trackers.record()
    if not record:
        return
    try:
        data = rundir.load_manifest(run_dir)
        known = data.get("trackers") if isinstance(data.get("trackers"), dict) else {}
        data["trackers"] = {**known, **record}
        files.write_json(run_dir / rundir.MANIFEST, data)
    except (OSError, CnnregError):
        pass  # the run itself finds out at its next epoch


def _write_summary(plan: Plan, run_dir: Path) -> None:
    files.write_atomic(run_dir / "summary.txt", model_summary(plan.model) + "\n")


def fit(plan: Plan, run_dir: Path, model, state: dict[str, Any], *, progress=None) -> Outcome:
    """Run the remaining epochs of phase 1 (head / whole model) and phase 2 (fine-tuning)."""
    config = plan.config
    started = time.time()
    validation = held_out(plan, "validation", shard=True)
    arrays = isinstance(validation, tuple)  # a tf.data validation split is batched already
    # a split streamed from files has an unknown length (files that fail to decode drop out)
    streamed = "validation" in plan.streams and plan.streams["validation"].images is None
    per_process = {"validation_batch_size": config.batch_size // processes(plan)} if processes(plan) > 1 and arrays else {}
    if arrays and not per_process:  # on TensorFlow, a pipeline that does not stall each validation pass
        batches = held_out_pipeline(*validation, batch_size=config.batch_size)
        validation = validation if batches is None else batches
    phases = [("train", config.epochs, None)]
    if config.fine_tune_epochs:
        phases = [("head", config.epochs, None), ("fine-tune", config.fine_tune_epochs, config.fine_tune_lr)]
    done = len(state["history"])
    status, message = "completed", ""
    total = sum(epochs for _, epochs, _ in phases)
    writer = EpochWriter()
    # what is on record when training starts (a resumed run: its checkpoint); the clock of --checkpoint
    state.setdefault("saved", done)
    state["checkpointed"] = state["saved"]
    state.setdefault("saved_best", (state.get("best_value"), state.get("best_epoch")))
    state["checkpoint_time"] = time.monotonic()
    stopped = False  # by a NaN or Ctrl-C: the epochs after the last checkpoint are not on record
    try:
        for index, (phase, epochs, lr) in enumerate(phases):
            already = sum(1 for row in state["history"] if row["phase"] == phase)
            if already >= epochs:
                continue
            if phase == "fine-tune" and already == 0 and done and state.get("resumed_phase") != "fine-tune":
                set_base_trainable(model, True)
                compile_model(plan, model, learning_rate=lr or plan.optimizer.params["learning_rate"] / 10, epochs=epochs)
            if progress is not None:
                progress.set_phase(phase, epochs)
                if hasattr(progress, "set_run"):  # for the whole run's ETA
                    progress.set_run(before=sum(e for _, e, _ in phases[:index]), total=total)
            data = training_data(plan, first_epoch=len(state["history"]))  # batches of the epochs to come
            state.pop("checkpoint_bytes", None)  # a phase compiles its own optimizer (fine-tuning: a bigger one)
            install_step_transforms(plan, model)  # after compile, on every model (a resumed one is new)
            with warnings.catch_warnings(), _catch_ctrl_c(state), step_transforms_removed(model):
                if streamed:  # Keras warns whenever a split of unknown length ends, i.e. every epoch
                    warnings.filterwarnings("ignore", message="Your input ran out of data")
                model.fit(
                    **data, **per_process, epochs=epochs, initial_epoch=already, validation_data=validation,
                    callbacks=_callbacks(plan, run_dir, state, progress, phase, writer), verbose=0,
                )
            done = len(state["history"])
            if state.get("nan"):
                epoch, batch = state["nan"]
                raise NaNLoss(epoch, batch)
            if plan.stop is not None:  # a caller's callback ended the run (a pruned sweep trial)
                status, message = plan.stop
                break
    except NaNLoss as exc:
        status, stopped = "failed", True
        message = f"{exc}; kept the last good checkpoint and model; try --clip norm=1.0 or a lower --lr"
    except WriteFailed as exc:
        status, message = "failed", _write_failure(exc, state, run_dir)
    except KeyboardInterrupt:
        status, stopped = "interrupted", True
        message = f"resume with: cnnreg resume {run_dir}"  # the status already says interrupted
    try:  # however it ended, the epoch in flight is written (or its failure said) before the run ends
        _track(writer.wait, run_dir, state)
    except WriteFailed as exc:
        status, message = "failed", _write_failure(exc, state, run_dir)
    if stopped and len(state["history"]) > state.get("saved", 0):
        _back_to_record(state, run_dir)
    seconds = time.time() - started
    return _finish(plan, run_dir, state, status, message, seconds, model=model)


def _back_to_record(state: dict[str, Any], run_dir: Path) -> None:
    """A run stopped (NaN, Ctrl-C) after epochs that no checkpoint holds: it ends where its last
    checkpoint is, which is where ``cnnreg resume`` goes on (history.csv and the best epoch too)."""
    kept = state.get("saved", 0)
    del state["history"][kept:]
    state["best_value"], state["best_epoch"] = state.get("saved_best") or (None, None)
    state.pop("pending", None)
    try:
        if state["history"]:
            rundir.write_history(run_dir / "history.csv", state["history"])
        else:
            (run_dir / "history.csv").unlink(missing_ok=True)
    except OSError:
        pass  # said by _finish, which writes run.json next


def _write_failure(exc: WriteFailed, state: dict[str, Any], run_dir: Path) -> str:
    """The line of a run that could not write its directory; the epochs not on record are dropped."""
    kept = state.get("saved", 0)
    del state["history"][kept:]  # the epoch whose files could not all be written is not on record
    kept_text = {0: "no epoch was on record yet", 1: "epoch 1 is kept"}.get(kept, f"epochs 1-{kept} are kept")
    return (f"cannot write the run directory at epoch {exc.epoch}: {reason_text(exc.error)}; {kept_text}: "
            f"free space or fix the directory, then `cnnreg resume {run_dir}`")


def reason_text(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


def _finish(plan: Plan, run_dir: Path, state: dict[str, Any], status: str, message: str, seconds: float,
            *, model=None) -> Outcome:
    from cnnreg.training.report import plot_curves

    test = None
    chief = plan.distribution is None or plan.distribution.is_chief
    if chief and status == "completed" and (run_dir / "model.keras").exists() and ("test" in plan.arrays or "test" in plan.streams):
        from cnnreg.training.report import evaluate_model
        from cnnreg.training.saved import load_run_model

        if processes(plan) > 1:  # the chief alone, on its own devices: no collectives with the others
            import keras

            keras.distribution.set_distribution(None)
        # the best epoch is the last one (as it mostly is): model.keras holds the weights in memory
        last_is_best = (model is not None and state.get("best_epoch") == len(state["history"])
                        and (plan.distribution is None or plan.distribution.mode == "none"))  # not per replica
        try:
            best = model if last_is_best else load_run_model(run_dir)
            test = evaluate_model(best, held_out(plan, "test"), batch_size=plan.config.batch_size)
        except CnnregError as exc:  # model.keras damaged or deleted meanwhile: the training is complete all the same
            message = f"no test metrics: {exc}"
    try:
        plot_curves(state["history"], run_dir / "curves.png")  # at the end only: ~0.2 s a plot
        data = rundir.load_manifest(run_dir)
        data.update(
            status=status, message=message, epochs_done=len(state["history"]), best_epoch=state.get("best_epoch"),
            best={state.get("monitor", "val_accuracy"): state.get("best_value")}, test=test,
            seconds=round(data.get("seconds", 0) + seconds, 2),
            finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        files.write_json(run_dir / rundir.MANIFEST, data)
    except OSError as exc:  # the disk is full: say so; what is on record stays for `resume`
        if status != "failed":
            status, message = "failed", (f"cannot write the run directory: {reason_text(exc)}; "
                                         f"`cnnreg resume {run_dir}` finishes it once it can be written")
        data = {"best": {state.get("monitor", "val_accuracy"): state.get("best_value")}}
    if status == "completed":  # on record as completed: nothing is left to resume, so checkpoint/ goes
        _remove_checkpoints(run_dir)
    if state.get("trackers"):
        state["trackers"].end(run_dir, status, test, len(state["history"]))
        keep_tracker_ids(run_dir, state["trackers"])  # with the seconds the run waited for them
    return Outcome(run_dir, status, state["history"], state.get("best_epoch"), data["best"], test, seconds, message)


def _remove_checkpoints(run_dir: Path) -> None:
    """Remove ``checkpoint/`` of a completed run (its files, then the folder).  A run killed
    before this keeps it; a completed run is never resumed, so it is only space."""
    folder = run_dir / CHECKPOINT_DIR
    if folder.is_symlink() or not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_file() or entry.is_symlink():
            entry.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # something else was put there: leave it


def environment() -> dict[str, Any]:
    """Versions, backend and devices, for the manifest and the run header."""
    import keras

    from cnnreg import backends

    versions = {"cnnreg": __version__, "keras": keras.__version__, "python": platform.python_version()}
    versions.update(backends.framework_versions())
    return {"versions": versions, "backend": keras.backend.backend(), "devices": backends.devices(), "platform": platform.platform()}


def manifest(plan: Plan, *, status: str, argv: list[str] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {
        "schema": rundir.SCHEMA,
        "status": status,
        "config": plan.config.to_dict(),
        "command": argv if argv is not None else sys.argv,
        "resolved": {
            "architecture": plan.architecture.to_dict(),
            "dataset": plan.dataset_component.to_dict(),
            "init": plan.init.to_dict() if plan.init else None,
            "regularisers": [r.to_dict() for r, _ in plan.regularisers],
            "optimizer": {**plan.optimizer.to_dict(), "clip": plan.clip,
                          "schedule": plan.schedule[0].to_dict() if plan.schedule else None},
            "loggers": [r.to_dict() for r, _ in plan.loggers],
        },
        "input_shape": list(plan.input_shape) if plan.input_shape else None,
        "input_shape_reason": plan.input_reason,
        "preprocess": plan.preprocess_ref,
        "resize": plan.dataset.resize if plan.dataset else "stretch",
        "class_weights": {str(k): v for k, v in plan.class_weights.items()} if plan.class_weights else None,
        "skipped": len(plan.dataset.skipped) if plan.dataset else 0,
        "skipped_files": list(plan.dataset.skipped[:100]) if plan.dataset else [],
        "bn_momentum": plan.bn_momentum,
        "weights": (plan.source.record or None) if plan.source is not None else None,
        "class_names": list(plan.dataset.class_names) if plan.dataset else None,
        "data": _used_sizes(plan),
        "distribution": plan.distribution.to_dict() if plan.distribution is not None else None,
        "lr_find": plan.lr_find,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    data.update(plan.record)
    data.update(extra or {})
    return data


def _used_sizes(plan: Plan) -> dict[str, int] | None:
    """Examples per split as trained on (after trimming for several devices)."""
    if plan.dataset is None:
        return None
    sizes = plan.dataset.sizes()
    sizes.update({name: len(y) for name, (_, y) in plan.arrays.items()})
    sizes.update({name: len(source) for name, source in plan.streams.items()})
    return sizes
