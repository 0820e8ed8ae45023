"""``cnnreg export``: a run's best model or a weights entry as an ONNX file, a TensorFlow
SavedModel, a LiteRT (.tflite) file or an OpenVINO IR, each checked against the Keras model.

Keras' own exporters write the file (``model.export(format=...)``: tf2onnx, the SavedModel
writer, the TFLite converter, OpenVINO's converter).  Then the file is loaded with its own
runtime (:mod:`cnnreg.training.exported`: onnxruntime, TensorFlow's SavedModel loader, the LiteRT
interpreter, OpenVINO) and run on the run's test images (the first ``images`` of them, 100 by
default), at batch 1 and in batches of 7, next to the Keras model on the same inputs: the largest
difference of a probability and the share of images whose top-1 class agrees are the parity.
A float export passes when the difference is within the format's tolerance (:data:`FORMATS`); a
quantised one (float16, int8) when at least 99% of top-1 classes agree.

Everything is written to temporary names and renamed once checked, with the sidecar
``PATH.cnnreg.json`` last: the parity, and what ``cnnreg predict`` / ``evaluate`` need to use the
export as a model (the preprocessing, input shape, resize and class names of the run, read as
data and resolved through the registry).  A failed parity still leaves the export and its
sidecar (marked failed), for inspection; the command then exits 1.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnreg import files
from cnnreg.errors import CnnregError, choices_text
from cnnreg.training.exported import FORMATS, SIDECAR_SUFFIX, ExportFormat, open_runtime, sidecar_of

__all__ = ["FORMATS", "SIDECAR_SUFFIX", "QUANTISED_AGREEMENT", "PARITY_BATCHES", "DEFAULT_IMAGES", "INSTALL", "Parity",
           "Exported", "export", "export_model", "check_parity", "check_out", "check_inputs", "resolve_format",
           "default_out", "export_failure", "preprocess_name"]

#: A quantised export passes when this share of top-1 classes agrees with the Keras model.
QUANTISED_AGREEMENT = 0.99
#: The check runs the first image alone, then the rest in batches of 7: a dynamic batch size.
PARITY_BATCHES = (1, 7)
#: How many held-out images the check uses by default.
DEFAULT_IMAGES = 100
INSTALL = "pip install 'cnnreg[export]'"


@dataclass
class Parity:
    """The export against the Keras model on the same inputs."""

    max_abs_diff: float  #: the largest |Δ probability| over every image and class
    top1_agreement: float  #: the share of images whose top-1 class is the same
    examples: int
    batches: list[int]  #: the batch sizes that ran
    tolerance: float | None  #: the largest difference allowed (None: judged by top-1 agreement)
    min_agreement: float | None  #: the least agreement allowed (quantised exports)
    inputs: str  #: what the images were

    @property
    def passed(self) -> bool:
        if self.tolerance is not None and not self.max_abs_diff <= self.tolerance:  # NaN fails
            return False
        return self.min_agreement is None or self.top1_agreement >= self.min_agreement

    def line(self, fmt: str) -> str:
        limit = (f"tolerance {self.tolerance:g}" if self.tolerance is not None
                 else f"at least {self.min_agreement:.0%} top-1 agreement")
        return (f"parity {'ok' if self.passed else 'FAILED'}: {fmt} vs keras on {self.examples} {self.inputs}, batches "
                f"{' and '.join(map(str, self.batches))}: max |Δp| {self.max_abs_diff:.2e}, top-1 agreement "
                f"{self.top1_agreement:.2%} ({limit})")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "max_abs_diff": self.max_abs_diff, "top1_agreement": self.top1_agreement,
                "examples": self.examples, "batches": list(self.batches), "tolerance": self.tolerance,
                "min_agreement": self.min_agreement, "inputs": self.inputs}


@dataclass
class Exported:
    """What :func:`export` wrote and measured."""

    format: str
    path: str  #: the export: a file, or the SavedModel's folder
    files: dict[str, str]  #: each file of the export (relative to its folder) and its sha256
    sidecar: str
    source: str  #: "run DIR" or "weights NAME"
    quantize: str | None
    backend: str
    parity: Parity
    size: int = 0  #: bytes, all files together
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "path": self.path, "files": dict(self.files), "sidecar": self.sidecar,
                "source": self.source, "quantize": self.quantize, "backend": self.backend, "size": self.size,
                "parity": self.parity.to_dict(), "notes": list(self.notes)}


# --- the choices, checked before keras loads --------------------------------------------------------

def resolve_format(name: str, *, quantize: str | None = None, backend: str = "tensorflow") -> ExportFormat:
    """The format called ``name`` (did-you-mean for another), with ``quantize`` checked against
    what it offers and the packages it needs checked installed: one line each."""
    import importlib.util

    key = str(name).strip().lower().replace("-", "_")
    key = {"tf_saved_model": "saved_model", "savedmodel": "saved_model", "tflite": "litert"}.get(key, key)
    if key not in FORMATS:
        raise CnnregError(f"unknown export format '{name}'" + choices_text(str(name), FORMATS))
    fmt = FORMATS[key]
    if quantize is not None and quantize not in fmt.quantize:
        offered = ", ".join(fmt.quantize) if fmt.quantize else "none"
        which = [f.name for f in FORMATS.values() if quantize in f.quantize]
        raise CnnregError(f"--quantize {quantize} is not offered for {fmt.name} (it offers: {offered})"
                          + (f"; {quantize} is offered for {', '.join(which)}" if which else
                             "; the quantisations are float16 and int8"))
    if backend not in fmt.backends:
        raise CnnregError(f"Keras exports {fmt.name} from the {', '.join(fmt.backends)} backend"
                          f"{'s' if len(fmt.backends) > 1 else ''}, not {backend}: give --backend {fmt.backends[0]}")
    for module, package in fmt.needs(backend, quantize):
        if importlib.util.find_spec(module) is None:
            raise CnnregError(f"exporting to {fmt.name} needs {package}, which is not installed: {INSTALL}")
    return fmt


def default_out(fmt: ExportFormat, trained) -> Path:
    """Where an export goes without --out: into the run directory (``model.onnx``,
    ``model_saved_model/``, ``model.tflite``, ``model.xml``), or ``NAME.onnx`` ... here for a
    weights entry."""
    stem = "model" if trained.run_dir is not None else trained.entry.name
    folder = Path(trained.run_dir) if trained.run_dir is not None else Path(".")
    return folder / (f"{stem}{fmt.suffix}" if fmt.suffix else f"{stem}_saved_model")


def check_out(fmt: ExportFormat, out: Path) -> Path:
    """``out`` is a path the export may take: the format's suffix, a writable folder, and for a
    SavedModel not a folder holding something else.  One line for each mistake."""
    out = Path(out)
    if fmt.suffix and out.suffix.lower() != fmt.suffix:
        raise CnnregError(f"--out for {fmt.name} is a {fmt.suffix} file (got '{out}'); e.g. --out "
                          f"{out.with_suffix(fmt.suffix) if out.suffix else str(out) + fmt.suffix}")
    if out.is_symlink():
        raise CnnregError(f"--out {out} is a link; give a new path or the export itself")
    if fmt.suffix and out.is_dir():
        raise CnnregError(f"--out {out} is a folder; {fmt.name} is written to a {fmt.suffix} file")
    if not fmt.suffix:
        if out.exists() and not out.is_dir():
            raise CnnregError(f"--out {out} is a file; a SavedModel is a folder: give a new path")
        if out.is_dir() and any(out.iterdir()) and not (out / "saved_model.pb").is_file():
            raise CnnregError(f"--out {out} is a folder that holds something other than a SavedModel; give a new path")
    files.writable_folder(out.parent if str(out.parent) else Path("."), "the folder of --out")
    return out


# --- export and check ------------------------------------------------------------------------------

def export(trained, fmt: ExportFormat, out: Path, *, quantize: str | None = None, images: int = DEFAULT_IMAGES,
           backend: str = "tensorflow", progress=None) -> Exported:
    """Export ``trained`` (:class:`cnnreg.training.saved.Trained`, keras loaded) to ``out`` and
    check it (module docstring).  ``progress(what)`` is told each stage."""
    from cnnreg.version import __version__

    say = progress or (lambda what: None)
    if images < 1:
        raise CnnregError(f"--images must be >= 1 (got {images})")
    say("reading the check images")
    x, inputs, notes = check_inputs(trained, images)
    say("loading the model")
    model = trained.load_model()
    classes = trained.class_names()
    if model.output_shape[-1] != len(classes):
        raise CnnregError(f"{trained.what}: the model predicts {model.output_shape[-1]} classes, {len(classes)} are named")
    say(f"exporting to {fmt.name}")
    written, parity = export_model(model, fmt, out, x, quantize=quantize, inputs=inputs, progress=say)
    folder = out.parent if fmt.suffix else out
    record = {
        "cnnreg_export": 1, "cnnreg": __version__, "format": fmt.name, "path": out.name, "files": written,
        "quantize": quantize, "backend": backend, "source": trained.what,
        "architecture": trained.architecture, "component": {"provider": trained.component.provider,
                                                            "name": trained.component.name},
        "input_shape": list(trained.input_shape), "resize": trained.resize, "preprocess": preprocess_name(trained),
        "class_names": list(classes), "dataset": trained.dataset, "parity": parity.to_dict(),
    }
    sidecar = sidecar_of(out)
    files.write_json(sidecar, record)
    size = sum((folder / name).stat().st_size for name in written)
    return Exported(fmt.name, str(out), written, str(sidecar), trained.what, quantize, backend, parity, size, notes)


def preprocess_name(trained) -> str | None:
    """The preprocessing reference the sidecar records: the run's or the entry's, as its own
    manifest says it (read back through the same check)."""
    if trained.data is not None:
        value = trained.data.get("preprocess")
    else:
        entry = trained.entry
        manifest = entry.manifest if isinstance(entry.manifest, dict) else {}
        value = entry.preprocess if entry.preprocess is not None else manifest.get("preprocess")
    if value is None:
        from cnnreg.training.saved import preprocess_of

        value = preprocess_of(trained.component)[0]
    return value if isinstance(value, str) else None


def check_inputs(trained, count: int) -> tuple[np.ndarray, str, list[str]]:
    """The first ``count`` test images of what ``trained`` was trained on, preprocessed as in
    training; where that dataset cannot be read here (ImageNet for a keras.applications entry),
    ``count`` seeded random images, said in a note."""
    from cnnreg.training.report import split_pixels

    try:
        pixels, _, _, dataset, split = split_pixels(trained, "test", None, count)
        inputs = f"{split} images of {dataset}"
        notes: list[str] = []
    except CnnregError as exc:
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(count, *trained.input_shape)).astype("float32")
        inputs = "random images"
        notes = [f"the check ran on {count} random images: the test split could not be read ({exc})"]
    x = np.asarray(trained.preprocess(np.array(pixels, dtype="float32", copy=True)), dtype="float32")
    return x, inputs, notes


def export_model(model, fmt: ExportFormat, out: Path, x: np.ndarray, *, quantize: str | None = None,
                 inputs: str = "images", progress=None) -> tuple[dict[str, str], Parity]:
    """Write ``model`` to ``out`` in ``fmt`` and check it on ``x`` (preprocessed inputs):
    ``({file: sha256}, parity)``.  The files are written under temporary names, checked, then
    renamed into place; an exporter's failure is one line naming the layer it stopped at."""
    say = progress or (lambda what: None)
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    tmp = folder / f".{out.name}.tmp-{os.getpid()}{fmt.suffix or ''}"
    made = [tmp, *(tmp.with_suffix(extra) for extra in fmt.companions)]
    try:
        model.predict_on_batch(x[:1])  # Keras exports only a model that has been called (its input signature)
        logged = _write(model, fmt, tmp, quantize)
        say(f"checking the {fmt.name} export with {fmt.runtime}")
        try:
            runtime = open_runtime(fmt.name, tmp)
        except CnnregError as exc:  # an op the exporter wrote but the runtime does not know
            raise CnnregError(export_failure(model, fmt, exc, logged).replace(str(tmp), out.name)) from None
        parity = check_parity(model, runtime, x, fmt, quantize=quantize, inputs=inputs)
        written = _move(fmt, tmp, out)
    finally:
        for path in made:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                files.remove_quietly(path)
    return written, parity


