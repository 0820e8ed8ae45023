"""The optimizer kind: a factory that returns a ``keras.optimizers.Optimizer``.

``--optimizer NAME[:K=V,...]`` names one (``sgd:momentum=0.9``, ``adamw``, a plugin's
``lookahead:inner=adam``).  The factory's contract:

* it takes ``learning_rate``, with the optimizer's own default (``sgd`` 0.01, ``adam`` 0.001):
  the rate cnnreg passes is the spec's, else ``--lr``, else the one ``--lr auto`` found, else
  that default; with ``--schedule`` it is a ``keras.optimizers.schedules.LearningRateSchedule``
  made from that rate (:mod:`cnnreg.kinds.schedules`), so pass it on to Keras as it is;
* every other parameter is the user's, checked against the signature like any component's;
* it returns a new optimizer on every call (a transfer run builds one per phase, ``lr-find`` its
  own), built from Keras 3 only so it runs on every backend; keras is imported inside it.

cnnreg applies ``--clip`` to the optimizer it gets back with Keras' own attributes
(:func:`apply_clipping`: ``clipnorm``, ``clipvalue``, ``global_clipnorm``), so a factory need not
know about clipping.  An optimizer that wraps another (Lookahead, SAM) takes the inner one's spec
as a parameter and builds it through the registry (``cnnreg.build("optimizer", inner,
learning_rate=...)``); it must be a ``keras.optimizers.Optimizer`` registered with
``keras.saving.register_keras_serializable`` so that checkpoints load in Keras' safe mode.

The memory budget (``cnnreg summary --batch``, ``estimate``) counts the optimizer's state per
trainable weight from the optimizer itself (:func:`cnnreg.analysis.memory.optimizer_slots`).
"""

from __future__ import annotations

from typing import Any

from cnnreg.kinds import KindSpec, Scaffold

__all__ = ["KIND", "CLIP_MODES", "apply_clipping"]

#: ``--clip MODE=VALUE`` → the Keras optimizer attribute it sets.
CLIP_MODES = {"value": "clipvalue", "norm": "clipnorm", "global_norm": "global_clipnorm"}


def apply_clipping(optimizer: Any, clip: dict[str, float]) -> Any:
    """Set Keras' gradient clipping on ``optimizer`` (``{"clipnorm": 1.0}``: at most one of
    ``clipnorm``, ``clipvalue``, ``global_clipnorm``, as Keras allows) and return it."""
    for attribute in CLIP_MODES.values():
        if attribute in clip:
            setattr(optimizer, attribute, float(clip[attribute]))
    return optimizer


#: What ``cnnreg plugin new --kind optimizer`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",  # lazy: imported when the optimizer is built or shown
        summary="SGD with Nesterov momentum and decoupled weight decay (a common CNN recipe)",
    )
''',
    factories='''\
"""The optimizer's factory: takes learning_rate (with a default), returns a keras.optimizers.Optimizer."""

from typing import Annotated

from cnnreg.spec import Range


def $name(
    learning_rate: Annotated[float, Range(0, None, min_inclusive=False)] = 0.05,
    momentum: Annotated[float, Range(0, 1, max_inclusive=False)] = 0.9,
    weight_decay: Annotated[float, Range(0, None)] = 5e-4,
):
    """SGD with Nesterov ``momentum`` and decoupled ``weight_decay``."""
    import keras  # inside the factory: `cnnreg list` never imports keras

    # learning_rate may be a Keras LearningRateSchedule (--schedule): pass it on as it is
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, nesterov=True,
                                weight_decay=weight_decay or None)
''',
    test='''

def test_it_builds_and_takes_a_step():
    import keras
    import numpy as np

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        optimizer = cnnreg.build("optimizer", "$name:learning_rate=0.1,momentum=0.5")
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    weight = keras.Variable(np.ones(3, dtype="float32"))
    optimizer.apply_gradients([(keras.ops.ones(3), weight)])
    assert float(keras.ops.convert_to_numpy(weight)[0]) < 1.0
''',
)


KIND = KindSpec(
    "optimizer", "optimizers", words=("optimiser", "optimisers", "optim", "opt"),
    contract=__name__,
    doc="""Add optimizers: the factory takes ``learning_rate`` (with a default) and the optimizer's
    own parameters and returns a new ``keras.optimizers.Optimizer``.

    cnnreg passes the run's rate (a float, or a Keras ``LearningRateSchedule`` with
    ``--schedule``) and sets ``--clip`` itself.  See cnnreg.kinds.optimizers for the contract.
    """,
    scaffold=SCAFFOLD,
)
