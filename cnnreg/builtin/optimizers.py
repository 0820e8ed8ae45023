"""Built-in plugin: Keras' optimizers (kind ``optimizer``).

Each factory takes ``learning_rate`` with the optimizer's own default and returns a new Keras
optimizer (the contract: :mod:`cnnreg.kinds.optimizers`).  ``momentum`` and ``nesterov`` are
SGD with the lecture's momentum 0.9 set.  Factories import keras only when called.
"""

from __future__ import annotations

from typing import Annotated

from cnnreg.hookspecs import hookimpl
from cnnreg.spec import Range

Positive = Annotated[float, Range(0, None, min_inclusive=False)]
NonNegative = Annotated[float, Range(0, None)]
Beta = Annotated[float, Range(0, 1, max_inclusive=False)]


def sgd(learning_rate: Positive = 0.01, momentum: Beta = 0.0, nesterov: bool = False, weight_decay: NonNegative = 0.0):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay or None)


def momentum(learning_rate: Positive = 0.01, momentum: Beta = 0.9, nesterov: bool = False):
    """SGD with momentum 0.9 (the lecture's SGD(momentum=0.9))."""
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov)


def nesterov(learning_rate: Positive = 0.01, momentum: Beta = 0.9):
    """SGD with Nesterov momentum."""
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, nesterov=True)


def adam(learning_rate: Positive = 0.001, beta_1: Beta = 0.9, beta_2: Beta = 0.999, epsilon: Positive = 1e-7,
         amsgrad: bool = False):
    """Adam (Kingma & Ba 2015)."""
    import keras

    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                                 amsgrad=amsgrad)


def adamw(learning_rate: Positive = 0.001, weight_decay: NonNegative = 0.004, beta_1: Beta = 0.9, beta_2: Beta = 0.999):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""
    import keras

    return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2)


def nadam(learning_rate: Positive = 0.001, beta_1: Beta = 0.9, beta_2: Beta = 0.999):
    """Adam with Nesterov momentum (Dozat 2016)."""
    import keras

    return keras.optimizers.Nadam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)


def rmsprop(learning_rate: Positive = 0.001, rho: Beta = 0.9, momentum: Beta = 0.0, centered: bool = False):
    """RMSprop (Hinton 2012)."""
    import keras

    return keras.optimizers.RMSprop(learning_rate=learning_rate, rho=rho, momentum=momentum, centered=centered)


def adagrad(learning_rate: Positive = 0.001):
    """Adagrad (Duchi et al. 2011)."""
    import keras

    return keras.optimizers.Adagrad(learning_rate=learning_rate)


def adamax(learning_rate: Positive = 0.001):
    """Adamax (Kingma & Ba 2015)."""
    import keras

    return keras.optimizers.Adamax(learning_rate=learning_rate)


def lion(learning_rate: Positive = 0.0001, beta_1: Beta = 0.9, beta_2: Beta = 0.99):
    """Lion (Chen et al. 2023)."""
    import keras

    return keras.optimizers.Lion(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)


#: The built-ins with the Keras class each builds (``cnnreg show`` prints it).
_ENTRIES = (
    (sgd, "SGD"), (momentum, "SGD"), (nesterov, "SGD"), (adam, "Adam"), (adamw, "AdamW"), (nadam, "Nadam"),
    (rmsprop, "RMSprop"), (adagrad, "Adagrad"), (adamax, "Adamax"), (lion, "Lion"),
)


@hookimpl
def register_optimizers(registry) -> None:
    """Register Keras' optimizers."""
    for factory, keras_class in _ENTRIES:
        registry.add(factory.__name__, factory, tags=("keras",), keras_class=f"keras.optimizers.{keras_class}")
