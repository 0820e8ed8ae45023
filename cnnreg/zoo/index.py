"""Zoos named by ``CNNREG_ZOO``: folders and URLs of ``zoo.json`` files whose entries become
``weights`` components.

``CNNREG_ZOO`` lists zoos separated by ``,`` or the path separator (``:`` on Linux and macOS;
the ``:`` of a URL's scheme and port is not one): a folder holding ``zoo.json`` (what
``cnnreg publish`` writes), the URL of a ``zoo.json``, or ``hf://user/repo`` (its ``zoo.json`` on
the Hugging Face Hub).  Each entry is registered as a component of kind ``weights`` whose provider
is ``zoo:<location>``; it is never built-in, so a zoo cannot take the name of one of cnnreg's own
entries (the registry shadows it: see :mod:`cnnreg.registry`).

A zoo is somebody else's file: it is read as data (strict JSON of at most :data:`MAX_BYTES`,
no ``NaN``), and an http zoo that cannot be reached within :data:`TIMEOUT` is one warning (its
last copy in the cache is used, if there is one).  Listing a zoo checks what listing needs, for
each entry: an object with a valid ``ARCH.TAG`` name and only the fields of an entry (else one
warning naming the zoo and the entry, while the others still register).  Every other field is
checked, by :meth:`~cnnreg.kinds.weights.WeightsEntry.from_dict`, when the entry is used or shown
(:func:`cnnreg.kinds.weights.entry_of`): a bad URL, hash or type is then one line naming the
zoo, the entry and the field, and nothing was downloaded.  That keeps a 100,000-entry index
listable in about a second (``benchmarks/zoo_scale.py``).  This runs when the weights kind is
first read, so it imports only the standard library (``urllib`` for http, which honours
``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from cnnreg.errors import CnnregError
from cnnreg.kinds.weights import FETCH, FIELDS, NAME, ZOO_ENV, WeightsEntry
from cnnreg.spec import shown

__all__ = ["ENV", "TIMEOUT", "FORMAT", "zoo_locations", "register_zoos", "load_zoo", "summary"]

ENV = ZOO_ENV
#: Seconds an http zoo may take in all (it is read whenever plugins load, `cnnreg list` included).
TIMEOUT = 5.0
#: The ``cnnreg_zoo`` format this version reads and writes.
FORMAT = 1
#: A zoo.json larger than this is refused (a listing, not a data set): 100,000 entries as
#: ``cnnreg publish`` indents them, without their manifests, take about 117 MB.
MAX_BYTES = 256 << 20
_URL = re.compile(r"(https?|hf)\Z", re.IGNORECASE)


def zoo_locations(text: str) -> list[str]:
    """The zoos in a ``CNNREG_ZOO`` value, in order, each once.

    Separated by ``,`` or :data:`os.pathsep`; on POSIX ``http://host:8000/zoo.json`` stays whole
    (a ``:`` before ``//`` or before a port number belongs to the URL)."""
    found: list[str] = []
    for chunk in text.split(","):
        pieces = chunk.split(os.pathsep) if os.pathsep != ":" else _split_colons(chunk)
        for piece in pieces:
            piece = piece.strip()
            if piece and piece not in found:
                found.append(piece)
    return found


def _split_colons(chunk: str) -> list[str]:
    tokens = chunk.split(":")
    pieces: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _URL.match(token.strip()) and i + 1 < len(tokens) and tokens[i + 1].startswith("//"):
            url = f"{token.strip()}:{tokens[i + 1]}"
            i += 2
            while i < len(tokens) and re.match(r"\d+(/|\Z)", tokens[i]):  # a port
                url += f":{tokens[i]}"
                i += 1
            pieces.append(url)
            continue
        pieces.append(token)
        i += 1
    return pieces


def register_zoos(registry: Any) -> list[str]:
    """Register the entries of every zoo in ``CNNREG_ZOO`` with ``registry`` (a
    :class:`cnnreg.registry.Registry`); return the warning lines (nothing is raised)."""
    import gc

    warnings: list[str] = []
    collecting = gc.isenabled()
    gc.disable()  # a large index is millions of small objects that are all kept: no cycles to find
    try:
        for location in zoo_locations(os.environ.get(ENV, "")):
            try:
                entries, _ = load_zoo(location, warnings)
            except CnnregError as exc:
                warnings.append(str(exc))
                continue
            view = registry.view("weights", provider=f"zoo:{location}", version="", plugin="zoo")
            seen: set[str] = set()
            listed = []
            for entry in entries:
                name = entry.pop("name")
                key = name.lower()
                if key in seen:
                    warnings.append(f"zoo {location} lists '{name}' twice; the last one is used")
                seen.add(key)
                listed.append((name, summary(entry), entry))
            view.add_many(FETCH, listed)
            view.commit()
    finally:
        if collecting:
            gc.enable()
    return warnings


def load_zoo(location: str, warnings: list[str]) -> tuple[list[dict], str]:
    """The listable entries of one zoo (JSON objects, ``zoo`` set to where it was found) and the
    base they resolve relative files against.  An entry without a valid name or with a field an
    entry does not have adds a warning; its other fields are checked when it is used
    (:func:`cnnreg.kinds.weights.entry_of`).  A zoo that cannot be read at all raises one
    :class:`CnnregError` line."""
    raw, base = _read(location, warnings)
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:  # UnicodeDecodeError included
        raise CnnregError(f"zoo {location}: zoo.json is not valid JSON ({_first_line(exc)}); its entries are skipped") from None
    except RecursionError:
        raise CnnregError(f"zoo {location}: zoo.json is nested too deeply to be a zoo index; its entries are skipped") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise CnnregError(f"zoo {location}: zoo.json is not a zoo index "
                          '({"cnnreg_zoo": 1, "entries": [...]}); its entries are skipped')
    if data.get("cnnreg_zoo") != FORMAT:
        raise CnnregError(f"zoo {location}: zoo.json is format {data.get('cnnreg_zoo')!r}; this cnnreg reads format "
                          f"{FORMAT} (a newer cnnreg may read it); its entries are skipped")
    entries = []
    match = NAME.match
    for number, item in enumerate(data["entries"], 1):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and match(name) and FIELDS.issuperset(item):
            item["zoo"] = base  # where it was found, whatever the file says
            entries.append(item)
            continue
        label = shown(name, 80) if isinstance(name, str) else f"#{number}"
        try:  # not listable: the entry's own check says why, in its words
            WeightsEntry.from_dict(item, where=f"zoo {location}, entry '{label}'")
        except CnnregError as exc:
            warnings.append(f"{exc}; entry skipped")
    return entries, base


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def _read(location: str, warnings: list[str]) -> tuple[bytes, str]:
    if "://" in location:
        scheme = location.split("://", 1)[0].lower()
        if scheme == "hf":
            return _read_url(_hf_index(location), location, warnings), location.rstrip("/")
        if scheme not in ("http", "https"):
            raise CnnregError(f"zoo {location}: only folders, http(s):// URLs of zoo.json files and hf://user/repo "
                              f"are zoos (see {ENV} in docs/zoo.md)")
        return _read_url(location, location, warnings), location
    folder = Path(location).expanduser()
    path = folder / "zoo.json" if folder.is_dir() or not folder.suffix == ".json" else folder
    folder = path.parent.resolve()
    from cnnreg.files import read_bounded

    if not path.exists() and not path.is_symlink():
        raise CnnregError(f"zoo {location}: no zoo.json there (a folder written by `cnnreg publish`, "
                          f"or the URL of a zoo.json, is expected; see {ENV})")
    # a regular file of at most MAX_BYTES: a FIFO or a device named zoo.json is one warning, never a hang
    return read_bounded(path, f"zoo {location}: {path.name}", limit=MAX_BYTES), str(folder)


def _hf_index(location: str) -> str:
    """``hf://user/repo[@revision]`` → the https URL of its zoo.json (no huggingface_hub needed)."""
    match = re.fullmatch(r"hf://([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@([\w.-]+))?/?", location)
    if not match:
        raise CnnregError(f"zoo {location}: an hf:// zoo is hf://USER/REPO")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return f"{endpoint}/{match[1]}/resolve/{match[2] or 'main'}/zoo.json"


def _read_url(url: str, location: str, warnings: list[str]) -> bytes:
    """The zoo.json at ``url``; when it cannot be fetched, the copy kept from the last time
    (with a warning), else one line."""
    copy = _copy_path(location)
    try:
        raw = _download(url, location if url == location else f"{location} ({url})")
    except CnnregError as exc:
        if copy is not None and copy.is_file():
            import time

            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(copy.stat().st_mtime))
            warnings.append(f"{exc}; using its copy from {when}")
            from cnnreg.files import read_bounded

            return read_bounded(copy, f"the cached copy of zoo {location} ({copy})", limit=MAX_BYTES)
        raise CnnregError(f"{exc}; its entries are not listed") from None
    if copy is not None:
        try:
            if not copy.is_file() or copy.read_bytes() != raw:
                from cnnreg.files import write_atomic

                write_atomic(copy, raw)
        except OSError:
            pass  # a read-only cache costs only the offline copy
    return raw


