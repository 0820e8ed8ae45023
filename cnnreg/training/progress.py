"""Showing a run while it trains: a Rich progress bar per epoch with live loss and metrics on a
terminal, one plain line per epoch otherwise, nothing with ``--quiet``."""

from __future__ import annotations

import time
from typing import Any


def make_progress(mode: str, console, steps_per_epoch: int):
    """A Keras callback for ``mode`` in ``rich`` / ``plain`` / ``quiet``."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.phase, self.phase_epochs = "train", 0
            self._bar = None
            self._task = None
            self._start = 0.0

        def set_phase(self, phase: str, epochs: int) -> None:
            self.phase, self.phase_epochs = phase, epochs

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()
            if mode != "rich":
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            label = f"epoch {epoch + 1}/{self.phase_epochs}" + ("" if self.phase == "train" else f" ({self.phase})")
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"), console=console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(label, total=steps_per_epoch, metrics="")

        def on_train_batch_end(self, batch, logs=None):
            if self._bar is not None:
                self._bar.update(self._task, completed=batch + 1, metrics=_format(logs))

        def on_epoch_end(self, epoch, logs=None):
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            if mode == "quiet":
                return
            seconds = time.perf_counter() - self._start
            phase = "" if self.phase == "train" else f" [{self.phase}]"
            console.print(f"epoch {epoch + 1:>3}/{self.phase_epochs}{phase}  {_format(logs)}  ({seconds:.1f} s)", highlight=False, soft_wrap=True)

    return Progress()


def _format(logs: dict[str, Any] | None) -> str:
    if not logs:
        return ""
    order = ["loss", "accuracy", "top5", "val_loss", "val_accuracy", "val_top5"]
    keys = [k for k in order if k in logs] + [k for k in logs if k not in order and k != "learning_rate"]
    return "  ".join(f"{k} {float(logs[k]):.4f}" for k in keys)
