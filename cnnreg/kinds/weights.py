"""The weights kind (the model zoo): what a set of pretrained weights is, where its files are,
how good it is.

A weights component is named ``ARCH.TAG`` (``lenet5.digits``).  Its plugin builds a
:class:`WeightsEntry` (architecture spec, classes, input shape, files with URL and hash, metrics,
license, source ...) and registers it with ``registry.add(entry.name, FETCH, summary=...,
**entry.to_metadata())``: the factory is :data:`FETCH`, which downloads the entry's files into
the cache when the weights are first used.  Zoos named by ``CNNREG_ZOO`` add entries the same way
(:mod:`cnnreg.zoo.index`).  docs/zoo.md and docs/plugins.md have every field.

Pure data: no keras, no network.  An entry comes from a plugin (Python), a zoo's ``zoo.json`` or a
registered component's metadata, and is checked field by field the same way in each case, since a
zoo is somebody else's file: every value's type, plain file names, well-formed hashes, and URLs
that are ``http(s)://``, ``hf://`` or a path inside the zoo.  Nothing in an entry is ever run or
imported; ``preprocess`` is a name compared with what the architecture registers.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from cnnreg.errors import CnnregError, choices_text, suggestion_text
from cnnreg.kinds import KindSpec
from cnnreg.spec import parse

__all__ = ["KIND", "FETCH", "ZOO_ENV", "WeightsFile", "WeightsEntry", "InvalidEntry", "entry_of", "unknown_text", "NAME", "FIELDS",
           "FILE_ROLES"]

#: ``ARCH.TAG``: the architecture's name, a dot, a tag (``lenet5.digits``, ``keras-resnet50.imagenet``).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: A file name in the cache: no folder, no "..", no hidden file.
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
#: pooch's ``known_hash`` form, which keras.utils.get_file's hashes map to (64 hex: sha256, 32: md5).
_HASH = re.compile(r"^(sha256:[0-9a-f]{64}|md5:[0-9a-f]{32})$")
_ROLE = re.compile(r"^[a-z][a-z0-9_-]*$")
_PREPROCESS = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")
#: What each file of an entry is: ``model`` a ``.keras`` file with its head (cnnreg runs),
#: ``raw`` the same model behind stock resizing and scaling layers (``cnnreg publish
#: --with-preprocess``: raw pixels of any size go in; cnnreg itself uses ``model``),
#: ``top`` / ``notop`` keras.applications ``.h5`` weights with and without the classifier,
#: ``onnx`` / ``litert`` the model exported by ``cnnreg publish --format`` (checked against it).
FILE_ROLES = ("model", "raw", "top", "notop", "onnx", "litert")
#: The factory of every weights component: fetch the entry's files into the cache (lazy).
FETCH = "cnnreg.zoo.cache:fetch_entry"
#: The environment variable that names zoos whose entries are registered too (cnnreg.zoo.index).
ZOO_ENV = "CNNREG_ZOO"
_SCHEMES = ("http", "https", "hf")


class InvalidEntry(CnnregError):
    """A field of a weights entry or file has the wrong type or form."""

    def __init__(self, field: str, problem: str, where: str = "weights entry") -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{where}: field '{field}' {problem}")


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    return {str: "text", bool: "true/false", int: "a whole number", float: "a number", list: "a list",
            tuple: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _need(ok: bool, field: str, what: str, value: Any) -> None:
    if not ok:
        raise InvalidEntry(field, f"must be {what} (got {_type_name(value)} {_shown(value)})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_int(value: Any, field: str, *, minimum: int = 0) -> None:
    if value is not None:
        _need(_is_int(value) and value >= minimum, field, f"a whole number ≥ {minimum} or null", value)


def _optional_text(value: Any, field: str) -> None:
    if value is not None:
        _need(isinstance(value, str) and value.strip() != "" and value.isprintable(), field,
              "text on one line or null", value)


_SPACE = re.compile(r"\s")


def check_url(url: Any, field: str = "url") -> None:
    """``http(s)://host/...``, ``hf://user/repo/path``, or a relative path inside the zoo."""
    _need(isinstance(url, str) and url != "", field, "a URL or a relative path", url)
    if not url.isprintable() or _SPACE.search(url) or "\\" in url:
        raise InvalidEntry(field, f"must be a URL or a relative path without spaces or backslashes (got {_shown(url)})")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme:
        if scheme not in _SCHEMES:
            raise InvalidEntry(field, f"must use http, https or hf (got {_shown(url)})")
        parts = urlsplit(url)
        if not parts.netloc:
            raise InvalidEntry(field, f"has no host (got {_shown(url)})")
        path = [p for p in parts.path.split("/") if p]
        if scheme == "hf" and len(path) < 2:  # hf://user/repo/file: netloc is the user
            raise InvalidEntry(field, f"must look like hf://user/repo/path/to/file (got {_shown(url)})")
        if ".." in path or ".." in parts.netloc.split("/"):
            raise InvalidEntry(field, f"must not contain '..' (got {_shown(url)})")
        return
    # A path relative to the zoo: it must stay inside it.
    segments = url.split("/")
    if url.startswith("/") or ":" in url or ".." in segments or "" in segments or "." in segments:
        raise InvalidEntry(field, f"must be http(s)://..., hf://... or a path inside the zoo such as "
                                  f"'name/model.keras' (got {_shown(url)})")


