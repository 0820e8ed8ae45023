"""The training loop: ``model.fit`` with cnnreg's callbacks, and resume / rerun.

Per completed epoch, in this order: the checkpoint (model + optimizer state) is saved to a new
file, ``checkpoint/state.json`` is rewritten to point at it and the one before (with the history
so far), checkpoints older than those two are removed, then ``history.csv``, ``model.keras``
(when the validation metric improved) and ``run.json``.  Every write goes to a temporary name and
is renamed, so a kill -9 at any moment leaves the previous consistent state, from which
``resume`` continues.

A process holds the run directory's OS lock (:func:`cnnreg.training.rundir.acquire`) while it
trains into it.  ``resume`` trusts nothing it reads back: a checkpoint is only ever a plain
``epoch-NNNN.keras`` inside ``checkpoint/``, loaded in Keras' safe mode; when ``state.json`` is
missing or damaged the newest whole checkpoint with a complete history wins, and a damaged
newest checkpoint falls back to the older one.  It starts over only when no epoch ever
completed, and otherwise refuses in one line.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnreg import files
from cnnreg.errors import CnnregError
from cnnreg.kinds.regularisers import augmentation_layers
from cnnreg.training import rundir
from cnnreg.training.run import (
    Plan, RunConfig, apply_training_settings, compile_model, environment, load_weights, manifest, prepare, resolve,
)

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


def training_data(plan: Plan, *, first_epoch: int = 0) -> dict[str, Any]:
    """``model.fit`` arguments for the training split.

    Files and tf.data splits go through :func:`cnnreg.datasets.pipeline.training_batches`.
    NumPy arrays without augmentation or batch transforms go to ``fit`` directly (Keras
    shuffles them, seeded by ``keras.utils.set_random_seed``: its own input pipeline is the
    fastest); otherwise a :func:`make_batches` dataset produces them.
    """
    extra = {"class_weight": plan.class_weights} if plan.class_weights else {}
    regularisers = [reg for _, reg in plan.regularisers]
    if "train" in plan.streams:
        from cnnreg.datasets import pipeline
        from cnnreg.kinds.regularisers import combine_batch_transforms

        def make_augment(lane: int):  # each lane its own layers, seeded apart
            import keras

            seed = plan.config.seed + 7919 * lane
            return keras.Sequential(augmentation_layers(regularisers, seed), name=f"augmentation_{lane}")

        augments = bool(augmentation_layers(regularisers, plan.config.seed))
        transform = combine_batch_transforms([t for _, reg in plan.regularisers if (t := reg.batch_transform()) is not None])
        batches = pipeline.training_batches(plan, plan.streams["train"], first_epoch=first_epoch,
                                            make_augment=make_augment if augments else None, batch_transform=transform)
        return {"x": batches, "steps_per_epoch": plan.steps_per_epoch, "shuffle": False, **extra}
    if _processes(plan) > 1 or augmentation_layers(regularisers, plan.config.seed) or any(
        reg.batch_transform() for reg in regularisers
    ):
        return {"x": make_batches(plan, first_epoch=first_epoch), "shuffle": False, **extra}
    x, y = plan.arrays["train"]
    eye = np.eye(plan.dataset.num_classes, dtype="float32")
    return {"x": plan.preprocess(np.array(x, dtype="float32", copy=True)), "y": eye[y], "shuffle": True,
            "batch_size": plan.config.batch_size, **extra}


def make_batches(plan: Plan, *, first_epoch: int = 0):
    """Training batches: seeded shuffle per epoch, augmentation, preprocess, one-hot labels.

    Batch ``i`` of epoch ``e`` depends only on (seed, e, i), so a resumed or rerun run sees the
    same batches.  The epoch counter lives here (advanced by Keras' ``on_epoch_end``) rather
    than in a callback, because Keras may fetch the next epoch's first batches early.  Without
    augmentation (whose Keras layers keep RNG state) batches are prepared by worker threads.

    With several processes (multi-host JAX) every process draws the same global batch and keeps
    its own contiguous part of it, so the global batch is the one a single process would train on.
    """
    import os

    import keras

    x, y = plan.arrays["train"]
    num_classes = plan.dataset.num_classes
    augment_layers = augmentation_layers([reg for _, reg in plan.regularisers], plan.config.seed)
    from cnnreg.kinds.regularisers import combine_batch_transforms

    batch_transform = combine_batch_transforms([t for _, reg in plan.regularisers if (t := reg.batch_transform()) is not None])
    preprocess = plan.preprocess
    pre = None if augment_layers else preprocess(np.array(x, dtype="float32", copy=True))
    augment = keras.Sequential(augment_layers, name="augmentation") if augment_layers else None
    eye = np.eye(num_classes, dtype="float32")
    seed, batch_size = plan.config.seed, plan.config.batch_size
    processes, rank = _processes(plan), plan.distribution.process_index if _processes(plan) > 1 else 0
    workers = 1 if augment is not None else max(1, min(4, (os.cpu_count() or 1) - 1))

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=4)
            self.epoch = first_epoch
            self._orders: dict[int, np.ndarray] = {}

        def order(self, epoch: int) -> np.ndarray:
            if epoch not in self._orders:
                self._orders = {epoch: np.random.default_rng([seed, epoch]).permutation(len(y))}
            return self._orders[epoch]

        def __len__(self):
            return math.ceil(len(y) / batch_size)

        def on_epoch_end(self):
            self.epoch += 1

        def __getitem__(self, index):
            epoch = self.epoch
            rows = np.sort(self.order(epoch)[index * batch_size : (index + 1) * batch_size])
            if processes > 1:  # this process's part of the global batch (its length divides evenly)
                share = len(rows) // processes
                rows = rows[rank * share : (rank + 1) * share]
            labels = eye[y[rows]]
            if augment is None:
                images = pre[rows]
            else:
                images = keras.ops.convert_to_numpy(augment(x[rows], training=True)).astype("float32")
                images = preprocess(images)
            if batch_transform is not None:
                rng = np.random.default_rng([seed, epoch, index, 7])
                images, labels = batch_transform(images, labels, rng)
            return images, labels

    return Batches()


def _processes(plan: Plan) -> int:
    return plan.distribution.processes if plan.distribution is not None else 1


def held_out(plan: Plan, name: str, *, shard: bool = False):
    """A validation or test split, preprocessed with one-hot labels: ``(x, y)`` arrays, or a
    batched tf.data dataset for files and tf.data splits; None when the split does not exist.

    ``shard``: with several processes, only this process's contiguous share (they evaluate
    their shares together, each with batches of ``batch_size / processes``).
    """
    if name in plan.streams:
        from cnnreg.datasets.pipeline import held_out_batches

        return held_out_batches(plan, plan.streams[name], shard=shard)
    if name not in plan.arrays:
        return None
    x, y = plan.arrays[name]
    if shard and _processes(plan) > 1:
        part = plan.distribution.shard(len(y))
        x, y = x[part], y[part]
    return plan.preprocess(np.array(x, dtype="float32", copy=True)), np.eye(plan.dataset.num_classes, dtype="float32")[y]


def _callbacks(plan: Plan, run_dir: Path, state: dict[str, Any], progress, phase: str):
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
            state["history"].append(row)
            state["saving"] = True  # a Ctrl-C now waits until the epoch's files are all written
            try:
                save_epoch(plan, run_dir, self.model, state, epoch)
            except OSError as exc:  # told apart from other OSErrors of fit (reading data)
                self.model.stop_training = True
                raise WriteFailed(exc, row["epoch"]) from exc
            finally:
                state.pop("saving", None)
            _raise_if_interrupted(state)

    callbacks = [Recorder()]
    for _, reg in plan.regularisers:
        callbacks.extend(reg.callbacks())
    if plan.config.early_stop:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=plan.config.early_stop))
    if plan.schedule is not None:
        callbacks.extend(plan.schedule[1].callbacks())
    tensorboard = _tensorboard(run_dir)
    if tensorboard is not None:
        callbacks.append(tensorboard)
    if progress is not None:
        callbacks.append(progress)
    return callbacks


def install_step_transforms(plan: Plan, model) -> bool:
    """Put the regularisers' :meth:`~cnnreg.kinds.regularisers.Regulariser.train_step_transform`
    functions, chained in ``--reg`` order, into ``model``'s training step
    (:func:`cnnreg.backends.wrap_train_step`, seeded from the run's seed) after
    :func:`check_step_transforms`; False when there are none."""
    from cnnreg import backends

    checked = check_step_transforms(plan, model)
    backends.unwrap_train_step(model)
    if checked is None:
        return False
    transform, pixels = checked
    from cnnreg.kinds.regularisers import bind_step_transform

    backends.wrap_train_step(model, bind_step_transform(model, transform, pixels=pixels), seed=plan.config.seed)
    return True


def check_step_transforms(plan: Plan, model):
    """``(chained transform, pixel space)`` of the run's regularisers, or None when none has one.

    The chain runs once eagerly on two mid-grey images (the run's own preprocessing of pixel
    127.5) with the model as it is, so that a transform's mistake — a preprocessing that is not
    affine, a plugin's bug — stops the run in one line before its directory is written (the
    loop calls this first) and before the first epoch, not from inside the compiled step.  It
    is tried once per plan (the transforms do not change with the model: a resumed or a
    fine-tuning phase's model installs the same chain)."""
    if plan.step_transforms_checked:
        return plan.step_transforms
    plan.step_transforms = _checked_step_transforms(plan, model)
    plan.step_transforms_checked = True
    return plan.step_transforms


def _checked_step_transforms(plan: Plan, model):
    from cnnreg.errors import PluginError
    from cnnreg.kinds.regularisers import combine_step_transforms

    named = [(resolved, transform) for resolved, reg in plan.regularisers
             if (transform := reg.train_step_transform()) is not None]
    if not named:
        return None
    chained = combine_step_transforms([transform for _, transform in named])
    pixels = _pixel_space(plan)
    names = ", ".join(f"'{resolved.component.name}' from {resolved.component.provider}" for resolved, _ in named)
    try:
        changed = _try_step_transform(plan, model, chained, pixels)
    except CnnregError:
        raise
    except Exception as exc:  # a plugin's bug: one line naming it, before any training
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PluginError(f"the training-step transform of regulariser {names} failed: "
                          f"{type(exc).__name__}: {first}") from exc
    if changed:
        raise PluginError(f"the training-step transform of regulariser {names} {changed}; it must keep them")
    return chained, pixels


@contextlib.contextmanager
def _step_transforms_removed(model):
    """Leave the model as compiled once ``fit`` returns or fails (``model.train_step`` is the class's again)."""
    try:
        yield
    finally:
        from cnnreg import backends

        backends.unwrap_train_step(model)


def _pixel_space(plan: Plan):
    """A function giving the run's preprocessing as a PixelSpace, probed once, when first asked."""
    from cnnreg.kinds.attacks import PixelSpace

    found: list[Any] = []

    def pixels():
        if not found:
            what = f"the preprocessing of {plan.architecture.component.name} ({plan.preprocess_ref})"
            found.append(PixelSpace.probe(plan.preprocess, int(plan.input_shape[-1]), what=what))
        return found[0]

    return pixels


def _try_step_transform(plan: Plan, model, transform, pixels) -> str:
    """Run ``transform`` eagerly on two grey images with the model as it is: what it changed of
    the batch's shapes, else ``""``."""
    import keras

    from cnnreg.kinds.attacks import logits_function
    from cnnreg.kinds.regularisers import StepContext

    x = plan.preprocess(np.full((2, *plan.input_shape), 127.5, dtype="float32"))
    x = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    y = keras.ops.convert_to_tensor(np.eye(plan.dataset.num_classes, dtype="float32")[[0, 1 % plan.dataset.num_classes]])
    rng = np.random.default_rng(plan.config.seed)

    def uniform(shape, low, high):
        return keras.ops.convert_to_tensor(rng.uniform(low, high, size=tuple(int(d) for d in shape)).astype("float32"))

    out_x, out_y = transform(x, y, StepContext(logits_function(model), uniform, pixels=pixels, iteration=0))
    if tuple(out_x.shape) != tuple(x.shape) or tuple(out_y.shape) != tuple(y.shape):
        return (f"changed the batch's shapes from {tuple(x.shape)}, {tuple(y.shape)} "
                f"to {tuple(out_x.shape)}, {tuple(out_y.shape)}")
    return ""


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


def _tensorboard(run_dir: Path):
    import keras

    import importlib.util

    if keras.backend.backend() != "tensorflow" or importlib.util.find_spec("tensorboard") is None:
        return None  # keras' TensorBoard callback writes through tf.summary and needs tensorboard
    return keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False, profile_batch=0)