def _copy_path(location: str) -> Path | None:
    import hashlib

    from cnnreg.zoo.cache import cache_dir

    try:
        return cache_dir() / ".zoos" / f"{hashlib.sha256(location.encode()).hexdigest()[:24]}.json"
    except Exception:  # no cache folder can be named (no HOME): no offline copy
        return None


def _download(url: str, label: str) -> bytes:
    import time
    import urllib.error
    import urllib.request

    from cnnreg.version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"cnnreg/{__version__}"})
    start = time.monotonic()
    try:
        # an opener of our own: urlopen's shared one keeps the proxy variables of its first use
        with urllib.request.build_opener().open(request, timeout=TIMEOUT) as response:
            chunks, size = [], 0
            while True:
                left = TIMEOUT - (time.monotonic() - start)
                if left <= 0:
                    raise TimeoutError("timed out")
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BYTES:
                    raise CnnregError(f"zoo {label}: zoo.json is larger than {MAX_BYTES >> 20} MiB")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise CnnregError(f"zoo {label} cannot be read (HTTP {exc.code} {exc.reason})") from None
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused, reset; a malformed URL
        raise CnnregError(f"zoo {label} cannot be reached ({_why(exc, url)})") from None
    except Exception as exc:  # http.client's errors (RemoteDisconnected is an OSError, BadStatusLine is not)
        raise CnnregError(f"zoo {label} cannot be reached ({type(exc).__name__}: {_first_line(exc)})") from None
    return b"".join(chunks)


