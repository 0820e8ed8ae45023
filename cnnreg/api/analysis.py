"""``cnnreg summary``, ``cnnreg estimate`` and ``cnnreg compare`` as functions: the cost model.

Thin functions over :mod:`cnnreg.analysis` (see docs/cost-model.md).  Every argument is checked
before keras is imported, so a typo costs no model build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from cnnreg.api.results import Result
from cnnreg.errors import CnnregError, ParameterError, choices_text
from cnnreg.version import __version__

__all__ = [
    "summary", "estimate", "compare", "SummaryResult", "EstimateResult", "CompareResult",
    "Target", "DEFAULT_CLASSES", "METHODS", "parse_input_shape", "check_options", "parse_optimizer",
    "budget_optimizer", "resolve", "build_model", "summarize", "detected_device",
]

#: Classes when neither ``classes``, the metadata nor the factory's signature says.
DEFAULT_CLASSES = 1000

#: ``estimate(method=...)``: the cost model, or XLA's plan of the compiled step (JAX).
METHODS = ("analytic", "compiled")


# --- what the three functions share ------------------------------------------------------------


@dataclass
class Target:
    """One architecture to analyse: its component, checked parameters and framework arguments."""

    spec: str
    component: Any
    params: dict
    input_shape: tuple[int, int, int]
    num_classes: int


def parse_input_shape(value: Any, *, positive: bool = True) -> Optional[tuple[int, int, int]]:
    """``input_shape``: ``"64x64x3"`` (``--input-shape``'s text) or ``(64, 64, 3)``; None when
    not given.  ``positive``: each side >= 1."""
    if value is None:
        return None
    from cnnreg.spec import coerce

    shape = coerce(value, tuple[int, int, int], where="--input-shape")
    if positive and min(shape) < 1:
        text = value if isinstance(value, str) else "x".join(str(v) for v in value)
        raise ParameterError(f"--input-shape must be height x width x channels, each >= 1 (got '{text}')")
    return shape


def _at_least_one(value: Optional[int], option: str) -> None:
    if value is not None and value < 1:
        raise ParameterError(f"{option} must be >= 1 (got {value})")


def check_options(*, precision: str, optimizer: str, batch: Optional[int] = None,
                  classes: Optional[int] = None) -> Any:
    """Check the shared options (no keras); return the optimizer as :func:`budget_optimizer` takes it."""
    from cnnreg.analysis.units import check_precision

    _at_least_one(batch, "--batch")
    _at_least_one(classes, "--classes")
    check_precision(precision)
    return parse_optimizer(optimizer)


def parse_optimizer(text: str) -> Any:
    """A name the cost model knows (``adam``, ``momentum``...) or a ``cnnreg run`` optimizer spec."""
    from cnnreg.analysis.memory import OPTIMIZER_SLOTS
    from cnnreg.spec import parse

    key = text.strip().lower().replace("-", "_")
    if key in OPTIMIZER_SLOTS:
        return key
    from cnnreg.errors import UnknownComponentError
    from cnnreg.plugins import get_host
    from cnnreg.training import optim

    spec = parse(text)
    registry = get_host().registry
    try:
        registry.get("optimizer", spec.name)
    except UnknownComponentError:
        names = sorted({*OPTIMIZER_SLOTS, *registry.names("optimizer")})
        raise ParameterError(f"unknown optimizer '{spec.name}'" + choices_text(spec.name.lower(), names)) from None
    return optim.resolve_optimizer(registry, text)  # built once keras loads: its state per weight is counted


def budget_optimizer(value: Any) -> Any:
    """What ``training_budget`` takes: the name, or a Keras optimizer instance built from a spec."""
    if isinstance(value, str):
        return value
    from cnnreg.training import optim

    return optim.make_optimizer(value, clip={}, steps_per_epoch=1, epochs=1)


def resolve(spec: str, input_shape: Optional[tuple[int, int, int]], classes: Optional[int]) -> Target:
    """Find the architecture and settle its input shape and classes, before anything is built."""
    import inspect

    from cnnreg.plugins import get_host
    from cnnreg.spec import shape_text

    component, params = get_host().registry.resolve("architecture", spec)
    defaults = _signature_defaults(component)
    shape = input_shape or component.metadata.get("default_input_shape") or defaults.get("input_shape")
    if shape is None or shape is inspect.Parameter.empty:
        raise ParameterError(f"architecture '{component.name}' has no default input shape; give --input-shape HxWxC")
    shape = tuple(int(d) for d in shape)
    minimum = int(component.metadata.get("min_input_size") or 1)
    if len(shape) == 3 and min(shape[:2]) < minimum:
        raise ParameterError(f"input shape {shape_text(shape)} is too small for {component.name} "
                             f"(minimum {minimum}x{minimum})")
    if classes is None:
        classes = component.metadata.get("num_classes") or defaults.get("num_classes")
        if not isinstance(classes, int) or isinstance(classes, bool):
            classes = DEFAULT_CLASSES
    return Target(spec, component, params, shape, classes)


def _signature_defaults(component) -> dict[str, Any]:
    import inspect

    try:
        signature = inspect.signature(component.load())
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in signature.parameters.items()
            if name in ("input_shape", "num_classes") and p.default is not p.empty}


def build_model(target: Target):
    """The architecture's Keras model at the target's input shape and classes (current dtype
    policy); one that would not fit in memory is refused first (:func:`check_buildable`)."""
    from cnnreg.spec import shape_text
    from cnnreg.training.model import check_buildable

    def build():
        return target.component.load()(
            **{**target.params, "input_shape": target.input_shape, "num_classes": target.num_classes})

    check_buildable(build, f"{target.component.name} at {shape_text(target.input_shape)}")
    return build()


def summarize(targets: list[Target], *, precision: str, expand: bool = False) -> tuple[list, list[str]]:
    """Build each model symbolically under ``precision`` and summarize it (imports keras).

    Returns the summaries and the warnings: layers the cost model cannot count are one warning
    line each model (``"SPEC: ..."``), not an error.
    """
    import warnings

    from cnnreg.backends import load_keras

    load_keras()
    import keras

    from cnnreg.analysis import UncountedLayerWarning, summarize as summarize_model

    previous = keras.config.dtype_policy()
    summaries, notes = [], []
    try:
        keras.config.set_dtype_policy(precision)
        for target in targets:
            model = build_model(target)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UncountedLayerWarning)
                summary = summarize_model(model, expand=expand, precision=precision)
            for w in caught:
                if issubclass(w.category, UncountedLayerWarning):
                    notes.append(f"{target.spec}: {w.message}")
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            summaries.append(summary)
    finally:
        keras.config.set_dtype_policy(previous)
    return summaries, notes


def _select_backend(name: Optional[str]) -> str:
    from cnnreg.backends import select

    return select(name)


def _names(value: Any) -> list[str]:
    """A spec, or several: ``"a"`` → ``["a"]``, ``("a", "b")`` → ``["a", "b"]``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


# --- cnnreg summary ----------------------------------------------------------------------------


@dataclass(repr=False)
class SummaryResult(Result):
    """``cnnreg summary``: the layer table and totals (``summary``, a
    :class:`cnnreg.analysis.ModelSummary`) of ``target`` at ``precision``; with a batch, the
    training-memory ``budget`` (else None).  ``warnings``: layers the cost model cannot count."""

    target: Target
    summary: Any
    budget: Any
    precision: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "summary": self.summary.to_dict(),
                "budget": self.budget.to_dict() if self.budget is not None else None}

    def title(self) -> str:
        from cnnreg.spec import shape_text

        t, s = self.target, self.summary
        text = (f'Model "{t.spec}": input {shape_text(t.input_shape)}, {t.num_classes} classes, {self.precision}; '
                f"{s.total_params:,} params, {s.macs:,} MACs per instance")
        if self.budget is not None:
            text += f"; training memory at batch {self.budget.batch_size}: {self.budget.total_bytes:,} bytes"
        return text

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["layer", "type", "output shape", "params", "trainable", "MACs", "other ops",
                   f"activation bytes ({self.summary.precision})", "param bytes"]
        rows = []
        for r in self.summary.rows:
            calls = f" ×{r.calls}" if r.calls > 1 else ""
            shape = r.output_shape
            shape_text = "?" if shape is None else ", ".join(str(tuple(s)) for s in shape) if isinstance(shape, list) \
                else str(tuple(shape))
            rows.append([("   " * r.depth + "└ " if r.depth else "") + r.name + calls, r.type, shape_text, r.params,
                         r.trainable_params, r.macs if r.counted else None, r.other_ops if r.counted else None,
                         r.activation_bytes, r.param_bytes])
        return columns, rows


