"""Exported models as models: the formats ``cnnreg export`` writes, the runtime that runs each
(onnxruntime, TensorFlow's SavedModel loader, the LiteRT interpreter, OpenVINO), and an export
opened for ``cnnreg predict`` / ``evaluate`` through its sidecar.

The sidecar ``PATH.cnnreg.json`` beside an export is data: the architecture it names is looked
up in the registry, its preprocessing must be that architecture's registered one or one of
:data:`cnnreg.kinds.architectures.PREPROCESS` (nothing named in it is imported), its files must
lie inside the export's folder and match their sha256, and an export whose parity check failed
is refused.  Each runtime gives ``predict(x)``, ``predict_on_batch(x)`` and ``output_shape``, as
a Keras model does, on preprocessed NHWC float32 batches of any size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnreg import files
from cnnreg.errors import CnnregError

__all__ = ["ExportFormat", "FORMATS", "SIDECAR_SUFFIX", "SIDECAR_LIMIT", "sidecar_of", "is_export", "open_runtime",
           "read_sidecar", "trained_export", "Runtime"]

#: The sidecar of an export at PATH is PATH + this (``m.onnx.cnnreg.json``, ``sm.cnnreg.json``).
SIDECAR_SUFFIX = ".cnnreg.json"
#: The largest sidecar read (ImageNet's 1000 class names take 25 KB).
SIDECAR_LIMIT = 4 * 1024 * 1024
_FILE = re.compile(r"^(?!\.)(?:[A-Za-z0-9_.+-]+/)*[A-Za-z0-9_.+-]+$")
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ExportFormat:
    """One format ``cnnreg export`` writes."""

    name: str
    keras_format: str  #: ``model.export(format=...)``
    suffix: str | None  #: the file's suffix; None: a folder
    tolerance: float  #: the largest |Δ probability| a float export may show
    runtime: str  #: what loads it, in words
    backends: tuple[str, ...]  #: the Keras backends that export it
    quantize: tuple[str, ...] = ()  #: the quantisations offered
    companions: tuple[str, ...] = ()  #: files beside the main one, by suffix (OpenVINO's .bin)
    runtime_modules: tuple[tuple[str, str], ...] = ()  #: (module, pip name) the check needs

    def needs(self, backend: str, quantize: str | None = None) -> list[tuple[str, str]]:
        """The (module, pip package) pairs that exporting from ``backend`` and checking need."""
        found = list(self.runtime_modules)
        if backend in ("tensorflow", "jax") or self.name == "saved_model":  # JAX exports through jax2tf
            found.append(("tensorflow", "tensorflow-cpu"))
        if self.name == "onnx":
            found.append(("onnx", "onnx"))
            found.append(("tf2onnx", "tf2onnx") if backend in ("tensorflow", "jax") else ("onnxscript", "onnxscript"))
        return found


#: The formats, by the name ``--format`` takes.  Tolerances: float32 through another runtime
#: (onnxruntime, TensorFlow) differs by rounding only; LiteRT's XNNPACK kernels and OpenVINO's
#: CPU plugin fuse and reorder more.
FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat("onnx", "onnx", ".onnx", 1e-4, "ONNX Runtime", ("tensorflow", "jax", "torch"), ("int8",),
                         runtime_modules=(("onnxruntime", "onnxruntime"),)),
    "saved_model": ExportFormat("saved_model", "tf_saved_model", None, 1e-4, "TensorFlow", ("tensorflow", "jax")),
    "litert": ExportFormat("litert", "litert", ".tflite", 1e-3, "the LiteRT interpreter", ("tensorflow",),
                           ("float16", "int8"), runtime_modules=(("ai_edge_litert", "ai-edge-litert"),)),
    "openvino": ExportFormat("openvino", "openvino", ".xml", 1e-3, "OpenVINO", ("tensorflow", "jax", "torch"),
                             ("float16",), companions=(".bin",), runtime_modules=(("openvino", "openvino"),)),
}


def sidecar_of(path: str | Path) -> Path:
    """The sidecar of the export at ``path``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def is_export(path: str | Path) -> bool:
    """Whether ``path`` looks like an export: a sidecar beside it, a known suffix, or a
    SavedModel folder."""
    path = Path(path)
    if sidecar_of(path).is_file():
        return True
    if path.is_dir():
        return (path / "saved_model.pb").is_file()
    return path.suffix.lower() in {f.suffix for f in FORMATS.values() if f.suffix}


# --- the runtimes ---------------------------------------------------------------------------------

