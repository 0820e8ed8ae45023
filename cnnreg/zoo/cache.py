"""Download once, verify, never use a bad file: the weights cache.

Every weights file of an entry is fetched into one folder (:func:`cache_dir`) by `pooch
<https://www.fatiando.org/pooch/>`_: it streams to a temporary file in that folder, checks the
hash the entry gives and only then renames it into place, so a cut download, a kill -9 or a
file that does not match never takes the file's name.  A cached file is hashed again on every
use; when it no longer matches it is fetched again, and when that fails the use is refused in
one line (the bad file is never returned).  ``hf://user/repo/path`` files are located through
huggingface_hub (the ``cnnreg[hub]`` extra: endpoint, revision, token); a path relative to the
zoo is copied from the zoo's folder, or fetched relative to its ``zoo.json`` URL.

An unreachable server or a silent one fails within :data:`TIMEOUT` in one line that names the
URL and the path where the file can be put by hand.  pooch and requests are imported only here,
inside the functions: ``cnnreg list`` never pays for them.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cnnreg.errors import CnnregError
from cnnreg.files import sha256_of

if TYPE_CHECKING:  # pragma: no cover
    from cnnreg.kinds.weights import WeightsEntry, WeightsFile

__all__ = ["TIMEOUT", "cache_dir", "resolve", "fetch", "fetch_entry", "class_names", "pull", "recipe_dir", "sha256_of"]

#: Seconds to connect, and to wait for each read, before a download is given up: an
#: unreachable or silent server is one line well within 10 s.
TIMEOUT = (4, 5)
#: The name ``pull`` writes an entry's recipe under: a run manifest, so that ``cnnreg rerun``
#: takes the recipe folder as a run directory.
RECIPE_MANIFEST = "run.json"
#: The schemes an entry's file may name; anything else (file://, ftp://, ...) is refused.
SCHEMES = ("http", "https", "hf")
#: A file name in the cache: a plain name, nothing that could lead out of the folder.
FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*\Z")
_UMASK = os.umask(0o022)  # read once, at import (changing it later would race with other threads)
os.umask(_UMASK)
_HF = re.compile(r"hf://(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<revision>[A-Za-z0-9_.-]+))?"
                 r"(?:/(?P<path>.+))?\Z")


def cache_dir() -> Path:
    """Where weights files are kept: ``$CNNREG_CACHE``, else the per-user cache folder
    (``~/.cache/cnnreg/weights`` on Linux, from platformdirs)."""
    folder = os.environ.get("CNNREG_CACHE")
    if folder:
        return Path(folder).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnreg")) / "weights"


def _check_url(url: str, where: str) -> None:
    """One line unless ``url`` is an http(s) or hf:// URL, or a plain relative path (no ``..``,
    no leading ``/``, no backslash) that cannot lead out of its zoo."""
    if not isinstance(url, str) or not url:
        raise CnnregError(f"{where}: the file's url is missing")
    scheme, sep, _ = url.partition("://")
    if sep:
        if scheme.lower() not in SCHEMES:
            raise CnnregError(f"{where}: url '{_shown(url)}' is refused: only http://, https:// and hf:// URLs, "
                              "or a path relative to the zoo")
        if scheme.lower() == "hf" and not (_HF.match(url) and _HF.match(url)["path"]):
            raise CnnregError(f"{where}: url '{_shown(url)}' is not hf://USER/REPO/PATH")
        return
    segments = url.split("/")
    if url.startswith("/") or "\\" in url or ":" in url or any(s in ("", ".", "..") for s in segments):
        raise CnnregError(f"{where}: url '{_shown(url)}' is refused: a relative url is a path inside the zoo "
                          "(no '..', no leading '/')")


def _shown(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def resolve(url: str, base: str | None, *, where: str = "weights file") -> str | Path:
    """The absolute URL of ``url``, or the local file it names inside the zoo folder ``base``.

    A relative ``url`` resolves against ``base``: inside a zoo folder only (its real path is
    checked, so a link cannot lead out), against a ``zoo.json`` URL with ``urljoin``, or below
    an ``hf://user/repo`` zoo."""
    _check_url(url, where)
    if "://" in url:
        return url
    if not base:
        raise CnnregError(f"{where}: url '{url}' is relative, but the entry names no zoo to resolve it against")
    if base.startswith(("http://", "https://")):
        from urllib.parse import urljoin

        return urljoin(base, url)
    if base.startswith("hf://"):
        return f"{base.rstrip('/')}/{url}"
    folder = Path(base).expanduser()
    path = folder / url
    real, inside = os.path.realpath(path), os.path.realpath(folder)
    if os.path.commonpath([real, inside]) != inside:
        raise CnnregError(f"{where}: '{url}' in zoo {base} leads outside the zoo folder; refusing to follow it")
    return path