def summary(
    name: str,
    *,
    input_shape: Any = None,
    classes: Optional[int] = None,
    expand: bool = False,
    batch: Optional[int] = None,
    precision: str = "float32",
    optimizer: str = "adam",
    backend: Optional[str] = None,
) -> SummaryResult:
    """Layer table with parameters, MACs and activation bytes of the architecture ``name`` (a
    spec, e.g. ``"resnet34"`` or ``"single_conv:filters=200,kernel=5"``); with ``batch``, the
    training-memory budget (``cnnreg summary``).  ``input_shape``: ``"224x224x3"`` or
    ``(224, 224, 3)`` (default: the architecture's own)."""
    _select_backend(backend)
    opt = check_options(precision=precision, optimizer=optimizer, batch=batch, classes=classes)
    target = resolve(name, parse_input_shape(input_shape), classes)
    (model_summary,), notes = summarize([target], precision=precision, expand=expand)
    budget = None
    if batch is not None:
        from cnnreg.analysis import training_budget

        budget = training_budget(model_summary, batch_size=batch, precision=precision, optimizer=budget_optimizer(opt))
    return SummaryResult(target, model_summary, budget, precision, notes)


# --- cnnreg estimate ---------------------------------------------------------------------------


@dataclass(repr=False)
class EstimateResult(Result):
    """``cnnreg estimate``: the largest batch that fits the device, and the ``budget`` at
    ``batch_size`` (a :class:`cnnreg.analysis.memory.Budget` for ``method="analytic"``, XLA's
    :class:`cnnreg.analysis.compiled.CompiledPlan` for ``"compiled"``); ``advice`` (analytic,
    when a batch was asked for or none fits) holds the remedies, best first.  ``batch`` is the
    batch asked for (None: the largest that fits); ``compiles`` and ``seconds``: the
    compilations of ``"compiled"``; ``warnings``: layers the cost model cannot count (analytic)."""

    method: str
    target: Target
    precision: str
    device: dict
    max_batch_size: int
    budget: Any
    batch: Optional[int] = None
    advice: Any = None
    compiles: Optional[int] = None
    seconds: Optional[float] = None
    warnings: list[str] = field(default_factory=list)

    @property
    def optimizer(self) -> str:
        return self.budget.optimizer

    @property
    def batch_size(self) -> int:
        return self.budget.batch_size

    @property
    def fits(self) -> bool:
        return self.budget.total_bytes <= self.device["memory_bytes"]

    @property
    def remedies(self) -> list:
        return list(self.advice.remedies) if self.advice is not None else []

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        data = {
            "cnnreg": __version__, "method": self.method, "architecture": t.spec,
            "input_shape": list(t.input_shape), "num_classes": t.num_classes, "precision": self.precision,
            "optimizer": self.optimizer, "device": self.device, "max_batch_size": self.max_batch_size,
            "batch_size": self.batch_size, "fits": self.fits, "budget": self.budget.to_dict(),
            "remedies": [r.to_dict() for r in self.remedies],
        }
        if self.method == "compiled":
            data["compiles"] = self.compiles
        return data

    def title(self) -> str:
        from cnnreg.analysis import format_bytes

        memory = self.device["memory_bytes"]
        largest = self.max_batch_size or "none (batch 1 does not fit)"
        return (f"{self.target.spec} ({self.method}, {self.precision}, {self.optimizer}) in "
                f"{format_bytes(memory, binary=True)}: largest batch {largest}; batch {self.batch_size} "
                f"{'fits' if self.fits else 'does not fit'}")

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """The budget's terms (XLA's figures for a compiled plan) and the total, then the remedies."""
        columns = ["term or remedy", "bytes", "share of the total", "saves (bytes)", "fits", "note"]
        total = self.budget.total_bytes
        if self.method == "compiled":
            plan = self.budget
            rows = [["arguments", plan.argument_bytes, None, None, None, "weights, optimizer slots, metrics, the batch"],
                    ["outputs", plan.output_bytes, None, None, None, "updated weights, slots and metrics state"],
                    ["temporaries", plan.temp_bytes, None, None, None, "activations kept for backprop, gradients"],
                    ["aliased", -plan.alias_bytes, None, None, None, "donated buffers reused for the outputs"]]
        else:
            rows = [[t.name, t.bytes, t.share, None, None, ("× batch; " if t.per_instance else "") + t.note]
                    for t in self.budget.terms]
        rows.append([f"total at batch {self.batch_size}", total, 1.0, None, self.fits, ""])
        for i, r in enumerate(self.remedies, start=1):
            rows.append([f"remedy {i}: {r.title}", r.total_bytes, None, r.saved_bytes, r.fits, r.detail])
        return columns, rows