@dataclass(frozen=True)
class WeightsFile:
    """One file of an entry: where it is, its hash, and the name it gets in the cache."""

    url: str
    #: pooch's ``known_hash`` form: ``"sha256:<64 hex>"`` or ``"md5:<32 hex>"``.  None only for
    #: the few keras.applications files Keras itself publishes no hash for (MobileNet v1 / v2):
    #: such a file cannot be verified.
    hash: str | None
    filename: str
    size: int | None = None

    def __post_init__(self) -> None:
        check_url(self.url, "url")
        if self.hash is not None:
            _need(isinstance(self.hash, str), "hash", "'sha256:<64 hex digits>' or 'md5:<32 hex digits>'", self.hash)
            if not _HASH.match(self.hash.lower()):
                raise InvalidEntry("hash", f"must be 'sha256:<64 hex digits>' or 'md5:<32 hex digits>' (got {_shown(self.hash)})")
            object.__setattr__(self, "hash", self.hash.lower())
        _need(isinstance(self.filename, str), "filename", "a plain file name", self.filename)
        if not _FILENAME.match(self.filename):
            raise InvalidEntry("filename", f"must be a plain file name: letters, digits, '_', '-', '.', '+', "
                                           f"no folder (got {_shown(self.filename)})")
        _optional_int(self.size, "size")

    @property
    def algorithm(self) -> str | None:
        """``"sha256"`` or ``"md5"`` (None: no hash known)."""
        return self.hash.split(":", 1)[0] if self.hash else None

    @classmethod
    def from_dict(cls, data: Any, *, where: str) -> "WeightsFile":
        """A file from its JSON form; :class:`CnnregError` naming ``where`` and the field if it is wrong."""
        try:
            return cls._from(data, "")
        except InvalidEntry as exc:
            raise InvalidEntry(exc.field, exc.problem, where) from None

    @classmethod
    def _from(cls, data: Any, prefix: str) -> "WeightsFile":
        _need(isinstance(data, dict), prefix.rstrip(".") or "file", "an object with url, hash, filename", data)
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise InvalidEntry(f"{prefix}{key}", "is not a field of a weights file" + choices_text(str(key), known))
        for key in ("url", "hash", "filename"):
            if key not in data:
                raise InvalidEntry(f"{prefix}{key}", "is missing")
        try:
            return cls(**data)
        except InvalidEntry as exc:
            raise InvalidEntry(prefix + exc.field, exc.problem) from None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "hash": self.hash, "filename": self.filename, "size": self.size}


