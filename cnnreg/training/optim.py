"""Optimizers, learning-rate schedules and gradient clipping, named by specs.

``--optimizer sgd:momentum=0.9,nesterov=true``, ``--schedule cosine:warmup=2``,
``--clip norm=1.0``.  They use the same spec grammar and checks as components (a private table,
not plugin kinds: Keras' optimizers are a closed set).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from cnnreg.errors import ParameterError, UnknownComponentError, choices_text
from cnnreg.registry import Component
from cnnreg.spec import FLOAT32_MAX, Range, parse, shown

Positive = Annotated[float, Range(0, None, min_inclusive=False)]
NonNegative = Annotated[float, Range(0, None)]
Beta = Annotated[float, Range(0, 1, max_inclusive=False)]


def sgd(learning_rate: Positive = 0.01, momentum: Beta = 0.0, nesterov: bool = False, weight_decay: NonNegative = 0.0):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""
    return "SGD", dict(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay or None)


def momentum(learning_rate: Positive = 0.01, momentum: Beta = 0.9, nesterov: bool = False):
    """SGD with momentum 0.9 (the lecture's SGD(momentum=0.9))."""
    return "SGD", dict(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov)


def nesterov(learning_rate: Positive = 0.01, momentum: Beta = 0.9):
    """SGD with Nesterov momentum."""
    return "SGD", dict(learning_rate=learning_rate, momentum=momentum, nesterov=True)


def adam(learning_rate: Positive = 0.001, beta_1: Beta = 0.9, beta_2: Beta = 0.999, epsilon: Positive = 1e-7, amsgrad: bool = False):
    """Adam (Kingma & Ba 2015)."""
    return "Adam", dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad)


def adamw(learning_rate: Positive = 0.001, weight_decay: NonNegative = 0.004, beta_1: Beta = 0.9, beta_2: Beta = 0.999):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""
    return "AdamW", dict(learning_rate=learning_rate, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2)


def nadam(learning_rate: Positive = 0.001, beta_1: Beta = 0.9, beta_2: Beta = 0.999):
    """Adam with Nesterov momentum (Dozat 2016)."""
    return "Nadam", dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)


def rmsprop(learning_rate: Positive = 0.001, rho: Beta = 0.9, momentum: Beta = 0.0, centered: bool = False):
    """RMSprop (Hinton 2012)."""
    return "RMSprop", dict(learning_rate=learning_rate, rho=rho, momentum=momentum, centered=centered)


def adagrad(learning_rate: Positive = 0.001):
    """Adagrad (Duchi et al. 2011)."""
    return "Adagrad", dict(learning_rate=learning_rate)


def adamax(learning_rate: Positive = 0.001):
    """Adamax (Kingma & Ba 2015)."""
    return "Adamax", dict(learning_rate=learning_rate)


def lion(learning_rate: Positive = 0.0001, beta_1: Beta = 0.9, beta_2: Beta = 0.99):
    """Lion (Chen et al. 2023)."""
    return "Lion", dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)


OPTIMIZERS = {f.__name__: f for f in (sgd, momentum, nesterov, adam, adamw, nadam, rmsprop, adagrad, adamax, lion)}

# --- schedules ----------------------------------------------------------------------------------


def constant(warmup: NonNegative = 0.0):
    """Constant learning rate (after an optional linear warm-up of ``warmup`` epochs)."""
    return {"kind": "constant", "warmup": warmup}


def cosine(warmup: NonNegative = 0.0, alpha: Annotated[float, Range(0, 1)] = 0.0):
    """Cosine decay to ``alpha`` × the initial rate over the run (Loshchilov & Hutter 2017)."""
    return {"kind": "cosine", "warmup": warmup, "alpha": alpha}


def step(every: Annotated[int, Range(1, None)] = 10, factor: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.1, warmup: NonNegative = 0.0):
    """Multiply the rate by ``factor`` every ``every`` epochs."""
    return {"kind": "step", "every": every, "factor": factor, "warmup": warmup}


def exponential(rate: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.9, warmup: NonNegative = 0.0):
    """Multiply the rate by ``rate`` each epoch (smoothly, per step)."""
    return {"kind": "exponential", "rate": rate, "warmup": warmup}


def plateau(factor: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.2, patience: Annotated[int, Range(1, None)] = 3, min_lr: NonNegative = 1e-6):
    """Divide the rate when validation loss stops improving (ReduceLROnPlateau)."""
    return {"kind": "plateau", "factor": factor, "patience": patience, "min_lr": min_lr}


SCHEDULES = {f.__name__: f for f in (constant, cosine, step, exponential, plateau)}


