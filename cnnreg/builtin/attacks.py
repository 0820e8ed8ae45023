"""Built-in plugin: adversarial attacks (kind ``attack``), written once for every backend.

``fgsm`` (Goodfellow et al. 2015; under L2 the fast gradient method), ``pgd`` (Madry et al.
2018, L∞ or L2, random start) and ``universal`` (one L∞ perturbation shared by every input, in
the spirit of DAmageNet, Chen et al. 2019; the update of Shafahi et al. 2020).  Each perturbs
[0, 1] pixels through the :class:`cnnreg.kinds.attacks.AttackTarget` only, with ``keras.ops`` and
Python loops of fixed length, so the same code runs eagerly (``cnnreg attack``) and inside a
compiled training step (``--reg adversarial``).  keras is imported inside methods: resolving a
spec must not import it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from cnnreg.kinds.attacks import Attack, clip_unit, direction, project
from cnnreg.errors import ParameterError
from cnnreg.hookspecs import hookimpl
from cnnreg.spec import Range

#: A budget in [0, 1] pixel units (8/255: eight grey levels).  L2 budgets may exceed 1 (the
#: length of a whole image's change), so the range is only >= 0; L∞ checks its own bound.
Eps = Annotated[float, Range(0, None)]
Steps = Annotated[int, Range(1, 100_000)]
#: 0 means "choose": 2.5 · eps / steps, Madry et al.'s rule (the walk can cross the ball).
StepSize = Annotated[float, Range(0, None)]
Norm = Literal["inf", "2"]

_NORM_TEXT = {"inf": "L∞", "2": "L2"}


class Levels(float):
    """A budget of whole grey levels that reads as such: ``8/255`` in ``cnnreg show`` and in a
    spec written back (which parses to the same float); a number in JSON and arithmetic."""

    def __repr__(self) -> str:
        return f"{round(self * 255)}/255"

    __str__ = __repr__


#: The usual L∞ budget on [0, 1] images (Madry et al.'s CIFAR-10 setting).
EIGHT_LEVELS = Levels(8 / 255)


def _amount(value: float) -> str:
    """``0.1`` as 0.1, ``8/255`` as 8/255 (whole grey levels read better than 0.0314), else 3 digits."""
    short = f"{value:.3g}"
    if float(short) == value:
        return short
    levels = value * 255
    if abs(levels - round(levels)) < 1e-9 and 0 < round(levels) < 255:
        return f"{round(levels)}/255"
    return short


def _check_eps(eps: float, norm: str, name: str) -> None:
    """An L∞ eps above 1 is a budget in 0..255 units by mistake: [0, 1] allows no more change."""
    if norm == "inf" and eps > 1:
        raise ParameterError(f"attack '{name}' parameter 'eps' is in [0, 1] pixel units, so at most 1 under L∞ "
                             f"(got {eps:g}; 8 grey levels are eps=8/255)")


def _step_size(step_size: float, eps: float, steps: int) -> float:
    return step_size if step_size > 0 else 2.5 * eps / steps


def _unchanged(x: Any) -> Any:
    from keras import ops

    return ops.cast(ops.convert_to_tensor(x), "float32")


def _stop(x_adv: Any) -> Any:
    """The adversarial input as a constant: a training step must not differentiate through the
    attack (Danskin's theorem, as Madry et al. train)."""
    from keras import ops

    return ops.stop_gradient(x_adv)


class FGSM(Attack):
    """One step of ``eps`` along the gradient's sign (L∞) or its direction (L2)."""

    def __init__(self, eps: float, norm: str) -> None:
        self.eps, self.norm = eps, norm
        self.label = f"FGSM {_NORM_TEXT[norm]} eps {_amount(eps)}"

    def perturb(self, target, x, y, eps=None):
        eps = self.eps if eps is None else float(eps)
        x = _unchanged(x)
        if eps == 0:
            return x
        _, grad = target.gradient(x, y)
        return _stop(project(x + eps * direction(grad, self.norm), x, eps, self.norm))


class PGD(Attack):
    """``steps`` steps of projected gradient ascent from a random point of the ball."""

    def __init__(self, eps: float, steps: int, step_size: float, norm: str, random_start: bool) -> None:
        self.eps, self.steps, self.step_size, self.norm = eps, steps, step_size, norm
        self.random_start = random_start
        start = "" if random_start else ", no random start"
        self.label = (f"PGD {_NORM_TEXT[norm]} eps {_amount(eps)}, {steps} steps of "
                      f"{_amount(_step_size(step_size, eps, steps))}{start}")

    def perturb(self, target, x, y, eps=None):
        eps = self.eps if eps is None else float(eps)
        x = _unchanged(x)
        if eps == 0:
            return x
        alpha = _step_size(self.step_size, eps, self.steps)
        x_adv = x
        if self.random_start:
            x_adv = project(x + self._start(target, x, eps), x, eps, self.norm)
        for _ in range(self.steps):
            _, grad = target.gradient(x_adv, y)
            x_adv = project(x_adv + alpha * direction(grad, self.norm), x, eps, self.norm)
        return _stop(x_adv)

    def _start(self, target, x, eps):
        """Uniform in the ball: per value for L∞; for L2 an isotropic direction (Gaussian by
        Box–Muller from the target's uniform numbers) at radius eps · u^(1/d)."""
        from keras import ops

        shape = tuple(ops.shape(x))
        if self.norm == "inf":
            return target.uniform(shape, -eps, eps)
        u1 = target.uniform(shape, 1e-7, 1.0)
        u2 = target.uniform(shape, 0.0, 1.0)
        gaussian = ops.sqrt(-2.0 * ops.log(u1)) * ops.cos(2.0 * math.pi * u2)
        unit = direction(gaussian, "2")
        size = 1
        for dim in x.shape[1:]:
            size *= int(dim)
        radius = ops.power(target.uniform((shape[0],) + (1,) * (len(shape) - 1), 0.0, 1.0), 1.0 / size)
        return eps * radius * unit


class Universal(Attack):
    """One L∞ perturbation for all inputs of a call: signed steps along the summed gradient."""

    universal = True

    def __init__(self, eps: float, steps: int, step_size: float) -> None:
        self.eps, self.steps, self.step_size, self.norm = eps, steps, step_size, "inf"
        self.label = (f"universal L∞ eps {_amount(eps)}, {steps} steps of "
                      f"{_amount(_step_size(step_size, eps, steps))}")

    def perturb(self, target, x, y, eps=None):
        from keras import ops

        eps = self.eps if eps is None else float(eps)
        x = _unchanged(x)
        if eps == 0:
            return x
        alpha = _step_size(self.step_size, eps, self.steps)
        delta = ops.zeros_like(x[:1])
        for _ in range(self.steps):
            _, grad = target.gradient(clip_unit(x + delta), y)
            total = ops.sum(grad, axis=0, keepdims=True)
            delta = ops.clip(delta + alpha * ops.sign(total), -eps, eps)
        return _stop(clip_unit(x + delta))


def fgsm(eps: Eps = EIGHT_LEVELS, norm: Norm = "inf") -> Attack:
    """FGSM (Goodfellow et al. 2015): one step of eps along the sign of the input gradient.

    ``norm=2`` is the fast gradient method: the step goes along the gradient scaled to length
    eps.  Cheap (one gradient), and the weakest attack here: a lower bound on the damage."""
    _check_eps(eps, norm, "fgsm")
    return FGSM(float(eps), norm)


def pgd(eps: Eps = EIGHT_LEVELS, steps: Steps = 10, step_size: StepSize = 0.0, norm: Norm = "inf",
        random_start: bool = True) -> Attack:
    """PGD (Madry et al. 2018): projected gradient ascent from a random start in the eps ball.

    ``steps`` steps of ``step_size`` (0: 2.5 · eps / steps) along the gradient's sign (L∞) or
    direction (L2), each projected back into the ball and [0, 1].  Never weaker than FGSM at
    the same eps, up to the random start; the attack to report robust accuracy with."""
    _check_eps(eps, norm, "pgd")
    return PGD(float(eps), steps, float(step_size), norm, random_start)


def universal(eps: Eps = EIGHT_LEVELS, steps: Steps = 10, step_size: StepSize = 0.0) -> Attack:
    """A universal perturbation: one L∞ change of at most eps applied to every input at once.

    In DAmageNet's spirit (Chen et al. 2019): ``cnnreg attack`` finds one perturbation for the
    whole evaluated set, by ``steps`` signed steps of ``step_size`` (0: 2.5 · eps / steps)
    along the gradient summed over the inputs (Shafahi et al. 2020), starting from zero."""
    _check_eps(eps, "inf", "universal")
    return Universal(float(eps), steps, float(step_size))


_PAPERS = {
    "fgsm": {"authors": "Goodfellow, Shlens, Szegedy", "year": 2015,
             "title": "Explaining and Harnessing Adversarial Examples"},
    "pgd": {"authors": "Madry, Makelov, Schmidt, Tsipras, Vladu", "year": 2018,
            "title": "Towards Deep Learning Models Resistant to Adversarial Attacks"},
    "universal": {"authors": "Shafahi, Najibi, Xu, Dickerson, Davis, Goldstein", "year": 2020,
                  "title": "Universal Adversarial Training"},
}

_ENTRIES = [
    (fgsm, "single step", ("fgm", "fast_gradient"), ("inf", "2")),
    (pgd, "iterative", ("madry",), ("inf", "2")),
    (universal, "universal", ("uap",), ("inf",)),
]


@hookimpl
def register_attacks(registry):
    for factory, role, aliases, norms in _ENTRIES:
        registry.add(factory.__name__, factory, aliases=aliases, tags=(role, "white box"), role=role,
                     norms=norms, paper=_PAPERS[factory.__name__])