def _current_lr(model) -> float:
    import keras

    optimizer = model.optimizer
    lr = optimizer.learning_rate
    try:
        return float(keras.ops.convert_to_numpy(lr))
    except Exception:
        return float("nan")


def save_epoch(plan: Plan, run_dir: Path, model, state: dict[str, Any], epoch: int) -> None:
    """Everything that must survive a kill -9 after epoch ``epoch`` (0-based) completed.

    The last two checkpoints stay, so that a damaged newest one (a disk that lied) still leaves
    one to resume from."""
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    done = len(state["history"])
    name = f"epoch-{done:04d}.keras"
    files.save_atomic(checkpoint_dir / name, model.save)
    monitor = "val_accuracy" if "val_accuracy" in state["history"][-1] else "accuracy"
    value = state["history"][-1].get(monitor)
    improved = state.get("best_value") is None or (value is not None and value > state["best_value"])
    best = (value, done) if improved else (state.get("best_value"), state.get("best_epoch"))
    kept = [n for n in state.get("checkpoints", []) if n != name][-1:] + [name]
    files.write_json(
        checkpoint_dir / STATE,
        {"checkpoint": name, "checkpoints": kept, "epochs_done": done, "history": state["history"],
         "best_value": best[0], "best_epoch": best[1], "monitor": monitor,
         "phase": state["history"][-1]["phase"], "phase_epoch": epoch + 1},
    )
    state["best_value"], state["best_epoch"], state["monitor"] = best[0], best[1], monitor
    state["checkpoints"], state["saved"] = kept, done  # epoch `done` is now on record
    for old in checkpoint_dir.glob("epoch-*.keras"):
        if old.name not in kept:
            old.unlink(missing_ok=True)
    rundir.write_history(run_dir / "history.csv", state["history"])
    if improved:  # the checkpoint less its optimizer state (a third of its size with Adam)
        rundir.save_without_optimizer(checkpoint_dir / name, run_dir / "model.keras")
    data = rundir.load_manifest(run_dir)
    data.update(status="running", epochs_done=done, best_epoch=state.get("best_epoch"),
                best={monitor: state.get("best_value")})
    files.write_json(run_dir / rundir.MANIFEST, data)


