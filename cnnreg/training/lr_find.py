"""The learning-rate range test (Smith 2017): ``cnnreg lr-find`` and ``cnnreg run --lr auto``.

From the run's initial weights, train on the run's own training batches while the learning rate
grows exponentially from ``start`` to ``end`` over ``steps`` steps; record each step's loss, smooth
it, and stop once the smoothed loss exceeds four times its minimum (or the loss is not finite).
The model's variables (weights, BatchNorm statistics, random-seed states) and the global random
states are put back afterwards, so the run trains from exactly the weights it would have had.

The anchors are fastai's ``Learner.lr_find`` and Lightning's ``Tuner.lr_find``; cnnreg follows
them where they agree:

* the rate of step ``i`` is ``start * (end / start) ** (i / (steps - 1))`` (both ends included);
  the loss recorded for it is the loss of that step's batch, computed in the forward pass that
  the step's update follows (as both do);
* smoothing is an exponential moving average with bias correction, ``β = 0.98``:
  ``a_i = β a_{i-1} + (1 - β) loss_i``, ``smoothed_i = a_i / (1 - β^(i+1))``;
* the sweep stops when ``smoothed_i > 4 × min(smoothed_0..i)`` (that step is recorded) or when the
  loss is NaN or infinite (that step is not);
* the suggestion is the steepest descent of the smoothed loss against ``log10(lr)`` (fastai's
  ``steep``; Lightning's default), with central differences (``numpy.gradient``), looked for
  after the first tenth of the planned steps (early points are hardly smoothed) and before the
  point that stopped the sweep.  The rate at the smoothed loss's minimum, divided by 10, is
  reported too (fastai's ``minimum``).

With ``β = 0.98`` the smoothed curve lags the raw losses (about ``β / (1 - β)`` = 49 steps for a
steady trend), which shifts the steepest point of the smoothed curve to higher rates than the
raw losses' own; that bias is part of the recipe the anchors publish, and it is kept.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from cnnreg import files
from cnnreg.errors import CnnregError, ParameterError

DEFAULT_START = 1e-7
DEFAULT_END = 10.0
DEFAULT_STEPS = 100
MIN_STEPS, MAX_STEPS = 10, 1000
BETA = 0.98
DIVERGE = 4.0
METHOD = "steepest descent of the smoothed loss"


@dataclass
class LRFind:
    """The outcome of a range test: the rates tried, their losses and the suggestions."""

    start: float
    end: float
    max_steps: int
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    #: ``"diverged"`` (smoothed loss above 4 × its minimum), ``"not finite"`` (NaN or Inf), or None
    stop_reason: str | None = None
    #: the rate at which the loss stopped being finite (``stop_reason == "not finite"``)
    stop_lr: float | None = None
    suggested_index: int | None = None
    min_index: int | None = None
    #: why there is no suggestion, when there is none
    problem: str = ""
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.lrs)

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason is not None

    @property
    def suggested_lr(self) -> float | None:
        return None if self.suggested_index is None else self.lrs[self.suggested_index]

    @property
    def min_loss_lr(self) -> float | None:
        return None if self.min_index is None else self.lrs[self.min_index]

    @property
    def min_over_10(self) -> float | None:
        return None if self.min_index is None else self.lrs[self.min_index] / 10

    @property
    def at_end(self) -> bool:
        """The loss was still lowest at the last rate tried: the range ended too soon."""
        return self.stop_reason is None and self.min_index == self.steps - 1

    def summary(self) -> dict[str, Any]:
        """The suggestion and how it was found, without the curves (the manifest's ``lr_find``)."""
        return {
            "suggested_lr": self.suggested_lr, "min_loss_lr": self.min_loss_lr, "min_over_10": self.min_over_10,
            "min_loss": None if self.min_index is None else self.smoothed[self.min_index],
            "method": METHOD, "start": self.start, "end": self.end, "max_steps": self.max_steps, "steps": self.steps,
            "stopped_early": self.stopped_early, "stop_reason": self.stop_reason, "at_end": self.at_end,
            "beta": BETA, "diverge": DIVERGE,
            "seconds": round(self.seconds, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        """:meth:`summary` and the curves (``cnnreg lr-find --json``)."""
        return {**self.summary(), "lrs": list(self.lrs), "losses": list(self.losses), "smoothed": list(self.smoothed),
                "suggested_index": self.suggested_index, "min_index": self.min_index, "problem": self.problem or None}


# --- the sweep, without keras -------------------------------------------------------------------


def check_sweep(start: Any, end: Any, steps: Any) -> tuple[float, float, int]:
    """The sweep's bounds and length, checked: one line each for a mistake."""
    from cnnreg.training.optim import check_rate

    start = check_rate(start, "--start")
    end = check_rate(end, "--end")
    if not end > start:
        raise ParameterError(f"--end must be larger than --start (got --start {start:g}, --end {end:g})")
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise ParameterError(f"--steps must be an integer (got {steps!r})")
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ParameterError(f"--steps must be from {MIN_STEPS} to {MAX_STEPS} (got {steps}); "
                             f"the range test takes a few hundred steps at most (default {DEFAULT_STEPS})")
    return start, end, steps


def schedule(start: float, end: float, steps: int) -> list[float]:
    """``steps`` rates growing geometrically from ``start`` to ``end``, both included."""
    ratio = math.log(end / start)
    return [start * math.exp(ratio * i / (steps - 1)) for i in range(steps)]


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """Exponential moving average with bias correction (fastai's and Lightning's smoothing)."""
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return out


def sweep(step: Callable[[float], float], lrs: list[float], *, beta: float = BETA, diverge: float = DIVERGE,
          progress: Callable[[int, int], None] | None = None) -> tuple[list[float], list[float], str | None]:
    """Call ``step(lr)`` (one training step at ``lr``, returning its loss) for each rate until
    the smoothed loss passes ``diverge`` × its minimum or a loss is not finite.  Returns the
    raw losses, the smoothed ones and the reason it stopped early (None when it did not)."""
    losses: list[float] = []
    average, best = 0.0, math.inf
    smoothed: list[float] = []
    for i, lr in enumerate(lrs):
        loss = float(step(lr))
        if not math.isfinite(loss):
            return losses, smoothed, "not finite"
        losses.append(loss)
        average = beta * average + (1 - beta) * loss
        value = average / (1 - beta ** (i + 1))
        smoothed.append(value)
        best = min(best, value)
        if progress is not None:
            progress(i + 1, len(lrs))
        if value > diverge * best:
            return losses, smoothed, "diverged"
    return losses, smoothed, None


def suggest(lrs: list[float], smoothed: list[float], *, max_steps: int, stopped_early: bool) -> tuple[int | None, int | None, str]:
    """``(steepest index, minimum index, problem)``: the steepest descent of the smoothed loss
    against log10(lr), and its minimum, looked for from ``max_steps // 10`` on and before the
    point that stopped the sweep; ``problem`` says why an index is None."""
    n = len(smoothed)
    first, last = max(1, max_steps // 10), n - 1 if stopped_early else n
    if last - first < 2:
        return None, None, (f"the sweep stopped after {n} of {max_steps} steps, too few to suggest a rate "
                            f"(the first {first} are not used); lower the end of the range or take more steps")
    values = np.asarray(smoothed, dtype="float64")
    slope = np.gradient(values, np.log10(np.asarray(lrs, dtype="float64")))
    window = slice(first, last)
    steepest = first + int(np.argmin(slope[window]))
    lowest = first + int(np.argmin(values[window]))
    if not slope[steepest] < 0 or not values[lowest] < values[first]:
        return None, lowest, "the smoothed loss never fell during the sweep; raise the end of the range"
    return steepest, lowest, ""


# --- on a model ---------------------------------------------------------------------------------


def range_test(plan, *, start: float = DEFAULT_START, end: float = DEFAULT_END, steps: int = DEFAULT_STEPS,
               progress: Callable[[int, int], None] | None = None) -> LRFind:
    """Run the range test on a prepared plan (:func:`cnnreg.training.model.prepare`): the run's
    architecture, initial weights, optimizer (without its schedule), clipping, regularisers and
    training batches.  The model and the global random states are left as they were."""
    from cnnreg import backends
    from cnnreg.training import model as model_module
    from cnnreg.training import steps as steps_module
    from cnnreg.training.model import compile_model

    start, end, steps = check_sweep(start, end, steps)
    model = plan.model
    lrs = schedule(start, end, steps)
    result = LRFind(start=start, end=end, max_steps=steps)
    saved = _snapshot(model)
    began = time.perf_counter()
    try:
        if plan.config.freeze_base:  # as the run's first phase: the new head only
            model_module.set_base_trainable(model, False)
        compile_model(plan, model, learning_rate=start, schedule=False)
        steps_module.install_step_transforms(plan, model)
        batches = _batches(plan)
        optimizer = model.optimizer

        def step(lr: float) -> float:
            optimizer.learning_rate = lr
            x, y = next(batches)
            logs = model.train_on_batch(x, y, class_weight=plan.class_weights, return_dict=True)
            return float(logs["loss"])

        losses, smoothed, reason = sweep(step, lrs, progress=progress)
    finally:
        backends.unwrap_train_step(model)
        _restore(model, saved)
    result.seconds = time.perf_counter() - began
    result.lrs, result.losses, result.smoothed, result.stop_reason = lrs[: len(losses)], losses, smoothed, reason
    if reason == "not finite":
        result.stop_lr = lrs[len(losses)]
    result.suggested_index, result.min_index, result.problem = suggest(
        result.lrs, smoothed, max_steps=steps, stopped_early=reason == "diverged")
    return result


def _snapshot(model) -> dict[str, Any]:
    """Every variable of the model (weights, BatchNorm statistics, seed generators' states),
    each layer's ``trainable`` flag, and the global random states (Python, NumPy, Keras'
    global seed generator, torch's), so that the run after the test is the run without it."""
    import keras

    state: dict[str, Any] = {
        "variables": [(v, keras.ops.convert_to_numpy(v.value)) for v in model.variables],
        "trainable": [(layer, layer.trainable) for layer in _layers(model)],
        "python": random.getstate(), "numpy": np.random.get_state(),
    }
    found = _global_seed_generator()
    if found is not None:
        global_state, key = found
        generator = state["seed_generator"] = global_state.get_global_attribute(key)
        if generator is not None:
            state["seed_state"] = keras.ops.convert_to_numpy(generator.state.value)
    if keras.backend.backend() == "torch":
        import torch

        state["torch"] = torch.get_rng_state()
    return state


def _restore(model, state: dict[str, Any]) -> None:
    for layer, trainable in state["trainable"]:  # parents first: setting one sets its children
        if layer.trainable != trainable:
            layer.trainable = trainable
    for variable, value in state["variables"]:
        variable.assign(value)
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    found = _global_seed_generator()
    if found is not None and "seed_generator" in state:
        global_state, key = found
        generator = state["seed_generator"]
        global_state.set_global_attribute(key, generator)
        if generator is not None:
            generator.state.assign(state["seed_state"])
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])


def _global_seed_generator():
    """``(global_state module, key)`` of Keras' global seed generator (what ``keras.random``
    draws from without a seed), or None where this Keras has no such private attribute."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator

        return global_state, seed_generator.GLOBAL_SEED_GENERATOR
    except (ImportError, AttributeError):
        return None


def _layers(model):
    from cnnreg.training.model import iter_layers

    return [model, *iter_layers(model)]


def _batches(plan) -> Iterator[tuple[Any, Any]]:
    """The run's training batches (augmented, transformed, preprocessed, one-hot), full ones
    only, epoch after epoch: NumPy splits in a seeded order of their own, the others as the
    run's input pipeline makes them."""
    import keras

    from cnnreg.training.batches import plain_arrays, training_data

    size = plan.config.batch_size
    arrays = plain_arrays(plan)
    if arrays is not None:
        x, y = arrays
        whole = max(1, len(y) // size) * size  # a split smaller than a batch: one batch of it all
        for epoch in range(2**31):
            order = np.random.default_rng([plan.config.seed, epoch, 1]).permutation(len(y))[:whole]
            for i in range(0, len(order), size):
                rows = np.sort(order[i : i + size])
                yield x[rows], y[rows]
        return
    source = training_data(plan)["x"]
    if isinstance(source, keras.utils.PyDataset):
        while True:
            count = len(source)
            for i in range(count):
                x, y = source[i][:2]
                if len(y) == size or count == 1:
                    yield x, y
            source.on_epoch_end()
    else:  # a tf.data dataset (epoch after epoch already, or repeated here)
        while True:
            found = False
            for batch in source:
                x, y = np.asarray(batch[0]), np.asarray(batch[1])
                if len(y) == size or plan.steps_per_epoch == 1:
                    found = True
                    yield x, y
            if not found:
                raise CnnregError(f"the training split of {plan.config.dataset} gave no batch for the range test")


# --- cnnreg run --lr auto -----------------------------------------------------------------------


def choose_lr(plan, *, progress: Callable[[int, int], None] | None = None) -> LRFind:
    """``--lr auto``: run the range test with the defaults and make its suggestion the run's
    learning rate (config, optimizer and the manifest's ``lr_find``), so that ``rerun`` and
    ``resume`` use the number found rather than search again.  No suggestion is one line."""
    result = range_test(plan, progress=progress)
    if result.suggested_lr is None:
        raise CnnregError(f"--lr auto: no learning rate found: {result.problem}; see `cnnreg lr-find "
                          f"{plan.config.architecture} --out DIR` and give --lr yourself")
    lr = float(f"{result.suggested_lr:.3g}")  # three significant digits: what is shown is what is used
    plan.optimizer.params["learning_rate"] = lr
    plan.config.lr = lr
    plan.lr_find = {**result.summary(), "lr": lr}
    plan.lr_find_result = result
    return result


def describe(result: LRFind) -> str:
    """One line: the sweep and its suggestions."""
    last = result.lrs[-1] if result.lrs else result.start
    text = f"range test: {result.steps} of {result.max_steps} steps, lr {result.start:.3g} to {last:.3g}"
    if result.stop_reason == "diverged":
        text += " (stopped: the loss diverged)"
    elif result.stop_reason == "not finite":
        text += f" (stopped: the loss was not finite at lr {result.stop_lr:.3g})"
    text += f", {result.seconds:.1f} s: "
    if result.suggested_lr is not None:
        text += f"steepest descent at lr {result.suggested_lr:.3g}"
    else:
        text += f"no suggestion ({result.problem})"
    if result.min_index is not None:
        text += f"; minimum loss {result.smoothed[result.min_index]:.4g} at lr {result.min_loss_lr:.3g} (/10: {result.min_over_10:.3g})"
    if result.at_end:
        text += "; the loss was still falling at the end of the range (a larger end may suggest more)"
    return text


# --- the plot -----------------------------------------------------------------------------------


def plot(result: LRFind, path: Path, *, title: str) -> None:
    """``lr_find.png``: raw and smoothed loss against the rate (log scale), the suggestion and the
    minimum / 10 marked; written atomically."""
    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend


    fig = Figure(figsize=(8, 5), dpi=100)
    ax = fig.subplots()
    if result.lrs:
        ax.plot(result.lrs, result.losses, color="0.7", linewidth=1, label="loss per step")
        ax.plot(result.lrs, result.smoothed, color="C0", linewidth=2, label=f"smoothed (EMA, β = {BETA})")
        # up to the minimum (as fastai leaves the last points out): the divergence would flatten the rest
        shown = slice(0, (result.min_index if result.min_index is not None else result.steps - 1) + 1)
        low = min(min(result.losses[shown]), min(result.smoothed[shown]))
        high = max(max(result.smoothed[shown]), result.losses[0])
        ax.set_ylim(max(0.0, low - 0.1 * (high - low)), high + 0.25 * (high - low) + 1e-12)
    if result.suggested_index is not None:
        i = result.suggested_index
        ax.axvline(result.lrs[i], color="C3", linestyle="--", linewidth=1)
        ax.plot([result.lrs[i]], [result.smoothed[i]], "o", color="C3", markersize=9,
                label=f"suggested (steepest descent): {result.lrs[i]:.3g}")
    if result.min_index is not None:
        i = result.min_index
        ax.plot([result.lrs[i]], [result.smoothed[i]], "v", color="C2", markersize=9,
                label=f"minimum of the smoothed loss: {result.lrs[i]:.3g}")
        ax.axvline(result.lrs[i] / 10, color="C2", linestyle=":", linewidth=1.5, label=f"minimum / 10: {result.lrs[i] / 10:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    stop = {"diverged": "; stopped: diverged", "not finite": "; stopped: loss not finite"}.get(result.stop_reason or "", "")
    ax.set_title(f"{title}\n{result.steps} of {result.max_steps} steps{stop}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    files.save_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
