"""The attack kind: what an adversarial attack component is, and the target it attacks.

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

Attacks differentiate the softmax cross-entropy of the model's **logits**, not of its
probabilities: a confident prediction (p = 1.0 in float32) has a zero gradient through the
softmax, which would leave such inputs untouched and make a model look robust when it is not.
:func:`logits_function` finds the logits of every cnnreg classifier (a ``Dense`` with a softmax
activation, or a softmax layer, last); any other model falls back to ``log p``.

:class:`ModelTarget` is the one implementation of the target; :func:`eager_target` makes it for
``cnnreg attack`` (the model's own preprocessing applied to ``x * 255``, batches of any size),
and a training step makes it from the step's weights and :class:`PixelSpace` (the training
batches arrive preprocessed; the adversarial regulariser maps them back to pixels and forth).
The gradient itself is :func:`cnnreg.backends.input_gradient`, the same on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from cnnreg.errors import CnnregError
from cnnreg.kinds import KindSpec, Scaffold

if TYPE_CHECKING:  # NumPy is imported where it is used: `cnnreg list` reads this module
    import numpy as np

__all__ = [
    "KIND", "Attack", "AttackTarget", "NORMS", "project", "inner_radius", "clip_unit", "direction", "batch_norms", "ModelTarget",
    "PixelSpace", "eager_target", "logits_function", "cross_entropy",
]

#: The norms an attack's budget can be measured in: L∞ and L2, over each whole image.
NORMS = ("inf", "2")


class AttackTarget(Protocol):
    """The model an attack perturbs inputs of, in [0, 1] pixel space (see the module docstring).

    cnnreg gives attacks two implementations: :class:`eager_target`
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
    override :meth:`perturb`.  The built-ins (registered by cnnreg's built-in attack plugin) are FGSM, PGD and a
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
    """``x_adv`` moved into [0, 1] and then back into the ``eps`` ball around ``x`` (per image).

    In that order, as ART does: under L∞ the order does not matter (both are boxes); under L2
    the change left after [0, 1] has cut it is what is scaled, so less of the budget is lost.
    The result stays in [0, 1] (it lies between ``x`` and a point of [0, 1]).  The change it
    leaves, measured exactly (``x_adv - x`` in float64), is at most ``eps``: the ball it clips
    to is :func:`inner_radius` smaller, by what float32 rounding can add."""
    from keras import ops

    x = ops.cast(ops.convert_to_tensor(x), "float32")
    delta = clip_unit(ops.cast(ops.convert_to_tensor(x_adv), "float32")) - x
    if norm == "inf":
        radius = inner_radius(eps, norm, 1)
        delta = ops.clip(delta, -radius, radius)
    else:
        size = 1
        for dim in x.shape[1:]:  # known while tracing too: only the batch size may be open
            size *= int(dim)
        length = batch_norms(delta, "2")
        delta = delta * ops.minimum(1.0, inner_radius(eps, norm, size) / ops.maximum(length, 1e-12))
    return clip_unit(x + delta)  # (a rounding of x + delta may step out of [0, 1] by one unit)


def inner_radius(eps: float, norm: str, size: int) -> float:
    """The radius :func:`project` clips float32 changes to, so that the change the result
    really holds never exceeds ``eps`` (``size``: values per image).

    ``x + delta`` is rounded to float32 (half a unit in the last place: at most 2⁻²⁴ for values
    up to 2), and ``eps`` itself too (relative 2⁻²⁴).  Under L∞ that is one value's error, so
    the radius is eps − 2⁻²²; under L2 the errors of all ``size`` values add up to at most
    √size · 2⁻²⁴ in length, and the float32 length the scaling divides by is off by a few
    relative units of 2⁻²⁴ (a tree sum: log₂ size of them), so the radius is
    eps · (1 − 2⁻¹⁹) − √size · 2⁻²³.  Never below 0 (a smaller eps leaves the input unchanged).
    What an attack loses is far below any eps worth measuring: 2.4e-7 of one value under L∞;
    under L2 two millionths of eps and 4.6e-5 for a 224×224×3 image."""
    if norm == "inf":
        return max(0.0, float(eps) - 2.0 ** -22)
    return max(0.0, float(eps) * (1.0 - 2.0 ** -19) - size ** 0.5 * 2.0 ** -23)


def clip_unit(x: Any) -> Any:
    """``x`` clipped to [0, 1], the range of pixel space."""
    from keras import ops

    return ops.clip(x, 0.0, 1.0)


def logits_function(model) -> Callable[[Any], Any]:
    """``f(x_model) -> logits`` for ``model`` (inference mode).

    For a last layer that is a ``Dense`` with a softmax activation (every cnnreg classifier's
    ``predictions``), its input through a model sharing the weights, then the same Dense without
    the softmax; for a last ``Softmax``/``Activation("softmax")`` layer, its input; otherwise the
    log of the model's probabilities (clipped at 1e-12).  The functions read the weights when
    called, so they see every update (and a training step's state on JAX)."""
    import keras
    from keras import ops

    last = model.layers[-1] if getattr(model, "layers", None) else None
    if last is not None and _is_softmax(getattr(last, "activation", None)) and hasattr(last, "kernel"):
        features = keras.Model(model.inputs, last.input, name=f"{model.name}_features")

        def through_dense(x):
            h = features(x, training=False)
            z = ops.matmul(ops.cast(h, "float32"), ops.cast(last.kernel, "float32"))
            if getattr(last, "use_bias", False):
                z = z + ops.cast(last.bias, "float32")
            return z

        return through_dense
    if last is not None and (type(last).__name__ == "Softmax" or
                             (type(last).__name__ == "Activation" and _is_softmax(last.activation))):
        before = keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
        return lambda x: ops.cast(before(x, training=False), "float32")
    return lambda x: ops.log(ops.clip(ops.cast(model(x, training=False), "float32"), 1e-12, 1.0))


def _is_softmax(activation: Any) -> bool:
    import keras

    if activation is None:
        return False
    if activation is keras.activations.softmax:
        return True
    return getattr(activation, "__name__", "") == "softmax"


def cross_entropy(logits: Any, y: Any) -> Any:
    """The summed softmax cross-entropy ``-Σ y · log_softmax(logits)`` (a scalar)."""
    from keras import ops

    return -ops.sum(ops.cast(y, "float32") * ops.log_softmax(logits, axis=-1))


class ModelTarget:
    """An :class:`AttackTarget`: ``logits(to_model(x))`` with the gradient of its
    cross-entropy taken by :func:`cnnreg.backends.input_gradient`.

    ``to_model`` maps [0, 1] pixels to the model's input; ``uniform(shape, low, high)`` gives the
    random numbers; ``batch_size`` (eager use only) splits large inputs into chunks;
    ``compile`` (eager use only: a training step is compiled already) takes the gradient of each
    chunk through one :func:`cnnreg.backends.compile_function` of it, with ``variables`` (the
    model's) as its inputs on JAX."""

    def __init__(self, logits: Callable[[Any], Any], to_model: Callable[[Any], Any], *,
                 uniform: Callable[[tuple[int, ...], float, float], Any], training: bool = False,
                 batch_size: int | None = None, compile: bool = False, variables: Any = ()) -> None:
        self._logits, self._to_model, self._uniform = logits, to_model, uniform
        self.training = training
        self.batch_size = batch_size
        self._gradient = self._chunk_gradient
        if compile:
            from cnnreg.backends import compile_function

            self._gradient = compile_function(self._chunk_gradient, variables)

    def logits(self, x: Any) -> Any:
        from keras import ops

        parts = [self._logits(self._to_model(chunk)) for chunk in self._chunks(x)]
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        from keras import ops

        losses, grads = [], []
        for chunk, labels in zip(self._chunks(x), self._chunks(y)):
            value, grad = self._gradient(ops.cast(chunk, "float32"), ops.cast(labels, "float32"))  # one signature
            losses.append(value)
            grads.append(grad)
        if len(grads) == 1:
            return losses[0], grads[0]
        return ops.sum(ops.stack(losses)), ops.concatenate(grads, axis=0)

    def _chunk_gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        from cnnreg.backends import input_gradient

        return input_gradient(lambda t: cross_entropy(self._logits(self._to_model(t)), y), x)

    def uniform(self, shape: tuple[int, ...], low: float, high: float) -> Any:
        return self._uniform(tuple(shape), low, high)

    def _chunks(self, x: Any) -> list[Any]:
        n = x.shape[0]
        if self.batch_size is None or n is None or n <= self.batch_size:
            return [x]
        return [x[i:i + self.batch_size] for i in range(0, n, self.batch_size)]


def eager_target(model, preprocess: Callable[[Any], Any], *, batch_size: int = 128, seed: int = 0) -> ModelTarget:
    """The target ``cnnreg attack`` uses: the model's ``preprocess`` (0..255 pixels, through
    ``keras.ops``) applied to ``x * 255``; random numbers from ``numpy.random.default_rng(seed)``;
    the gradient compiled (:func:`cnnreg.backends.compile_function`), so that an iterative
    attack's steps run as one compiled call each instead of op by op."""
    import numpy as np

    from keras import ops

    rng = np.random.default_rng(seed)
    logits = logits_function(model)

    def to_model(x):
        return ops.cast(preprocess(ops.cast(x, "float32") * 255.0), "float32")

    def uniform(shape, low, high):
        return ops.convert_to_tensor(rng.uniform(low, high, size=shape).astype("float32"))

    return ModelTarget(logits, to_model, uniform=uniform, training=False, batch_size=batch_size, compile=True,
                       variables=model.variables)


class PixelSpace:
    """A preprocessing that is affine per pixel, ``x_model = x01 · Mᵀ + b`` over the channels
    (scaling, mean/std normalisation, a channel flip), found by probing it with NumPy images;
    :meth:`to_pixels` and :meth:`from_pixels` map batches with ``keras.ops`` (traceable)."""

    def __init__(self, matrix: np.ndarray, offset: np.ndarray) -> None:
        import numpy as np

        self.matrix = np.asarray(matrix, dtype="float64")
        self.offset = np.asarray(offset, dtype="float64")
        self.inverse = np.linalg.inv(self.matrix)

    @classmethod
    def probe(cls, preprocess: Callable[[Any], Any], channels: int, *, what: str = "the preprocessing") -> "PixelSpace":
        """Measure ``preprocess`` (0..255 pixels in); one line when it is not affine per pixel."""
        import numpy as np

        def run(images: np.ndarray) -> np.ndarray:
            return np.asarray(preprocess(np.array(images, dtype="float32")), dtype="float64")

        zero = run(np.zeros((1, 2, 2, channels)))
        offset = zero[0, 0, 0]
        basis = np.zeros((channels, 1, 2, 2, channels))
        for c in range(channels):
            basis[c, ..., c] = 255.0
        matrix = np.stack([run(basis[c])[0, 0, 0] - offset for c in range(channels)], axis=1)
        probe = np.random.default_rng(0).uniform(0, 255, size=(2, 3, 3, channels))
        expected = (probe / 255.0) @ matrix.T + offset
        got = run(probe)
        scale = 1e-4 * (1.0 + np.abs(expected).max())
        if got.shape != expected.shape or not np.allclose(got, expected, atol=scale, rtol=0):
            raise CnnregError(f"adversarial training needs {what} to be affine per pixel (a scale, a mean and a "
                              "std per channel, a channel order), so that eps can be measured in pixels")
        if abs(np.linalg.det(matrix)) < 1e-12:
            raise CnnregError(f"adversarial training cannot invert {what}: it maps different pixels to the same input")
        return cls(matrix, offset)

    def from_pixels(self, x01: Any) -> Any:
        """[0, 1] pixels → the model's input."""
        from keras import ops

        return ops.matmul(ops.cast(x01, "float32"), ops.convert_to_tensor(self.matrix.T.astype("float32"))) + \
            ops.convert_to_tensor(self.offset.astype("float32"))

    def to_pixels(self, x_model: Any) -> Any:
        """The model's input → [0, 1] pixels."""
        from keras import ops

        centred = ops.cast(x_model, "float32") - ops.convert_to_tensor(self.offset.astype("float32"))
        return ops.matmul(centred, ops.convert_to_tensor(self.inverse.T.astype("float32")))


#: What ``cnnreg plugin new --kind attack`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Basic iterative method: signed gradient steps of eps / steps, no random start",
        role="iterative",
        norms=("inf",),
    )
