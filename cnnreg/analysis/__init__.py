"""Model analysis: layer tables, MACs, activation and parameter bytes, training-memory budgets.

Light on import (no keras until a function runs on a model)::

    from cnnreg.analysis import summarize, training_budget, max_batch_size, oom_remedies
    s = summarize(model)                       # rows + totals; s.macs, s.flops, s.uncounted
    b = training_budget(s, batch_size=32, precision="mixed_float16", optimizer="adam")
    max_batch_size(s, "80GiB")

Conventions: MACs = multiply-accumulates, FLOPs = 2 × MACs; MB = 10^6 bytes, MiB = 2^20 bytes.
The rules and the memory model are documented in docs/cost-model.md.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "summarize": "summary",
    "ModelSummary": "summary",
    "LayerRow": "summary",
    "UncountedLayerWarning": "summary",
    "LayerCost": "costs",
    "layer_cost": "costs",
    "RULES": "costs",
    "training_budget": "memory",
    "max_batch_size": "memory",
    "optimizer_slots": "memory",
    "Budget": "memory",
    "BudgetTerm": "memory",
    "Workspace": "memory",
    "DEFAULT_WORKSPACE": "memory",
    "OPTIMIZER_SLOTS": "memory",
    "compiled_plan": "compiled",
    "compiled_max_batch": "compiled",
    "CompiledPlan": "compiled",
    "StepPlanner": "compiled",
    "oom_remedies": "advice",
    "OomAdvice": "advice",
    "Remedy": "advice",
    "compare": "advice",
    "ComparisonRow": "advice",
    "parse_memory": "units",
    "format_bytes": "units",
    "format_mb": "units",
    "format_mib": "units",
    "PRECISIONS": "units",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
