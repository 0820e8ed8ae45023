"""The attack contract: what an adversarial attack component is, and the target it attacks.

An attack factory (kind ``attack``, hook ``register_attacks``) takes the attack's parameters
(``eps`` and whatever else it has: ``steps``, ``step_size`` ...) and returns an instance of an
:class:`Attack` subclass.  cnnreg calls :meth:`Attack.perturb` with

* ``target`` — an :class:`AttackTarget`: the model seen from pixel space, with the loss
  gradient with respect to the input, its logits and seeded random numbers;
* ``x`` — float32 images ``(N, H, W, C)`` in **[0, 1] pixel space**, before the model's own
  preprocessing (which the target applies);
* ``y`` — float32 one-hot labels ``(N, classes)``;
* ``eps`` — the budget, a Python float in the same [0, 1] pixel units, measured in the attack's
  :attr:`Attack.norm` (``"inf"``: the largest change of any one value; ``"2"``: the Euclidean
  length of each image's whole change).

``perturb`` returns ``x_adv`` of the same shape with ``‖x_adv − x‖ ≤ eps`` per image and every
value in [0, 1] (:func:`project` does both).  It is written with ``keras.ops`` and the target's
methods only, so that one implementation runs eagerly on every backend (``cnnreg attack``) and
inside a compiled training step (``--reg adversarial:attack=NAME``): no NumPy on ``x``, no Python
branching on tensor values, a loop count fixed by the parameters.  An attack with
:attr:`Attack.universal` set finds one perturbation for all the ``N`` inputs of a call
(``cnnreg attack`` calls it once with the whole evaluated set; a training step, once per batch).

The factory runs when the spec is resolved, before keras is imported: it stores and checks its
parameters (a :class:`cnnreg.errors.ParameterError` for a mistake the type hints cannot catch)
and sets :attr:`Attack.label`.  keras is imported inside methods, never at module level.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Attack", "AttackTarget", "NORMS", "project", "clip_unit", "direction", "batch_norms"]

#: The norms an attack's budget can be measured in: L∞ and L2, over each whole image.
NORMS = ("inf", "2")


class AttackTarget(Protocol):
    """The model an attack perturbs inputs of, in [0, 1] pixel space (see the module docstring).

    cnnreg gives attacks two implementations: :class:`cnnreg.adversarial.target.EagerTarget`
    (``cnnreg attack``, any backend, batches of any size) and the one a training step builds
    (``--reg adversarial``), where the model's weights are those of that step.
    """

    #: True inside a training step (the attack runs traced, on one batch).
    training: bool

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        """``(loss, d loss / d x)``: ``loss`` is the *sum* over the ``N`` inputs of the softmax
        cross-entropy of the model's logits against ``y``, so that row ``i`` of the gradient is
        input ``i``'s own.  Batch normalisation uses its moving statistics; nothing is updated."""

    def logits(self, x: Any) -> Any:
        """The model's scores before its softmax, ``(N, classes)`` (inference mode)."""

    def uniform(self, shape: tuple[int, ...], low: float, high: float) -> Any:
        """float32 random numbers in [low, high), seeded (the ``--seed`` of ``cnnreg attack``;
        a training run's seed and step), different on every call."""


class Attack:
    """Base class of attacks: subclasses set :attr:`label` and :attr:`norm` in ``__init__`` and
    override :meth:`perturb`.  The built-ins (cnnreg.builtin.attacks) are FGSM, PGD and a
    universal perturbation."""

    #: One short line saying what this instance does, e.g. ``"PGD L∞, 10 steps of 2/255"``.
    label: str = ""
    #: The norm ``eps`` is measured in: ``"inf"`` or ``"2"`` (:data:`NORMS`).
    norm: str = "inf"
    #: The budget from the spec (``pgd:eps=8/255``); ``cnnreg attack --eps`` and the adversarial
    #: regulariser's ``eps`` replace it.
    eps: float = 8 / 255
    #: One perturbation for every input of a call (DAmageNet's spirit), instead of one each.
    universal: bool = False

    def perturb(self, target: AttackTarget, x: Any, y: Any, eps: float | None = None) -> Any:
        """Adversarial versions of ``x`` within ``eps`` (default :attr:`eps`); see the module
        docstring for the arguments and what must hold of the result."""
        raise NotImplementedError(f"{type(self).__name__} does not implement perturb()")

    def describe(self) -> str:
        """What tables and figures show: :attr:`label`, else the class name."""
        return self.label or type(self).__name__


def batch_norms(delta: Any, norm: str) -> Any:
    """Each row's norm of ``delta`` ``(N, ...)`` as ``(N, 1, 1, 1)`` (keep-dims, for broadcasting)."""
    from keras import ops

    delta = ops.convert_to_tensor(delta)
    axes = tuple(range(1, len(delta.shape)))
    if norm == "inf":
        return ops.max(ops.abs(delta), axis=axes, keepdims=True)
    return ops.sqrt(ops.sum(ops.square(delta), axis=axes, keepdims=True))


def direction(gradient: Any, norm: str) -> Any:
    """The steepest-ascent step of unit ``norm`` for ``gradient``: its sign for L∞ (FGSM), the
    gradient divided by its L2 length for L2 (a zero gradient stays zero)."""
    from keras import ops

    gradient = ops.convert_to_tensor(gradient)
    if norm == "inf":
        return ops.sign(gradient)
    length = batch_norms(gradient, "2")
    return gradient / ops.maximum(length, 1e-12)


def project(x_adv: Any, x: Any, eps: float, norm: str) -> Any:
    """``x_adv`` moved back into the ``eps`` ball around ``x`` (per image) and into [0, 1]."""
    from keras import ops

    x = ops.cast(ops.convert_to_tensor(x), "float32")
    delta = ops.cast(ops.convert_to_tensor(x_adv), "float32") - x
    if norm == "inf":
        delta = ops.clip(delta, -eps, eps)
    else:
        length = batch_norms(delta, "2")
        delta = delta * ops.minimum(1.0, eps / ops.maximum(length, 1e-12))
    return clip_unit(x + delta)


def clip_unit(x: Any) -> Any:
    """``x`` clipped to [0, 1], the range of pixel space."""
    from keras import ops

    return ops.clip(x, 0.0, 1.0)
