"""Where a run's starting weights come from, and how they go into its model.

``--weights`` takes ``none``, ``imagenet`` (keras-* architectures), a registered weights entry
(``lenet5.digits``, ``keras-resnet50.imagenet``), a run directory, a run's ``model.keras`` or a
bare weights file (``.weights.h5``, ``.h5``).  :func:`resolve_source` says which without importing
keras, so a mistake is one line before anything loads; :func:`load_into` puts the weights into
the model built for the run: every weight when the classes match, all but the head (the output
layer) when they do not, the lecture's "output layer ... retrained/replaced".

Layers are paired in build order, leaf by leaf, not by name: Keras names unnamed layers from a
session-wide counter (``conv2d_3``), so two builds of one architecture differ in names but never
in the order of their layers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError, ParameterError, gist, suggestion_text
from cnnreg.kinds.weights import unknown_text

#: What a bare weights file may be called (Keras' own suffixes).
WEIGHT_FILES = (".weights.h5", ".h5")
#: A weights entry's name: ``ARCH.TAG`` (cnnreg.kinds.weights checks the same form).
ENTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.[A-Za-z0-9][A-Za-z0-9_.-]*")
WHAT = "none, imagenet, a weights name (`cnnreg list weights`), a run directory, a .keras file or a weights file"


@dataclass
class Source:
    """Resolved ``--weights``: ``kind`` is ``none``, ``imagenet``, ``entry`` (a registered weights
    entry), ``run`` (a run directory or a file of one), ``keras`` (a .keras file) or ``file``
    (a bare weights file)."""

    kind: str
    text: str
    path: Path | None = None
    run_dir: Path | None = None
    manifest: dict[str, Any] | None = None
    entry: Any = None
    #: The registered architecture the weights were made for, when known.
    component: Any = None
    #: Its spec text (``lenet5:batchnorm=true``), when known.
    architecture: str | None = None
    #: Filled in by :func:`load_into`: the file used, its sha256, what was loaded.
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def stored(self) -> str:
        """``--weights`` as the manifest keeps it: a path made absolute, so that ``rerun`` and
        ``resume`` find it from any folder."""
        if self.kind == "run" and self.path is not None and self.run_dir is not None:
            return str(self.run_dir if Path(self.text).expanduser().is_dir() else self.path)
        if self.kind in ("keras", "file") and self.path is not None:
            return str(self.path)
        return self.text

    @property
    def pretrained(self) -> bool:
        return self.kind != "none"

    @property
    def label(self) -> str:
        """How messages name the weights: ``--weights lenet5.digits``."""
        return f"--weights {self.text}"

    @property
    def keras_files(self) -> bool:
        """An entry of keras.applications files (``top`` / ``notop``), not a cnnreg model."""
        return self.kind == "entry" and "model" not in self.entry.files

    def class_names(self) -> list[str] | None:
        """The classes the weights' head predicts, in order, when they are known without a download."""
        if self.manifest is not None and isinstance(self.manifest.get("class_names"), list):
            return [str(name) for name in self.manifest["class_names"]]
        if self.kind == "entry" and self.entry.class_names:
            return list(self.entry.class_names)
        return None

    def num_classes(self) -> int | None:
        if self.kind == "entry":
            return self.entry.num_classes
        names = self.class_names()
        return len(names) if names is not None else None

    def input_shape(self) -> tuple[int, int, int] | None:
        """The input the weights were trained on when it binds the model (a cnnreg model's
        weights); None where any size works (ImageNet bases) or it is not known."""
        if self.kind == "entry" and not self.keras_files:
            return tuple(self.entry.input_shape)
        if self.manifest is not None and self.kind == "run":
            shape = self.manifest.get("input_shape")
            if isinstance(shape, list) and len(shape) == 3 and all(type(d) is int and d > 0 for d in shape):
                return tuple(shape)
        if self.kind == "keras" and self.path is not None:
            return _keras_file_input_shape(self.path)
        return None

    def wants_rgb(self, bridge: bool) -> bool:
        """ImageNet weights take RGB images (so do keras-* bases from a file)."""
        return self.kind == "imagenet" or self.keras_files or (bridge and self.kind == "file")

    def describe(self) -> str:
        return {
            "imagenet": "imagenet", "entry": self.text, "run": f"run {self.run_dir}",
        }.get(self.kind, str(self.path))