''',
    factories='''\
"""The attack's factory: returns a cnnreg.Attack (perturb images in [0, 1] pixel space)."""

from typing import Annotated

from cnnreg.kinds.attacks import Attack, project
from cnnreg.spec import Range


class BasicIterative(Attack):
    norm = "inf"

    def __init__(self, eps: float, steps: int) -> None:
        self.eps, self.steps = eps, steps
        self.label = f"basic iterative L∞ eps {eps:.3g}, {steps} steps"

    def perturb(self, target, x, y, eps=None):
        from keras import ops  # keras.ops only: it runs on every backend and in a training step

        eps = self.eps if eps is None else float(eps)
        x = ops.cast(ops.convert_to_tensor(x), "float32")
        x_adv = x
        for _ in range(self.steps):  # a count fixed by the parameters, never by tensor values
            _, grad = target.gradient(x_adv, y)
            x_adv = project(x_adv + (eps / self.steps) * ops.sign(grad), x, eps, "inf")
        return ops.stop_gradient(x_adv)


def $name(eps: Annotated[float, Range(0, 1)] = 8 / 255, steps: Annotated[int, Range(1, 1000)] = 5) -> Attack:
    """Basic iterative method (Kurakin et al. 2016): FGSM in ``steps`` steps of eps / steps."""
    return BasicIterative(eps, steps)
