"""The cost model's view of a run, for its header: MACs, memory budget against the device."""

from __future__ import annotations

from typing import Any

from cnnreg.training import optim


def budget_optimizer(plan):
    """The run's optimizer as the memory budget counts it: a new instance (its state per weight
    is what the budget needs), without the schedule.  It is made outside the run's distribution:
    on several JAX processes a distributed variable is a collective that only process 0 (which
    shows the header) would take part in."""
    import keras

    rate = 1e-3 if plan.optimizer.params["learning_rate"] == "auto" else None
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        return optim.make_optimizer(plan.optimizer, clip=plan.clip, steps_per_epoch=plan.steps_per_epoch,
                                    epochs=plan.config.epochs, learning_rate=rate)
    finally:
        keras.distribution.set_distribution(previous)


def run_budget(plan) -> tuple[Any, Any]:
    """``(summary, budget)`` of the planned model at the run's batch size and precision."""
    import warnings

    from cnnreg.analysis import summarize, training_budget

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = summarize(plan.model, precision=plan.config.precision)
    plan.warnings.extend(str(w.message) for w in caught if "uncounted" in str(w.message).lower())
    budget = training_budget(
        summary, batch_size=plan.config.batch_size, precision=plan.config.precision,
        optimizer=budget_optimizer(plan), frozen="base" if plan.config.freeze_base else None,
    )
    return summary, budget


def run_costs(plan) -> list[tuple[str, str]]:
    """Header rows: MACs per instance, estimated training memory vs the device's memory."""
    from cnnreg import backends
    from cnnreg.analysis import format_mib, max_batch_size

    summary, budget = run_budget(plan)
    rows = [("cost", f"{summary.macs / 1e6:,.1f} M MACs per image ({2 * summary.macs / 1e6:,.1f} M FLOPs)")]
    memory = f"~{format_mib(budget.total_bytes)} for a training step at batch {plan.config.batch_size}"
    devices = backends.devices()
    device_bytes = next((d["memory_bytes"] for d in devices if d.get("memory_bytes")), None)
    if device_bytes:
        memory += f" of {format_mib(device_bytes)} on {devices[0]['name']}"
        if budget.total_bytes > device_bytes:
            fits = max_batch_size(summary, device_bytes, precision=plan.config.precision,
                                  optimizer=budget_optimizer(plan))
            plan.warnings.append(
                f"the estimated {format_mib(budget.total_bytes)} exceed the device's {format_mib(device_bytes)}; "
                f"the largest batch that fits is about {fits} (see `cnnreg estimate`)"
            )
    rows.append(("memory", memory))
    suggestion = mixed_precision_suggestion(devices, plan.config.precision)
    if suggestion:
        plan.notes.append(suggestion)
    return rows


def mixed_precision_suggestion(devices: list[dict[str, Any]], precision: str) -> str | None:
    """Suggest 16-bit training on a GPU with tensor cores when the run uses float32:
    bfloat16 from compute capability 8.0 (Ampere), float16 from 7.0 (Volta)."""
    if precision != "float32":
        return None
    for device in devices:
        capability = device.get("compute_capability")
        if not capability:
            continue
        if tuple(capability) >= (8, 0):
            return (f"{device['name']} computes in bfloat16 on its tensor cores: --precision mixed_bfloat16 "
                    "roughly halves activation memory and usually speeds training up")
        if tuple(capability) >= (7, 0):
            return (f"{device['name']} computes in float16 on its tensor cores: --precision mixed_float16 "
                    "roughly halves activation memory and usually speeds training up")
    return None
