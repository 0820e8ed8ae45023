"""``cnnreg publish``: a run's best model as an entry of a zoo, with its model card and recipe.

A zoo is a folder (serve it over http, or copy it anywhere) laid out as::

    zoo.json                      the index: {"cnnreg_zoo": 1, "entries": [entry, ...]}
    lenet5.digits/
        lenet5.digits.keras       the run's model.keras (saved without optimizer state): stock
                                  Keras layers, it loads in safe mode without cnnreg
        lenet5.digits.raw.keras   with --with-preprocess: the same model behind Resizing and
                                  Rescaling layers, so raw pixels of any size go in
        README.md                 the model card: Hugging Face front matter (license, datasets,
                                  model-index, tags), training settings, inputs, a plain-Keras
                                  snippet, metrics, curves, command
        curves.png                loss and accuracy per epoch (when the run has them)
        confusion.png             the confusion matrix (the run's, or drawn from its test result)
        run.json                  the run's manifest: `cnnreg rerun ZOO/lenet5.digits` trains the
                                  same recipe again

Each entry of ``zoo.json`` carries the sha256 and size of its weights and the run's manifest (so
a zoo served over http gives the recipe too: ``cnnreg weights pull`` writes it next to the
cache).  Every file is written to a temporary name and renamed, ``zoo.json`` last, under a lock
(a flock on the zoo folder itself, so a served folder holds only the zoo), so a reader never
sees an entry whose files are not there yet; an entry of the same name is replaced.  ``hf://user/repo`` publishes the same layout to the Hugging Face Hub through
huggingface_hub (the ``cnnreg[hub]`` extra).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

from cnnreg.errors import CnnregError
from cnnreg import files
from cnnreg.training import rundir
from cnnreg.zoo.index import MAX_BYTES as ZOO_MAX_BYTES

__all__ = ["INDEX", "CARD", "RAW", "HF_LICENSES", "Published", "publish", "publish_folder", "entry_from_run", "read_index",
           "hf_license", "model_card", "stock_affine", "raw_model", "custom_objects"]

INDEX = "zoo.json"
CARD = "README.md"
#: What the run directory may give the card, besides model.keras.
PICTURES = ("curves.png", "confusion.png")
_HF_DEST = re.compile(r"hf://([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)/?\Z")
#: The role (and file suffix) of the model that takes raw pixels (``--with-preprocess``).
RAW = "raw"
#: The license identifiers a Hugging Face card takes (hub-docs, repositories-licenses.md); any
#: other license is ``other`` with its ``license_name``.
HF_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5
cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0
cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0
cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1
lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl
lgpl-lr deepfloyd-if-license llama2 gemma unknown other""".split())


@dataclass
class Published:
    """What :func:`publish` wrote."""

    entry: Any  # WeightsEntry
    dest: str
    folder: str  # the entry's folder: a path, or hf://user/repo/NAME
    replaced: str | None = None  # the hash of the entry of the same name it replaced
    entries: int = 0  # entries in the zoo now
    notes: list[str] = field(default_factory=list)
    exports: list = field(default_factory=list)  # cnnreg.training.export.Exported, per --format

    def to_dict(self) -> dict[str, Any]:
        entry = self.entry.to_dict()
        entry.pop("manifest", None)  # the run's manifest is in run.json beside the card
        return {"dest": self.dest, "folder": self.folder, "entry": entry, "replaced": self.replaced,
                "entries": self.entries, "notes": list(self.notes),
                "exports": [{"format": e.format, "file": Path(e.path).name, "size": e.size,
                             "hash": e.files[Path(e.path).name], "parity": e.parity.to_dict()} for e in self.exports]}


def publish(run_dir: Path, dest: str | Path, *, name: str | None = None, license: str | None = None,
            formats: tuple[str, ...] | list[str] = (), with_preprocess: bool = False,
            progress: Callable[[str], None] | None = None) -> Published:
    """Publish the run in ``run_dir`` into the zoo ``dest``: a folder, or ``hf://user/repo``.
    ``formats`` (onnx, litert): exports added to the entry, each checked against the model
    (:mod:`cnnreg.training.export`) and listed with its hash in the index and on the card.
    ``license``: an SPDX or Hugging Face license id (``MIT``, ``Apache-2.0``, ``CC-BY-4.0``);
    the Hub is refused without one, a folder gets a warning (:func:`hf_license`).
    ``with_preprocess``: also ``NAME.raw.keras``, the model behind stock Resizing and
    Rescaling layers, so raw pixels of any size go in (:func:`raw_model`).  ``progress(line)``
    is told each step that takes seconds (loading keras, each export and its check, the upload)."""
    formats = export_formats(formats)
    if str(dest).startswith("hf://"):
        return _publish_hf(Path(run_dir), str(dest), name=name, license=license, formats=formats,
                           with_preprocess=with_preprocess, progress=progress)
    if "://" in str(dest):
        raise CnnregError(f"cannot publish to '{dest}': DEST is a folder or hf://USER/REPO "
                          "(serve the folder over http to share it)")
    return publish_folder(Path(run_dir), Path(dest), name=name, license=license, formats=formats,
                          with_preprocess=with_preprocess, progress=progress)


def export_formats(names) -> list:
    """The export formats ``--format`` names, checked (did-you-mean, installed) before anything
    is written: single-file formats only, each once."""
    from cnnreg.backends import select
    from cnnreg.training.export import resolve_format

    found = []
    for text in names or ():
        fmt = resolve_format(text, backend=select(None, activate=False))
        if fmt.suffix is None or fmt.companions:
            raise CnnregError(f"publish adds single-file exports (onnx, litert); {fmt.name} is several files: "
                              f"`cnnreg export RUN --format {fmt.name}` writes it")
        if fmt not in found:
            found.append(fmt)
    return found


# --- the entry ----------------------------------------------------------------------------------