def start(plan: Plan, run_dir: Path | None, *, argv: list[str] | None = None, progress=None) -> Outcome:
    """Write the manifest and summary, then train (both phases for transfer learning).

    In a multi-process run only process 0 writes ``run_dir``.  The others train in step with it
    and, because saving a distributed Keras model is a collective operation, save in step too,
    into a scratch directory that is removed at the end (``run_dir`` may be None there).
    """
    if plan.distribution is not None and not plan.distribution.is_chief:
        with _worker_dir(plan) as scratch:
            return _tagged(plan, _start(plan, scratch, argv=argv, progress=progress))
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
def _worker_dir(plan: Plan):
    """A scratch run directory for a process other than 0, removed at the end."""
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix=f"cnnreg-process{plan.distribution.process_index}-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _tagged(plan: Plan, outcome: Outcome) -> Outcome:
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
        raise CnnregError(f"cannot write the run directory {run_dir}: {_reason(exc)}") from None
    if plan.config.freeze_base:  # phase 1 trains the new head only (Keras: freeze, then compile)
        set_base_trainable(plan.model, False)
    compile_model(plan, plan.model)
    state: dict[str, Any] = {"history": []}
    return _fit(plan, run_dir, plan.model, state, progress=progress)


#: summary.txt's width: Keras' layer table with all its columns ("Connected to" included).
SUMMARY_WIDTH = 110