def resolve_source(text: str | None, arch, registry) -> Source:
    """What ``--weights TEXT`` names, checked without keras: one line for a path that does not
    exist, a run of another architecture, an unknown weights name or one for another architecture."""
    text = (text or "none").strip() or "none"
    if text.lower() in ("none", "imagenet"):
        return Source(text.lower(), text.lower())
    path = Path(text).expanduser()
    if path.is_dir():
        return _run_source(text, path, path / "model.keras", arch)
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".keras"):
            parent = path.parent
            if (parent / "run.json").is_file() and name == "model.keras":
                return _run_source(text, parent, path, arch)
            if parent.name == "checkpoint" and (parent.parent / "run.json").is_file():
                return _run_source(text, parent.parent, path, arch)
            return Source("keras", text, path=path.resolve())
        if name.endswith(WEIGHT_FILES):
            return Source("file", text, path=path.resolve())
        raise ParameterError(f"--weights {text} is not a weights file (.keras, .weights.h5 or .h5); --weights takes {WHAT}")
    names = weights_names(registry)
    if ENTRY_NAME.fullmatch(text) and not text.lower().endswith((".keras", ".h5")) and "/" not in text:
        if text.lower() in {n.lower() for n in names}:
            return _entry_source(text, registry.get("weights", text), arch, registry)
        raise ParameterError(f"unknown weights '{text}'" + unknown_text(text, names) + f"; --weights takes {WHAT}")
    if os.sep in text or "/" in text or text.lower().endswith((".keras", *WEIGHT_FILES)):
        raise ParameterError(f"--weights file {text} does not exist")
    raise ParameterError(f"--weights {text}: no such file, run directory or weights name"
                         + suggestion_text(text, names, shown=5) + f"; --weights takes {WHAT}")


def weights_names(registry) -> list[str]:
    try:
        return registry.names("weights")
    except Exception:  # a registry without the weights kind
        return []


def _same(component, other) -> bool:
    """One architecture: the same component, or the same keras.applications model under two
    names (``xception`` and ``keras-xception``)."""
    if (component.provider, component.name) == (other.provider, other.name):
        return True
    keras_model = component.metadata.get("keras_application")
    return keras_model is not None and keras_model == other.metadata.get("keras_application")


def _run_source(text: str, run_dir: Path, model: Path, arch) -> Source:
    from cnnreg.training import rundir
    from cnnreg.training.saved import run_architecture

    data = rundir.load_manifest(run_dir)  # one line when it is not a run directory
    if not model.exists():
        done = data.get("epochs_done")
        raise CnnregError(f"--weights {text}: run {run_dir} has no model.keras"
                          + (f" (it completed {done} epochs; `cnnreg resume {run_dir}` restores it)" if done else " yet"))
    component = run_architecture(data, run_dir)
    resolved = data.get("resolved")
    recorded = resolved.get("architecture") if isinstance(resolved, dict) else None
    spec = recorded.get("spec") if isinstance(recorded, dict) and isinstance(recorded.get("spec"), str) else component.name
    if not _same(component, arch):
        raise ParameterError(f"--weights {text}: run {run_dir} trained architecture '{spec}', not '{arch.name}'; "
                             f"use `cnnreg run {component.name} --weights {text}`")
    return Source("run", text, path=model.resolve(), run_dir=run_dir.resolve(), manifest=data,
                  component=component, architecture=spec)


def _entry_source(text: str, component, arch, registry) -> Source:
    from cnnreg.spec import parse
    from cnnreg.kinds.weights import entry_of

    entry = entry_of(component)
    try:
        made_for = registry.get("architecture", parse(entry.architecture).name)
    except CnnregError as exc:
        raise CnnregError(f"--weights {entry.name} is for architecture '{entry.architecture}', which is not "
                          f"installed ({exc})") from None
    if not _same(made_for, arch):
        raise ParameterError(f"--weights {entry.name} is for architecture '{entry.architecture}', not '{arch.name}'; "
                             f"use `cnnreg run {made_for.name} --weights {entry.name}`")
    usable = [which for which in ("model", "notop", "top") if which in entry.files]
    if not usable:
        raise CnnregError(f"--weights {entry.name}: the entry has no file cnnreg can start from "
                          f"(files: {', '.join(entry.files) or 'none'}; needs model, notop or top)")
    if "model" not in entry.files and "weights" not in {p.name for p in arch.parameters()}:
        raise CnnregError(f"--weights {entry.name}: keras.applications files need a keras-* architecture")
    manifest = entry.manifest if isinstance(entry.manifest, dict) else None
    return Source("entry", entry.name, entry=entry, manifest=manifest, component=made_for,
                  architecture=entry.architecture)


