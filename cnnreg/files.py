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
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError

__all__ = [
    "write_atomic", "save_atomic", "write_json", "remove_quietly", "zip_member", "ZipWindow", "probe_writable",
    "writable_folder", "sha256_of", "NotRegular", "irregular", "open_regular", "read_bounded", "read_json", "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
]

#: The most a JSON file of cnnreg's may hold (a manifest, a state file, a sidecar, a zoo index):
#: a listing, never a data set.
MAX_JSON_BYTES = 64 << 20
#: The deepest a JSON file cnnreg reads may nest (a manifest nests 4 deep).
MAX_JSON_DEPTH = 64

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

    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or not archive.filename:
        return io.BytesIO(archive.read(info))  # (an archive in memory has no file to window)
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
    """``sha256:<hex>`` of a regular file, read in 1 MiB blocks (:func:`open_regular`)."""
    digest = hashlib.sha256()
    with open_regular(path, f"{path}") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


class NotRegular(CnnregError):
    """A path that names no regular file: a folder, a FIFO, a socket, a device, or nothing."""


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def irregular(mode: int) -> str:
    """What a file of ``st_mode`` is when it is not a regular file ("a FIFO (named pipe)", "a
    folder", ...); "" for a regular file."""
    if stat.S_ISREG(mode):
        return ""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path: str | Path, what: str, *, limit: int | None = None):
    """``path`` opened for binary reading if it is a regular file (of at most ``limit`` bytes):
    opened without blocking and checked with fstat before a byte is read, so that a FIFO or a
    device named where a file belongs is refused in one line instead of hanging or streaming
    forever.  ``what`` names it in the line (``image x.png``, ``run.json in runs/a``)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise NotRegular(f"{what} does not exist") from None
    except IsADirectoryError:
        raise NotRegular(f"{what} is a folder, not a file") from None
    except OSError as exc:
        raise NotRegular(f"cannot read {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        kind = irregular(info.st_mode)
        if kind:
            raise NotRegular(f"{what} is {kind}, not a regular file; refused")
        if limit is not None and info.st_size > limit:
            raise NotRegular(f"{what} is {info.st_size:,} bytes, more than the {limit:,} a file of its kind may hold; "
                             "refused")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | Path, what: str, *, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (:func:`open_regular`), at most ``limit``; one that
    grows past ``limit`` while it is read is refused too."""
    with open_regular(path, what, limit=limit) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotRegular(f"{what} holds more than the {limit:,} bytes a file of its kind may hold; refused")
    return data


def read_json(path: str | Path, what: str, *, limit: int = MAX_JSON_BYTES, depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in the regular file ``path``, bounded in size (``limit`` bytes) and in
    nesting (``depth``); one line (naming ``what``) for a file that is missing, not a regular
    file, too large, not UTF-8 JSON or nested too deeply.  Plain data: nothing in it runs."""
    raw = read_bounded(path, what, limit=limit)
    try:
        data = json.loads(raw)
    except RecursionError:
        raise CnnregError(f"{what} is nested too deeply to be cnnreg's; refused") from None
    except ValueError as exc:  # cut short or not JSON (UnicodeDecodeError is a ValueError too)
        raise CnnregError(f"{what} is damaged: {str(exc).splitlines()[0][:200] if str(exc) else 'not JSON'}") from None
    if _depth(data, depth) > depth:
        raise CnnregError(f"{what} nests more than {depth} levels deep; refused")
    return data


def _depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests, counted up to ``limit + 1`` (a walk without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            if level > limit:
                return level
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest

