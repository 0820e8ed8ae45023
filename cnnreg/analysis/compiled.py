"""XLA's own memory plan of one training step (JAX backend), and the largest batch it allows.

The step Keras runs in ``fit`` on JAX (``Model.train_step`` under ``jax.jit`` with the state
donated: forward, backward, optimizer update, metrics) is lowered and compiled with abstract
shapes (``jax.ShapeDtypeStruct``). Nothing is allocated, so it answers for batches that would
not fit. The model is compiled as ``cnnreg run`` compiles it: categorical cross-entropy on
one-hot float32 targets, an accuracy metric. XLA's ``memory_analysis()`` gives:

* arguments: the buffers passed in: weights, optimizer slots, metrics state, the input batch;
* outputs: the buffers returned: the new state and the logs;
* temporaries: what the step allocates in between: activations kept for backprop, gradients,
  convolution scratch;
* aliased: argument buffers reused for outputs (the donated state), counted in both above.

``total = arguments + outputs + temporaries - aliased``. The plan is the platform's own: on a
GPU the device's, on a CPU the CPU's (other fusions and convolution algorithms, so other
temporaries). Each plan costs one compilation (seconds); :class:`StepPlanner` keeps them.

    planner = StepPlanner(model, optimizer="adam")
    planner.plan(32).total_bytes
    largest, planner = compiled_max_batch(planner, "16GiB")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnreg.analysis.units import format_bytes
from cnnreg.errors import CnnregError, ParameterError

__all__ = ["MAX_BATCH", "CompiledPlan", "CompileOutOfMemory", "StepPlanner", "compiled_max_batch", "compiled_plan"]

MAX_BATCH = 2**20
"""The largest batch :func:`compiled_max_batch` tries."""

PROBE_BATCH = 8
"""The second batch the search compiles (after 1) to fit ``total = fixed + batch × per``."""

KERAS_OPTIMIZERS: dict[str, tuple[str, dict]] = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "nadam": ("Nadam", {}),
    "adamax": ("Adamax", {}),
    "rmsprop": ("RMSprop", {}),
    "adagrad": ("Adagrad", {}),
    "adadelta": ("Adadelta", {}),
    "lion": ("Lion", {}),
    "ftrl": ("Ftrl", {}),
    "lamb": ("Lamb", {}),
    "adafactor": ("Adafactor", {}),
}
"""``memory.OPTIMIZER_SLOTS`` name → ``keras.optimizers`` class and arguments (the learning rate
does not change the plan)."""


class CompileOutOfMemory(CnnregError):
    """XLA ran out of device memory while compiling the step (a GPU autotunes on real buffers):
    that batch does not fit."""


@dataclass
class CompiledPlan:
    """XLA's memory plan of one compiled training step, in bytes."""

    model: str
    batch_size: int
    precision: str
    optimizer: str
    platform: str  # jax.devices()[0].platform: "cpu", "gpu", "tpu"
    device: str  # its device_kind: "cpu", "NVIDIA H200"
    argument_bytes: int
    output_bytes: int
    temp_bytes: int
    alias_bytes: int
    generated_code_bytes: int
    compile_seconds: float

    @property
    def total_bytes(self) -> int:
        """Arguments + outputs + temporaries - aliased (generated code is not counted)."""
        return self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes

    def to_dict(self) -> dict:
        """JSON-ready dict, with ``total_bytes`` and ``method: "compiled"``."""
        return {"method": "compiled", **self.__dict__, "total_bytes": self.total_bytes}


def _keras_optimizer(optimizer) -> tuple[str, Any]:
    """(name, Keras optimizer instance) of a name in ``memory.OPTIMIZER_SLOTS`` or an instance."""
    import keras

    from cnnreg.analysis.memory import optimizer_slots

    if not isinstance(optimizer, str):
        try:
            return optimizer_slots(optimizer)[0], optimizer
        except ParameterError:  # any Keras optimizer compiles; only the analytic model needs a slot count
            return type(optimizer).__name__.lower(), optimizer
    name = optimizer_slots(optimizer)[0]  # ParameterError with the valid names
    cls, kwargs = KERAS_OPTIMIZERS[name]
    return name, getattr(keras.optimizers, cls)(**kwargs)