''',
    test='''

def test_the_attack_stays_within_eps_and_lowers_the_loss_margin():
    import keras
    import numpy as np

    from cnnreg.kinds.attacks import eager_target

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        attack = cnnreg.build("attack", "$name:eps=8/255,steps=3")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(16) % 3]
    target = eager_target(model, lambda pixels: pixels / 255.0)  # cnnreg passes 0..255 pixels
    x_adv = keras.ops.convert_to_numpy(attack.perturb(target, x, y))
    assert np.abs(x_adv - x).max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    loss = lambda images: float(keras.ops.convert_to_numpy(target.gradient(images, y)[0]))
    assert loss(x_adv) > loss(x)
''',
)


KIND = KindSpec(
    "attack", "attacks", words=("adversary", "adversaries"),
    contract=__name__,
    doc="""Add adversarial attacks: the factory returns a :class:`cnnreg.kinds.attacks.Attack`.

    ``perturb(target, x, y, eps)`` moves images in [0, 1] pixel space within ``eps`` (L∞ or
    L2, :attr:`~cnnreg.kinds.attacks.Attack.norm`) using ``keras.ops`` and the target's input
    gradient only, so it runs on every backend, in ``cnnreg attack`` and inside a training
    step (``--reg adversarial:attack=NAME``).  Give the factory an ``eps`` parameter.
    See cnnreg.kinds.attacks and docs/plugins.md for the full contract.
    """,
    scaffold=SCAFFOLD,
)