class Runtime:
    """An export loaded in its runtime, used like a Keras model by evaluate and predict."""

    def __init__(self, fmt: str, path: Path) -> None:
        self.format, self.path = fmt, Path(path)

    @property
    def output_shape(self) -> tuple:
        return (None, self.classes())

    def classes(self) -> int:
        raise NotImplementedError

    def predict_on_batch(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x: Any, batch_size: int = 32, verbose: Any = 0) -> np.ndarray:
        x = np.asarray(x, dtype="float32")
        parts = [self.predict_on_batch(x[i:i + batch_size]) for i in range(0, len(x), max(1, int(batch_size)))]
        return np.concatenate(parts) if parts else np.zeros((0, self.classes()), dtype="float32")


class OnnxRuntime(Runtime):
    def __init__(self, fmt: str, path: Path, threads: int | None = None) -> None:
        super().__init__(fmt, path)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def classes(self) -> int:
        last = self.session.get_outputs()[0].shape[-1]
        return last if isinstance(last, int) else int(self.predict_on_batch(np.zeros((1, *self._shape()), "float32")).shape[-1])

    def _shape(self) -> list[int]:
        return [d if isinstance(d, int) else 1 for d in self.session.get_inputs()[0].shape[1:]]

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return self.session.run(None, {self.input: np.asarray(x, dtype="float32")})[0]


class SavedModelRuntime(Runtime):
    def __init__(self, fmt: str, path: Path) -> None:
        super().__init__(fmt, path)
        from cnnreg.backends.tensorflow import quiet_import

        quiet_import()
        import tensorflow as tf

        self.tf = tf
        self.loaded = tf.saved_model.load(str(path))
        self.serve = getattr(self.loaded, "serve", None) or self.loaded.signatures["serving_default"]

    def classes(self) -> int:
        signature = self.loaded.signatures.get("serving_default")
        if signature is not None:
            spec = next(iter(signature.structured_outputs.values()))
            if spec.shape[-1] is not None:
                return int(spec.shape[-1])
        raise CnnregError(f"the SavedModel {self.path} does not say how many classes it predicts")

    def predict_on_batch(self, x: Any) -> np.ndarray:
        out = self.serve(self.tf.constant(np.asarray(x, dtype="float32")))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return out.numpy()


class LiteRTRuntime(Runtime):
    def __init__(self, fmt: str, path: Path, threads: int | None = None) -> None:
        super().__init__(fmt, path)
        from ai_edge_litert.interpreter import Interpreter

        from cnnreg.backends import quiet_native

        # the interpreter's own default is one thread: all cores, as the other runtimes take
        with quiet_native():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    def classes(self) -> int:
        return int(self.output["shape_signature"][-1])

    def predict_on_batch(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype="float32")
        if self.batch != len(x):  # the batch dimension is dynamic (-1): resize, then allocate once per size
            from cnnreg.backends import quiet_native

            self.interpreter.resize_tensor_input(self.input["index"], [len(x), *x.shape[1:]])
            with quiet_native():
                self.interpreter.allocate_tensors()
            self.batch = len(x)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output["index"]))


class OpenVINORuntime(Runtime):
    def __init__(self, fmt: str, path: Path, threads: int | None = None) -> None:
        super().__init__(fmt, path)
        import openvino as ov

        # f32: on CPUs with bf16 (AVX512_BF16, AMX) the plugin's default is bf16, 1e-3 off
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def classes(self) -> int:
        return int(self.compiled.outputs[0].partial_shape[-1].get_length())

    def predict_on_batch(self, x: Any) -> np.ndarray:
        self.request.infer({0: np.asarray(x, dtype="float32")})
        return np.array(self.request.get_output_tensor(0).data)


_RUNTIMES: dict[str, Callable[..., Runtime]] = {
    "onnx": OnnxRuntime, "saved_model": SavedModelRuntime, "litert": LiteRTRuntime, "openvino": OpenVINORuntime,
}


def open_runtime(fmt: str, path: str | Path, *, threads: int | None = None) -> Runtime:
    """The export at ``path`` loaded in its format's runtime (``threads``: its CPU threads;
    None: the runtime's default).  A missing runtime or a file it refuses is one line."""
    import importlib.util

    spec = FORMATS[fmt]
    for module, package in spec.runtime_modules or (("tensorflow", "tensorflow-cpu"),):
        if importlib.util.find_spec(module) is None:
            raise CnnregError(f"running a {fmt} export needs {package}, which is not installed: pip install 'cnnreg[export]'")
    try:
        if fmt == "saved_model":
            return SavedModelRuntime(fmt, Path(path))
        return _RUNTIMES[fmt](fmt, Path(path), threads=threads)
    except CnnregError:
        raise
    except Exception as exc:  # each runtime has its own errors for a file it cannot load
        error = CnnregError(f"{spec.runtime} cannot load {path}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}")
        error.detail = f"{spec.runtime} cannot load {path}: {type(exc).__name__}: {' '.join(str(exc).split())}"
        raise error from None