def fetch(file: "WeightsFile", *, base: str | None = None, progress: bool = True, with_action: bool = False):
    """The verified local copy of ``file``, downloaded into :func:`cache_dir` if needed.

    ``base`` is the zoo (a folder, a ``zoo.json`` URL, or ``hf://user/repo``) a relative url
    resolves against.  ``progress`` allows a progress bar on stderr (shown only on a terminal).
    ``with_action`` returns ``(path, action)``, the action being "downloaded", "cached" or
    "fetched again" (the cached copy no longer matched its hash).  A file without a hash (Keras
    publishes none for a few of its files) is checked by its size, when known.

    Every failure is one :class:`CnnregError` line: offline, a silent server, a file that does
    not match its hash (refused, never used), a cache that cannot be written."""
    name = file.filename
    if not isinstance(name, str) or not FILENAME.match(name) or name.startswith("."):
        raise CnnregError(f"weights file name '{_shown(str(name))}' is refused: a plain file name is expected")
    source = resolve(file.url, base, where=f"weights file {name}")
    folder = cache_dir()
    target = folder / name
    shown = str(source)
    if file.hash is None and file.size is not None and target.is_file() and target.stat().st_size != file.size:
        _remove(target)  # no hash to check (a few Keras files): at least the size
    cached = target.exists()
    before = _identity(target)
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # our own lines say what happens; pooch logs every download at INFO
    try:
        downloader = _downloader(source, progress and _terminal())
        path = pooch.retrieve(shown, known_hash=file.hash, fname=name, path=folder, downloader=downloader)
    except CnnregError:
        raise
    except ValueError as exc:
        if "does not match" not in str(exc) or file.hash is None:
            raise CnnregError(f"cannot fetch {shown}: {_first_line(exc)}") from None
        state = f"; the cached {target} did not match either and is not used" if cached else ""
        raise CnnregError(f"{shown} does not match its {file.algorithm} in the zoo "
                          f"({_short(file.hash)}): refusing it, nothing was saved{state}") from None
    except PermissionError as exc:
        raise CnnregError(f"cannot write the weights cache {folder} ({exc.strerror or exc}); "
                          "set CNNREG_CACHE to a writable folder") from None
    except Exception as exc:  # requests' errors, OSError, huggingface_hub's errors: one line each
        state = "; the cached copy no longer matches its hash and is not used" if cached else ""
        raise CnnregError(f"cannot download {shown} ({_reason(exc)}){state}; put the file there by hand: "
                          f"{target} ({_short(file.hash)})") from None
    finally:
        logger.setLevel(level)
    _readable(Path(path))
    if with_action:
        return Path(path), ("fetched again" if _identity(target) != before else "cached") if cached else "downloaded"
    return Path(path)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _readable(path: Path) -> None:
    """The mode open() would give (pooch's temporary file is 0600): a shared CNNREG_CACHE works."""
    try:
        if path.stat().st_mode & 0o777 != 0o666 & ~_UMASK:
            os.chmod(path, 0o666 & ~_UMASK)
    except OSError:
        pass  # someone else's file in a shared cache: readable already, or not ours to change


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _downloader(source: str | Path, progress: bool):
    """pooch's HTTP downloader with :data:`TIMEOUT`, a copy from a zoo folder, or the Hub's URL
    and headers for hf:// (pooch checks the hash and renames in every case)."""
    if isinstance(source, Path):
        def copy(url: str, output_file: str, pooch: object) -> None:
            if not source.is_file():
                raise CnnregError(f"{source} is missing from its zoo folder")
            shutil.copyfile(source, output_file)

        return copy
    if source.startswith("hf://"):
        return _hf_downloader(source, progress)
    import pooch

    return pooch.HTTPDownloader(progressbar=progress, timeout=TIMEOUT)


def _hf_downloader(url: str, progress: bool):
    """hf://USER/REPO[@REVISION]/PATH: huggingface_hub names the URL (``HF_ENDPOINT``, the
    revision) and the headers (the user's token), pooch downloads it with :data:`TIMEOUT`.
    (``hf_hub_download`` itself retries an unreachable Hub for a minute or more.)"""
    match = _HF.match(url)
    if not match or not match["path"]:
        raise CnnregError(f"'{url}' is not hf://USER/REPO/PATH")

    def download(_url: str, output_file: str, pooch_: object) -> None:
        try:  # only when the file is not cached already
            import huggingface_hub
            from huggingface_hub.utils import build_hf_headers
        except ImportError:
            raise CnnregError(f"{url} needs huggingface_hub: pip install 'cnnreg[hub]'") from None
        import pooch

        from cnnreg.version import __version__

        address = huggingface_hub.hf_hub_url(match["repo"], match["path"], revision=match["revision"],
                                             endpoint=os.environ.get("HF_ENDPOINT"))  # read now, not at its import
        headers = build_hf_headers(library_name="cnnreg", library_version=__version__)
        pooch.HTTPDownloader(progressbar=progress, timeout=TIMEOUT, headers=headers)(address, output_file, pooch_)

    return download