def _keras_file_input_shape(path: Path) -> tuple[int, int, int] | None:
    """A .keras file's input shape from its config.json (read as data; nothing in it runs)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        for layer in config["config"]["layers"]:
            if layer.get("class_name") == "InputLayer":
                shape = layer["config"].get("batch_shape") or layer["config"].get("batch_input_shape")
                shape = tuple(shape[1:])
                if len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape):
                    return shape
                return None
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return None  # loading it says what is wrong
    return None


def sha256(path: Path) -> str:
    """The file's sha256 in hex, as the manifest records it."""
    from cnnreg.files import sha256_of

    return sha256_of(path).partition(":")[2]


# --- putting weights into a model -------------------------------------------------------------


class Mismatch(Exception):
    """The weights do not fit the model (the message says where)."""


def leaves(model) -> list:
    """Layers that own weights, nested models and blocks opened up, in build order."""
    found = []
    for layer in model.layers:
        inner = getattr(layer, "layers", None)
        if inner:
            found.extend(leaves(layer))
        elif layer.weights:
            found.append(layer)
    return found


def _count(layer) -> int:
    total = 0
    for variable in layer.weights:
        size = 1
        for d in variable.shape:
            size *= int(d)
        total += size
    return total


def _shapes(layer) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in v.shape) for v in layer.weights]


def _difference(to, come) -> str:
    """Where two paired layers differ, in a few words."""
    mine, theirs = type(to).__name__, type(come).__name__
    if mine != theirs:
        return f"layer {to.name} is a {mine} here, a {theirs} ({come.name}) in the weights"
    for mine_var, their_var in zip(to.weights, come.weights):
        if tuple(mine_var.shape) != tuple(their_var.shape):
            here, there = ("x".join(str(int(d)) for d in v.shape) for v in (mine_var, their_var))
            name = getattr(mine_var, "name", "weights")
            return f"layer {to.name} ({mine}) has a {here} {name} here, {there} in the weights"
    return f"layer {to.name} ({mine}) has {len(to.weights)} variables here, {len(come.weights)} in the weights"


@dataclass
class Copied:
    """What :func:`copy_weights` put into the model."""

    layers: int = 0
    of_layers: int = 0
    parameters: int = 0
    of_parameters: int = 0
    head: str = "loaded"  # loaded, re-initialised, new (a base: the run adds its own head)
    head_name: str = ""
    #: How many classes the weights' head has (its last dimension).
    their_classes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def copy_weights(source, target, *, head: bool) -> Copied:
    """Copy every layer's weights from ``source`` into ``target`` (same architecture); the last
    layer, the head, only when ``head`` and the shapes agree.  Anything else that differs is a
    :class:`Mismatch`, and then ``target`` is left as it was."""
    mine, theirs = leaves(target), leaves(source)
    if len(mine) != len(theirs):
        raise Mismatch(f"{len(theirs)} layers with weights there, {len(mine)} here")
    copied = Copied(of_layers=len(mine), of_parameters=sum(_count(layer) for layer in mine))
    plan = []
    for index, (to, come) in enumerate(zip(mine, theirs)):
        last = index == len(mine) - 1
        fits = type(to).__name__ == type(come).__name__ and _shapes(to) == _shapes(come)
        if last:
            copied.head_name = to.name
            copied.their_classes = int(come.weights[-1].shape[-1]) if come.weights else None
            if not (fits and head):
                copied.head = "re-initialised"
                continue
        elif not fits:
            raise Mismatch(_difference(to, come))
        plan.append((to, come))
    for to, come in plan:
        to.set_weights(come.get_weights())
        copied.layers += 1
        copied.parameters += _count(to)
    return copied