def _write(model, fmt: ExportFormat, tmp: Path, quantize: str | None) -> list[str]:
    """Keras' exporter for ``fmt`` (with its quantisation), quiet: the errors the converters
    logged (tf2onnx logs an op it cannot convert and writes the file anyway); a failure is one line."""
    kwargs: dict[str, Any] = {}
    if fmt.name == "litert" and quantize:
        import tensorflow as tf

        kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]  # int8: weights in int8, dynamic range
        if quantize == "float16":
            kwargs["target_spec"] = {"supported_types": [tf.float16]}
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), _quiet_loggers() as logged, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf2onnx's and the converters' deprecation chatter
            # a quantised export is written as float first, then quantised into the temporary name
            target = tmp.with_name(tmp.stem + ".float" + tmp.suffix) if quantize and fmt.name in ("onnx", "openvino") else tmp
            try:
                model.export(str(target), format=fmt.keras_format, verbose=False, **kwargs)
                if fmt.name == "onnx" and quantize == "int8":
                    from onnxruntime.quantization import QuantType, quantize_dynamic

                    quantize_dynamic(str(target), str(tmp), weight_type=QuantType.QUInt8, per_channel=True)
                if fmt.name == "openvino" and quantize == "float16":
                    import openvino as ov

                    ov.save_model(ov.Core().read_model(str(target)), str(tmp), compress_to_fp16=True)
            finally:
                if target != tmp:
                    for path in (target, *(target.with_suffix(extra) for extra in fmt.companions)):
                        files.remove_quietly(path)
    except CnnregError:
        raise
    except Exception as exc:  # the exporters raise every kind of error: say it in one line
        raise CnnregError(export_failure(model, fmt, exc, logged)) from None
    return logged


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(" ".join(record.getMessage().split()))


