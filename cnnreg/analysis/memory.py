"""Training-memory budget of a model, and the largest batch that fits a device.

The budget is affine in the batch size: ``total = fixed + batch × per_instance``.

Fixed terms
  * weights: every variable at its own dtype (float32 master weights, 4 bytes a parameter).
  * 16-bit weight copies (mixed precision only): Keras keeps float32 variables and casts them to
    the compute dtype at every step; the casts live through the step, so 2 bytes a parameter.
  * gradients: one per *trainable* weight, at the variable's dtype (float32 in mixed precision).
  * optimizer slots: :data:`OPTIMIZER_SLOTS` per trainable weight, at the variable's dtype.
  * the fixed part of the workspace (:data:`DEFAULT_WORKSPACE`).

Per-instance terms (× batch)
  * activations: the layer outputs backprop keeps (``costs.saved_copies``): outputs of weight
    layers (twice with a fused activation: pre- and post-activation), activations, pooling,
    concatenation; not views (Flatten, Reshape, padding) and not elementwise layers (BN, Add,
    Rescaling) that XLA fuses into their neighbours, unless a weight layer reads them.
    4 bytes a value (float32) or 2 (mixed). Only layers from the first trainable layer onwards
    are kept: below it no gradient flows.
  * input batch: model inputs and same-sized targets, float32 (the data pipeline's dtype).
  * the per-instance part of the workspace: while a layer is back-propagated the gradient of
    its output and of its input exist at once; the largest layer sets that (2 × its output).

Calibration (benchmarks/memory_check.py, JAX 0.11 on an H200, adam, batches 32 and 64,
float32 and mixed_bfloat16): estimate / measured peak was 0.93-1.10 for ResNet50, VGG16 and
MobileNetV2 (docs/cost-model.md has the table).

Frozen layers (``trainable=False``, transfer learning) carry no gradients and no slots.

``platform="cpu"`` models XLA's CPU plan instead (``cnnreg estimate --method compiled`` on a
CPU): there the bias add is not fused into the convolution, so a biased layer read by a
normalisation keeps one more copy of its output (``costs.cpu_extra_copies``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cnnreg.analysis.summary import ModelSummary, summarize
from cnnreg.analysis.units import PRECISIONS, check_precision, format_bytes, format_mb, format_mib, parse_memory
from cnnreg.errors import ParameterError, choices_text

__all__ = [
    "DEFAULT_WORKSPACE",
    "FROZEN_CHOICES",
    "PLATFORMS",
    "OPTIMIZER_SLOTS",
    "Budget",
    "BudgetTerm",
    "Workspace",
    "format_bytes",
    "format_mb",
    "format_mib",
    "max_batch_size",
    "optimizer_slots",
    "measured_slots",
    "parse_memory",
    "training_budget",
]

OPTIMIZER_SLOTS: dict[str, float] = {
    "sgd": 0,
    "momentum": 1,  # SGD(momentum>0)
    "nesterov": 1,  # SGD(momentum>0, nesterov=True)
    "adam": 2,  # m, v (amsgrad adds v_hat: 3, for an Adam instance)
    "adamw": 2,
    "nadam": 2,
    "adamax": 2,  # m, u
    "rmsprop": 1,  # velocity (+1 momentum, +1 centered mean, for an RMSprop instance)
    "adagrad": 1,
    "adadelta": 2,  # accumulated gradient, accumulated update
    "lion": 1,
    "ftrl": 2,  # accumulator, linear
    "lamb": 2,
    # Keras' Adafactor keeps a full velocity plus row and column factors of each matrix; the
    # factors are < 1% of a conv kernel, so one slot is the estimate.
    "adafactor": 1,
}
"""Optimizer name → slot variables per trainable weight."""

PLATFORMS = ("gpu", "cpu")
"""Whose XLA plan the activation terms model: a GPU's (the default: calibrated on an H200) or a CPU's."""

FROZEN_CHOICES = ("base", "all")
"""``frozen=None``: the model's own trainable flags; ``"base"``: only the head (the trailing
top-level layers with vector outputs: pooling, dense, dropout) trains; ``"all"``: nothing trains."""


@dataclass(frozen=True)
class Workspace:
    """The allowance for what the terms do not see: the gradient buffers of the layer being
    back-propagated, convolution scratch, allocator slack.

    Per instance: ``fraction`` × the kept activations + ``largest_layers`` × the largest layer
    output; plus ``fixed_bytes`` once.
    """

    fraction: float = 0.0
    largest_layers: float = 2.0
    fixed_bytes: int = 32 * 2**20


DEFAULT_WORKSPACE = Workspace()
"""The allowance used unless one is passed. Fitted to measured JAX peaks (module doc): XLA's
peak is the kept activations plus the output and input gradients of the largest layer; a
fraction of the activations on top made every estimate worse, so it is 0."""


@dataclass
class BudgetTerm:
    """One term of the budget."""

    name: str
    bytes: int
    share: float  # of the total, 0..1
    per_instance: bool  # scales with the batch
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class Budget:
    """Estimated peak training memory of one step, by term. ``total_bytes = fixed + batch × per_instance``."""

    model: str
    batch_size: int
    precision: str
    optimizer: str
    frozen: str | None
    terms: list[BudgetTerm]
    fixed_bytes: int
    per_instance_bytes: int
    trainable_params: int
    workspace: Workspace = field(default=DEFAULT_WORKSPACE, repr=False)
    platform: str = "gpu"

    @property
    def total_bytes(self) -> int:
        """All terms, in bytes."""
        return self.fixed_bytes + self.batch_size * self.per_instance_bytes

    def term(self, name: str) -> BudgetTerm:
        """The term called ``name`` (``weights``, ``gradients``, ``optimizer slots``, ...)."""
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "model": self.model,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "optimizer": self.optimizer,
            "frozen": self.frozen,
            "platform": self.platform,
            "total_bytes": self.total_bytes,
            "fixed_bytes": self.fixed_bytes,
            "per_instance_bytes": self.per_instance_bytes,
            "trainable_params": self.trainable_params,
            "workspace": dict(self.workspace.__dict__),
            "terms": [t.to_dict() for t in self.terms],
        }


def optimizer_slots(optimizer) -> tuple[str, float]:
    """(name, slots per trainable weight) of an optimizer name or a Keras optimizer instance."""
    if not isinstance(optimizer, str):
        name = type(optimizer).__name__.lower()
        if name not in OPTIMIZER_SLOTS:  # a plugin's optimizer: count what it builds per weight
            return name, measured_slots(optimizer)
        slots = OPTIMIZER_SLOTS[name]
        if name == "sgd" and getattr(optimizer, "momentum", 0):
            name, slots = ("nesterov" if getattr(optimizer, "nesterov", False) else "momentum"), 1
        if name == "rmsprop":
            slots += bool(getattr(optimizer, "momentum", 0)) + bool(getattr(optimizer, "centered", False))
        if getattr(optimizer, "amsgrad", False):
            slots += 1
        if getattr(optimizer, "use_ema", False):
            slots += 1
        return name, slots
    key = optimizer.strip().lower().replace("-", "_")
    if key not in OPTIMIZER_SLOTS:
        raise ParameterError(f"unknown optimizer '{optimizer}'" + choices_text(key, OPTIMIZER_SLOTS))
    return key, OPTIMIZER_SLOTS[key]


def measured_slots(optimizer) -> float:
    """Slots per trainable weight of a Keras optimizer of a class the table does not know (a
    plugin's, a wrapper such as Lookahead): a copy of it is built for one probe weight and its
    variables of that weight's shape are counted."""
    import keras

    probe = keras.Variable(keras.ops.zeros((7, 3)), name="probe")
    copy = type(optimizer).from_config(optimizer.get_config())
    copy.build([probe])
    return float(sum(1 for v in copy.variables if tuple(v.shape) == (7, 3)))


def _check_batch(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch size must be an integer >= 1, got {batch_size!r}")
    return batch_size


def as_summary(summary_or_model) -> ModelSummary:
    return summary_or_model if isinstance(summary_or_model, ModelSummary) else summarize(summary_or_model)


def _head_paths(summary: ModelSummary) -> set[str]:
    """Top-level rows of the head: the trailing layers with vector outputs after the last
    feature map (pooling, dense, dropout); in an all-vector model (an MLP), its last weighted layer.
    """
    top = [r for r in summary.rows if r.depth == 0]
    head: list[str] = []
    for r in reversed(top):
        shape = r.output_shape
        if r.type == "InputLayer":
            break
        if not isinstance(shape, tuple) or len(shape) != 1 or r.rule == "container":
            if any(x.params for x in top if x.path in head):
                return set(head)
            break
        head.append(r.path)
    return {next((r.path for r in reversed(top) if r.params), top[-1].path)} if top else set()


def _in_paths(path: str, tops: set[str]) -> bool:
    return path.split("/", 1)[0] in tops


def _trainable_view(summary: ModelSummary, frozen: str | None, platform: str = "gpu") -> tuple[int, int, int]:
    """(trainable params, trainable param bytes, kept activation elements per instance)."""
    leaves = summary.leaves
    if frozen is None:
        trainable = [r.trainable_params > 0 for r in leaves]
        params, nbytes = summary.trainable_params, summary.trainable_param_bytes
    elif frozen == "all":
        return 0, 0, 0
    else:
        head = _head_paths(summary)
        trainable = [r.trainable_params > 0 and _in_paths(r.path, head) for r in leaves]
        params = sum(r.trainable_params for r, t in zip(leaves, trainable) if t)
        per = summary.trainable_param_bytes / summary.trainable_params if summary.trainable_params else 4
        nbytes = int(round(params * per))
    if True not in trainable:
        return params, nbytes, 0
    first = max(trainable.index(True) - 1, 0)  # the input of the first trainable layer is kept too
    kept = sum(r.saved_elements + (r.cpu_extra_elements if platform == "cpu" else 0) for r in leaves[first:])
    return params, nbytes, kept


def training_budget(
    summary_or_model,
    *,
    batch_size: int,
    precision: str = "float32",
    optimizer="adam",
    frozen: str | None = None,
    workspace: Workspace | None = None,
    activation_scale: float = 1.0,
    platform: str = "gpu",
) -> Budget:
    """Estimated peak memory of one training step at ``batch_size``, by term (see module doc).

    ``frozen``: None (the model's own flags), ``"base"`` (only the head trains) or ``"all"``.
    ``activation_scale`` multiplies the activation-sized terms (used to estimate e.g. a smaller
    input; 1.0 for the model as built). ``platform``: ``"gpu"`` (default) or ``"cpu"``, whose
    XLA plan keeps more (module doc).
    """
    summary = as_summary(summary_or_model)
    _check_batch(batch_size)
    unknown = [s for s in summary.input_shapes if None in s]
    if unknown:
        raise ParameterError(
            f"input shape {unknown[0]} of '{summary.name}' has unknown dimensions; "
            "build the model with a fixed input size to estimate its memory"
        )
    check_precision(precision)
    opt_name, slots = optimizer_slots(optimizer)
    if frozen is not None and frozen not in FROZEN_CHOICES:
        raise ParameterError(f"unknown frozen choice '{frozen}'" + choices_text(str(frozen), FROZEN_CHOICES))
    if platform not in PLATFORMS:
        raise ParameterError(f"unknown platform '{platform}'" + choices_text(str(platform), PLATFORMS))
    ws = workspace or DEFAULT_WORKSPACE
    act = PRECISIONS[precision]
    mixed = precision != "float32"

    params, grad_bytes, kept = _trainable_view(summary, frozen, platform)
    largest = max((r.activation_elements for r in summary.leaves), default=0)
    act_per = int(kept * act * activation_scale)
    input_per = int((summary.input_elements + summary.output_elements) * 4 * activation_scale)
    ws_per = int(ws.fraction * act_per + ws.largest_layers * largest * act * activation_scale)

    fixed = [
        ("weights", summary.param_bytes, "all variables at their dtype (float32 master weights)"),
        ("16-bit weight copies", summary.total_params * 2 if mixed else 0,
         "mixed precision casts the float32 weights to 16 bits every step"),
        ("gradients", grad_bytes, f"{params:,} trainable parameters"),
        ("optimizer slots", int(round(grad_bytes * slots)), f"{opt_name}: {slots:g} per trainable weight"),
    ]
    per = [
        ("activations", act_per, f"outputs kept for backprop, {act} bytes each"),
        ("input batch", input_per, "inputs and targets, float32"),
    ]
    terms = [BudgetTerm(n, b, 0.0, False, note) for n, b, note in fixed if b or n != "16-bit weight copies"]
    terms += [BudgetTerm(n, b * batch_size, 0.0, True, note) for n, b, note in per]
    terms.append(BudgetTerm("workspace", ws.fixed_bytes + ws_per * batch_size, 0.0, True,
                            (f"{ws.fraction:g} × activations + " if ws.fraction else "")
                            + f"{ws.largest_layers:g} × largest layer + "
                            f"{format_mib(ws.fixed_bytes, 0)}"))
    fixed_bytes = sum(b for _, b, _ in fixed) + ws.fixed_bytes
    per_instance = sum(b for _, b, _ in per) + ws_per
    budget = Budget(summary.name, batch_size, precision, opt_name, frozen, terms, fixed_bytes,
                    per_instance, params, ws, platform)
    total = budget.total_bytes
    for t in terms:
        t.share = t.bytes / total if total else 0.0
    return budget


def max_batch_size(summary_or_model, device_bytes, **budget_options) -> int:
    """The largest batch whose :func:`training_budget` fits ``device_bytes`` (0 if none does).

    ``device_bytes`` may be a number of bytes or a string such as ``"80GiB"``; the options are
    those of :func:`training_budget`.
    """
    summary = as_summary(summary_or_model)
    device = parse_memory(device_bytes)
    one = training_budget(summary, batch_size=1, **budget_options)
    if one.total_bytes > device:
        return 0
    if one.per_instance_bytes <= 0:
        raise ParameterError("the budget does not grow with the batch; every batch size fits")
    b = max(1, (device - one.fixed_bytes) // one.per_instance_bytes)

    def fits(n: int) -> bool:
        return training_budget(summary, batch_size=n, **budget_options).total_bytes <= device

    # affine, so the division is exact; verify on the full budget and step if it disagrees
    while b > 1 and not fits(b):
        b -= 1
    while fits(b + 1):
        b += 1
    return int(b)


def per_device_batch(batch_size: int, devices: int) -> int:
    """Instances each of ``devices`` data-parallel replicas holds: ceil(batch / devices)."""
    return math.ceil(batch_size / devices)