@contextlib.contextmanager
def quiet():
    """Keras warns about every object it could not place, and about nested containers, when a
    file does not match: the one-line error says it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def load_into(plan, model, source: Source) -> str:
    """Put ``source``'s weights into ``model`` (built by :func:`cnnreg.training.model.build_model`)
    and return the note for the run header; ``source.record`` says what was loaded, for the manifest."""
    names = list(plan.dataset.class_names)
    arch = plan.architecture.component
    where = f"{plan.architecture.spec} at {'x'.join(map(str, plan.input_shape))}"
    bridge = "weights" in {p.name for p in arch.parameters()}
    theirs = source.class_names()
    if theirs is not None:
        same_classes = theirs == names
    else:
        count = source.num_classes()
        same_classes = count is None or count == len(names)  # a bare file: the head's shape decides
    record: dict[str, Any] = {"source": source.kind, "weights": source.stored}
    try:
        with quiet():
            if source.kind == "imagenet":
                copied = _into_base(plan, model, "imagenet")
            elif source.kind == "entry" and source.keras_files:
                copied = _keras_entry(plan, model, source, record, same_classes)
            elif source.kind == "file":
                record.update(path=str(source.path), sha256=sha256(source.path))
                copied = _bare_file(plan, model, source.path, bridge, same_classes)
            else:
                copied = copy_weights(_source_model(source, record), model, head=same_classes)
    except Mismatch as exc:
        made_for = f" ({source.architecture})" if source.architecture and source.architecture != plan.architecture.spec else ""
        raise ParameterError(f"{source.label}{made_for} does not match {where}: {exc}") from None
    record["loaded"] = copied.to_dict()
    source.record = record
    return _note(source, copied, theirs, names, same_classes)


def _note(source: Source, copied: Copied, theirs, names, same_classes: bool) -> str:
    what = source.describe()
    loaded = f"{copied.layers} of {copied.of_layers} layers ({copied.parameters:,} of {copied.of_parameters:,} parameters)"
    if copied.head == "new":
        return f"pretrained base from {what}: {loaded}; new {len(names)}-class head"
    if copied.head == "loaded":
        return f"weights from {what}: all {copied.layers} layers ({copied.parameters:,} parameters), the head included"
    if not same_classes and theirs is not None:
        why = f"{len(theirs)} classes there, {len(names)} here" if len(theirs) != len(names) else "other classes there"
    elif copied.their_classes and copied.their_classes != len(names):
        why = f"{copied.their_classes} classes there, {len(names)} here"
    else:
        why = "its shape differs"
    return f"weights from {what}: {loaded}; the head ({copied.head_name}) is re-initialised: {why}"


def _source_model(source: Source, record: dict[str, Any]):
    """The model a run, a .keras file or a cnnreg weights entry holds, loaded in safe mode."""
    from cnnreg.training.saved import import_keras_objects
    from cnnreg.training.saved import load_keras_file, load_run_model

    if source.kind == "run":
        record.update(run_dir=str(source.run_dir), path=str(source.path), sha256=sha256(source.path))
        if source.path == (source.run_dir / "model.keras").resolve():
            return load_run_model(source.run_dir)
        import_keras_objects(source.component)
        return load_keras_file(source.path, f"{source.path.name} in {source.run_dir}", compile=False)
    if source.kind == "entry":
        from cnnreg.zoo.cache import fetch_entry

        path = fetch_entry(source.entry, "model")
        record.update(name=source.entry.name, file="model", path=str(path), hash=source.entry.files["model"].hash,
                      sha256=sha256(path))
        import_keras_objects(source.component)
        return load_keras_file(path, f"the file of weights {source.entry.name} ({path})", compile=False)
    record.update(path=str(source.path), sha256=sha256(source.path))
    return load_keras_file(source.path, str(source.path), compile=False)


def _factory(plan, *, include_top: bool, weights: str, num_classes: int | None = None):
    """The run's architecture built again, as keras.applications would for ``weights``."""
    arch = plan.architecture
    params = {k: v for k, v in arch.params.items() if k != "weights"}
    return arch.component.load()(
        input_shape=plan.input_shape, num_classes=num_classes or plan.dataset.num_classes,
        include_top=include_top, weights=weights, **params,
    )


def _into_base(plan, model, weights: str) -> Copied:
    """A keras-* base built with ``weights`` (imagenet, a keras.applications file) copied into
    the run's model's base; the run's head is new."""
    base = next(layer for layer in model.layers if getattr(layer, "layers", None))  # the one nested model
    copied = copy_weights(_factory(plan, include_top=False, weights=weights), base, head=True)
    if copied.head != "loaded":  # one builder, one set of parameters: every layer fits
        raise Mismatch(f"the base's last layer ({copied.head_name}) differs")
    copied.of_layers = len(leaves(model))
    copied.of_parameters = sum(_count(layer) for layer in leaves(model))
    copied.head, copied.head_name = "new", leaves(model)[-1].name
    return copied