def entry_from_run(run_dir: Path, *, name: str | None = None, license: str | None = None):
    """The fields of the :class:`~cnnreg.kinds.weights.WeightsEntry` for the run in ``run_dir``
    (all but ``files``, which :func:`publish_folder` fills in once the weights are copied and
    hashed), its model.keras, its manifest, and notes.  A run that is not one, or has no model
    yet, is one line."""
    from cnnreg.version import __version__
    from cnnreg.spec import parse
    from cnnreg.kinds.weights import NAME

    run_dir = Path(run_dir)
    data = rundir.load_manifest(run_dir)
    config = rundir.run_config(data, run_dir)
    shape = rundir.input_shape(data, run_dir)
    classes = rundir.manifest_field(data, "class_names", run_dir, list)
    if not classes or not all(isinstance(c, str) and c.isprintable() for c in classes):
        raise CnnregError(f"{rundir.MANIFEST} in {run_dir} is damaged: field 'class_names' is missing or not valid")
    model = _model_file(run_dir, data)
    notes = []
    status = rundir.shown_status(run_dir, data)
    if status != "completed":
        notes.append(f"the run is {status} after {data.get('epochs_done', '?')} epochs: its best model so far is published")
    resolved = data.get("resolved") if isinstance(data.get("resolved"), dict) else {}
    arch = _resolved_name(resolved, "architecture") or parse(config.architecture).name
    dataset = _resolved_name(resolved, "dataset") or parse(config.dataset).name
    arch_part = re.sub(r"[^A-Za-z0-9_-]", "-", arch.rpartition("/")[2])
    if name is None:
        name = f"{arch_part}.{re.sub(r'[^A-Za-z0-9_.-]', '-', dataset.rpartition('/')[2])}"
    if not NAME.match(name):
        raise CnnregError(f"the name '{name}' is not ARCH.TAG (letters, digits, '_', '-', a dot, then a tag); "
                          f"give one with --name, e.g. --name {arch_part}.mytag")
    if name.split(".", 1)[0].lower() != arch_part.lower():
        raise CnnregError(f"--name '{name}' must start with the run's architecture: {arch_part}.TAG")
    if license is not None and (not license.strip() or not license.isprintable()):
        raise CnnregError("--license must be one line of text, e.g. MIT or CC-BY-4.0")
    if license is None:
        notes.append("no --license: the card says 'license: unknown', so nobody can tell whether they may use "
                     "these weights; publish again with --license (an SPDX or Hugging Face id: MIT, Apache-2.0, CC-BY-4.0 ...)")
    versions = (data.get("environment") or {}).get("versions") if isinstance(data.get("environment"), dict) else None
    trained_with = versions.get("cnnreg") if isinstance(versions, dict) and isinstance(versions.get("cnnreg"), str) else None
    preprocess = data.get("preprocess") if isinstance(data.get("preprocess"), str) else None
    manifest = _finite({k: v for k, v in data.items() if k != "process"})  # who ran it (pid, host) is no recipe
    fields = dict(
        name=name, architecture=config.architecture, num_classes=len(classes), input_shape=list(shape),
        class_names=list(classes), preprocess=preprocess, dataset=config.dataset,
        metrics=_metrics(data, config.dataset), parameters=_parameters(model), license=license,
        manifest=manifest, cnnreg_version=trained_with or __version__,
    )
    return fields, model, data, notes


def _resolved_name(resolved: dict, kind: str) -> str | None:
    item = resolved.get(kind)
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) and name else None


def _model_file(run_dir: Path, data: dict) -> Path:
    """The run's model.keras: a regular file inside the run directory, a complete zip."""
    import zipfile

    path = run_dir / "model.keras"
    if not path.exists() and not path.is_symlink():
        if data.get("status") == "completed":
            raise CnnregError(f"model.keras in {run_dir} is missing; `cnnreg rerun {run_dir}` trains it again")
        raise CnnregError(f"run {run_dir} has no model.keras yet (no epoch completed); nothing to publish")
    if os.path.realpath(path) != os.path.join(os.path.realpath(run_dir), "model.keras") or not path.is_file():
        raise CnnregError(f"model.keras in {run_dir} leads outside the run directory; refusing to publish it")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise CnnregError(f"model.keras in {run_dir} is damaged (cut short or not a .keras file); not published") from None
    if bad is not None:
        raise CnnregError(f"model.keras in {run_dir} is damaged ({bad} fails its checksum); not published")
    return path


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _metrics(data: dict, dataset: str) -> list[dict]:
    """Top-1 (and top-5) on the test split when the run was tested, and the best validation
    top-1 (the epoch model.keras is from)."""
    metrics = []
    test = data.get("test") if isinstance(data.get("test"), dict) else {}
    if _number(test.get("accuracy")) is not None:
        metric = {"dataset": dataset, "split": "test", "top1": _number(test["accuracy"])}
        if _number(test.get("top5")) is not None:
            metric["top5"] = _number(test["top5"])
        metrics.append(metric)
    best = data.get("best") if isinstance(data.get("best"), dict) else {}
    if _number(best.get("val_accuracy")) is not None:
        metrics.append({"dataset": dataset, "split": "validation", "top1": _number(best["val_accuracy"])})
    return metrics


def _parameters(model: Path) -> int | None:
    """Every weight in the .keras file (trainable or not), counted from its HDF5 weights
    without building the model (no keras import)."""
    import zipfile

    try:
        import h5py

        with zipfile.ZipFile(model) as archive:
            info = archive.getinfo(rundir.KERAS_WEIGHTS)
            total = 0
            with files.zip_member(archive, info) as raw, h5py.File(raw, "r") as weights:
                def add(name: str, item: Any) -> None:
                    nonlocal total
                    if isinstance(item, h5py.Dataset) and not name.startswith("optimizer"):
                        total += int(item.size)

                weights.visititems(add)
        return total
    except Exception:  # another layout: the card goes without the count
        return None


