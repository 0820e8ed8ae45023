"""Built-in plugin: learning-rate schedules (kind ``schedule``).

``constant``, ``cosine``, ``step`` and ``exponential`` change the rate with the optimizer's step
count, in epochs, after an optional linear warm-up of ``warmup`` epochs: one Keras schedule,
:class:`cnnreg.builtin.schedules.epoch.EpochSchedule`, registered as ``cnnreg>EpochSchedule`` so
that checkpoints load in Keras' safe mode.  ``plateau`` divides the rate when the validation loss
stops improving (Keras' ``ReduceLROnPlateau``).  The contract: :mod:`cnnreg.kinds.schedules`.
"""

from __future__ import annotations

from typing import Annotated, Any

from cnnreg.hookspecs import hookimpl
from cnnreg.kinds.schedules import Schedule
from cnnreg.spec import Range

NonNegative = Annotated[float, Range(0, None)]
#: The module that defines the Keras schedule class (imported before a checkpoint loads).
KERAS_OBJECTS = "cnnreg.builtin.schedules.epoch"


class EpochDecay(Schedule):
    """A rate that follows the optimizer's step count: :class:`~cnnreg.builtin.schedules.epoch.EpochSchedule`."""

    def __init__(self, kind: str, label: str, **settings: float) -> None:
        self.kind, self.label, self.settings = kind, label, settings

    def learning_rate(self, initial: float, *, steps_per_epoch: int, epochs: int) -> Any:
        from cnnreg.builtin.schedules.epoch import EpochSchedule

        return EpochSchedule(initial=float(initial), steps_per_epoch=steps_per_epoch, epochs=epochs, kind=self.kind,
                             **self.settings)


class Plateau(Schedule):
    """Keras' ``ReduceLROnPlateau`` on the validation loss."""

    def __init__(self, factor: float, patience: int, min_lr: float) -> None:
        self.factor, self.patience, self.min_lr = factor, patience, min_lr
        self.label = f"divide by {1 / factor:g} after {patience} epochs without a better validation loss"

    def callbacks(self) -> list[Any]:
        import keras

        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=self.factor, patience=self.patience,
                                                  min_lr=self.min_lr)]


def _warm(warmup: float) -> str:
    return f", {warmup:g} warm-up epochs" if warmup else ""


def constant(warmup: NonNegative = 0.0) -> Schedule:
    """Constant learning rate (after an optional linear warm-up of ``warmup`` epochs)."""
    return EpochDecay("constant", "constant" + _warm(warmup), warmup=warmup)


def cosine(warmup: NonNegative = 0.0, alpha: Annotated[float, Range(0, 1)] = 0.0) -> Schedule:
    """Cosine decay to ``alpha`` × the initial rate over the run (Loshchilov & Hutter 2017)."""
    return EpochDecay("cosine", f"cosine decay to {alpha:g} × the rate" + _warm(warmup), warmup=warmup, alpha=alpha)


def step(every: Annotated[int, Range(1, None)] = 10, factor: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.1,
         warmup: NonNegative = 0.0) -> Schedule:
    """Multiply the rate by ``factor`` every ``every`` epochs."""
    return EpochDecay("step", f"× {factor:g} every {every} epochs" + _warm(warmup), every=every, factor=factor,
                      warmup=warmup)


def exponential(rate: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.9, warmup: NonNegative = 0.0) -> Schedule:
    """Multiply the rate by ``rate`` each epoch (smoothly, per step)."""
    return EpochDecay("exponential", f"× {rate:g} per epoch" + _warm(warmup), rate=rate, warmup=warmup)


def plateau(factor: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.2, patience: Annotated[int, Range(1, None)] = 3,
            min_lr: NonNegative = 1e-6) -> Schedule:
    """Divide the rate when validation loss stops improving (ReduceLROnPlateau)."""
    return Plateau(factor, patience, min_lr)


@hookimpl
def register_schedules(registry) -> None:
    """Register the built-in schedules."""
    for factory in (constant, cosine, step, exponential):
        registry.add(factory.__name__, factory, keras_objects=KERAS_OBJECTS)
    registry.add("plateau", plateau, aliases=("reduce_on_plateau",))