def _write_summary(plan: Plan, run_dir: Path) -> None:
    files.write_atomic(run_dir / "summary.txt", model_summary(plan.model) + "\n")


def model_summary(model, width: int = SUMMARY_WIDTH) -> str:
    """Keras' layer summary at ``width`` columns whatever the terminal's.  Keras renders it
    with a Rich console that takes its width from the terminal (``COLUMNS``, or
    ``JUPYTER_COLUMNS`` in a notebook) and crops the table to it, so both are set while it
    renders."""
    import os

    lines: list[str] = []
    names = ("COLUMNS", "JUPYTER_COLUMNS")
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            os.environ[name] = str(width)
        model.summary(print_fn=lambda text, line_break=True: lines.append(text), line_length=width)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return "\n".join(line.rstrip("\n") for line in lines)


def _fit(plan: Plan, run_dir: Path, model, state: dict[str, Any], *, progress=None) -> Outcome:
    """Run the remaining epochs of phase 1 (head / whole model) and phase 2 (fine-tuning)."""
    config = plan.config
    started = time.time()
    validation = held_out(plan, "validation", shard=True)
    arrays = isinstance(validation, tuple)  # a tf.data validation split is batched already
    # a split streamed from files has an unknown length (files that fail to decode drop out)
    streamed = "validation" in plan.streams and plan.streams["validation"].images is None
    per_process = {"validation_batch_size": config.batch_size // _processes(plan)} if _processes(plan) > 1 and arrays else {}
    phases = [("train", config.epochs, None)]
    if config.fine_tune_epochs:
        phases = [("head", config.epochs, None), ("fine-tune", config.fine_tune_epochs, config.fine_tune_lr)]
    done = len(state["history"])
    status, message = "completed", ""
    total = sum(epochs for _, epochs, _ in phases)
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
            install_step_transforms(plan, model)  # after compile, on every model (a resumed one is new)
            with warnings.catch_warnings(), _catch_ctrl_c(state), _step_transforms_removed(model):
                if streamed:  # Keras warns whenever a split of unknown length ends, i.e. every epoch
                    warnings.filterwarnings("ignore", message="Your input ran out of data")
                model.fit(
                    **data, **per_process, epochs=epochs, initial_epoch=already, validation_data=validation,
                    callbacks=_callbacks(plan, run_dir, state, progress, phase), verbose=0,
                )
            done = len(state["history"])
            if state.get("nan"):
                epoch, batch = state["nan"]
                raise NaNLoss(epoch, batch)
    except NaNLoss as exc:
        status = "failed"
        message = f"{exc}; kept the last good checkpoint and model; try --clip norm=1.0 or a lower --lr"
    except WriteFailed as exc:
        status = "failed"
        kept = state.get("saved", 0)
        del state["history"][kept:]  # the epoch whose files could not all be written is not on record
        kept_text = {0: "no epoch was on record yet", 1: "epoch 1 is kept"}.get(kept, f"epochs 1-{kept} are kept")
        message = (f"cannot write the run directory at epoch {exc.epoch}: {_reason(exc.error)}; {kept_text}: "
                   f"free space or fix the directory, then `cnnreg resume {run_dir}`")
    except KeyboardInterrupt:
        status = "interrupted"
        message = f"resume with: cnnreg resume {run_dir}"  # the status already says interrupted
    seconds = time.time() - started
    return _finish(plan, run_dir, state, status, message, seconds)


def set_base_trainable(model, trainable: bool) -> None:
    for layer in model.layers:
        if layer.name in ("image", "avg_pool", "predictions", "reg_dropout") or layer.__class__.__name__ == "InputLayer":
            continue
        layer.trainable = trainable


def _reason(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


def _finish(plan: Plan, run_dir: Path, state: dict[str, Any], status: str, message: str, seconds: float) -> Outcome:
    from cnnreg.training.report import plot_curves

    test = None
    chief = plan.distribution is None or plan.distribution.is_chief
    if chief and status == "completed" and (run_dir / "model.keras").exists() and ("test" in plan.arrays or "test" in plan.streams):
        from cnnreg.training.report import evaluate_model, load_run_model

        if _processes(plan) > 1:  # the chief alone, on its own devices: no collectives with the others
            import keras

            keras.distribution.set_distribution(None)
        try:
            test = evaluate_model(load_run_model(run_dir), held_out(plan, "test"), batch_size=plan.config.batch_size)
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
            status, message = "failed", (f"cannot write the run directory: {_reason(exc)}; "
                                         f"`cnnreg resume {run_dir}` finishes it once it can be written")
        data = {"best": {state.get("monitor", "val_accuracy"): state.get("best_value")}}
    if status == "completed":  # on record as completed: nothing is left to resume, so checkpoint/ goes
        _remove_checkpoints(run_dir)
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
    from cnnreg.training.run import run_preprocess

    run_preprocess(data, run_dir)  # a manifest naming anything else is refused before anything loads
    chief = launch_rank(launch) == 0
    lock = rundir.claim(run_dir, fresh=False) if chief else contextlib.nullcontext()
    with lock:
        # The checkpoint holds the weights: what the run started from (--weights) is neither
        # loaded nor needed, unless no epoch completed (_resume loads it then).
        plan = resolve(config, weights=False)
        plan.launch = dict(launch or {})
        try:
            shape = rundir.input_shape(data, run_dir)
        except CnnregError:
            shape = None  # worked out again from the config
        prepare(plan, input_shape=shape, pretrained=False)
        distribution = plan.distribution
        if not distribution.is_chief:  # train in step with process 0 into a scratch copy
            with _worker_dir(plan) as scratch:
                files.write_json(scratch / rundir.MANIFEST, data)
                return _tagged(plan, _resume(plan, run_dir, scratch, data, progress, report))
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
    from cnnreg.training.optim import import_keras_objects

    import_keras_objects(plan.optimizer, plan.schedule[0] if plan.schedule else None)  # what the checkpoint holds
    recovered = recover(run_dir, data, report=report)
    chief = target == run_dir
    if recovered is None:  # no epoch ever completed: nothing is lost by starting again
        load_weights(plan, plan.model)
        if chief:
            try:
                _mark_running(target, {"epochs_done": 0})
            except OSError as exc:
                raise CnnregError(f"cannot write the run directory {run_dir}: {_reason(exc)}") from None
        compile_model(plan, plan.model)
        if chief and announce is not None:
            announce(plan, 0)
        return _fit(plan, target, plan.model, {"history": []}, progress=progress)
    model, state = recovered
    apply_training_settings(plan, model)
    plan.model = model
    if chief:
        try:
            _put_on_record(run_dir, state, report)
        except OSError as exc:
            raise CnnregError(f"cannot write the run directory {run_dir}: {_reason(exc)}") from None
        if announce is not None:
            announce(plan, len(state["history"]))
    return _fit(plan, target, model, state, progress=progress)


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
    from cnnreg.training.report import load_keras_file

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
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, f"{CHECKPOINT_DIR}/{STATE} is damaged"
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


def rerun_config(run_dir: Path, overrides: list[str]) -> RunConfig:
    """The config of ``run_dir`` with ``KEY=VALUE`` overrides (``epochs=3``, ``seed=1``)."""
    import dataclasses

    from cnnreg.errors import ParameterError, choices_text
    from cnnreg.spec import coerce
    import typing

    manifest_data = rundir.load_manifest(Path(run_dir))
    rundir.run_config(manifest_data, Path(run_dir))  # one line when the stored config is damaged
    data = dict(manifest_data["config"])
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    hints = typing.get_type_hints(RunConfig)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ParameterError(f"--set needs KEY=VALUE (got '{item}')")
        if key not in fields:
            raise ParameterError(f"--set: unknown setting '{key}'" + choices_text(key, fields))
        if key == "regularisers":
            data[key] = [v for v in value.split(";") if v]
            continue
        data[key] = coerce(value, hints[key], where=f"--set {key}")
    return RunConfig.from_dict(data)
