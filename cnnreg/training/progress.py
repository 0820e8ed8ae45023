"""Showing a run while it trains: a Rich progress bar per epoch with live loss and metrics on a
terminal, one plain line per epoch otherwise, nothing with ``--quiet``; in a Jupyter notebook one
live bar for the whole run (``notebook``: an HTML output updated in place, no line per batch or
epoch).  All say how long the rest of the run should take (every epoch still to come,
fine-tuning included), from the epochs this process has timed (validation and checkpoint
included) or, during its first epoch, from its steps."""

from __future__ import annotations

import time
from typing import Any


#: The ways a run can be shown while it trains.
MODES = ("rich", "plain", "quiet", "notebook")


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a notebook front end)."""
    import sys

    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None) if shell is not None else None
    ipython = get() if callable(get) else None
    return ipython is not None and type(ipython).__name__ == "ZMQInteractiveShell"


def make_progress(mode: str, console, steps_per_epoch: int):
    """A Keras callback for ``mode`` in :data:`MODES`.  The training loop tells it the phase
    (``set_phase``) and where the phase sits in the run (``set_run``)."""
    import keras

    if mode == "notebook":
        return _notebook_progress(steps_per_epoch)

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.phase, self.phase_epochs = "train", 0
            self.before, self.total = 0, None
            self._bar = None
            self._task = None
            self._start, self._epoch = 0.0, 0
            self._epochs: list[float] = []  # seconds of each epoch timed in this process

        def set_phase(self, phase: str, epochs: int) -> None:
            self.phase, self.phase_epochs = phase, epochs

        def set_run(self, *, before: int, total: int) -> None:
            """``before``: epochs of the phases before this one; ``total``: epochs of the run."""
            self.before, self.total = before, total

        def left(self, epoch: int, batch: int | None = None) -> float | None:
            """Seconds the run should still take after step ``batch`` of (phase) epoch ``epoch``
            (after the whole epoch when ``batch`` is None); None while nothing is timed yet."""
            total = self.total if self.total is not None else self.before + self.phase_epochs
            after = max(0, total - (self.before + epoch + 1))  # epochs after this one
            timed = self._epochs[1:] or self._epochs  # the first epoch also compiles: left out once there are others
            per_epoch = sum(timed) / len(timed) if timed else None
            if batch is None:
                return None if per_epoch is None else after * per_epoch
            elapsed = time.perf_counter() - self._start
            step = elapsed / (batch + 1)
            this_epoch = step * max(0, steps_per_epoch - batch - 1)
            return this_epoch + after * (per_epoch if per_epoch is not None else step * steps_per_epoch)

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._epoch = time.perf_counter(), epoch
            if mode != "rich":
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            label = f"epoch {epoch + 1}/{self.phase_epochs}" + ("" if self.phase == "train" else f" ({self.phase})")
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[eta]}"), TextColumn("{task.fields[metrics]}"),
                            console=console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(label, total=steps_per_epoch, metrics="", eta=_eta(self.left(epoch)))

        def on_train_batch_end(self, batch, logs=None):
            if self._bar is not None:
                self._bar.update(self._task, completed=batch + 1, metrics=_format(logs), eta=_eta(self.left(self._epoch, batch)))

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._start
            self._epochs.append(seconds)
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            if mode == "quiet":
                return
            phase = "" if self.phase == "train" else f" [{self.phase}]"
            left = self.left(epoch)
            timing = f"{seconds:.1f} s" + (f"; run {_clock(left)} left" if left else "")
            console.print(f"epoch {epoch + 1:>3}/{self.phase_epochs}{phase}  {_format(logs)}  ({timing})", highlight=False, soft_wrap=True)

    return Progress()


def _notebook_progress(steps_per_epoch: int):
    """One live bar for the whole run in a notebook: an HTML ``<progress>`` element with the
    epoch, the latest metrics and the time left, updated in place (IPython's display handles;
    no ipywidgets needed)."""
    import html

    import keras
    from IPython.display import HTML, display

    class NotebookProgress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.phase, self.phase_epochs, self.before, self.total = "train", 0, 0, None
            self._handle, self._start, self._epoch, self._epochs, self._logs = None, 0.0, 0, [], ""
            self._shown = 0.0

        def set_phase(self, phase: str, epochs: int) -> None:
            self.phase, self.phase_epochs = phase, epochs

        def set_run(self, *, before: int, total: int) -> None:
            self.before, self.total = before, total

        def _draw(self, done_steps: int, epoch: int, force: bool = False) -> None:
            now = time.perf_counter()
            if not force and now - self._shown < 0.25:  # a few redraws a second at most
                return
            self._shown = now
            total_epochs = self.total if self.total is not None else self.before + self.phase_epochs
            total = max(1, total_epochs * steps_per_epoch)
            done = min(total, (self.before + epoch) * steps_per_epoch + done_steps)
            timed = self._epochs[1:] or self._epochs
            per_epoch = sum(timed) / len(timed) if timed else None
            left = "" if per_epoch is None else f"; run {_clock(per_epoch * (total - done) / steps_per_epoch)} left"
            phase = "" if self.phase == "train" else f" ({self.phase})"
            text = (f"epoch {self.before + epoch + 1}/{total_epochs}{phase}{left}"
                    + (f" &nbsp; {html.escape(self._logs)}" if self._logs else ""))
            body = HTML(f'<progress value="{done}" max="{total}" style="width: 40%"></progress> '
                        f'<span style="font-family: monospace">{text}</span>')
            if self._handle is None:
                self._handle = display(body, display_id=True)
            else:
                self._handle.update(body)

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._epoch = time.perf_counter(), epoch
            self._draw(0, epoch, force=True)

        def on_train_batch_end(self, batch, logs=None):
            self._logs = _format(logs)
            self._draw(batch + 1, self._epoch)

        def on_epoch_end(self, epoch, logs=None):
            self._epochs.append(time.perf_counter() - self._start)
            self._logs = _format(logs)
            self._draw(steps_per_epoch, epoch, force=True)

    return NotebookProgress()


def _eta(seconds: float | None) -> str:
    return "" if seconds is None else f"run {_clock(seconds)} left"


def _clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _format(logs: dict[str, Any] | None) -> str:
    if not logs:
        return ""
    order = ["loss", "accuracy", "top5", "val_loss", "val_accuracy", "val_top5"]
    keys = [k for k in order if k in logs] + [k for k in logs if k not in order and k != "learning_rate"]
    return "  ".join(f"{k} {float(logs[k]):.4f}" for k in keys)
