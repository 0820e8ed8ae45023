"""The schedule kind: how the learning rate changes during a run.

``--schedule NAME[:K=V,...]`` names one (``cosine:warmup=2``, ``step:every=10,factor=0.1``,
``plateau``).  The factory takes the schedule's parameters and returns a :class:`Schedule`; it
runs when the spec is resolved, before keras is imported, so it only stores its parameters.
cnnreg then asks it for

* :meth:`Schedule.learning_rate` — what the optimizer gets as ``learning_rate``, given the
  run's initial rate, steps per epoch and epochs of the phase: the rate itself (no change), or a
  ``keras.optimizers.schedules.LearningRateSchedule`` of the optimizer's step count, written
  with ``keras.ops`` (it runs inside the compiled step on every backend) and registered with
  ``keras.saving.register_keras_serializable`` so that checkpoints load in safe mode;
* :meth:`Schedule.callbacks` — Keras callbacks that change the rate between epochs
  (``ReduceLROnPlateau``).

Epochs are the natural unit: a schedule that works per epoch divides the step count by
``steps_per_epoch``.  A fine-tuning phase (``--fine-tune-epochs``) gets its own schedule of its
own length and rate.
"""

from __future__ import annotations

from typing import Any

from cnnreg.kinds import KindSpec, Labelled, Scaffold

__all__ = ["KIND", "Schedule"]


class Schedule(Labelled):
    """Base class: a constant learning rate. Subclasses override what they change."""

    #: One short line of plain text saying what this instance does, e.g. ``"cosine decay to 0,
    #: 2 warm-up epochs"``; the run header prints it.  Empty: the class name is shown.
    label: str = ""

    def learning_rate(self, initial: float, *, steps_per_epoch: int, epochs: int) -> Any:
        """The optimizer's ``learning_rate`` for a phase of ``epochs`` epochs of
        ``steps_per_epoch`` steps starting at ``initial``: a float or a Keras
        ``LearningRateSchedule``."""
        return initial



#: What ``cnnreg plugin new --kind schedule`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",  # lazy: imported when the schedule is built or shown
        summary="Linear decay from the initial rate to final × the rate over the phase",
    )
''',
    factories='''\
"""The schedule's factory: returns a cnnreg.Schedule (it only stores its parameters)."""

from typing import Annotated

from cnnreg.kinds.schedules import Schedule
from cnnreg.spec import Range


class LinearDecay(Schedule):
    def __init__(self, final: float) -> None:
        self.final = final
        self.label = f"linear decay to {final:g} × the rate"

    def learning_rate(self, initial, *, steps_per_epoch, epochs):
        import keras  # PolynomialDecay is Keras' own: checkpoints holding it load in safe mode

        return keras.optimizers.schedules.PolynomialDecay(
            initial, decay_steps=steps_per_epoch * epochs, end_learning_rate=initial * self.final, power=1.0)


def $name(final: Annotated[float, Range(0, 1)] = 0.0) -> Schedule:
    """Linear decay from the initial rate to ``final`` × the rate at the end of the phase."""
    return LinearDecay(final)
''',
    test='''

def test_the_rate_falls_linearly():
    import keras

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        schedule = cnnreg.build("schedule", "$name:final=0.1")
    rate = schedule.learning_rate(0.2, steps_per_epoch=10, epochs=5)
    at = lambda step: float(keras.ops.convert_to_numpy(rate(step)))
    assert abs(at(0) - 0.2) < 1e-6 and abs(at(25) - 0.11) < 1e-6 and abs(at(50) - 0.02) < 1e-6
''',
)


KIND = KindSpec(
    "schedule", "schedules", words=("lr-schedule", "lr_schedule", "sched"),
    contract=__name__,
    doc="""Add learning-rate schedules: the factory returns a :class:`cnnreg.kinds.schedules.Schedule`.

    ``learning_rate(initial, steps_per_epoch=..., epochs=...)`` gives the optimizer's rate (a
    float or a Keras ``LearningRateSchedule``); ``callbacks()`` gives Keras callbacks (plateau).
    See cnnreg.kinds.schedules for the contract.
    """,
    scaffold=SCAFFOLD,
)
