"""What to do when a batch does not fit (the lecture's out-of-memory remedies), and model comparison.

Each remedy is re-estimated with :func:`cnnreg.analysis.memory.training_budget`:

* halve the batch: the budget at ``batch // 2``;
* 16-bit floats: ``mixed_float16`` (activations 2 bytes, float32 weights plus 16-bit copies);
* freeze the base: only the head trains (``frozen="base"``): no gradients or slots for the base,
  and no base activations kept, since no gradient flows into it;
* halve the input side (or stride 2 in the stem): activations scale with the spatial area, so
  every activation-sized term × ¼ (a stride-2 stem keeps the full-size input batch: slightly more);
* remove layers: drop the last half of the layers of the most expensive resolution stage (layers
  whose outputs share one spatial size, e.g. ResNet's conv2_x); their kept activations and their
  weights, gradients and slots go;
* several devices (data parallel, ``keras.distribution.DataParallel``): each of N devices holds
  all weights, gradients and slots but ceil(batch / N) instances; figures are per device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from cnnreg.analysis.memory import (
    Budget,
    as_summary,
    max_batch_size,
    per_device_batch,
    training_budget,
)
from cnnreg.analysis.summary import LayerRow, ModelSummary
from cnnreg.analysis.units import activation_bytes_per_element, format_bytes, parse_memory

__all__ = ["ComparisonRow", "OomAdvice", "Remedy", "compare", "oom_remedies", "stages"]

DEVICE_COUNTS = (2, 4, 8)


@dataclass
class Remedy:
    """One way to fit: the new total (per device for several devices) and the bytes it saves."""

    key: str  # halve_batch, mixed_precision, freeze_base, smaller_input, fewer_layers, devices_N
    title: str
    total_bytes: int
    saved_bytes: int
    fits: bool
    detail: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class OomAdvice:
    """The budget against a device, and the remedies (best first; empty when it fits)."""

    budget: Budget
    device_bytes: int
    fits: bool
    max_batch_size: int
    remedies: list[Remedy] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "budget": self.budget.to_dict(),
            "device_bytes": self.device_bytes,
            "fits": self.fits,
            "max_batch_size": self.max_batch_size,
            "remedies": [r.to_dict() for r in self.remedies],
        }


def stages(summary: ModelSummary) -> list[tuple[tuple, list[LayerRow]]]:
    """Leaf layers grouped by the spatial size of their output (channels-last), in order."""
    groups: dict[tuple, list[LayerRow]] = {}
    for r in summary.leaves:
        shape = r.output_shape
        if isinstance(shape, tuple) and len(shape) >= 3 and None not in shape and r.type != "InputLayer":
            groups.setdefault(shape[:-1], []).append(r)
    return list(groups.items())


def _without(summary: ModelSummary, removed: list[LayerRow]) -> ModelSummary:
    gone = {id(r) for r in removed}

    def total(attr):
        return sum(getattr(r, attr) for r in removed)

    ratio = summary.trainable_param_bytes / summary.trainable_params if summary.trainable_params else 4
    return replace(
        summary,
        leaves=[r for r in summary.leaves if id(r) not in gone],
        total_params=summary.total_params - total("params"),
        trainable_params=summary.trainable_params - total("trainable_params"),
        non_trainable_params=summary.non_trainable_params - total("non_trainable_params"),
        param_bytes=summary.param_bytes - total("param_bytes"),
        trainable_param_bytes=summary.trainable_param_bytes - int(total("trainable_params") * ratio),
        saved_elements=summary.saved_elements - total("saved_elements"),
        cpu_extra_elements=summary.cpu_extra_elements - total("cpu_extra_elements"),
        activation_elements=summary.activation_elements - total("activation_elements"),
    )


def oom_remedies(
    summary_or_model,
    device_bytes,
    batch_size: int,
    *,
    precision: str = "float32",
    optimizer="adam",
    frozen: str | None = None,
    workspace=None,
    platform: str = "gpu",
) -> OomAdvice:
    """Does ``batch_size`` fit ``device_bytes``? If not, the remedies ranked by bytes saved."""
    summary = as_summary(summary_or_model)
    device = parse_memory(device_bytes)
    opts = dict(precision=precision, optimizer=optimizer, frozen=frozen, workspace=workspace, platform=platform)
    budget = training_budget(summary, batch_size=batch_size, **opts)
    advice = OomAdvice(budget, device, budget.total_bytes <= device, max_batch_size(summary, device, **opts))
    if advice.fits:
        return advice
    base = budget.total_bytes
    found: list[Remedy] = []

    def add(key, title, new: Budget, detail=""):
        total = new.total_bytes
        found.append(Remedy(key, title, total, base - total, total <= device, detail))

    if batch_size >= 2:
        add("halve_batch", "smaller mini-batch", training_budget(summary, **{**opts, "batch_size": batch_size // 2}),
            f"batch {batch_size // 2}; the largest batch that fits is {advice.max_batch_size}")
    if precision == "float32":
        add("mixed_precision", "16-bit floats",
            training_budget(summary, batch_size=batch_size, **{**opts, "precision": "mixed_float16"}),
            "keras.mixed_precision.set_global_policy('mixed_float16') (or mixed_bfloat16)")
    if frozen is None:
        frozen_budget = training_budget(summary, batch_size=batch_size, **{**opts, "frozen": "base"})
        if frozen_budget.trainable_params < budget.trainable_params:
            add("freeze_base", "freeze the base (train the head only)", frozen_budget,
                f"{frozen_budget.trainable_params:,} trainable parameters left")
    add("smaller_input", "stride > 1 in the stem / halve the input side",
        training_budget(summary, batch_size=batch_size, activation_scale=0.25, **opts),
        "activations scale with the spatial area: half the side, a quarter of the activations")
    groups = stages(summary)
    if groups:
        shape, rows = max(groups, key=lambda g: sum(r.saved_elements for r in g[1]))
        removed = rows[len(rows) - len(rows) // 2:]
        if removed:
            add("fewer_layers", "remove some layers",
                training_budget(_without(summary, removed), batch_size=batch_size, **opts),
                f"drop the last {len(removed)} of {len(rows)} layers at {'×'.join(map(str, shape))} "
                f"(from {removed[0].path})")
    for n in DEVICE_COUNTS:
        if batch_size >= n:
            per = per_device_batch(batch_size, n)
            add(f"devices_{n}", f"{n} devices (data parallel)",
                training_budget(summary, batch_size=per, **opts),
                f"{per} instances per device; {format_bytes(budget.total_bytes)} on one device")
    advice.remedies = sorted(found, key=lambda r: -r.saved_bytes)
    return advice


@dataclass
class ComparisonRow:
    """One model in a comparison: per-instance costs and the training budget at a batch."""

    name: str
    params: int
    trainable_params: int
    macs: int
    flops: int
    activation_bytes: int  # every layer output, one instance, at the precision
    saved_activation_bytes: int  # kept for backprop, one instance
    budget_bytes: int
    batch_size: int
    precision: str
    optimizer: str
    uncounted: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dict(self.__dict__)


def compare(
    models_or_summaries: Iterable | Mapping,
    batch_size: int = 32,
    precision: str = "float32",
    optimizer="adam",
) -> list[ComparisonRow]:
    """One :class:`ComparisonRow` per model (a mapping's keys name the rows)."""
    items = (models_or_summaries.items() if isinstance(models_or_summaries, Mapping)
             else ((None, m) for m in models_or_summaries))
    rows = []
    for name, item in items:
        summary = as_summary(item)
        budget = training_budget(summary, batch_size=batch_size, precision=precision, optimizer=optimizer)
        per = activation_bytes_per_element(precision)
        rows.append(ComparisonRow(
            name=name or summary.name,
            params=summary.total_params,
            trainable_params=summary.trainable_params,
            macs=summary.macs,
            flops=summary.flops,
            activation_bytes=summary.activation_elements * per,
            saved_activation_bytes=summary.saved_elements * per,
            budget_bytes=budget.total_bytes,
            batch_size=batch_size,
            precision=budget.precision,
            optimizer=budget.optimizer,
            uncounted=len(summary.uncounted),
        ))
    return rows