def _reason(exc: BaseException) -> str:
    """What went wrong with a download, in a few words."""
    try:
        import requests
    except ImportError:  # pragma: no cover - pooch needs requests
        requests = None
    if requests is not None:
        if isinstance(exc, requests.exceptions.ProxyError):
            return "the proxy cannot be reached: check HTTPS_PROXY, HTTP_PROXY and NO_PROXY"
        if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
            return f"no answer within {max(TIMEOUT)} s"
        if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
            return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".strip()
        if isinstance(exc, requests.exceptions.ConnectionError):
            return "cannot connect: offline, or the server is down"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _short(hash_text: str | None) -> str:
    if not hash_text:
        return "no hash published"
    algorithm, _, digest = hash_text.partition(":")
    return f"{algorithm} {digest[:16]}..." if len(digest) > 16 else hash_text


def fetch_entry(entry: "WeightsEntry", which: str = "model") -> Path:
    """The verified local copy of the entry's file ``which`` ("model", "top", "notop"),
    downloaded once into the cache (a progress bar on a terminal)."""
    from cnnreg.errors import choices_text

    if which not in entry.files:
        raise CnnregError(f"weights '{entry.name}' has no file '{which}'" + choices_text(which, entry.files))
    return fetch(entry.files[which], base=entry.zoo)


def pull(entry: "WeightsEntry", which: str | None = None) -> dict:
    """Fetch every file of ``entry`` (or only ``which``) and, for an entry published from a run,
    write its recipe (:func:`recipe_dir`); what ``cnnreg weights pull`` shows: per file its
    path, size, verified hash (``"sha256:<hex>"`` or ``"md5:<hex>"``) and sha256 (the hex digest)."""
    from cnnreg.errors import choices_text

    if which is not None and which not in entry.files:
        raise CnnregError(f"weights '{entry.name}' has no file '{which}'" + choices_text(which, entry.files))
    files = {role: entry.files[role] for role in ([which] if which else entry.files)}
    if which is None and entry.class_names_file is not None:
        files["class_names"] = entry.class_names_file
    result: dict = {"name": entry.name, "files": {}, "recipe": None}
    for role, file in files.items():
        path, action = fetch(file, base=entry.zoo, with_action=True)
        result["files"][role] = {
            "path": str(path), "action": action, "size": path.stat().st_size, "hash": file.hash, "url": str(resolve(file.url, entry.zoo)),
            # the bare hex digest ("hash" keeps pooch's "sha256:..." form): just verified, or computed
            "sha256": (file.hash if file.algorithm == "sha256" else sha256_of(path)).partition(":")[2],
        }
    if entry.manifest:
        from cnnreg.files import write_json

        folder = recipe_dir(entry.name)
        write_json(folder / RECIPE_MANIFEST, entry.manifest)
        result["recipe"] = str(folder)
    return result


def recipe_dir(name: str) -> Path:
    """Where ``pull`` writes the run manifest of the entry ``name``: a folder that
    ``cnnreg rerun`` takes as a run directory (``<cache>/recipes/NAME``)."""
    return cache_dir() / "recipes" / name


def class_names(entry: "WeightsEntry") -> list[str]:
    """The entry's class names: given in the entry, else read from its class-names file
    (Keras' ``imagenet_class_index.json``: ``{"0": ["n01440764", "tench"], ...}``, or a plain
    JSON list), else the class numbers."""
    if entry.class_names:
        return list(entry.class_names)
    if entry.class_names_file is None:
        return [str(i) for i in range(entry.num_classes)]
    path = fetch(entry.class_names_file, base=entry.zoo)
    where = f"class names of '{entry.name}' ({path})"
    from cnnreg.files import read_json

    data = read_json(path, where)
    if isinstance(data, dict):
        try:
            rows = [data[str(i)] for i in range(len(data))]
        except KeyError:
            raise CnnregError(f"{where}: keys are not 0..{len(data) - 1}") from None
        names = [row[-1] if isinstance(row, list) and row else row for row in rows]
    else:
        names = data
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) != entry.num_classes:
        raise CnnregError(f"{where}: expected {entry.num_classes} names")
    return names