def _why(exc: BaseException, url: str) -> str:
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (TimeoutError, socket.timeout)) or "timed out" in str(reason):
        text = f"no answer within {TIMEOUT:g} s"
    elif isinstance(reason, OSError) and reason.strerror:
        text = reason.strerror
    else:
        text = _first_line(reason) if isinstance(reason, BaseException) else str(reason)
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        text += f", through the proxy {proxy}: check HTTPS_PROXY, HTTP_PROXY and NO_PROXY"
    return text


def _first_line(exc: Any) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def summary(entry: Mapping[str, Any]) -> str:
    """The line ``cnnreg list`` and ``cnnreg show`` give an entry (its JSON form, not yet
    checked): architecture, data, the first metric's top-1/top-5, each text on one line with
    control characters escaped."""
    line = _text(entry.get("architecture"))
    if entry.get("dataset"):
        line += f" trained on {_text(entry['dataset'])}"
    metrics = entry.get("metrics")
    for metric in metrics if isinstance(metrics, list) else ():
        if isinstance(metric, dict):
            values = [f"{label} {metric[key]:.3f}" for key, label in _SHOWN_METRICS
                      if type(metric.get(key)) in (int, float) and abs(metric[key]) <= 1e18]  # no 10**400
            if values:
                return f"{line}; {', '.join(values[:2])} ({_text(metric.get('split'))})"
    return line


_SHOWN_METRICS = (("top1", "top-1"), ("top5", "top-5"), ("accuracy", "accuracy"))


def _text(value: Any) -> str:
    """A text from a zoo on a line: escaped and cut (:func:`cnnreg.spec.shown`); "?" if not text."""
    return shown(value, 60) if isinstance(value, str) else "?"