def _finite(value: Any) -> Any:
    """A JSON value with NaN and infinities as None (an entry holds finite numbers only)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- a folder zoo -------------------------------------------------------------------------------

def read_index(dest: Path) -> dict:
    """DEST/zoo.json, or a new index; a damaged one is one line (never silently overwritten)."""
    path = Path(dest) / INDEX
    if not path.exists():
        return {"cnnreg_zoo": 1, "entries": []}
    try:
        data = files.read_json(path, str(path), limit=ZOO_MAX_BYTES)  # what zoo readers take
    except CnnregError as exc:
        raise CnnregError(f"{exc}; fix or remove it, nothing was published") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list) or data.get("cnnreg_zoo") != 1:
        raise CnnregError(f"{path} is not a cnnreg zoo index (format 1); fix or remove it, nothing was published")
    return data


def publish_folder(run_dir: Path, dest: Path, *, name: str | None = None, license: str | None = None,
                   formats: list | tuple = (), with_preprocess: bool = False,
                   progress: Callable[[str], None] | None = None) -> Published:
    """Write the run's entry into the zoo folder ``dest`` (created if needed), with the exports
    in ``formats`` (:func:`export_formats`) and, ``with_preprocess``, ``NAME.raw.keras``
    (:func:`raw_model`)."""
    from cnnreg.files import sha256_of
    from cnnreg.kinds.weights import WeightsEntry

    say = progress or (lambda line: None)
    fields, model, data, notes = entry_from_run(run_dir, name=name, license=license)
    name = fields["name"]
    dest = Path(dest)
    files.writable_folder(dest, "DEST", not_a_folder="is a file; give a folder (new or a zoo) or hf://USER/REPO")
    with _locked(dest):
        index = read_index(dest)
        folder = dest / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise CnnregError(f"{folder} is not a folder of this zoo (a link or a file); remove it to publish {name}")
        # what can be refused (a preprocessing no stock layer gives, an export that fails its
        # check) comes first: an entry already published under the name keeps its model file
        trained, backend = _with_keras(Path(run_dir), say) if with_preprocess or formats else (None, None)
        raw = _raw_file(trained, folder, name, say) if with_preprocess else None
        exports = _exports(trained, backend, folder, name, formats, say)
        weights = folder / f"{name}.keras"
        files.save_atomic(weights, lambda tmp: shutil.copyfile(model, tmp))
        digest, size = sha256_of(weights), weights.stat().st_size
        fields["files"] = {"model": {"url": f"{name}/{name}.keras", "hash": digest,
                                     # content-addressed in the cache: two zoos' lenet5.digits never collide
                                     "filename": f"{name}-{digest.split(':')[1][:12]}.keras", "size": size}}
        custom = custom_objects(weights)
        if custom:
            notes.append(f"{name}.keras holds classes that are not Keras' own ({', '.join(custom)}): it loads only where "
                         "the plugin that registers them is installed")
        if raw is not None:
            raw_hash = sha256_of(raw.path)
            fields["files"][RAW] = {"url": f"{name}/{raw.path.name}", "hash": raw_hash, "size": raw.path.stat().st_size,
                                    "filename": f"{name}-{RAW}-{raw_hash.split(':')[1][:12]}.keras"}
        elif (folder / f"{name}.{RAW}.keras").exists():
            (folder / f"{name}.{RAW}.keras").unlink()  # from an earlier entry of the name
        for item in exports:
            path = Path(item.path)
            hash_ = item.files[path.name]
            fields["files"][item.format] = {"url": f"{name}/{path.name}", "hash": hash_, "size": item.size,
                                            "filename": f"{name}-{hash_.split(':')[1][:12]}{path.suffix}"}
        entry = WeightsEntry.from_dict(fields, where=f"the entry for {run_dir}")
        pictures = _pictures(Path(run_dir), folder, data, notes)
        files.write_json(folder / rundir.MANIFEST, entry.manifest)
        files.write_atomic(folder / CARD, model_card(entry, size=size, pictures=pictures, exports=exports, raw=raw,
                                                     custom=custom))
        old = [e for e in index["entries"] if isinstance(e, dict) and str(e.get("name", "")).lower() == name.lower()]
        replaced = None
        if old:
            listed = old[-1].get("files") if isinstance(old[-1].get("files"), dict) else {}
            replaced = str((listed.get("model") or {}).get("hash")) if isinstance(listed.get("model"), dict) else "?"
            notes.append(f"replaced the entry {name} that was already in {dest / INDEX} ({replaced[:23]}...)")
        record = entry.to_dict()
        record.pop("zoo")  # where the zoo is, is up to whoever reads it
        index["entries"] = [e for e in index["entries"] if e not in old] + [record]
        files.write_atomic(dest / INDEX, json.dumps(index, indent=2, sort_keys=True) + "\n")
    return Published(entry, str(dest), str(folder), replaced, len(index["entries"]), notes, exports)


def _with_keras(run_dir: Path, say: Callable[[str], None]) -> tuple[Any, str]:
    """The run's :class:`~cnnreg.training.saved.Trained` and its backend, with keras loaded (once
    for the raw model and every export)."""
    from cnnreg.backends import load_keras, select
    from cnnreg.training.saved import trained_run

    trained = trained_run(run_dir)
    backend = select(None)
    say("loading keras…")
    load_keras()
    return trained, backend


def _exports(trained, backend: str, folder: Path, name: str, formats, say: Callable[[str], None]) -> list:
    """Export ``trained`` (:func:`_with_keras`) into the entry's folder in each format, checked; a
    failed check removes what it wrote and publishes nothing (one line, exit status 1)."""
    if not formats:
        return []
    from cnnreg.training.export import export
    from cnnreg.training.exported import sidecar_of

    done = []
    for fmt in formats:
        result = export(trained, fmt, folder / f"{name}{fmt.suffix}", backend=backend,
                        progress=lambda what, fmt=fmt: say(f"{fmt.name}: {what}…"))
        say(f"{fmt.name}: exported, {'checked' if result.parity.passed else 'FAILED'} against keras "
            f"(max |Δp| {result.parity.max_abs_diff:.1e})")
        done.append(result)
        if not result.parity.passed:
            for item in done:
                files.remove_quietly(item.path)
                files.remove_quietly(sidecar_of(item.path))
            error = CnnregError(f"not published: the {fmt.name} export does not give the model's answers: "
                                f"{result.parity.line(fmt.name)}")
            error.exit_code = 1
            raise error
    return done


@contextlib.contextmanager
def _locked(dest: Path):
    """One publisher at a time per zoo folder (read zoo.json, add, write it back): an exclusive
    flock on the folder itself, so that no lock file is left in a folder that is served.  Where
    a directory cannot be locked (NFS emulates flock with POSIX locks, which need a file open
    for writing) a ``.zoo.lock`` file in the folder is locked instead, and stays: removing a
    lock file lets a third publisher lock a new file while a second one waits on the old."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on Windows
        yield
        return
    fd = os.open(dest, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            fd = None  # closed: never twice, whatever the next open does
            fd = os.open(dest / ".zoo.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)


# --- a model plain Keras loads ---------------------------------------------------------------------

def custom_objects(path: Path) -> list[str]:
    """The classes in a .keras file's config.json that are not Keras' own (a plugin's layers,
    a registered schedule): what a loader needs besides Keras.  Read as data, nothing runs."""
    import zipfile

    found: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            module, registered = value.get("module"), value.get("registered_name")
            if isinstance(value.get("class_name"), str) and "config" in value and (
                    (isinstance(module, str) and module.split(".")[0] != "keras") or (module is None and registered)
                    or (isinstance(registered, str) and registered and registered != value["class_name"])):
                label = registered if isinstance(registered, str) and registered else f"{module}.{value['class_name']}"
                if label not in found:
                    found.append(label)
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    try:
        with zipfile.ZipFile(path) as archive:
            visit(json.loads(archive.read(rundir.KERAS_CONFIG)))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []  # another layout: nothing to say
    return found


def stock_affine(function, channels: int) -> tuple[list, list]:
    """``function`` (a preprocessing of pixels 0..255) as ``x @ matrix + offset`` per pixel:
    ``(matrix, offset)`` with ``matrix`` channels × channels, measured on a black image and one
    image per channel, then checked on seeded random images (1e-5 of the output's range).  One
    line when it is not affine per pixel (then no stock layer does it)."""
    import numpy as np

    def apply(x):
        try:
            out = function(np.array(x, dtype="float32"))
        except Exception as exc:  # a function made for other inputs (3 channels, a framework's tensors)
            raise CnnregError(f"--with-preprocess: the run's preprocessing fails on {channels}-channel images "
                              f"({_first_line(exc)}); publish without --with-preprocess") from None
        try:
            import keras

            out = keras.ops.convert_to_numpy(out)
        except Exception:  # already an array
            pass
        return np.asarray(out, dtype="float64")

    zero = apply(np.zeros((1, 2, 2, channels)))
    offset = zero[0, 0, 0]
    matrix = np.zeros((channels, channels))
    for c in range(channels):
        probe = np.zeros((1, 2, 2, channels))
        probe[..., c] = 255.0
        matrix[c] = (apply(probe)[0, 0, 0] - offset) / 255.0
    x = np.random.default_rng(0).integers(0, 256, size=(3, 5, 7, channels)).astype("float64")
    got = apply(x)
    want = x @ matrix + offset
    span = max(float(np.abs(want).max()), 1.0)
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-5 * span):
        raise CnnregError("--with-preprocess: the run's preprocessing is not a fixed scale and offset per pixel, "
                          "so no stock Keras layer does it; publish without --with-preprocess (the card says how "
                          "to prepare inputs)")
    return matrix.tolist(), offset.tolist()


def raw_model(model, input_shape, resize: str, preprocess):
    """``model`` behind stock Keras layers that do what cnnreg does to an image before it:
    ``Resizing`` to ``input_shape`` (bilinear, ``resize`` crop or pad keeping the aspect
    ratio), then the preprocessing as ``Rescaling`` (a scale and offset per channel) or, where
    it mixes channels (RGB to BGR), a fixed 1×1 ``Conv2D``.  Its input is pixels 0..255 of any
    height and width (uint8 arrays are taken as they are).  Returns the model and what each
    layer does, for the card."""
    import numpy as np
    import keras

    height, width, channels = (int(d) for d in input_shape)
    matrix, offset = stock_affine(preprocess, channels)
    matrix, offset = np.asarray(matrix), np.asarray(offset)
    inputs = keras.Input(shape=(None, None, channels), name="pixels")
    x = keras.layers.Resizing(height, width, interpolation="bilinear", crop_to_aspect_ratio=resize == "crop",
                              pad_to_aspect_ratio=resize == "pad", name="resize")(inputs, training=False)
    # training=False by name: Resizing's own default is True, and a call with the model's
    # training=None would then run the model's Dropout layers in training mode
    steps = [f"Resizing({height}, {width}, bilinear" + {"crop": ", crop_to_aspect_ratio", "pad": ", pad_to_aspect_ratio"}.get(resize, "") + ")"]
    diagonal = np.allclose(matrix, np.diag(np.diag(matrix)), rtol=0, atol=1e-12)
    if diagonal and np.allclose(np.diag(matrix), 1.0, rtol=0, atol=1e-12) and np.allclose(offset, 0.0, rtol=0, atol=1e-12):
        pass  # identity: nothing to add
    elif diagonal:
        scale = np.diag(matrix)
        same = np.allclose(scale, scale[0], rtol=0, atol=0) and np.allclose(offset, offset[0], rtol=0, atol=0)
        scale_arg = float(scale[0]) if same else [float(v) for v in scale]
        offset_arg = float(offset[0]) if same else [float(v) for v in offset]
        x = keras.layers.Rescaling(scale_arg, offset=offset_arg, name="scale")(x)
        steps.append(f"Rescaling(scale={_short_numbers(scale_arg)}, offset={_short_numbers(offset_arg)})")
    else:
        mix = keras.layers.Conv2D(channels, 1, name="scale", trainable=False)
        x = mix(x)
        mix.set_weights([matrix.reshape(1, 1, channels, channels).astype("float32"), offset.astype("float32")])
        steps.append(f"Conv2D({channels}, 1×1, fixed weights): x @ {_short_numbers(matrix.tolist())} + {_short_numbers(offset.tolist())}")
    outputs = model(x)
    return keras.Model(inputs, outputs, name=f"{model.name}_raw"), steps


def _short_numbers(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_short_numbers(v) for v in value) + "]"
    return f"{value:.6g}"


@dataclass
class Raw:
    """``NAME.raw.keras``: where it is and what its layers before the model do."""

    path: Path
    steps: list[str]


def _raw_file(trained, folder: Path, name: str, say: Callable[[str], None]) -> Raw:
    """Write ``NAME.raw.keras`` (:func:`raw_model` of ``trained``, from :func:`_with_keras`)
    into ``folder``."""
    say(f"{name}.{RAW}.keras: the model behind its preprocessing…")
    model, steps = raw_model(trained.load_model(), trained.input_shape, trained.resize, trained.preprocess)
    path = folder / f"{name}.{RAW}.keras"
    files.save_atomic(path, lambda tmp: model.save(tmp))
    return Raw(path, steps)


def hf_license(text: str | None) -> dict[str, str]:
    """The license keys of a Hugging Face card for ``--license TEXT``: ``{"license": id}`` when
    the Hub knows it (SPDX ids are matched: ``MIT`` is ``mit``, ``GPL-3.0-only`` is ``gpl-3.0``),
    else ``{"license": "other", "license_name": ...}``; none given is ``unknown``."""
    if text is None:
        return {"license": "unknown"}
    key = text.strip().lower().replace(" ", "-")
    key = re.sub(r"-(only|or-later)\Z", "", key)
    if key in HF_LICENSES:
        return {"license": key}
    return {"license": "other", "license_name": re.sub(r"[^a-z0-9.+-]+", "-", key).strip("-") or "other"}


def _pictures(run_dir: Path, folder: Path, data: dict, notes: list[str]) -> list[str]:
    """curves.png and confusion.png next to the card: the run's own, or a confusion matrix drawn
    from the run's test result; stale ones from an earlier entry of the name are removed."""
    found = []
    for picture in PICTURES:
        source, target = run_dir / picture, folder / picture
        inside = os.path.realpath(source) == os.path.join(os.path.realpath(run_dir), picture)
        if source.is_file() and inside:
            files.save_atomic(target, lambda tmp, source=source: shutil.copyfile(source, tmp))
            found.append(picture)
        elif picture == "confusion.png" and _draw_confusion(data, target):
            found.append(picture)
        elif target.exists():
            target.unlink()
    return found


def _draw_confusion(data: dict, target: Path) -> bool:
    test = data.get("test") if isinstance(data.get("test"), dict) else {}
    matrix, classes = test.get("confusion"), data.get("class_names")
    n = len(classes) if isinstance(classes, list) else 0
    if not (n and isinstance(matrix, list) and len(matrix) == n
            and all(isinstance(row, list) and len(row) == n and all(type(v) is int and v >= 0 for v in row) for row in matrix)):
        return False
    from cnnreg.training.report import plot_confusion

    config = data.get("config") or {}
    plot_confusion(matrix, [str(c) for c in classes], target,
                   f"{config.get('architecture')} on {config.get('dataset')} (test)")
    return True


# --- the model card -----------------------------------------------------------------------------

def model_card(entry, *, size: int, pictures: list[str], exports: list | tuple = (), raw: Raw | None = None,
               custom: list[str] | tuple = ()) -> str:
    """README.md: YAML front matter as Hugging Face reads it (license, library_name,
    pipeline_tag, tags, datasets, metrics, model-index; cnnreg's own fields under ``cnnreg``),
    then how it was trained, how inputs are prepared, a plain-Keras snippet, metrics, pictures,
    classes, cnnreg commands and the exact command that trained it."""
    from cnnreg.version import __version__

    digest = entry.files["model"].hash.split(":", 1)[1]
    manifest = entry.manifest if isinstance(entry.manifest, dict) else {}
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    resize = manifest.get("resize") if manifest.get("resize") in ("stretch", "crop", "pad") else "stretch"
    regularisers = _resolved_list(manifest, "regularisers")
    dataset = (entry.dataset or "").split(":", 1)[0] or None
    tags = ["cnnreg", "keras", "image-classification", entry.arch_name.lower()]
    tags += [dataset] if dataset else []
    tags += [item["name"] for item in regularisers]
    if any(item["name"] == "adversarial" for item in regularisers):
        tags.append("adversarial-training")
    if raw is not None:
        tags.append("raw-pixels")
    front: dict[str, Any] = dict(hf_license(entry.license))
    front.update({"library_name": "keras", "pipeline_tag": "image-classification",
                  "tags": list(dict.fromkeys(t for t in tags if t))})
    if dataset:
        front["datasets"] = [dataset]
    if entry.metrics:
        front["metrics"] = ["accuracy"]
        front["model-index"] = [{"name": entry.name, "results": [_result(metric) for metric in entry.metrics]}]
    own = {
        "name": entry.name, "architecture": entry.architecture, "dataset": entry.dataset,
        "num_classes": entry.num_classes, "input_shape": list(entry.input_shape), "resize": resize,
        "preprocess": entry.preprocess, "parameters": entry.parameters, "sha256": digest, "size": size,
        "license": entry.license, "cnnreg_version": entry.cnnreg_version, "published_with": f"cnnreg {__version__}",
        "raw_model": raw.path.name if raw is not None else None,
    }
    front["cnnreg"] = {key: value for key, value in own.items() if value is not None}  # a key is never null
    lines = ["---", *_yaml(front), "---", "", f"# {entry.name}", ""]
    count = f", {entry.parameters:,} parameters" if entry.parameters else ""
    lines.append(f"`{entry.architecture}` trained on `{entry.dataset}` with cnnreg {entry.cnnreg_version}: "
                 f"{entry.num_classes} classes, input {'×'.join(map(str, entry.input_shape))}{count}.")
    lines.append("")
    if entry.metrics:
        sizes = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
        lines += ["| dataset | split | top-1 | top-5 | examples |", "|---|---|---|---|---|"]
        for metric in entry.metrics:
            top5 = f"{metric['top5']:.4f}" if "top5" in metric else ""
            split = metric["split"] + (f" (best epoch, {manifest.get('best_epoch')})" if metric["split"] == "validation"
                                       and manifest.get("best_epoch") else "")
            lines.append(f"| `{metric['dataset']}` | {split} | {metric['top1']:.4f} | {top5} | {sizes.get(metric['split'], '')} |")
        lines.append("")
    license_text = entry.license or "not stated (ask the publisher before you use these weights)"
    lines.append(f"Weights: [`{entry.name}.keras`]({entry.name}.keras), {size:,} bytes, sha256 `{digest}`, "
                 f"saved without optimizer state. License: {license_text}.")
    lines += ["", "## Training", ""] + _training(entry, manifest, config, regularisers)
    lines += ["", "## Inputs", ""] + _inputs(entry, resize, raw)
    lines += ["", "## Use with plain Keras", ""] + _keras_use(entry, resize, raw, custom)
    if exports:
        lines += ["", "## Exports", "",
                  "Each export was loaded in its own runtime and compared with the Keras model on the same test images "
                  "(`cnnreg export`); its sidecar `FILE.cnnreg.json` lets `cnnreg predict FILE image.png` use it.", "",
                  "| format | file | bytes | sha256 | max \\|Δp\\| | top-1 agreement | images |", "|---|---|---|---|---|---|---|"]
        for item in exports:
            file = Path(item.path).name
            lines.append(f"| {item.format} | [`{file}`]({file}) | {item.size:,} | `{item.files[file].split(':', 1)[1]}` | "
                         f"{item.parity.max_abs_diff:.1e} | {item.parity.top1_agreement:.2%} | {item.parity.examples} |")
    if "curves.png" in pictures:
        lines += ["", "## Training curves", "", "![loss and accuracy per epoch, train and validation](curves.png)"]
    if "confusion.png" in pictures:
        lines += ["", "## Confusion matrix", "", "![confusion matrix](confusion.png)"]
    names = list(entry.class_names or ())
    shown = ", ".join(names[:100]) + (f" and {len(names) - 100} more" if len(names) > 100 else "")
    lines += ["", "## Classes", "", shown or "-", ""]
    lines += ["## Use with cnnreg", "", "With `CNNREG_ZOO` naming this zoo (its folder, or the URL of its zoo.json):", ""]
    lines += _code([f"cnnreg weights pull {entry.name}",
                    f"cnnreg predict {entry.name} image.png --top 3",
                    f"cnnreg run {entry.arch_name} --weights {entry.name} --dataset DATASET --freeze-base"])
    command = manifest.get("command")
    lines += ["## Reproduce", ""]
    if isinstance(command, list) and all(isinstance(part, str) for part in command):
        lines += ["The run was started with:", ""] + _code([shlex.join(command)])
    lines += ["Its manifest (resolved components, seed, versions, data sizes) is `run.json` beside this card, "
              "and is in the zoo's index. To train the same recipe again:", ""]
    lines += _code([f"cnnreg rerun {entry.name}          # in the zoo's folder",
                    f"cnnreg weights pull {entry.name}   # anywhere: prints `cnnreg rerun FOLDER` for the recipe"])
    return "\n".join(lines).rstrip() + "\n"


def _result(metric: dict) -> dict:
    """One ``model-index`` result: image classification on the metric's dataset and split."""
    values = [{"type": "accuracy", "value": metric["top1"], "name": f"top-1 accuracy ({metric['split']})"}]
    if "top5" in metric:
        values.append({"type": "top_5_accuracy", "value": metric["top5"], "name": f"top-5 accuracy ({metric['split']})"})
    name = metric["dataset"].split(":", 1)[0]
    dataset = {"type": name, "name": metric["dataset"], "split": metric["split"]}
    return {"task": {"type": "image-classification", "name": "Image Classification"}, "dataset": dataset, "metrics": values}


def _yaml(value: Any, indent: str = "") -> list[str]:
    """Block YAML for a JSON-like value: mappings and lists as blocks, scalars as JSON (a JSON
    scalar is a YAML scalar), keys plain when they are simple words."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            shown = key if re.fullmatch(r"[A-Za-z_][\w-]*", key) else json.dumps(key, ensure_ascii=False)
            if isinstance(item, (dict, list)) and item and not _flat(item):
                lines.append(f"{indent}{shown}:")
                lines += _yaml(item, indent + ("  " if isinstance(item, dict) else ""))
            else:
                lines.append(f"{indent}{shown}: {_scalar(item)}")
    else:  # a list of mappings or of scalars, as "- " items
        for item in value:
            if isinstance(item, dict) and item:
                inner = _yaml(item, indent + "  ")
                lines.append(f"{indent}- {inner[0].lstrip()}")
                lines += inner[1:]
            elif isinstance(item, list) and item and not _flat(item):
                inner = _yaml(item, indent + "  ")
                lines.append(f"{indent}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{indent}- {_scalar(item)}")
    return lines


_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./+-]*\Z")
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _scalar(value: Any) -> str:
    """A word plain (``license: mit``), anything else as JSON, which YAML reads the same."""
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value, ensure_ascii=False)


def _flat(value: Any) -> bool:
    """A list of numbers, shown on one line (``input_shape: [32, 32, 1]``)."""
    return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _resolved_list(manifest: dict, key: str) -> list[dict]:
    resolved = manifest.get("resolved") if isinstance(manifest.get("resolved"), dict) else {}
    items = resolved.get(key) if isinstance(resolved.get(key), list) else []
    return [item for item in items if isinstance(item, dict) and isinstance(item.get("name"), str)]


def _resolved_spec(manifest: dict, key: str) -> str | None:
    resolved = manifest.get("resolved") if isinstance(manifest.get("resolved"), dict) else {}
    item = resolved.get(key)
    return item.get("spec") if isinstance(item, dict) and isinstance(item.get("spec"), str) else None


def _training(entry, manifest: dict, config: dict, regularisers: list[dict]) -> list[str]:
    """The settings the run trained with, from its manifest."""
    rows = [("architecture", f"`{_resolved_spec(manifest, 'architecture') or entry.architecture}`"),
            ("dataset", f"`{_resolved_spec(manifest, 'dataset') or entry.dataset}`")]
    sizes = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    if sizes:
        rows.append(("examples", ", ".join(f"{split} {count:,}" for split, count in sizes.items() if isinstance(count, int))))
    epochs = config.get("epochs")
    done = manifest.get("epochs_done")
    if epochs is not None:
        rows.append(("epochs", f"{done} of {epochs}" if done is not None and done != epochs else str(epochs)))
    if config.get("fine_tune_epochs"):
        rows.append(("fine-tune epochs", str(config["fine_tune_epochs"])))
    for key, label in (("batch_size", "batch size"), ("seed", "seed"), ("precision", "precision"), ("backend", "backend")):
        if config.get(key) is not None:
            rows.append((label, f"`{config[key]}`"))
    optimizer = manifest.get("resolved", {}).get("optimizer") if isinstance(manifest.get("resolved"), dict) else None
    if isinstance(optimizer, dict) and isinstance(optimizer.get("spec"), str):
        rows.append(("optimizer", f"`{optimizer['spec']}`"))
        schedule = optimizer.get("schedule")
        if isinstance(schedule, dict) and isinstance(schedule.get("spec"), str):
            rows.append(("schedule", f"`{schedule['spec']}`"))
        if isinstance(optimizer.get("clip"), dict) and optimizer["clip"]:
            rows.append(("gradient clipping", ", ".join(f"{k}={v}" for k, v in optimizer["clip"].items())))
    elif config.get("optimizer"):
        rows.append(("optimizer", f"`{config['optimizer']}`" + (f", lr {config['lr']}" if config.get("lr") is not None else "")))
    rows.append(("initialiser", f"`{_resolved_spec(manifest, 'init')}`" if _resolved_spec(manifest, "init") else "the architecture's own"))
    rows.append(("regularisers", ", ".join(f"`{item.get('spec') or item['name']}`" for item in regularisers) or "none"))
    if any(item["name"] == "adversarial" for item in regularisers):
        rows.append(("adversarial training", "yes: part of each training batch is replaced by adversarial examples"))
    weights = config.get("weights")
    if isinstance(weights, str) and weights != "none":
        rows.append(("started from", f"`{weights}`" + (", base frozen first" if config.get("freeze_base") else "")))
    out = ["| setting | value |", "|---|---|"]
    out += [f"| {label} | {value} |" for label, value in rows]
    out += ["", "Training-only parts (augmentation, dropout's masks, penalties, the adversarial step) act while "
            "training; the saved model holds only the layers that run at inference."]
    return out


def _preparation(entry, resize: str) -> tuple[list[str], str | None]:
    """The Python lines that scale resized pixels as the run did (``x`` in, ``x`` out), and the
    preprocessing's name when it is not one of cnnreg's own (then a comment says what to use)."""
    preprocess = entry.preprocess or ""
    short = preprocess.rpartition(":")[2]
    if preprocess in ("scale_0_1",) or preprocess.endswith(":scale_0_1"):
        return ["x = x / 255.0                                        # preprocess: scale_0_1"], None
    if preprocess in ("scale_minus1_1",) or preprocess.endswith(":scale_minus1_1"):
        return ["x = x / 127.5 - 1.0                                  # preprocess: scale_minus1_1"], None
    if preprocess in ("identity",) or preprocess.endswith(":identity"):
        return ["# preprocess: identity (pixels 0..255 go in as they are)"], None
    module = preprocess.partition(":")[0]
    if module.split(".")[0] == "keras" and short:
        return [f"from {module} import {short}", f"x = {short}(x)                                   # preprocess: {preprocess}"], None
    return [f"# preprocess: {preprocess} (apply it to x as in training)"], preprocess


def _inputs(entry, resize: str, raw: Raw | None) -> list[str]:
    height, width, channels = entry.input_shape
    colour = "one gray channel (RGB is converted with the ITU-R 601 luma weights)" if channels == 1 else f"{channels} channels (RGB)"
    how = {"stretch": "stretched to it (the aspect ratio is not kept)",
           "crop": "cut to its aspect ratio around the centre first",
           "pad": "padded with black to its aspect ratio first"}[resize]
    scale, _ = _preparation(entry, resize)
    lines = [f"The model takes float32 images of {height}×{width} with {colour}: pixels 0..255 resized bilinearly "
             f"to {height}×{width}, {how} (`resize: {resize}`), then `preprocess: {entry.preprocess or 'the architecture default'}`: "
             f"`{scale[-1].split('#')[0].strip() or 'nothing'}`."]
    if raw is not None:
        lines += ["", f"[`{raw.path.name}`]({raw.path.name}) is the same model with that preparation inside, as stock Keras "
                  f"layers: it takes pixels 0..255 (uint8 or float) of any height and width with {channels} channel"
                  f"{'s' if channels != 1 else ''}:", ""]
        lines += [f"- `{step}`" for step in raw.steps] + [f"- then `{entry.name}.keras`"]
    return lines


def _keras_use(entry, resize: str, raw: Raw | None, custom) -> list[str]:
    """A snippet that loads the weights with Keras alone (safe mode) and classifies image.png."""
    height, width, channels = entry.input_shape
    mode = "L" if channels == 1 else "RGB"
    names = json.dumps(list(entry.class_names or [str(i) for i in range(entry.num_classes)]), ensure_ascii=False)
    lines = ["Keras 3 alone loads the model (no cnnreg, no custom objects, safe mode):" if not custom else
             f"Keras 3 loads the model once the classes {', '.join(custom)} are imported (their plugin):", ""]
    code = ["import keras", "import numpy as np", "from PIL import Image", "",
            f"classes = {names}" if len(names) <= 2000 else f"classes = [...]  # {entry.num_classes} names: see Classes"]
    if raw is not None:
        code += [f'model = keras.saving.load_model("{raw.path.name}", safe_mode=True)',
                 f'pixels = np.asarray(Image.open("image.png").convert("{mode}"), dtype="uint8")' + ("[..., None]" if channels == 1 else ""),
                 "probabilities = keras.ops.convert_to_numpy(model(pixels[None].astype(\"float32\")))[0]"]
    else:
        options = {"crop": ", crop_to_aspect_ratio=True", "pad": ", pad_to_aspect_ratio=True"}.get(resize, "")
        scale, _ = _preparation(entry, resize)
        code += [f'model = keras.saving.load_model("{entry.name}.keras", safe_mode=True)',
                 f'pixels = np.asarray(Image.open("image.png").convert("{mode}"), dtype="float32")' + ("[..., None]" if channels == 1 else ""),
                 f"x = keras.ops.image.resize(pixels[None], ({height}, {width}), interpolation=\"bilinear\"{options})  # resize: {resize}",
                 *scale,
                 "probabilities = keras.ops.convert_to_numpy(model(x))[0]"]
    code += ["best = int(probabilities.argmax())", "print(classes[best], float(probabilities[best]))"]
    fence = "```"
    return lines + [fence + "python", *code, fence]


def _code(commands: list[str]) -> list[str]:
    """A fenced block longer than any run of backticks inside it."""
    longest = max((len(run) for text in commands for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "console", *commands, fence, ""]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# --- the Hugging Face Hub -------------------------------------------------------------------------

def _publish_hf(run_dir: Path, dest: str, *, name: str | None, license: str | None, formats: list | tuple = (),
                with_preprocess: bool = False, progress: Callable[[str], None] | None = None) -> Published:
    """The folder layout, staged in a temporary folder with the repo's current zoo.json, then
    uploaded in one commit.  Missing library, no token, offline: one line each.  The Hub is
    public: a card without a license is refused there (a folder gets a warning)."""
    import tempfile

    match = _HF_DEST.match(dest)
    if not match:
        raise CnnregError(f"'{dest}' is not hf://USER/REPO")
    repo = match[1]
    entry_from_run(run_dir, name=name, license=license)  # the run's problems first, before the network
    if license is None:
        raise CnnregError(f"publishing to {dest} needs --license (an SPDX or Hugging Face id: MIT, Apache-2.0, CC-BY-4.0 ...): "
                          "a card on the Hub without one leaves everyone unsure whether they may use the weights")
    try:
        import huggingface_hub
    except ImportError:
        raise CnnregError(f"publishing to {dest} needs huggingface_hub: pip install 'cnnreg[hub]'") from None
    import requests
    from huggingface_hub.utils import build_hf_headers

    from cnnreg.zoo.cache import TIMEOUT

    with tempfile.TemporaryDirectory(prefix="cnnreg-publish-") as stage:
        api = huggingface_hub.HfApi()
        try:
            api.create_repo(repo, exist_ok=True)
            # the repo's zoo.json, so that its other entries stay (hf_hub_download would retry
            # an unreachable Hub for a minute: a plain GET with our timeout instead)
            response = requests.get(huggingface_hub.hf_hub_url(repo, INDEX, endpoint=os.environ.get("HF_ENDPOINT")), timeout=TIMEOUT,
                                    headers=build_hf_headers(library_name="cnnreg"))
            if response.status_code != 404:
                response.raise_for_status()
                (Path(stage) / INDEX).write_bytes(response.content)
            result = publish_folder(run_dir, Path(stage), name=name, license=license, formats=formats,
                                    with_preprocess=with_preprocess, progress=progress)
            if progress is not None:
                progress(f"uploading {result.entry.name} to {dest}…")
            api.upload_folder(repo_id=repo, folder_path=stage, allow_patterns=[f"{result.entry.name}/*", INDEX],
                              commit_message=f"cnnreg publish {result.entry.name}")
        except CnnregError:
            raise
        except Exception as exc:  # offline, no token, no permission: huggingface_hub's and requests' errors
            raise CnnregError(f"cannot publish to {dest}: {type(exc).__name__}: {_first_line(exc)} "
                              "(offline? logged in with `hf auth login` or HF_TOKEN?)") from None
    result.dest, result.folder = dest, f"{dest.rstrip('/')}/{result.entry.name}"
    return result