def _keras_entry(plan, model, source: Source, record: dict[str, Any], same_classes: bool) -> Copied:
    """keras.applications files of an entry: the whole classifier (``top``) when the classes
    match the entry's, else the base (``notop``) under the run's own head."""
    from cnnreg.zoo.cache import fetch_entry

    entry = source.entry
    if same_classes and "top" in entry.files:
        path = fetch_entry(entry, "top")
        record.update(name=entry.name, file="top", path=str(path), hash=entry.files["top"].hash, sha256=sha256(path))
        try:
            whole = _factory(plan, include_top=True, weights=str(path), num_classes=entry.num_classes)
            return copy_weights(whole, model, head=True)
        except Mismatch:
            if "notop" not in entry.files:
                raise
    if "notop" not in entry.files:
        raise Mismatch(f"entry {entry.name} has only the {entry.num_classes}-class classifier (top), "
                       f"and this dataset has {plan.dataset.num_classes} classes")
    path = fetch_entry(entry, "notop")
    record.update(name=entry.name, file="notop", path=str(path), hash=entry.files["notop"].hash, sha256=sha256(path))
    return _into_base(plan, model, str(path))


def _bare_file(plan, model, path: Path, bridge: bool, same_classes: bool) -> Copied:
    """A weights file: a keras-* base (the file the bridge takes), or a whole model's weights
    (``model.save_weights``), all of them or, with other classes, all but the head."""
    first: Exception | None = None
    if bridge:
        try:
            return _into_base(plan, model, str(path))
        except ParameterError as exc:  # not a base's weights: perhaps a whole model's
            first = exc
    try:
        if same_classes:
            model.load_weights(str(path))
            every = leaves(model)
            count = sum(_count(layer) for layer in every)
            return Copied(len(every), len(every), count, count, "loaded", every[-1].name)
    except Exception as exc:  # keras says why in many ways: ValueError, KeyError, OSError...
        first = first or exc
    classes = _file_classes(path, model)
    if classes is None:
        if isinstance(first, ParameterError):  # the keras-* bridge's own line
            raise first
        raise Mismatch(gist(first) if first else "its layers differ")
    twin = _twin(plan, classes)
    try:
        twin.load_weights(str(path))
    except Exception as exc:
        raise Mismatch(gist(exc)) from None
    return copy_weights(twin, model, head=False)


def _twin(plan, num_classes: int):
    """The run's model built again with ``num_classes`` outputs (to read a file made for them)."""
    from cnnreg.training.model import build_model

    return build_model(plan, pretrained=False, num_classes=num_classes, initialise=False)


def _file_classes(path: Path, model) -> int | None:
    """How many classes the head in a weights file has, when the file holds ``model``'s
    architecture with another head.  Keras addresses variables by internal paths, so the model's
    own weights are saved next to the file and the two compared: the head's path is where its
    kernel went, and no other variable may differ in shape."""
    import tempfile

    import h5py
    import numpy as np

    if not str(path).endswith(".weights.h5"):
        return None  # a Keras 2 file: matched by Keras alone
    head = leaves(model)[-1]
    kernel = next((np.asarray(v) for v in head.weights if len(v.shape) >= 2), None)
    if kernel is None:
        return None
    with tempfile.TemporaryDirectory(prefix="cnnreg-weights-") as folder:
        mine_path = os.path.join(folder, "model.weights.h5")
        model.save_weights(mine_path)
        try:
            with h5py.File(mine_path, "r") as mine, h5py.File(path, "r") as theirs:
                ours, other = _datasets(mine), _datasets(theirs)
                at = next((name for name, data in ours.items()
                           if data.shape == kernel.shape and np.array_equal(data[()], kernel)), None)
                if at is None or set(ours) != set(other):
                    return None
                group = at.rsplit("/", 1)[0] + "/"
                if any(ours[name].shape != other[name].shape for name in ours if not name.startswith(group)):
                    return None
                return int(other[at].shape[-1])
        except (OSError, KeyError, ValueError):
            return None


def _datasets(handle) -> dict:
    found: dict[str, Any] = {}

    def visit(name, item):
        import h5py

        if isinstance(item, h5py.Dataset):
            found[name] = item

    handle.visititems(visit)
    return found
