"""Run directories: every file written to a temporary name and renamed, so a crash, Ctrl-C,
kill -9 or a full disk never leaves a truncated file behind.

Layout of ``runs/<UTC time>-<arch>-<dataset>/``::

    run.json          the manifest: resolved components, versions, seed, command line, status
    history.csv       one row per completed epoch
    model.keras       the best model by validation metric (no optimizer state)
    summary.txt       the layer summary
    curves.png        loss and accuracy, train vs validation
    checkpoint/       the last two completed epochs: model + optimizer state (state.json says which);
                      removed when the run completes
    logs/             TensorBoard logs (TensorFlow backend)
    .lock             the OS lock (flock) of the process that trains into the directory

Everything read back from a run directory is checked: a damaged or missing file is one
:class:`CnnregError` line, never a traceback, and a name read from a file only ever selects
a file inside the directory (see :func:`checkpoint_path`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError
from cnnreg import files

MANIFEST = "run.json"
LOCK = ".lock"
CHECKPOINT_DIR = "checkpoint"
#: The only names a checkpoint may have: state.json's ``checkpoint`` is checked against it.
CHECKPOINT_NAME = re.compile(r"epoch-(\d{4,})\.keras")
SCHEMA = 1


#: A .keras file: its members that hold the optimizer (see :func:`save_without_optimizer`).
KERAS_CONFIG, KERAS_WEIGHTS = "config.json", "model.weights.h5"


def save_without_optimizer(source: Path | io.BytesIO, path: Path) -> None:
    """Write ``path`` as the .keras file ``source`` (a checkpoint, or one in memory) without its optimizer: the
    ``optimizer`` group of ``model.weights.h5`` (the slots, 2x the weights for Adam) and the
    ``compile_config`` of ``config.json`` are left out, every other member is copied as it is.
    That is the file ``model.save`` writes for the same model uncompiled (Keras 3's .keras
    format has no ``include_optimizer``): it loads with ``keras.models.load_model`` in safe mode,
    uncompiled, and without a warning about optimizer variables it cannot place.

    The weights are copied group by group from the checkpoint just written (HDF5's own copy,
    read through a window on the uncompressed zip member), so the model is not serialised twice.
    Written to a temporary name and renamed, like everything else."""
    import shutil
    import zipfile

    def write(tmp: str) -> None:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            if KERAS_WEIGHTS not in names or KERAS_CONFIG not in names:  # another layout: copy it whole
                if isinstance(source, io.BytesIO):
                    Path(tmp).write_bytes(source.getbuffer())
                else:
                    shutil.copyfile(source, tmp)
                return
            with zipfile.ZipFile(tmp, "w") as out:
                for info in archive.infolist():
                    if info.filename == KERAS_CONFIG:
                        config = json.loads(archive.read(info))
                        if isinstance(config, dict):
                            config.pop("compile_config", None)
                        out.writestr(_entry(info), json.dumps(config))
                    elif info.filename == KERAS_WEIGHTS:
                        out.writestr(_entry(info), _weights_without_optimizer(archive, info))
                    else:  # metadata.json, assets/
                        with archive.open(info) as member, out.open(_entry(info), "w") as target:
                            shutil.copyfileobj(member, target, 1 << 20)

    files.save_atomic(path, write)


def _entry(info):
    import zipfile

    entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
    return entry


def _weights_without_optimizer(archive, info) -> memoryview:
    import h5py

    copy = io.BytesIO()
    with files.zip_member(archive, info) as raw, h5py.File(raw, "r") as source, h5py.File(copy, "w") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value
        for key in source:
            if key != "optimizer":
                source.copy(source[key], target, name=key)
    return copy.getbuffer()


def new_run_dir(root: Path, arch: str, dataset: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    safe = lambda text: "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text.split(":")[0].split("/")[-1])
    base = Path(root) / f"{stamp}-{safe(arch)}-{safe(dataset)}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of ``run_dir``; one-line error if it is not a run directory or is damaged."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not run_dir.exists():
        raise CnnregError(f"'{run_dir}' does not exist")
    if not run_dir.is_dir():
        raise CnnregError(f"'{run_dir}' is not a directory")
    if not path.exists() and not path.is_symlink():
        raise CnnregError(f"'{run_dir}' is not a cnnreg run directory (no {MANIFEST})")
    # a regular file of bounded size and nesting: a FIFO or a device named run.json is one line
    data = files.read_json(path, f"{MANIFEST} in {run_dir}")
    if not isinstance(data, dict):
        raise CnnregError(f"{MANIFEST} in {run_dir} is damaged: not a JSON object")
    if not isinstance(data.get("config"), dict):
        raise CnnregError(f"{MANIFEST} in {run_dir} is damaged: no 'config' object")
    return data


def manifest_field(data: dict[str, Any], name: str, run_dir: Path, kind: type | tuple[type, ...]) -> Any:
    """``data[name]``, checked to be of ``kind``; one line naming the field otherwise."""
    value = data.get(name)
    if not isinstance(value, kind):
        raise CnnregError(f"{MANIFEST} in {run_dir} is damaged: field '{name}' is missing or not valid")
    return value


def input_shape(data: dict[str, Any], run_dir: Path) -> tuple[int, int, int]:
    """The manifest's ``input_shape`` (H, W, C); one line when it is not one."""
    shape = data.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(d) is int and d > 0 for d in shape)):
        raise CnnregError(f"{MANIFEST} in {run_dir} is damaged: field 'input_shape' is missing or not valid")
    return tuple(shape)