@contextlib.contextmanager
def _quiet_loggers():
    """tf2onnx and the converters log every step, and errors they go past: none of it is shown;
    the errors are collected (the list yielded) for the one line of a failure."""
    names = ("tf2onnx", "onnxruntime", "absl", "tensorflow", "openvino")
    lines: list[str] = []
    collect = _Collect(lines)
    root = logging.getLogger()
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate) for name in names}
    saved_root = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's quantizer warns on the root logger
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        logger.propagate = False
        logger.addHandler(collect)
    try:
        yield lines
    finally:
        root.setLevel(saved_root)
        for name, (level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(collect)
            logger.setLevel(level)
            logger.propagate = propagate


def export_failure(model, fmt: ExportFormat, exc: BaseException, logged: list[str] | tuple = ()) -> str:
    """One line for an exporter's (or its runtime's) failure, naming the model's layer the
    message mentions: TensorFlow's op names carry it (``model/odd_1/erfinv/Erfinv``: the longest
    layer name found, ``block1_conv`` before ``block1``, with its ``_N`` call suffix)."""
    text = " ".join((getattr(exc, "detail", None) or str(exc)).split()) or type(exc).__name__
    searched = " ".join([*logged, text])
    names = sorted({layer.name for layer in _layers(model)}, key=len, reverse=True)
    found = next((name for name in names if re.search(rf"(?<![\w]){re.escape(name)}(?:_\d+)?(?![\w])", searched)), None)
    where = f" at layer '{found}' ({type(_layer(model, found)).__name__})" if found else ""
    kind = "" if isinstance(exc, CnnregError) else f"{type(exc).__name__}: "
    said = "; ".join(dict.fromkeys(logged)) + "; " if logged else ""
    first = (said + kind + text)[:400]
    first += "..." if len(said + kind + text) > 400 else ""
    return f"cannot export {model.name} to {fmt.name}{where}: {first}"


def _layers(model) -> list:
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_layers(layer))
    return found


