"""A run's optimizer, learning-rate schedule and gradient clipping.

``--optimizer sgd:momentum=0.9,nesterov=true`` and ``--schedule cosine:warmup=2`` name components
of the kinds ``optimizer`` and ``schedule`` (:mod:`cnnreg.kinds.optimizers`,
:mod:`cnnreg.kinds.schedules`), resolved through the registry like every other component;
``--clip norm=1.0`` is Keras' own gradient clipping, set on whatever optimizer the component
builds.  ``--lr`` replaces the optimizer's learning rate.
"""

from __future__ import annotations

from typing import Any

from cnnreg.errors import ParameterError, PluginError, choices_text
from cnnreg.kinds.optimizers import CLIP_MODES, apply_clipping
from cnnreg.spec import FLOAT32_MAX, shown


def resolve_optimizer(registry, text: str, *, lr: float | None = None):
    """The optimizer ``text`` names, with its checked parameters, as a
    :class:`cnnreg.training.config.Resolved` whose ``params["learning_rate"]`` is the run's rate:
    ``lr`` (``--lr``) when given, else the spec's, else the factory's default."""
    from cnnreg.training.config import Resolved

    component, params = registry.resolve("optimizer", text)
    declared = {p.name: p for p in component.parameters()}
    rate = declared.get("learning_rate")
    if rate is None or (rate.required and lr is None and "learning_rate" not in params):
        raise PluginError(f"optimizer '{component.name}' from {component.provider} must take a learning_rate "
                          "parameter with a default (see cnnreg.kinds.optimizers)")
    if lr is not None:
        first = check_rate(lr, "--lr")
    else:
        first = params.get("learning_rate", rate.default)
    return Resolved(component, {"learning_rate": first, **{k: v for k, v in params.items() if k != "learning_rate"}})


def resolve_schedule(registry, text: str | None):
    """``(Resolved, Schedule)`` for ``--schedule``, or None when there is none; a factory that
    does not return a :class:`cnnreg.kinds.schedules.Schedule` is one line."""
    if not text:
        return None
    from cnnreg.kinds.schedules import Schedule
    from cnnreg.training.config import Resolved

    component, params = registry.resolve("schedule", text)
    made = component.load()(**params)
    if not isinstance(made, Schedule):
        raise PluginError(f"schedule '{component.name}' from {component.provider} returned {type(made).__name__}, "
                          "not a cnnreg.kinds.schedules.Schedule (see docs/plugins.md)")
    return Resolved(component, params), made


def check_rate(value: Any, option: str) -> float:
    """A learning rate: a finite number > 0 (inf trains to NaN within a few steps), within
    float32's range (what the optimizer computes in)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{option} must be a number > 0 (got {shown(value)})")
    if not -FLOAT32_MAX <= value <= FLOAT32_MAX:  # nan fails this too
        raise ParameterError(f"{option} must be a finite number > 0 (got {shown(value)})")
    if not value > 0:
        raise ParameterError(f"{option} must be > 0 (got {shown(value)})")
    return float(value)


def parse_clip(text: str | None) -> dict[str, float]:
    """``value=X`` → clipvalue, ``norm=X`` → clipnorm (per tensor), ``global_norm=X``."""
    if not text:
        return {}
    modes = CLIP_MODES
    mode, sep, value = text.partition("=")
    mode = mode.strip().lower()
    if mode not in modes:
        raise ParameterError(f"--clip: unknown mode '{shown(mode)}'" + choices_text(mode, modes) + "; write MODE=VALUE, e.g. norm=1.0")
    if not sep or not value.strip():
        raise ParameterError(f"--clip {mode} needs a value, e.g. --clip {mode}=1.0")
    try:
        number = float(value)
    except ValueError:
        raise ParameterError(f"--clip {mode} must be a number (got '{shown(value)}')") from None
    # inf is no clipping (leave --clip out for that), and norm clipping by inf divides inf by inf
    if not -FLOAT32_MAX <= number <= FLOAT32_MAX:  # nan fails this too
        raise ParameterError(f"--clip {mode} must be a finite number > 0 (got {shown(value.strip())})")
    if not number > 0:
        raise ParameterError(f"--clip {mode} must be > 0 (got {shown(value.strip())})")
    return {modes[mode]: number}


def make_optimizer(optimizer, *, clip: dict[str, float], schedule: Any = None, steps_per_epoch: int, epochs: int,
                   learning_rate: float | None = None):
    """A new Keras optimizer from the resolved ``optimizer`` component: its learning rate
    (``learning_rate`` when given) through ``schedule`` (a :class:`cnnreg.kinds.schedules.Schedule`,
    or None), and Keras' clipping ``clip``."""
    import keras

    params = dict(optimizer.params)
    rate = float(params["learning_rate"] if learning_rate is None else learning_rate)
    params["learning_rate"] = rate if schedule is None else schedule.learning_rate(
        rate, steps_per_epoch=steps_per_epoch, epochs=epochs)
    component = optimizer.component
    made = component.load()(**params)
    if not isinstance(made, keras.optimizers.Optimizer):
        raise PluginError(f"optimizer '{component.name}' from {component.provider} returned {type(made).__name__}, "
                          "not a keras.optimizers.Optimizer (see cnnreg.kinds.optimizers)")
    return apply_clipping(made, clip)