def estimate(
    name: str,
    *,
    device_memory: Optional[str] = None,
    batch: Optional[int] = None,
    input_shape: Any = None,
    classes: Optional[int] = None,
    precision: str = "float32",
    optimizer: str = "adam",
    method: str = "analytic",
    platform: Optional[str] = None,
    backend: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> EstimateResult:
    """The largest batch of the architecture ``name`` that fits a device (``device_memory``:
    ``"16GiB"``, ``"80GB"`` or bytes; default: the detected GPU's); at ``batch``, whether it fits
    and the remedies ranked by bytes saved (``cnnreg estimate``).  ``method="compiled"`` reads
    XLA's plan of the compiled training step (JAX backend, nothing allocated); ``progress(line)``
    is told as each compilation starts and ends (seconds to minutes each)."""
    key = method.strip().lower()
    if key not in METHODS:
        raise ParameterError(f"unknown method '{method}'" + choices_text(key, METHODS))
    from cnnreg.analysis.memory import PLATFORMS

    if platform is not None and key == "compiled":
        raise ParameterError("--platform is for --method analytic; the compiled plan is the platform's own")
    platform = (platform or "gpu").strip().lower()
    if platform not in PLATFORMS:
        raise ParameterError(f"unknown platform '{platform}'" + choices_text(platform, PLATFORMS))
    if key == "compiled" and backend is not None and backend.strip().lower() != "jax":
        raise CnnregError("--method compiled needs the JAX backend: --backend jax")
    _select_backend("jax" if key == "compiled" and backend is None else backend)
    from cnnreg.analysis import parse_memory

    opt = check_options(precision=precision, optimizer=optimizer, batch=batch, classes=classes)
    device_bytes = None
    if device_memory is not None:
        try:
            device_bytes = parse_memory(device_memory)
        except ParameterError as exc:
            raise ParameterError(f"--device-memory: {exc}") from None
    target = resolve(name, parse_input_shape(input_shape), classes)
    device = {"name": None, "memory_bytes": device_bytes, "detected": False, "given": device_memory}
    if device_bytes is None:
        device = detected_device()
        device_bytes = device["memory_bytes"]
    if key == "compiled":
        return _estimate_compiled(target, precision, opt, device, batch, progress)
    (model_summary,), notes = summarize([target], precision=precision)
    from cnnreg.analysis import max_batch_size, oom_remedies, training_budget

    options = dict(precision=precision, optimizer=budget_optimizer(opt), platform=platform)
    largest = max_batch_size(model_summary, device_bytes, **options)
    advice = None
    if batch is not None or largest == 0:
        advice = oom_remedies(model_summary, device_bytes, batch or 1, **options)
        budget = advice.budget
    else:
        budget = training_budget(model_summary, batch_size=largest, **options)
    return EstimateResult("analytic", target, precision, device, largest, budget, batch=batch, advice=advice,
                          warnings=notes)


def detected_device() -> dict:
    """The first accelerator with a known memory, as ``estimate``'s ``device``; a one-line error
    when there is none."""
    from cnnreg.backends import devices

    found = [d for d in devices() if d.get("memory_bytes")]
    if not found:
        raise CnnregError("no GPU detected: --device-memory is needed, e.g. --device-memory 16GiB")
    return {"name": found[0].get("name", "GPU"), "memory_bytes": int(found[0]["memory_bytes"]), "detected": True,
            "given": None}


def _estimate_compiled(target: Target, precision: str, opt: Any, device: dict, batch: Optional[int],
                       progress: Optional[Callable[[str], None]] = None) -> EstimateResult:
    """``method="compiled"``: XLA's plan of the compiled step at ``batch`` (else at the largest
    batch), and the largest batch that fits, by bisection over compiled plans."""
    from cnnreg.backends import load_keras

    if progress is not None:
        progress("loading keras (JAX)…")
    load_keras()
    import keras

    from cnnreg.analysis.compiled import StepPlanner, compiled_max_batch

    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(precision)
        if progress is not None:
            progress(f"building {target.spec} at {'x'.join(map(str, target.input_shape))}…")
        planner = StepPlanner(build_model(target), optimizer=budget_optimizer(opt), progress=progress)
        largest, _ = compiled_max_batch(planner, device["memory_bytes"])
        plan = planner.plan(batch or largest or 1)
    finally:
        keras.config.set_dtype_policy(previous)
    return EstimateResult("compiled", target, precision, device, largest, plan, batch=batch,
                          compiles=planner.compiles, seconds=planner.seconds)


# --- cnnreg compare ----------------------------------------------------------------------------


@dataclass(repr=False)
class CompareResult(Result):
    """``cnnreg compare``: one :class:`cnnreg.analysis.ComparisonRow` per architecture (``rows``,
    in the order given, with its ``targets`` and ``summaries``), the training memory at
    ``batch``.  ``warnings``: layers the cost model cannot count."""

    targets: list[Target]
    summaries: list
    rows: list
    batch: int
    precision: str
    warnings: list[str] = field(default_factory=list)

    @property
    def optimizer(self) -> str:
        return self.rows[0].optimizer

    def to_dict(self) -> dict[str, Any]:
        models = [{**r.to_dict(), "input_shape": list(t.input_shape), "num_classes": t.num_classes}
                  for r, t in zip(self.rows, self.targets)]
        return {"cnnreg": __version__, "batch_size": self.batch, "precision": self.precision,
                "optimizer": self.optimizer, "models": models}

    def title(self) -> str:
        return (f"{len(self.rows)} architectures per instance, and training memory at batch {self.batch} "
                f"({self.precision}, {self.optimizer})")

    def table(self) -> tuple[list[str], list[list[Any]]]:
        from cnnreg.spec import shape_text

        columns = ["architecture", "input", "classes", "parameters", "trainable", "MACs", "FLOPs",
                   "activation bytes", "kept for backprop (bytes)", f"training, batch {self.batch} (bytes)",
                   "layers not costed"]
        rows = [[r.name, shape_text(t.input_shape), t.num_classes, r.params, r.trainable_params, r.macs, r.flops,
                 r.activation_bytes, r.saved_activation_bytes, r.budget_bytes, r.uncounted]
                for r, t in zip(self.rows, self.targets)]
        return columns, rows


def compare(
    names: Sequence[str],
    *,
    input_shape: Any = None,
    classes: Optional[int] = None,
    batch: int = 32,
    precision: str = "float32",
    optimizer: str = "adam",
    backend: Optional[str] = None,
) -> CompareResult:
    """Two or more architectures side by side (``cnnreg compare``): parameters, MACs, activation
    memory and training memory at ``batch``.  ``names``: specs, e.g. ``["resnet34", "vgg16"]``."""
    names = _names(names)
    _select_backend(backend)
    opt = check_options(precision=precision, optimizer=optimizer, batch=batch, classes=classes)
    if len(names) < 2:
        if not names:
            raise ParameterError("compare needs two or more architectures (got none)")
        raise ParameterError(f"compare needs two or more architectures (got '{names[0]}'); "
                             f"`cnnreg summary {names[0]}` shows one")
    shape = parse_input_shape(input_shape)
    targets = [resolve(n, shape, classes) for n in names]
    summaries, notes = summarize(targets, precision=precision)
    from cnnreg.analysis import compare as compare_summaries

    rows = compare_summaries({t.spec: s for t, s in zip(targets, summaries)}, batch_size=batch, precision=precision,
                             optimizer=budget_optimizer(opt))
    return CompareResult(targets, summaries, rows, batch, precision, notes)
