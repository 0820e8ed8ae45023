"""``cnnreg publish``: a run's best model as an entry of a zoo, with its model card and recipe.

A zoo is a folder (serve it over http, or copy it anywhere) laid out as::

    zoo.json                      the index: {"cnnreg_zoo": 1, "entries": [entry, ...]}
    lenet5.digits/
        lenet5.digits.keras       the run's model.keras (saved without optimizer state)
        README.md                 the model card: YAML front matter, metrics, curves, command
        curves.png                loss and accuracy per epoch (when the run has them)
        confusion.png             the confusion matrix (the run's, or drawn from its test result)
        run.json                  the run's manifest: `cnnreg rerun ZOO/lenet5.digits` trains the
                                  same recipe again

Each entry of ``zoo.json`` carries the sha256 and size of its weights and the run's manifest (so
a zoo served over http gives the recipe too: ``cnnreg weights pull`` writes it next to the
cache).  Every file is written to a temporary name and renamed, ``zoo.json`` last, under a lock,
so a reader never sees an entry whose files are not there yet; an entry of the same name is
replaced.  ``hf://user/repo`` publishes the same layout to the Hugging Face Hub through
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
from typing import Any

from cnnreg.errors import CnnregError
from cnnreg import files
from cnnreg.training import rundir

__all__ = ["INDEX", "CARD", "Published", "publish", "publish_folder", "entry_from_run", "read_index"]

INDEX = "zoo.json"
CARD = "README.md"
#: What the run directory may give the card, besides model.keras.
PICTURES = ("curves.png", "confusion.png")
_HF_DEST = re.compile(r"hf://([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)/?\Z")


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
            formats: tuple[str, ...] | list[str] = ()) -> Published:
    """Publish the run in ``run_dir`` into the zoo ``dest``: a folder, or ``hf://user/repo``.
    ``formats`` (onnx, litert): exports added to the entry, each checked against the model
    (:mod:`cnnreg.training.export`) and listed with its hash in the index and on the card."""
    formats = export_formats(formats)
    if str(dest).startswith("hf://"):
        return _publish_hf(Path(run_dir), str(dest), name=name, license=license, formats=formats)
    if "://" in str(dest):
        raise CnnregError(f"cannot publish to '{dest}': DEST is a folder or hf://USER/REPO "
                          "(serve the folder over http to share it)")
    return publish_folder(Path(run_dir), Path(dest), name=name, license=license, formats=formats)


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
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CnnregError(f"{path} cannot be read ({_first_line(exc)}); fix or remove it, nothing was published") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list) or data.get("cnnreg_zoo") != 1:
        raise CnnregError(f"{path} is not a cnnreg zoo index (format 1); fix or remove it, nothing was published")
    return data


def publish_folder(run_dir: Path, dest: Path, *, name: str | None = None, license: str | None = None,
                   formats: list | tuple = ()) -> Published:
    """Write the run's entry into the zoo folder ``dest`` (created if needed), with the exports
    in ``formats`` (:func:`export_formats`)."""
    from cnnreg.files import sha256_of
    from cnnreg.kinds.weights import WeightsEntry

    fields, model, data, notes = entry_from_run(run_dir, name=name, license=license)
    name = fields["name"]
    dest = Path(dest)
    files.writable_folder(dest, "DEST", not_a_folder="is a file; give a folder (new or a zoo) or hf://USER/REPO")
    with _locked(dest):
        index = read_index(dest)
        folder = dest / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise CnnregError(f"{folder} is not a folder of this zoo (a link or a file); remove it to publish {name}")
        weights = folder / f"{name}.keras"
        files.save_atomic(weights, lambda tmp: shutil.copyfile(model, tmp))
        digest, size = sha256_of(weights), weights.stat().st_size
        fields["files"] = {"model": {"url": f"{name}/{name}.keras", "hash": digest,
                                     # content-addressed in the cache: two zoos' lenet5.digits never collide
                                     "filename": f"{name}-{digest.split(':')[1][:12]}.keras", "size": size}}
        exports = _exports(Path(run_dir), folder, name, formats)
        for item in exports:
            path = Path(item.path)
            hash_ = item.files[path.name]
            fields["files"][item.format] = {"url": f"{name}/{path.name}", "hash": hash_, "size": item.size,
                                            "filename": f"{name}-{hash_.split(':')[1][:12]}{path.suffix}"}
        entry = WeightsEntry.from_dict(fields, where=f"the entry for {run_dir}")
        pictures = _pictures(Path(run_dir), folder, data, notes)
        files.write_json(folder / rundir.MANIFEST, entry.manifest)
        files.write_atomic(folder / CARD, model_card(entry, size=size, pictures=pictures, exports=exports))
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


def _exports(run_dir: Path, folder: Path, name: str, formats) -> list:
    """Export the run's model into the entry's folder in each format, checked; a failed check
    removes what it wrote and publishes nothing (one line, exit status 1)."""
    if not formats:
        return []
    from cnnreg.backends import load_keras, select
    from cnnreg.training.export import export
    from cnnreg.training.exported import sidecar_of
    from cnnreg.training.saved import trained_run

    trained = trained_run(run_dir)
    backend = select(None)
    load_keras()
    done = []
    for fmt in formats:
        result = export(trained, fmt, folder / f"{name}{fmt.suffix}", backend=backend)
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
    """One publisher at a time per zoo folder (read zoo.json, add, write it back)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on Windows
        yield
        return
    fd = os.open(dest / ".zoo.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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

def model_card(entry, *, size: int, pictures: list[str], exports: list | tuple = ()) -> str:
    """README.md: YAML front matter (the BAIR Model Zoo's readme.md, Hugging Face's model
    cards), then metrics, pictures, classes, how to use it and the exact command that trained it."""
    from cnnreg.version import __version__

    digest = entry.files["model"].hash
    front = {
        "name": entry.name, "architecture": entry.architecture, "dataset": entry.dataset,
        "num_classes": entry.num_classes, "input_shape": list(entry.input_shape), "preprocess": entry.preprocess,
        "parameters": entry.parameters, "sha256": digest.split(":", 1)[1], "size": size,
        "license": entry.license, "cnnreg_version": entry.cnnreg_version, "published_with": f"cnnreg {__version__}",
        "library_name": "keras",
    }
    lines = ["---"]
    for key, value in front.items():
        lines.append(f"{key}: {json.dumps(value)}")  # JSON scalars and lists are YAML
    lines.append("metrics:" + ("" if entry.metrics else " []"))
    lines += [f"  - {json.dumps(metric)}" for metric in entry.metrics]
    lines += ["---", "", f"# {entry.name}", ""]
    count = f", {entry.parameters:,} parameters" if entry.parameters else ""
    lines.append(f"`{entry.architecture}` trained on `{entry.dataset}` with cnnreg {entry.cnnreg_version}: "
                 f"{entry.num_classes} classes, input {'×'.join(map(str, entry.input_shape))}{count}.")
    lines.append("")
    if entry.metrics:
        manifest = entry.manifest or {}
        sizes = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
        lines += ["| dataset | split | top-1 | top-5 | examples |", "|---|---|---|---|---|"]
        for metric in entry.metrics:
            top5 = f"{metric['top5']:.4f}" if "top5" in metric else ""
            split = metric["split"] + (f" (best epoch, {manifest.get('best_epoch')})" if metric["split"] == "validation"
                                       and manifest.get("best_epoch") else "")
            lines.append(f"| `{metric['dataset']}` | {split} | {metric['top1']:.4f} | {top5} | {sizes.get(metric['split'], '')} |")
        lines.append("")
    lines.append(f"Weights: [`{entry.name}.keras`]({entry.name}.keras), {size:,} bytes, sha256 `{front['sha256']}`, "
                 "saved without optimizer state. License: " + (entry.license or "not stated") + ".")
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
    lines += ["## Use", "", "With `CNNREG_ZOO` naming this zoo (its folder, or the URL of its zoo.json):", ""]
    lines += _code([f"cnnreg weights pull {entry.name}",
                    f"cnnreg predict {entry.name} image.png --top 3",
                    f"cnnreg run {entry.arch_name} --weights {entry.name} --dataset DATASET --freeze-base"])
    command = (entry.manifest or {}).get("command")
    lines += ["## Reproduce", ""]
    if isinstance(command, list) and all(isinstance(part, str) for part in command):
        lines += ["The run was started with:", ""] + _code([shlex.join(command)])
    lines += ["Its manifest (resolved components, seed, versions, data sizes) is `run.json` beside this card, "
              "and is in the zoo's index. To train the same recipe again:", ""]
    lines += _code([f"cnnreg rerun {entry.name}          # in the zoo's folder",
                    f"cnnreg weights pull {entry.name}   # anywhere: prints `cnnreg rerun FOLDER` for the recipe"])
    return "\n".join(lines).rstrip() + "\n"


def _code(commands: list[str]) -> list[str]:
    """A fenced block longer than any run of backticks inside it."""
    longest = max((len(run) for text in commands for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "console", *commands, fence, ""]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# --- the Hugging Face Hub -------------------------------------------------------------------------

def _publish_hf(run_dir: Path, dest: str, *, name: str | None, license: str | None, formats: list | tuple = ()) -> Published:
    """The folder layout, staged in a temporary folder with the repo's current zoo.json, then
    uploaded in one commit.  Missing library, no token, offline: one line each."""
    import tempfile

    match = _HF_DEST.match(dest)
    if not match:
        raise CnnregError(f"'{dest}' is not hf://USER/REPO")
    repo = match[1]
    entry_from_run(run_dir, name=name, license=license)  # the run's problems first, before the network
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
            result = publish_folder(run_dir, Path(stage), name=name, license=license, formats=formats)
            api.upload_folder(repo_id=repo, folder_path=stage, allow_patterns=[f"{result.entry.name}/*", INDEX],
                              commit_message=f"cnnreg publish {result.entry.name}")
        except CnnregError:
            raise
        except Exception as exc:  # offline, no token, no permission: huggingface_hub's and requests' errors
            raise CnnregError(f"cannot publish to {dest}: {type(exc).__name__}: {_first_line(exc)} "
                              "(offline? logged in with `hf auth login` or HF_TOKEN?)") from None
    result.dest, result.folder = dest, f"{dest.rstrip('/')}/{result.entry.name}"
    return result