# --- an export as a trained model -----------------------------------------------------------------

def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar of the export at ``path``, checked field by field (module docstring)."""
    from cnnreg.files import sha256_of

    path = Path(path)
    sidecar = sidecar_of(path)
    if not sidecar.exists():
        raise CnnregError(f"{path} has no {sidecar.name} beside it (`cnnreg export` writes one): without it cnnreg "
                          "does not know the model's preprocessing and classes; export it again with cnnreg export")
    if sidecar.is_symlink():
        raise CnnregError(f"{sidecar} is not a regular file; refusing to read it")
    data = files.read_json(sidecar, str(sidecar), limit=SIDECAR_LIMIT)

    def bad(field: str, what: str) -> CnnregError:
        return CnnregError(f"{sidecar} is damaged: field '{field}' {what}")

    if not isinstance(data, dict) or data.get("cnnreg_export") != 1:
        raise CnnregError(f"{sidecar} is not a cnnreg export sidecar (format 1)")
    if data.get("format") not in FORMATS:
        raise bad("format", f"is not one of {', '.join(FORMATS)}")
    if data.get("path") != path.name:
        raise bad("path", f"names {str(data.get('path'))[:60]!r}, not {path.name!r} (the sidecar of another export?)")
    shape = data.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(d) is int and 0 < d <= 65536 for d in shape)):
        raise bad("input_shape", "is not three whole numbers")
    if data.get("resize") not in ("stretch", "crop", "pad"):
        raise bad("resize", "is not stretch, crop or pad")
    names = data.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n.isprintable() for n in names)):
        raise bad("class_names", "is not a list of names")
    component = data.get("component")
    if not (isinstance(component, dict) and all(isinstance(component.get(k), str) for k in ("provider", "name"))):
        raise bad("component", "does not name a registered architecture")
    for key in ("architecture",):
        if not isinstance(data.get(key), str):
            raise bad(key, "is not text")
    if data.get("dataset") is not None and not isinstance(data.get("dataset"), str):
        raise bad("dataset", "is not text")
    parity = data.get("parity")
    if not isinstance(parity, dict) or not isinstance(parity.get("passed"), bool):
        raise bad("parity", "is missing")
    listed = data.get("files")
    if not (isinstance(listed, dict) and listed):
        raise bad("files", "lists no files")
    folder = path if data["format"] == "saved_model" else path.parent
    root = os.path.realpath(folder)
    for name, digest in listed.items():
        if not (isinstance(name, str) and _FILE.match(name) and ".." not in name.split("/")):
            raise bad("files", f"names {name[:60]!r}, not a plain path inside the export")
        if not (isinstance(digest, str) and _HASH.match(digest)):
            raise bad("files", f"gives {name!r} no sha256")
        target = folder / name
        if not os.path.realpath(target).startswith(root + os.sep):
            raise CnnregError(f"{target} leads outside {folder}; refusing to follow it")
        if not target.is_file():
            raise CnnregError(f"{target}, a file of the export, is missing")
        if sha256_of(target) != digest:
            raise CnnregError(f"{target} does not match the sha256 its sidecar gives: changed since it was exported")
    return data


def trained_export(path: str | Path):
    """An export as a :class:`~cnnreg.training.saved.Trained` model: its sidecar (checked), the
    architecture's registered preprocessing, the runtime loaded when first used."""
    from cnnreg.plugins import get_host
    from cnnreg.training.saved import Trained, checked_preprocess

    path = Path(path)
    if not path.exists():
        raise CnnregError(f"{path} does not exist")
    data = read_sidecar(path)
    if not data["parity"]["passed"]:
        raise CnnregError(f"{path} failed its parity check when it was exported (max |Δp| "
                          f"{data['parity'].get('max_abs_diff')}, top-1 agreement {data['parity'].get('top1_agreement')}); "
                          "refusing to use it: export it again")
    component = get_host().registry.get("architecture", f"{data['component']['provider']}/{data['component']['name']}")
    preprocess = checked_preprocess(data.get("preprocess"), component, f"{sidecar_of(path)}: field 'preprocess'",
                                    none_is_own=True)
    names = list(data["class_names"])
    return Trained(
        what=f"export {path}", component=component, architecture=data["architecture"],
        input_shape=tuple(data["input_shape"]), resize=data["resize"], preprocess=preprocess,
        load_model=lambda: open_runtime(data["format"], path), class_names=lambda: names,
        dataset=data.get("dataset"),
    )