def _layer(model, name: str):
    return next(layer for layer in _layers(model) if layer.name == name)


def check_parity(model, runtime, x: np.ndarray, fmt: ExportFormat, *, quantize: str | None = None,
                 inputs: str = "images") -> Parity:
    """The runtime's probabilities against the Keras model's on ``x``: the first image alone,
    the rest in batches of 7."""
    if not len(x):
        raise CnnregError("no images to check the export on")
    chunks = [slice(0, 1)] + [slice(i, min(i + PARITY_BATCHES[1], len(x))) for i in range(1, len(x), PARITY_BATCHES[1])]
    expected, got = [], []
    for part in chunks:
        expected.append(np.asarray(model.predict_on_batch(x[part]), dtype="float64"))
        try:
            got.append(np.asarray(runtime.predict_on_batch(x[part]), dtype="float64"))
        except CnnregError:
            raise
        except Exception as exc:
            size = part.stop - part.start
            raise CnnregError(f"the {fmt.name} export does not run in {fmt.runtime} at batch size {size}: "
                              f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    expected, got = np.concatenate(expected), np.concatenate(got)
    if got.shape != expected.shape:
        raise CnnregError(f"the {fmt.name} export gives outputs of shape {got.shape}, keras {expected.shape}")
    diff = float(np.max(np.abs(expected - got))) if np.isfinite(got).all() else float("nan")
    agreement = float(np.mean(expected.argmax(axis=1) == got.argmax(axis=1)))
    batches = sorted({part.stop - part.start for part in chunks[:2]})
    return Parity(diff, agreement, len(x), batches, None if quantize else fmt.tolerance,
                  QUANTISED_AGREEMENT if quantize else None, inputs)


def _move(fmt: ExportFormat, tmp: Path, out: Path) -> dict[str, str]:
    """Rename the checked export into place (companion files first, the main file last; an old
    SavedModel folder is replaced whole) and hash its files."""
    from cnnreg.files import sha256_of

    folder = out.parent if str(out.parent) else Path(".")
    if fmt.suffix is None:
        old = folder / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return {str(path.relative_to(out)): sha256_of(path) for path in sorted(out.rglob("*")) if path.is_file()}
    written = {}
    for extra in fmt.companions:
        target = out.with_suffix(extra)
        os.replace(tmp.with_suffix(extra), target)
        written[target.name] = sha256_of(target)
    os.replace(tmp, out)
    return {out.name: sha256_of(out), **written}