def run_config(data: dict[str, Any], run_dir: Path):
    """The :class:`RunConfig` a manifest stores; one line when its ``config`` is not one."""
    from cnnreg.errors import ParameterError
    from cnnreg.training.config import RunConfig

    try:
        config = RunConfig.from_dict(data["config"])
        config.validate()
    except ParameterError as exc:
        raise CnnregError(f"{MANIFEST} in {run_dir} is damaged: field 'config': {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise CnnregError(f"{MANIFEST} in {run_dir} is damaged: field 'config' is not valid ({_first_line(exc)})") from None
    if not isinstance(config.architecture, str) or not isinstance(config.dataset, str):
        raise CnnregError(f"{MANIFEST} in {run_dir} is damaged: field 'config' is not valid")
    return config


def checkpoint_path(run_dir: Path, name: Any, *, field: str = "checkpoint") -> Path:
    """``run_dir/checkpoint/NAME`` for a name read from state.json: a plain ``epoch-NNNN.keras``
    inside that folder, nothing else (no separators, no ``..``, no link out of it)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not isinstance(name, str) or not CHECKPOINT_NAME.fullmatch(name):
        raise CnnregError(f"{CHECKPOINT_DIR}/state.json in {run_dir}: field '{field}' ({name!r}) is not a "
                          "checkpoint file name (epoch-NNNN.keras); refusing to follow it")
    path = folder / name
    if path.exists() and os.path.realpath(path) != os.path.join(os.path.realpath(folder), name):
        raise CnnregError(f"{CHECKPOINT_DIR}/{name} in {run_dir} leads outside the folder; refusing to follow it")
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# --- claiming a run directory ------------------------------------------------------------------

_held: dict[str, "RunLock"] = {}


class RunLock:
    """An exclusive OS lock (``flock``) on a run directory's ``.lock`` file, held while a process
    trains into it.  The OS releases it when the process ends, kill -9 included, so a stale lock
    never needs cleaning up.  Taking it again in the same process nests (the CLI takes it before
    loading data, the training loop again)."""

    def __init__(self, run_dir: Path, fd: int | None, created: bool) -> None:
        self.run_dir, self.fd, self.created, self.depth = run_dir, fd, created, 1

    def release(self) -> None:
        self.depth -= 1
        if self.depth > 0:
            return
        _held.pop(os.path.realpath(self.run_dir), None)
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def abandon(self) -> None:
        """Release, and remove the directory again when this claim created it and nothing
        was written into it (the run failed before it started)."""
        self.depth = 1
        self.release()
        if self.created:
            _remove_if_empty(self.run_dir)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _remove_if_empty(run_dir: Path) -> None:
    """Remove a run directory that holds nothing but its lock file."""
    try:
        if any(entry.name != LOCK for entry in run_dir.iterdir()):
            return
        files.remove_quietly(run_dir / LOCK)
        os.rmdir(run_dir)
    except OSError:
        pass


def acquire(run_dir: Path, *, created: bool = False) -> RunLock:
    """Lock ``run_dir`` for this process; one line when another process holds it."""
    run_dir = Path(run_dir)
    key = os.path.realpath(run_dir)
    if key in _held:
        _held[key].depth += 1
        return _held[key]
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on Windows: no lock
        lock = _held[key] = RunLock(run_dir, None, created)
        return lock
    try:
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666 & ~files.UMASK)
    except OSError as exc:
        raise CnnregError(f"{run_dir} is not writable ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(fd)
        os.close(fd)
        raise CnnregError(f"{run_dir} is in use by another cnnreg process{holder}") from None
    os.ftruncate(fd, 0)  # who holds it, for the message above
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    lock = _held[key] = RunLock(run_dir, fd, created)
    return lock


def _holder(fd: int) -> str:
    try:
        pid, host = os.pread(fd, 300, 0).decode().split()[:2]
        return f" (pid {int(pid)} on {host})"
    except (OSError, ValueError):
        return ""


def is_locked(run_dir: Path) -> bool | None:
    """Whether a process holds ``run_dir``'s lock; None when that cannot be told."""
    try:
        import fcntl

        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False  # closing below lets go of it at once
    except OSError:
        return True
    finally:
        os.close(fd)


def claim(run_dir: Path, *, fresh: bool, created: bool = False) -> RunLock:
    """Check that ``run_dir`` can take a new run (``fresh``) or be resumed, and lock it, before
    any data is loaded or model built.  A new run needs a new or empty directory (``created``:
    the caller made it, so :meth:`RunLock.abandon` may remove it again)."""
    run_dir = Path(run_dir)
    if fresh:
        _check_fresh(run_dir)
        if not run_dir.exists():
            try:
                run_dir.mkdir(parents=True)
            except OSError as exc:
                raise CnnregError(f"cannot create the run directory {run_dir} ({exc.strerror or exc})") from None
            created = True
    else:
        load_manifest(run_dir)
    lock = None
    try:
        files.probe_writable(run_dir)
        if not fresh and (run_dir / CHECKPOINT_DIR).is_dir():
            files.probe_writable(run_dir / CHECKPOINT_DIR)
        lock = acquire(run_dir, created=created)
        if fresh and lock.depth == 1:
            _check_fresh(run_dir)  # again, now that no other process can start a run there
    except CnnregError:
        if lock is not None:
            lock.abandon()
        elif created:
            _remove_if_empty(run_dir)
        raise
    return lock


def _check_fresh(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise CnnregError(f"--run-dir {run_dir} is a file, not a directory")
    if (run_dir / MANIFEST).exists():
        try:
            status = files.read_json(run_dir / MANIFEST, MANIFEST).get("status")
        except (CnnregError, AttributeError):
            status = None
        if status == "completed":
            raise CnnregError(f"{run_dir} already holds a completed run; choose another --run-dir, or "
                              f"`cnnreg rerun {run_dir}` for a new run like it")
        raise CnnregError(f"{run_dir} already holds a run; choose another --run-dir or `cnnreg resume {run_dir}`")
    if run_dir.is_dir() and any(entry.name != LOCK for entry in run_dir.iterdir()):
        raise CnnregError(f"{run_dir} is not empty and holds no cnnreg run; choose an empty or new --run-dir")


def process_record() -> dict[str, Any]:
    """Who trains into a run directory (run.json's ``process`` while it is ``running``)."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def shown_status(run_dir: Path, data: dict[str, Any]) -> str:
    """A manifest's status, except that a ``running`` run whose process is gone is
    ``interrupted`` (killed with kill -9, or its machine went down)."""
    status = data.get("status")
    if status != "running":
        return status
    record = data.get("process") if isinstance(data.get("process"), dict) else {}
    if record.get("host") == socket.gethostname() and type(record.get("pid")) is int and record["pid"] > 0:
        try:
            os.kill(record["pid"], 0)
        except ProcessLookupError:
            return "interrupted"
        except OSError:
            pass  # exists, someone else's
        # the pid may have been reused since: the lock tells whether a cnnreg process holds it
        return "interrupted" if is_locked(run_dir) is False else status
    return status


#: history.csv's columns in this order, whatever order the rows' keys come in (state.json
#: stores them sorted, so a resumed run's rows are alphabetical); other metrics go between
#: them and ``seconds``, training metrics before validation ones, each set sorted.
HISTORY_LEADING = ("epoch", "phase", "lr", "loss", "accuracy")
HISTORY_VALIDATION = ("val_loss", "val_accuracy")


def history_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The columns of history.csv for ``rows``: a fixed order (see :data:`HISTORY_LEADING`)."""
    keys = set(key for row in rows for key in row)
    known = set(HISTORY_LEADING) | set(HISTORY_VALIDATION) | {"seconds"}
    train = sorted(k for k in keys - known if not k.startswith("val_"))
    validation = sorted(k for k in keys - known if k.startswith("val_"))
    order = [*HISTORY_LEADING, *train, *HISTORY_VALIDATION, *validation, "seconds"]
    return [key for key in order if key in keys]


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """history.csv with one row per completed epoch (rewritten whole, atomically), its columns
    in :func:`history_columns`' order."""
    if not rows:
        return
    columns = history_columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    files.write_atomic(path, buffer.getvalue())


def read_history(path: Path) -> list[dict[str, Any]]:
    """The rows of history.csv; [] when it is missing or unreadable (a row cut short keeps
    None for its missing values: :func:`complete_rows` drops it)."""
    try:
        with open(path, newline="") as handle:
            return [{k: _number(v) for k, v in row.items() if k is not None} for row in csv.DictReader(handle)]
    except (OSError, ValueError, csv.Error):
        return []


def complete_rows(rows: Any, epochs: int) -> list[dict[str, Any]] | None:
    """The first ``epochs`` history rows when they are whole and numbered 1..epochs, else None."""
    if not isinstance(rows, list) or len(rows) < epochs:
        return None
    head = rows[:epochs]
    for number, row in enumerate(head, 1):
        if not isinstance(row, dict) or row.get("epoch") != number or not isinstance(row.get("phase"), str):
            return None
        if any(value is None for value in row.values()):  # a row cut short
            return None
    return head


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def list_runs(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every run directory under ``root`` with its manifest, oldest first."""
    found = []
    for manifest in sorted(Path(root).glob(f"*/{MANIFEST}")):
        try:
            found.append((manifest.parent, files.read_json(manifest, str(manifest))))
        except CnnregError:  # not a run's (a FIFO, too large, damaged): not listed
            continue
    return found
