"""Writing each epoch's files while the next epoch trains, as Orbax writes JAX checkpoints.

At the end of an epoch the training thread takes a consistent snapshot: the model with its
optimizer state serialised to a ``.keras`` archive in memory (:func:`snapshot`; in a distributed
run every process takes it in the same step, as saving is collective there).  Everything that
touches the disk then runs in one background thread, in the order :mod:`cnnreg.training.loop`
gives it: the checkpoint written under a temporary name, flushed and renamed, ``state.json``
pointing at it, older checkpoints removed, ``history.csv``, ``model.keras``, ``run.json``.

One epoch is in flight at a time: the next epoch's end, and the end of training (completed,
failed, Ctrl-C), wait for it (:meth:`EpochWriter.wait`), and a write that failed (a full disk)
is raised there, naming its epoch.  A kill -9 while the writer works leaves what the renames had
published: ``state.json`` names a whole checkpoint, the one before if this one was not renamed
yet, so ``cnnreg resume`` continues from an epoch that is entirely on disk.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EpochWriter", "snapshot", "PAUSE_ENV", "pause_for_tests"]

#: Test aid: seconds the writer waits with a checkpoint written under its temporary name, before
#: the rename, so that a test can kill the process mid-write (tests/test_fault_matrix.py).
PAUSE_ENV = "CNNREG_TEST_WRITE_PAUSE"


def pause_for_tests() -> None:
    """Wait :data:`PAUSE_ENV` seconds when it is set (a test's; never in normal use)."""
    import os
    import time

    try:
        seconds = float(os.environ.get(PAUSE_ENV) or 0)
    except ValueError:
        seconds = 0.0
    if seconds > 0:
        time.sleep(min(seconds, 10.0))


def snapshot(model) -> io.BytesIO | None:
    """``model`` with its optimizer state as the bytes ``model.save(PATH.keras)`` writes, taken
    in memory (about 0.5 s for ResNet-34 with Adam, 256 MB); None where this Keras has no
    in-memory saving, and the caller saves to the file itself."""
    try:
        from keras.src.saving import saving_lib  # Keras 3: model.save(path) is this, to a file
    except ImportError:
        return None
    if not callable(getattr(saving_lib, "save_model", None)):
        return None
    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer


class EpochWriter:
    """One background thread for the files of one epoch at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._failure: tuple[BaseException, int] | None = None
        self._done: list[Any] = []  # what finished jobs handed back, for :meth:`wait`

    def submit(self, job: Callable[[], Any], *, epoch: int) -> list[Any]:
        """Run ``job`` in the background once the job before it is done (what that one handed
        back is returned, see :meth:`wait`); ``epoch`` (1-based) names it if it fails."""
        finished = self.wait()

        def run() -> None:
            try:
                self._done.append(job())
            except BaseException as exc:  # an OSError of a full disk, above all: said at the next wait
                self._failure = (exc, epoch)

        self._thread = threading.Thread(target=run, name=f"cnnreg-epoch-{epoch}-writer")
        self._thread.start()
        return finished

    def wait(self) -> list[Any]:
        """Wait for the job in flight; return what the finished jobs handed back since the last
        wait, or raise what one raised, with ``.epoch`` set to its epoch."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failure is not None:
            exc, epoch = self._failure
            self._failure = None
            exc.epoch = epoch  # type: ignore[attr-defined]
            raise exc
        done, self._done = self._done, []
        return done

    def poll(self) -> list[Any]:
        """What finished jobs handed back, without waiting: nothing while one is in flight."""
        return [] if self.busy else self.wait()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
