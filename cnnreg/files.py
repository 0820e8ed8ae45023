"""Writing files so that nothing is ever half-written, and reading zip members in place.

Every file cnnreg writes (run directories, zoo indexes, the weights cache, exports) goes to a
temporary name in the same folder and is renamed onto its own: a crash, Ctrl-C, kill -9 or a
full disk leaves the previous file or none, never a truncated one.  This is the bottom of the
house: it imports nothing of cnnreg but its errors.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError

__all__ = [
    "write_atomic", "save_atomic", "write_json", "remove_quietly", "zip_member", "ZipWindow", "probe_writable",
    "writable_folder", "sha256_of",
]

#: The process's umask, read once (os.umask can only be read by setting it).
UMASK = os.umask(0o022)
os.umask(UMASK)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; give the mode open() would
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
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
        remove_quietly(tmp)
        raise


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON with sorted keys, written atomically."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def remove_quietly(path: str | Path) -> None:
    """Remove a file; nothing happens when it is already gone or cannot be removed."""
    try:
        os.unlink(path)
    except OSError:
        pass


def zip_member(archive, info):
    """A seekable reader of one zip member: a window on the file for an uncompressed member
    (zipfile's own reader seeks backwards by reading again from the start), else its bytes."""
    import struct
    import zipfile

    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return io.BytesIO(archive.read(info))
    handle = open(archive.filename, "rb")
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        handle.close()
        return io.BytesIO(archive.read(info))
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return ZipWindow(handle, info.header_offset + 30 + name_length + extra_length, info.file_size)


class ZipWindow(io.RawIOBase):
    """Bytes ``start .. start + size`` of an open file, read-only and seekable."""

    def __init__(self, handle, start: int, size: int) -> None:
        super().__init__()
        self._handle, self._start, self._size, self._pos = handle, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self._size - self._pos))
        if not count:
            return 0
        self._handle.seek(self._start + self._pos)
        got = self._handle.readinto(memoryview(buffer)[:count])
        self._pos += got
        return got

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def probe_writable(path: Path) -> None:
    """Write and remove a file in ``path``: one line when that fails (read-only, full, ...)."""
    probe = Path(path) / ".write-probe"
    try:
        write_atomic(probe, b"")
        os.unlink(probe)
    except OSError as exc:
        raise CnnregError(f"{path} is not writable ({exc.strerror or exc}); nothing was started") from None


def writable_folder(path: Path, what: str, *, not_a_folder: str = "is a file, not a folder") -> None:
    """``path`` as a folder this process can write to, made if missing; one line naming it as
    ``what`` (``--out``, ``DEST``) when it is a file, cannot be made or cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CnnregError(f"{what} {path} {not_a_folder}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnregError(f"{what} {path} cannot be created ({exc.strerror or exc})") from None
    probe_writable(path)


def sha256_of(path: Path) -> str:
    """``sha256:<hex>`` of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"