def _resolve(table: dict, what: str, text: str) -> tuple[str, dict[str, Any], Any]:
    spec = parse(text)
    key = spec.name.lower()
    if key not in table:
        raise UnknownComponentError(f"unknown {what} '{spec.name}'" + choices_text(spec.name, table))
    component = Component(kind=what, name=key, factory=table[key], provider="keras", provider_version="", plugin="cnnreg")
    params = component.resolve(spec.params)
    return key, params, table[key](**params)


def resolve_optimizer(text: str, *, lr: float | None = None) -> tuple[str, dict[str, Any]]:
    """``"sgd:momentum=0.9"`` → ``("SGD", kwargs)``; ``lr`` overrides the learning rate."""
    _, _, (cls, kwargs) = _resolve(OPTIMIZERS, "optimizer", text)
    if lr is not None:
        check_rate(lr, "--lr")
        kwargs["learning_rate"] = lr
    return cls, {k: v for k, v in kwargs.items() if v is not None}


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


def resolve_schedule(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    _, _, params = _resolve(SCHEDULES, "learning-rate schedule", text)
    return params


def parse_clip(text: str | None) -> dict[str, float]:
    """``value=X`` → clipvalue, ``norm=X`` → clipnorm (per tensor), ``global_norm=X``."""
    if not text:
        return {}
    modes = {"value": "clipvalue", "norm": "clipnorm", "global_norm": "global_clipnorm"}
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


def make_optimizer(name: str, kwargs: dict[str, Any], *, clip: dict[str, float], schedule: dict[str, Any] | None, steps_per_epoch: int, epochs: int):
    """The Keras optimizer, with clipping and the learning-rate schedule applied."""
    import keras

    kwargs = dict(kwargs)
    if schedule is not None and schedule["kind"] != "plateau":
        kwargs["learning_rate"] = schedule_class()(
            initial=float(kwargs["learning_rate"]), steps_per_epoch=steps_per_epoch, epochs=epochs, **schedule
        )
    return getattr(keras.optimizers, name)(**kwargs, **clip)


_SCHEDULE_CLASS = None


def schedule_class():
    """The Keras schedule class (defined on first use so that keras loads only for training;
    call it before loading a saved model so that Keras can deserialise the schedule)."""
    global _SCHEDULE_CLASS
    if _SCHEDULE_CLASS is None:
        _SCHEDULE_CLASS = _define_schedule_class()
    return _SCHEDULE_CLASS


def _define_schedule_class():
    import keras

    @keras.saving.register_keras_serializable(package="cnnreg", name="EpochSchedule")
    class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
        """Constant / cosine / step / exponential decay in epochs, with linear warm-up."""

        def __init__(self, initial, steps_per_epoch, epochs, kind="constant", warmup=0.0, alpha=0.0, every=10, factor=0.1, rate=0.9):
            self.initial, self.steps_per_epoch, self.epochs = float(initial), int(steps_per_epoch), int(epochs)
            self.kind, self.warmup, self.alpha = kind, float(warmup), float(alpha)
            self.every, self.factor, self.rate = int(every), float(factor), float(rate)

        def __call__(self, step):
            ops = keras.ops
            epoch = ops.cast(step, "float32") / float(self.steps_per_epoch)
            warm = ops.minimum(1.0, (epoch + 1.0 / self.steps_per_epoch) / self.warmup) if self.warmup > 0 else 1.0
            if self.kind == "cosine":
                span = max(self.epochs - self.warmup, 1e-9)
                progress = ops.clip((epoch - self.warmup) / span, 0.0, 1.0)
                decayed = self.alpha + (1 - self.alpha) * 0.5 * (1 + ops.cos(math.pi * progress))
            elif self.kind == "step":
                decayed = ops.power(self.factor, ops.floor(epoch / self.every))
            elif self.kind == "exponential":
                decayed = ops.power(self.rate, epoch)
            else:
                decayed = 1.0
            return self.initial * warm * decayed

        def get_config(self):
            return dict(initial=self.initial, steps_per_epoch=self.steps_per_epoch, epochs=self.epochs, kind=self.kind,
                        warmup=self.warmup, alpha=self.alpha, every=self.every, factor=self.factor, rate=self.rate)

    return EpochSchedule


#: Slot variables per trainable weight, for the memory budget (cnnreg.analysis uses its own table;
#: this maps optimizer specs onto its names).
def budget_name(name: str, kwargs: dict[str, Any]) -> str:
    if name == "SGD":
        return "momentum" if kwargs.get("momentum") else "sgd"
    return name.lower()