@dataclass(frozen=True)
class WeightsEntry:
    """Pretrained weights: an architecture spec, the files that fill it, and what they are worth.

    ``name`` is ``ARCH.TAG``.  ``files`` maps a role (:data:`FILE_ROLES`) to a file.  ``metrics``
    are dicts with the ``dataset`` and ``split`` they were measured on and the values
    (``top1``, ``top5``, ``accuracy`` ... as fractions).  ``manifest`` is the ``manifest.json`` of the
    cnnreg run the weights came from (``cnnreg rerun`` can repeat it).  ``zoo`` is where the entry
    was found (a folder or an index URL) and what a relative file URL resolves against.
    """

    name: str
    architecture: str
    num_classes: int
    input_shape: tuple[int, int, int]
    files: Mapping[str, WeightsFile]
    class_names: tuple[str, ...] | None = None
    class_names_file: WeightsFile | None = None
    preprocess: str | None = None
    dataset: str | None = None
    metrics: tuple[dict, ...] = ()
    parameters: int | None = None
    macs: int | None = None
    depth: int | None = None
    license: str | None = None
    source: str | None = None
    manifest: dict | None = None
    zoo: str | None = None
    cnnreg_version: str | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.name, str) and bool(NAME.match(self.name)), "name",
              "ARCH.TAG: letters, digits, '_', '-', then '.', then a tag (e.g. 'lenet5.digits')", self.name)
        _need(isinstance(self.architecture, str) and self.architecture.strip() != "", "architecture",
              "an architecture spec such as 'lenet5' or 'resnet18:batchnorm=false'", self.architecture)
        try:
            parse(self.architecture)
        except CnnregError as exc:
            raise InvalidEntry("architecture", f"is not a valid spec: {exc}") from None
        _need(_is_int(self.num_classes) and self.num_classes >= 1, "num_classes", "a whole number ≥ 1", self.num_classes)
        shape = self.input_shape
        _need(isinstance(shape, tuple) and len(shape) == 3 and all(_is_int(d) and d >= 1 for d in shape),
              "input_shape", "three whole numbers ≥ 1 (height, width, channels)", shape)
        _need(isinstance(self.files, Mapping) and len(self.files) > 0, "files", "an object of files by role", self.files)
        for role, file in self.files.items():
            _need(isinstance(role, str) and bool(_ROLE.match(role)), "files",
                  f"keyed by roles such as {', '.join(FILE_ROLES)}", role)
            _need(isinstance(file, WeightsFile), f"files.{role}", "a weights file", file)
        object.__setattr__(self, "files", dict(self.files))
        if self.class_names is not None:
            names = self.class_names
            _need(isinstance(names, tuple) and all(isinstance(n, str) and n.isprintable() for n in names),
                  "class_names", "a list of texts or null", names)
            if len(names) != self.num_classes:
                raise InvalidEntry("class_names", f"has {len(names)} names for {self.num_classes} classes")
        if self.class_names_file is not None:
            _need(isinstance(self.class_names_file, WeightsFile), "class_names_file", "a weights file or null",
                  self.class_names_file)
        if self.preprocess is not None:
            _need(isinstance(self.preprocess, str) and bool(_PREPROCESS.match(self.preprocess)), "preprocess",
                  "a preprocess name ('scale_0_1') or reference ('module:function') or null", self.preprocess)
        _optional_text(self.dataset, "dataset")
        _need(isinstance(self.metrics, tuple), "metrics", "a list of objects", self.metrics)
        for i, metric in enumerate(self.metrics):
            _check_metric(metric, f"metrics[{i}]")
        for key in ("parameters", "macs", "depth"):
            _optional_int(getattr(self, key), key)
        for key in ("license", "source", "zoo", "cnnreg_version"):
            _optional_text(getattr(self, key), key)
        if self.manifest is not None:
            _need(isinstance(self.manifest, dict), "manifest", "an object or null", self.manifest)
            _check_json(self.manifest, "manifest")

    @property
    def arch_name(self) -> str:
        """The architecture part of the name: ``"lenet5"`` for ``"lenet5.digits"``."""
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        """The part after the first dot: ``"digits"`` for ``"lenet5.digits"``."""
        return self.name.split(".", 1)[1]

    def metric(self, key: str) -> float | None:
        """The first metric ``key`` (``"top1"``...) the entry reports, or None."""
        for metric in self.metrics:
            if key in metric:
                return metric[key]
        return None

    @classmethod
    def from_dict(cls, data: Any, *, where: str) -> "WeightsEntry":
        """An entry from its JSON form (``zoo.json``, component metadata), every field checked.

        A mistake is one :class:`CnnregError` line naming ``where`` and the field.
        """
        try:
            return cls._from(data)
        except InvalidEntry as exc:
            raise InvalidEntry(exc.field, exc.problem, where) from None

    @classmethod
    def _from(cls, data: Any) -> "WeightsEntry":
        _need(isinstance(data, dict), "entry", "an object", data)
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise InvalidEntry(str(key), "is not a field of a weights entry" + choices_text(str(key), known))
        for key in ("name", "architecture", "num_classes", "input_shape", "files"):
            if key not in data:
                raise InvalidEntry(key, "is missing")
        values = dict(data)
        _need(isinstance(data["input_shape"], (list, tuple)), "input_shape", "three whole numbers", data["input_shape"])
        values["input_shape"] = tuple(data["input_shape"])
        files = data["files"]
        _need(isinstance(files, dict), "files", "an object of files by role", files)
        values["files"] = {role: WeightsFile._from(file, f"files.{role}.") for role, file in files.items()}
        if data.get("class_names_file") is not None:
            values["class_names_file"] = WeightsFile._from(data["class_names_file"], "class_names_file.")
        if data.get("class_names") is not None:
            _need(isinstance(data["class_names"], (list, tuple)), "class_names", "a list of texts", data["class_names"])
            values["class_names"] = tuple(data["class_names"])
        if "metrics" in data:
            _need(isinstance(data["metrics"], (list, tuple)), "metrics", "a list of objects", data["metrics"])
            values["metrics"] = tuple(dict(m) if isinstance(m, dict) else m for m in data["metrics"])
        if data.get("manifest") is not None and isinstance(data["manifest"], dict):
            values["manifest"] = dict(data["manifest"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``from_dict(to_dict())`` gives the entry back."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "files": {role: file.to_dict() for role, file in self.files.items()},
            "class_names": list(self.class_names) if self.class_names is not None else None,
            "class_names_file": self.class_names_file.to_dict() if self.class_names_file else None,
            "preprocess": self.preprocess,
            "dataset": self.dataset,
            "metrics": [dict(m) for m in self.metrics],
            "parameters": self.parameters,
            "macs": self.macs,
            "depth": self.depth,
            "license": self.license,
            "source": self.source,
            "manifest": self.manifest,
            "zoo": self.zoo,
            "cnnreg_version": self.cnnreg_version,
        }

    def to_metadata(self) -> dict[str, Any]:
        """:meth:`to_dict` less ``name``: the metadata keys for ``registry.add(entry.name, ...)``."""
        data = self.to_dict()
        del data["name"]
        return data


#: The fields of an entry's JSON form (``zoo.json``): what a zoo may give.
FIELDS = frozenset(f.name for f in fields(WeightsEntry))


def _check_metric(metric: Any, field: str) -> None:
    _need(isinstance(metric, dict), field, "an object such as {\"dataset\": ..., \"split\": ..., \"top1\": ...}", metric)
    for key in ("dataset", "split"):
        _need(isinstance(metric.get(key), str) and metric[key].strip() != "" and metric[key].isprintable(),
              f"{field}.{key}", "text on one line (what the metric was measured on)", metric.get(key))
    for key, value in metric.items():
        _need(isinstance(key, str) and key.isprintable(), field, "keyed by text on one line", key)
        if key in ("dataset", "split"):
            continue
        ok = (isinstance(value, str) and value.isprintable()) or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
        _need(ok, f"{field}.{key}", "a finite number or text on one line", value)


def _check_json(value: Any, field: str, depth: int = 0) -> None:
    """Plain JSON values only (a manifest is shown and compared, never run)."""
    if depth > 32:
        raise InvalidEntry(field, "is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            _need(isinstance(key, str), field, "keyed by text", key)
            _check_json(item, f"{field}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{field}[{i}]", depth + 1)
    elif isinstance(value, float):
        _need(math.isfinite(value), field, "a finite number", value)
    else:
        _need(value is None or isinstance(value, (str, int, bool)), field, "a JSON value", value)


def entry_of(component: Any) -> WeightsEntry:
    """The :class:`WeightsEntry` a registered ``weights`` component was made from."""
    if getattr(component, "kind", None) != "weights":
        raise CnnregError(f"{getattr(component, 'kind', 'object')} '{getattr(component, 'name', component)}' "
                          "is not a weights entry (see `cnnreg list weights`)")
    known = {f.name for f in fields(WeightsEntry)}
    data = {k: v for k, v in component.metadata.items() if k in known}  # a plugin's extra keys stay metadata
    data["name"] = component.name
    return WeightsEntry.from_dict(data, where=f"weights '{component.name}' from {component.provider}")


#: How many weights names an unknown name's line suggests, at most.
SUGGESTED = 5


def unknown_text(name: str, names: Iterable[str]) -> str:
    """The end of the line for an unknown weights name ``ARCH.TAG``: a handful of weights names
    at most (the close ones, else the entries of that architecture) and whether ``CNNREG_ZOO``
    is set, which is where most ``ARCH.TAG`` names come from.  Never the whole list: cnnreg's
    own keras-* entries alone would be some 1,300 characters."""
    names = sorted(set(names))
    text = suggestion_text(name, names, shown=SUGGESTED)
    if not text:
        arch = name.split(".", 1)[0].lower()
        same = [n for n in names if n.split(".", 1)[0].lower() == arch]
        if same:
            shown = ", ".join(f"'{n}'" for n in same[:SUGGESTED]) + (f" and {len(same) - SUGGESTED} more" if len(same) > SUGGESTED else "")
            text = f"; weights for {name.split('.', 1)[0]}: {shown}"
    zoos = os.environ.get(ZOO_ENV, "").strip()
    if not zoos:
        return (text + f"; {ZOO_ENV} is not set, so only cnnreg's own and plugins' weights are known: publish a run "
                "with `cnnreg publish RUN ZOO` and set CNNREG_ZOO=ZOO (see `cnnreg list weights`)")
    shown = zoos if len(zoos) <= 80 else zoos[:77] + "..."
    return text + f"; no zoo in {ZOO_ENV}={shown} lists it (see `cnnreg list weights`)"


KIND = KindSpec(
    "weights", "weights", words=("weight", "zoo", "pretrained"),
    supplied=("entry",),
    contract=__name__,
    unknown=unknown_text,
    doc="""Add pretrained weights, named ``ARCH.TAG`` (``lenet5.digits``).

    Build a :class:`cnnreg.kinds.weights.WeightsEntry` (architecture spec, classes, input shape,
    files with URL and hash, metrics, license, source ...) and register it with
    ``registry.add(entry.name, cnnreg.kinds.weights.FETCH, summary=..., **entry.to_metadata())``.
    Entries are data: nothing is downloaded until one is used.  See cnnreg.kinds.weights and
    docs/plugins.md for the fields.
    """,
)
