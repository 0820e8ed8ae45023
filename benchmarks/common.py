"""Shared by the benchmarks: train the same model and data through cnnreg's run machinery and
through a plain hand-written Keras script, timing epochs and steps the same way."""

from __future__ import annotations

import time
from pathlib import Path


class EpochTimer:
    """Wall time between epoch starts: includes everything the loop does per epoch."""

    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer.starts.append(time.perf_counter())
                timer.batches.append([])

            def on_train_batch_end(self, batch, logs=None):
                timer.batches[-1].append(time.perf_counter())

            def on_train_end(self, logs=None):
                timer.starts.append(time.perf_counter())

            def set_phase(self, phase, epochs):  # cnnreg's progress interface
                pass

        self.starts: list[float] = []
        self.batches: list[list[float]] = []
        self.callback = Callback()

    def steady(self) -> float:
        """Mean wall seconds of the epochs after the first (which compiles): training steps,
        validation and whatever the loop writes at the end of an epoch."""
        gaps = [b - a for a, b in zip(self.starts, self.starts[1:])]
        return sum(gaps[1:]) / len(gaps[1:]) if len(gaps) > 1 else gaps[0]

    def step_seconds(self) -> float:
        """Mean seconds per training step inside the steady epochs (no epoch-end work)."""
        spans = [(b[-1] - b[0]) / (len(b) - 1) for b in self.batches[1:] if len(b) > 1]
        return sum(spans) / len(spans) if spans else float("nan")


def run_cnnreg(args, workdir: Path) -> dict:
    """Train through cnnreg.training (what `cnnreg run` executes), with an epoch timer."""
    from cnnreg.training import loop
    from cnnreg.training.config import RunConfig
    from cnnreg.training.model import prepare
    from cnnreg.training.config import resolve

    h, w, c = args.shape
    config = RunConfig(
        architecture=args.arch, dataset=f"synthetic:shape={h}x{w}x{c},classes={args.classes},size={args.images}",
        optimizer="momentum", lr=0.01, epochs=args.epochs, batch_size=args.batch, precision=args.precision, seed=0,
    )
    started = time.perf_counter()
    plan = prepare(resolve(config))
    prepared = time.perf_counter() - started
    timer = EpochTimer()
    outcome = loop.start(plan, workdir / "cnnreg-run", argv=["bench"], progress=timer.callback)
    from cnnreg.training.costs import run_budget

    summary, budget = run_budget(plan)
    seconds = timer.steady()
    return {"status": outcome.status, "epoch_seconds": seconds, "images_per_s": args.images / seconds,
            "step_seconds": timer.step_seconds(), "step_images_per_s": args.batch / timer.step_seconds(),
            "macs_per_image": summary.macs, "prepare_seconds": prepared,
            "estimated_bytes": budget.total_bytes}


def run_plain(args, checkpoint_dir: Path | None = None) -> dict:
    """The same model, data, batch size and epochs in a plain hand-written Keras script.

    ``checkpoint_dir``: also save a resumable model (``keras.callbacks.ModelCheckpoint``, model
    and optimizer state) every epoch, as cnnreg does, so that epoch times compare like for like.
    """
    import keras
    import numpy as np

    import cnnreg

    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(args.precision)
    rng = np.random.default_rng(42)
    h, w, c = args.shape
    x = rng.integers(0, 256, (args.images, h, w, c), dtype=np.uint8).astype("float32") / 255.0
    y = np.eye(args.classes, dtype="float32")[rng.integers(0, args.classes, args.images)]
    held = max(1, args.images // 8)
    xv = rng.integers(0, 256, (held, h, w, c), dtype=np.uint8).astype("float32") / 255.0
    yv = np.eye(args.classes, dtype="float32")[rng.integers(0, args.classes, held)]
    model = cnnreg.build("architecture", args.arch, input_shape=tuple(args.shape), num_classes=args.classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    timer = EpochTimer()
    callbacks = [timer.callback]
    if checkpoint_dir is not None:
        callbacks.insert(0, keras.callbacks.ModelCheckpoint(str(Path(checkpoint_dir) / "plain-epoch.keras")))
    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, validation_data=(xv, yv), verbose=0,
              callbacks=callbacks)
    seconds = timer.steady()
    return {"epoch_seconds": seconds, "images_per_s": args.images / seconds,
            "step_seconds": timer.step_seconds(), "step_images_per_s": args.batch / timer.step_seconds()}
