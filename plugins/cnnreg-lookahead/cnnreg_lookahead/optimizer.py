"""The Keras class: ``Lookahead``, an optimizer that wraps another one.

Lookahead (Zhang, Lucas, Hinton & Ba 2019, *Lookahead Optimizer: k steps forward, 1 step back*,
arXiv:1907.08610) keeps two copies of the weights.  The inner ("fast") optimizer updates the
model's weights every step as it would alone; every ``k`` steps the "slow" weights move
``alpha`` of the way towards the fast ones, ``slow += alpha * (fast - slow)``, and the fast
weights (the model's) are reset to the new slow ones.  The slow weights start as the weights the
first step finds.

This module imports keras: it is what the component's ``keras_objects`` metadata names, so
cnnreg imports it before a checkpoint is loaded in Keras' safe mode.  Loading one in your own
code::

    import keras
    import cnnreg_lookahead.optimizer  # registers cnnreg_lookahead>Lookahead with Keras
    model = keras.models.load_model("runs/.../checkpoint/epoch-0002.keras")

The wrapper is modelled on Keras' own ``keras.optimizers.LossScaleOptimizer``: its
``variables`` are its own (step count, slow weights) followed by the inner optimizer's, so that
the JAX trainer's ``stateless_apply`` (Keras' base implementation, which maps every optimizer
variable to its value and calls :meth:`Lookahead.apply`) carries the inner optimizer's state
too; ``learning_rate``, gradient clipping (``clipnorm``, ``clipvalue``, ``global_clipnorm``) and
``loss_scale_factor`` are the inner optimizer's, so clipping happens once, where Keras does it
for that optimizer; ``get_config`` holds the inner optimizer serialised.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["Lookahead"]

#: Base-optimizer arguments the wrapper does not take (set them on the inner optimizer), with
#: the default a config may carry.
_REFUSED = {
    "weight_decay": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "gradient_accumulation_steps": None,
}
#: Attributes that are the inner optimizer's: reading or setting them on the wrapper reads or
#: sets the inner optimizer's (cnnreg's --clip sets the clipping ones on what the factory returns).
_FORWARDED = ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor")


def _forwarded(attribute: str) -> property:
    def get(self):
        inner = self.__dict__.get("_inner")
        return None if inner is None else getattr(inner, attribute)

    def set(self, value):
        inner = self.__dict__.get("_inner")
        if inner is not None:
            setattr(inner, attribute, value)
        elif value is not None:  # the base class sets None before the inner optimizer exists
            raise ValueError(f"Lookahead: set `{attribute}` on the inner optimizer")

    return property(get, set, doc=f"The inner optimizer's ``{attribute}``.")


@keras.saving.register_keras_serializable(package="cnnreg_lookahead")
class Lookahead(keras.optimizers.Optimizer):
    """Lookahead around ``inner_optimizer``: every ``k`` steps, ``slow += alpha * (fast - slow)``
    and the model's weights are set to ``slow``.

    Args:
        inner_optimizer: the ``keras.optimizers.Optimizer`` that takes every step (Adam, SGD...).
            It should be new (not built): the wrapper builds it for the same variables.
        k: steps of the inner optimizer between synchronisations (>= 1).
        alpha: how far the slow weights move towards the fast ones, in (0, 1] (1: the inner
            optimizer alone).
        name: the optimizer's name.

    ``learning_rate`` reads and sets the inner optimizer's; ``iterations`` counts the
    wrapper's steps (the same as the inner optimizer's).
    """

    for _attribute in _FORWARDED:
        locals()[_attribute] = _forwarded(_attribute)
    del _attribute

    def __init__(self, inner_optimizer, k=5, alpha=0.5, name=None, **kwargs):
        for argument, default in _REFUSED.items():
            if argument in kwargs and kwargs.pop(argument) != default:
                raise ValueError(f"Lookahead does not take `{argument}`: set it on the inner optimizer")
        for argument in _FORWARDED:  # None, as a config of the base class writes them, is fine
            if argument in kwargs and kwargs.pop(argument) is not None:
                raise ValueError(f"Lookahead does not take `{argument}`: set it on the inner optimizer "
                                 "(or on the Lookahead after it is made)")
        kwargs.pop("learning_rate", None)  # the inner optimizer's (a base-class config carries one)
        if kwargs:
            raise ValueError(f"Lookahead does not take the argument(s) {', '.join(sorted(kwargs))}")
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise TypeError(f"Lookahead wraps a keras.optimizers.Optimizer, not {type(inner_optimizer).__name__}")
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"Lookahead: k must be an integer >= 1 (got {k!r})")
        if not 0 < alpha <= 1:
            raise ValueError(f"Lookahead: alpha must be in (0, 1] (got {alpha!r})")
        if inner_optimizer.gradient_accumulation_steps:
            raise ValueError("Lookahead does not support an inner optimizer with gradient_accumulation_steps")
        super().__init__(learning_rate=0.0, name=name)
        self._inner = inner_optimizer
        self.k = int(k)
        self.alpha = float(alpha)

    @property
    def inner_optimizer(self):
        """The wrapped ("fast") optimizer."""
        return self._inner

    # --- state ---------------------------------------------------------------------------

    def build(self, var_list):
        """The slow weights (one per trainable variable), then the inner optimizer's state."""
        if self.built:
            return
        var_list = list(var_list)
        # add_optimizer_variables leaves None for variables Keras overwrites with their gradient
        # (float8 scales): the inner optimizer does not step those, so they have no slow copy.
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")
        self._inner.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        """Own variables (step count, an unused learning rate, the slow weights), then the
        inner optimizer's: what the JAX trainer's state and a checkpoint hold, in this order."""
        return self._variables[:] + self._inner.variables

    @property
    def learning_rate(self):
        return self._inner.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self._inner.learning_rate = learning_rate

    # --- the step ------------------------------------------------------------------------

    def apply(self, grads, trainable_variables=None):
        """The inner optimizer's step, then Lookahead's synchronisation every ``k`` steps.

        Keras' ``stateless_apply`` (the JAX trainer) calls this inside a ``StatelessScope``
        mapping every variable of :attr:`variables` to its value."""
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("Lookahead: call `optimizer.build(trainable_variables)` before `apply(grads)`, "
                                 "or pass the variables")
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
                self.built = True
            self._check_variables_are_known(trainable_variables)

        pairs = [(v, self._slow_weights[self._get_variable_index(v)]) for v in trainable_variables]
        pairs = [(fast, slow) for fast, slow in pairs if slow is not None]
        with _no_grad():
            # The slow weights start as the weights the first step finds (not those the optimizer
            # was built with: cnnreg may load weights after building, a transfer run re-builds).
            self._update(lambda step: ops.equal(step, 0), pairs, self._start)
            self._inner.apply(grads, trainable_variables)
            self._update(lambda step: ops.equal(ops.mod(step + 1, self.k), 0), pairs, self._sync)
        self._iterations.assign_add(1)

    @staticmethod
    def _start(fast, slow, constraint):
        """(new fast or None, new slow) on the first step: the slow weights become the fast ones."""
        return None, fast

    def _sync(self, fast, slow, constraint):
        """(new fast, new slow) every k steps: slow += alpha * (fast - slow); fast = slow."""
        moved = slow + ops.cast(self.alpha, slow.dtype) * (fast - slow)
        if constraint is not None:  # the model's constraints hold after the reset too
            moved = constraint(moved)
        return moved, moved

    def _update(self, when, pairs, rule):
        """Apply ``rule(fast, slow, constraint) -> (new fast or None, new slow)`` (values) to
        every (model variable, slow variable) pair when ``when(steps taken before this one)``.

        TensorFlow and PyTorch assign inside the branch, so nothing is written on other steps.
        JAX traces both branches of ``lax.cond`` (in the jitted, stateless step too), and a
        branch may not assign there: the branches return values, assigned after the cond."""
        if not pairs:
            return
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context() is False:
                return _tf_distributed_update(self, when, pairs, rule)
        condition = when(ops.convert_to_tensor(self._iterations))
        if backend == "jax":
            def taken():
                out = []
                for fast, slow in pairs:
                    value = ops.convert_to_tensor(fast)
                    new_fast, new_slow = rule(value, ops.convert_to_tensor(slow), fast.constraint)
                    out.append((value if new_fast is None else new_fast, new_slow))
                return out

            def skipped():
                return [(ops.convert_to_tensor(fast), ops.convert_to_tensor(slow)) for fast, slow in pairs]

            for (fast, slow), (new_fast, new_slow) in zip(pairs, ops.cond(condition, taken, skipped)):
                fast.assign(new_fast)
                slow.assign(new_slow)
            return

        def taken():
            for fast, slow in pairs:
                new_fast, new_slow = rule(ops.convert_to_tensor(fast), ops.convert_to_tensor(slow), fast.constraint)
                self.assign(slow, new_slow)
                if new_fast is not None:
                    self.assign(fast, new_fast)

        ops.cond(condition, taken, lambda: None)

    def finalize_variable_values(self, var_list):
        self._inner.finalize_variable_values(var_list)

    # --- saving --------------------------------------------------------------------------

    def save_own_variables(self, store):
        """Only the wrapper's own variables: Keras saves the inner optimizer as a child of its
        own (``optimizer/inner_optimizer/vars`` in the .keras file) and loads it back the same
        way.  (``LossScaleOptimizer`` writes the inner state twice, under both names; for
        Lookahead around Adam that would be two extra copies of the model's weights.)"""
        for index, variable in enumerate(self._variables):
            store[str(index)] = variable.numpy()

    def load_own_variables(self, store):
        if len(store.keys()) != len(self._variables):
            import warnings

            warnings.warn(f"Skipping variable loading for optimizer '{self.name}': it has {len(self._variables)} "
                          f"variables of its own, the saved one {len(store.keys())}"
                          + ("" if self.built else " (it is not built yet)"), stacklevel=2)
            return
        for index, variable in enumerate(self._variables):
            variable.assign(store[str(index)])

    def get_config(self):
        # Not super().get_config(): the learning rate, clipping... are the inner optimizer's.
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self._inner),
            "k": self.k,
            "alpha": self.alpha,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)


def _no_grad():
    """``torch.no_grad()`` on PyTorch (the lookahead arithmetic builds no autograd graph)."""
    import contextlib

    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _tf_distributed_update(optimizer, when, pairs, rule):
    """:meth:`Lookahead._update` under a ``tf.distribute`` strategy (cnnreg's ``mirrored``):
    mirrored variables are written in cross-replica context, each copy on its device, as Keras'
    ``TFOptimizer`` writes its own update."""
    import tensorflow as tf

    def write(distribution):
        def taken():
            for fast, slow in pairs:
                def on_device(slow_copy, fast_copy, constraint=fast.constraint):
                    new_fast, new_slow = rule(tf.convert_to_tensor(fast_copy), tf.convert_to_tensor(slow_copy),
                                              constraint)
                    updates = [slow_copy.assign(new_slow)]
                    if new_fast is not None:
                        updates.append(fast_copy.assign(new_fast))
                    return tf.group(updates)

                distribution.extended.update(slow.value, on_device, args=(fast.value,), group=False)

        # the step count is one variable, the same for every replica: read it here
        ops.cond(when(tf.convert_to_tensor(optimizer._iterations)), taken, lambda: None)

    tf.distribute.get_replica_context().merge_call(write)
