"""Run directories: every file written to a temporary name and renamed, so a crash, Ctrl-C,
kill -9 or a full disk never leaves a truncated file behind.

Layout of ``runs/<UTC time>-<arch>-<dataset>/``::

    run.json          the manifest: resolved components, versions, seed, command line, status
    history.csv       one row per completed epoch
    model.keras       the best model by validation metric
    summary.txt       the layer summary
    curves.png        loss and accuracy, train vs validation
    checkpoint/       last completed epoch: model + optimizer state (state.json says which)
    logs/             TensorBoard logs (TensorFlow backend)
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError

MANIFEST = "run.json"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
SCHEMA = 1


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the mode open() would
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def save_atomic(path: Path, save: Callable[[str], None]) -> None:
    """Call ``save(tmp_path)`` (e.g. ``model.save``) and rename the result onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{''.join(path.suffixes)}")
    try:
        save(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def link_atomic(source: Path, path: Path) -> None:
    """Make ``path`` hold ``source``'s bytes: a hard link where possible, else a copy; renamed
    into place so a reader never sees a partial file."""
    import shutil

    tmp = Path(path).with_name(f".{Path(path).name}.tmp{os.getpid()}")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _remove(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


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
    """The manifest of ``run_dir``; one-line error if it is not a run directory."""
    path = Path(run_dir) / MANIFEST
    if not Path(run_dir).is_dir():
        raise CnnregError(f"'{run_dir}' is not a directory")
    if not path.exists():
        raise CnnregError(f"'{run_dir}' is not a cnnreg run directory (no {MANIFEST})")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CnnregError(f"cannot read {path}: {exc}") from None


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """history.csv with one row per completed epoch (rewritten whole, atomically)."""
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    write_atomic(path, buffer.getvalue())


def read_history(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


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
            found.append((manifest.parent, json.loads(manifest.read_text())))
        except (OSError, ValueError):
            continue
    return found