def _check_backend() -> None:
    import keras

    if keras.backend.backend() != "jax":
        raise CnnregError(f"the compiled memory plan needs the JAX backend (keras runs on {keras.backend.backend()}): "
                          "--backend jax or KERAS_BACKEND=jax")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class StepPlanner:
    """The training step of one model, compiled at any batch size; plans are kept by batch size.

    Compiles ``model`` (``model.compile``) with ``optimizer``, categorical cross-entropy and an
    accuracy metric, and builds its optimizer and metrics as ``fit`` does. ``compiles`` counts
    the compilations so far; ``seconds`` is their time.  ``progress(line)`` is told when a
    compilation starts and what it gave (each takes seconds to minutes).
    """

    def __init__(self, model, *, optimizer="adam", progress: Callable[[str], None] | None = None):
        import jax
        import keras

        _check_backend()
        unknown = [tuple(t.shape[1:]) for t in [*model.inputs, *model.outputs] if None in tuple(t.shape[1:])]
        if unknown:
            raise ParameterError(f"shape {unknown[0]} in '{model.name}' has unknown dimensions; "
                                 "build the model with a fixed input size to plan its memory")
        self.model = model
        self.optimizer, instance = _keras_optimizer(optimizer)
        self.precision = model.dtype_policy.name
        model.compile(optimizer=instance, loss=keras.losses.CategoricalCrossentropy(),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        if hasattr(model, "_symbolic_build"):  # metrics, loss and optimizer variables, as fit builds them
            model._symbolic_build(data_batch=self._data(1))
        else:
            model.optimizer.build(model.trainable_variables)

        def abstract(variables):
            return [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in variables]

        self._state = (abstract(model.trainable_variables), abstract(model.non_trainable_variables),
                       abstract(model.optimizer.variables), abstract(model.metrics_variables))
        self._step = jax.jit(model.train_step, donate_argnums=0)  # as keras' JAX trainer jits it
        device = jax.devices()[0]
        self.platform, self.device = device.platform, device.device_kind
        self.plans: dict[int, CompiledPlan | CompileOutOfMemory] = {}
        self.compiles = 0
        self.progress = progress

    @property
    def seconds(self) -> float:
        """Seconds spent lowering and compiling, all plans together."""
        return sum(p.compile_seconds for p in self.plans.values() if isinstance(p, CompiledPlan))

    def _data(self, batch_size: int):
        """(inputs, one-hot targets), float32, as abstract shapes."""
        import jax

        def spec(tensors):
            specs = [jax.ShapeDtypeStruct((batch_size, *t.shape[1:]), "float32") for t in tensors]
            return specs[0] if len(specs) == 1 else specs

        return spec(self.model.inputs), spec(self.model.outputs)

    def plan(self, batch_size: int) -> CompiledPlan:
        """The compiled step's memory plan at ``batch_size`` (compiled once per batch size).

        Raises :class:`CompileOutOfMemory` when the device ran out of memory while compiling.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"batch size must be an integer >= 1, got {batch_size!r}")
        if batch_size not in self.plans:
            self.compiles += 1
            self._say(lambda: f"the training step of {self.model.name} at batch {batch_size}…")
            try:
                self.plans[batch_size] = plan = self._compile(batch_size)
                self._say(lambda: f"batch {batch_size} needs {format_bytes(plan.total_bytes)} "
                                  f"(compiled in {plan.compile_seconds:.1f} s)")
            except CompileOutOfMemory as exc:
                self.plans[batch_size] = exc
                self._say(lambda: f"batch {batch_size} ran out of memory while compiling")
        found = self.plans[batch_size]
        if isinstance(found, CompileOutOfMemory):
            raise found
        return found

    #: Told as each compilation starts and what it gave (set by ``__init__``).
    progress: Callable[[str], None] | None = None

    def _say(self, line: Callable[[], str]) -> None:
        if self.progress is not None:
            self.progress(f"compile {self.compiles}: {line()}")

    def _compile(self, batch_size: int) -> CompiledPlan:
        start = time.perf_counter()
        try:
            compiled = self._step.lower(self._state, self._data(batch_size)).compile()
        except Exception as exc:  # XlaRuntimeError; its class moves between jaxlib versions
            if "RESOURCE_EXHAUSTED" not in str(exc):
                raise
            raise CompileOutOfMemory(f"XLA ran out of {self.device} memory compiling the step at batch "
                                     f"{batch_size}: {_first_line(exc)}") from None
        seconds = time.perf_counter() - start
        memory = compiled.memory_analysis()
        if memory is None:
            raise CnnregError(f"XLA on {self.platform} ({self.device}) gives no memory analysis for "
                              f"'{self.model.name}'; use --method analytic")
        return CompiledPlan(
            model=self.model.name, batch_size=batch_size, precision=self.precision, optimizer=self.optimizer,
            platform=self.platform, device=self.device,
            argument_bytes=int(memory.argument_size_in_bytes), output_bytes=int(memory.output_size_in_bytes),
            temp_bytes=int(memory.temp_size_in_bytes), alias_bytes=int(memory.alias_size_in_bytes),
            generated_code_bytes=int(memory.generated_code_size_in_bytes), compile_seconds=round(seconds, 3),
        )


def compiled_plan(model, *, batch_size: int, optimizer="adam") -> CompiledPlan:
    """XLA's memory plan of ``model``'s training step at ``batch_size`` (see the module doc).

    ``model``: a built Keras model, built under the precision policy wanted (read back from
    ``model.dtype_policy``); it is compiled here with ``optimizer`` (a name of
    ``memory.OPTIMIZER_SLOTS`` or a Keras optimizer instance).
    """
    return StepPlanner(model, optimizer=optimizer).plan(batch_size)


def compiled_max_batch(model_or_planner, device_bytes, *, optimizer="adam",
                       limit: int = MAX_BATCH) -> tuple[int, StepPlanner]:
    """The largest batch whose compiled ``total_bytes`` fits ``device_bytes`` (0 if batch 1 does
    not), at most ``limit``; and the :class:`StepPlanner`, which holds every plan compiled.

    ``device_bytes``: bytes or a string such as ``"16GiB"``. ``optimizer`` is used only when a
    model is given. Batches 1 and :data:`PROBE_BATCH` fit ``total = fixed + batch × per``; the
    batch it predicts and its neighbour are compiled (an exact line ends there: 4 compiles).
    Until a batch fails, steps past the largest fitting batch double; then, between the largest
    batch known to fit and the smallest known not to, the line through those two plans predicts
    the next (a midpoint when the last step did not halve the gap), until the two are adjacent.
    No batch is compiled twice.
    """
    from cnnreg.analysis.units import parse_memory

    planner = model_or_planner if isinstance(model_or_planner, StepPlanner) else StepPlanner(
        model_or_planner, optimizer=optimizer)
    device = parse_memory(device_bytes)
    totals: dict[int, int | None] = {}  # batch → total bytes; None: out of memory while compiling

    def fits(batch: int) -> bool:
        if batch not in totals:
            try:
                totals[batch] = planner.plan(batch).total_bytes
            except CompileOutOfMemory:
                totals[batch] = None
        return totals[batch] is not None and totals[batch] <= device

    if not fits(1):
        return 0, planner
    probe = min(PROBE_BATCH, limit)
    if probe == 1:
        return 1, planner
    lo, hi = 1, None  # largest batch known to fit, smallest known not to
    if fits(probe):
        lo = probe
        if totals[probe] <= totals[1]:
            raise ParameterError(f"the compiled plan does not grow with the batch ({totals[1]:,} bytes at batch 1, "
                                 f"{totals[probe]:,} at {probe}); every batch size fits")
    else:
        hi = probe
    step = 0  # while nothing has failed: how far past the largest fitting batch to look next
    bisect = False
    while (hi is None or hi - lo > 1) and lo < limit:
        top = limit if hi is None else hi - 1
        gap = None if hi is None else hi - lo
        guess = None if bisect or (hi is None and step) else _predict(totals, lo, hi, device)
        predicted = guess is not None
        if predicted:
            guess = min(max(guess, lo + 1), top)
        elif hi is None:
            guess = min(lo + max(step, 1), top)
            step *= 2
        else:
            guess = (lo + hi) // 2
        if fits(guess):
            lo = guess
        else:
            hi = guess
        # a prediction's neighbour: an exact line ends the search here
        neighbour = guess + 1 if guess == lo else guess - 1
        if predicted and lo < neighbour < (limit + 1 if hi is None else hi):
            if fits(neighbour):
                lo = neighbour
            else:
                hi = neighbour
        step = step or max(1, lo // 16)
        bisect = gap is not None and hi - lo > gap // 2  # the line misled: a midpoint next
    return lo, planner


def _predict(totals: dict[int, int | None], lo: int, hi: int | None, device: int) -> int | None:
    """The batch where the line through two plans reaches ``device``: through the plans either
    side of the answer when a failing one is known, else through batch 1 and the largest fitting.
    None when there is no line (a compile out of memory, or no growth)."""
    a, b = (lo, hi) if hi is not None else (1, lo)
    if totals[b] is None or totals[b] <= totals[a]:
        return None
    return a + int((device - totals[a]) // ((totals[b] - totals[a]) / (b - a)))
