"""The regulariser contract: what a regulariser component can change in a training run.

A regulariser factory returns an instance of a :class:`Regulariser` subclass that overrides only
what it changes (docs/plugins.md, "Regularisers", has the full contract and a worked example):

* :meth:`Regulariser.architecture_params` — keyword parameters for the architecture factory
  (``dropout=0.5``, ``batchnorm=False``) when the architecture declares them;
  :meth:`Regulariser.required_architecture_params` — those it must declare;
* :meth:`Regulariser.head_layers` — layers inserted before the classifier when the architecture
  declares none of those parameters (dropout on any architecture);
* :meth:`Regulariser.kernel_regularizer` / :meth:`Regulariser.kernel_constraint` — a penalty or
  constraint put on the kernel of every Conv and Dense layer;
* :meth:`Regulariser.loss_params` — arguments for the loss (``label_smoothing``);
* :meth:`Regulariser.augmentation` — a list of Keras layers applied to training images only
  (pixel values 0..255, before the architecture's ``preprocess``);
* :meth:`Regulariser.batch_transform` — a function on whole training batches with one-hot labels
  (mixup, cutmix), called from several threads;
* :meth:`Regulariser.train_step_transform` — a function on each training batch *inside* the
  compiled training step, with the model at that step's weights (adversarial training): see
  :class:`StepContext`;
* :meth:`Regulariser.callbacks` — Keras callbacks;
* :attr:`Regulariser.label` — the text the run header shows.

``batch_transform`` runs in the input pipeline, on NumPy arrays, and cannot see the model;
``train_step_transform`` is the extension for what needs the model (an attack needs its
gradient with respect to the input at the current weights): cnnreg installs it in the backend's
own training step (:func:`cnnreg.backends.wrap_train_step`), so it is traced into
``tf.function`` / ``jax.jit`` and written with ``keras.ops`` and the :class:`StepContext` only.

The factory runs when the spec is resolved, before keras is imported: it stores its parameters
(raising :class:`cnnreg.errors.ParameterError` for a mistake the type hints cannot catch) and
sets ``label``.  One instance serves the whole run and cnnreg may call each method several times,
so methods have no side effects and return new layers and callbacks on every call.  Everything
here is backend-neutral Keras 3; keras is imported inside methods, never at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnreg.kinds import KindSpec, Scaffold

__all__ = ["KIND", "Regulariser", "StepContext", "bind_step_transform", "augmentation_layers", "combine_batch_transforms", "combine_step_transforms"]

#: ``f(x, y_onehot, rng) -> (x, y_onehot)`` on numpy training batches (numpy is not imported
#: here: plugin modules that subclass Regulariser must stay light).  See
#: :meth:`Regulariser.batch_transform`.
BatchTransform = Callable[[Any, Any, Any], "tuple[Any, Any]"]

#: ``f(x, y_onehot, step) -> (x, y_onehot)`` on the tensors of one training step, ``step`` a
#: :class:`StepContext`.  See :meth:`Regulariser.train_step_transform`.
StepTransform = Callable[[Any, Any, "StepContext"], "tuple[Any, Any]"]


class Regulariser:
    """Base class: a regulariser that changes nothing. Subclasses override what they change.

    Set :attr:`label` in ``__init__``; the built-ins also give the component a ``role``
    (``penalty``, ``constraint``, ``layer``, ``architecture``, ``loss``, ``augmentation``,
    ``batch augmentation``) as metadata, which ``cnnreg show`` prints.  cnnreg decides what a
    regulariser does from the methods it overrides, not from its role.
    """

    #: One short line of plain text saying what this instance does with its parameters, e.g.
    #: ``"l2 0.0001 kernel penalty"``; the run header prints it after the spec.  Empty: the
    #: class name is shown (printed as plain text, square brackets included).
    label: str = ""

    def architecture_params(self) -> dict[str, Any]:
        """Keyword arguments for the architecture factory, e.g. ``{"dropout": 0.5}``.

        Called when the model is built.  Those the architecture's factory declares are passed and
        override the architecture spec's own values; the rest are dropped.  When it declares none
        of them, :meth:`head_layers` is used instead.
        """
        return {}

    def required_architecture_params(self) -> tuple[str, ...]:
        """Names from :meth:`architecture_params` the architecture *must* declare.

        Checked when the spec is resolved, before keras is imported: an architecture without one
        of them stops the run with one line.
        """
        return ()

    def kernel_regularizer(self) -> Any | None:
        """A penalty on the kernel of every Conv and Dense layer, or None.

        A ``keras.regularizers.Regularizer`` or any callable ``w -> scalar`` built with
        ``keras.ops``; it goes on ``kernel``, ``depthwise_kernel`` and ``pointwise_kernel``
        variables, nested models included.  Penalties of several regularisers are added.  Called
        after the model is built and again after a checkpoint is loaded (it is not saved).
        """
        return None

    def kernel_constraint(self, kernel_rank: int) -> Any | None:
        """A ``keras.constraints.Constraint`` for a kernel of this rank, or None.

        ``kernel_rank`` is 4 for Conv2D and depthwise kernels ``(kh, kw, in, out)``, 2 for Dense
        ``(in, out)``.  Called once per kernel; when several regularisers give a constraint, the
        last ``--reg`` wins.
        """
        return None

    def head_layers(self) -> list[Any]:
        """Keras layers inserted, in order, between the features and the classifier.

        The fallback of :meth:`architecture_params`: called only when that returned parameters
        and the architecture declares none of them (never when it returned ``{}``).  The layers
        are saved with the model, so use Keras' own layer classes; return new ones every call.
        """
        return []

    def augmentation(self, seed: int) -> list[Any]:
        """A list of Keras layers applied to training images only; ``[]`` for none.

        Always a list, also for one layer.  The layers of all regularisers run in ``--reg``
        order as one ``keras.Sequential``, called with ``training=True`` on float32 batches
        ``(N, H, W, C)`` of 0..255 pixels at the model's input size, before the architecture's
        ``preprocess``; they keep the shape and the 0..255 range.  Called several times per run
        (once per input lane, with ``seed + 7919 * lane``): build new layers every call, seeded
        from ``seed`` (which may exceed 2**32 - 1: give Keras ``seed % 2**32`` for JAX).
        """
        return []

    def batch_transform(self) -> BatchTransform | None:
        """``f(x, y_onehot, rng) -> (x, y_onehot)`` on whole training batches, or None.

        ``x``: float32 ``(N, H, W, C)`` after augmentation and the architecture's ``preprocess``
        (``cnnreg data show --augment`` passes 0..255 pixels: assume no range); ``y_onehot``:
        float32 ``(N, classes)``; ``rng``: a ``numpy.random.Generator`` seeded from (run seed,
        epoch, batch index), the only source of randomness to use.  ``f`` returns float32 arrays
        of the same shapes without writing into its inputs, and is called from several threads
        at once (worker threads of the NumPy input, parallel ``tf.data`` maps and augmentation
        lanes): it must not write shared state (or must hold a lock).  Transforms of several
        regularisers are chained in ``--reg`` order.
        """
        return None

    def train_step_transform(self) -> StepTransform | None:
        """``f(x, y_onehot, step) -> (x, y_onehot)`` inside every training step, or None.

        Called by the backend's compiled training step (``tf.function``, ``jax.jit``, or eagerly
        on PyTorch) on each training batch, after the input pipeline (augmentation, the
        architecture's ``preprocess`` and :meth:`batch_transform`: ``x`` is the model's input,
        float32 ``(N, H, W, C)``, ``y`` float32 one-hot) and before the forward and backward
        pass, which then train on what ``f`` returns (same shapes and dtypes).  ``step`` is a
        :class:`StepContext`: the model's logits at this step's weights, seeded random numbers
        and the map between the model's input and [0, 1] pixels.  ``f`` is traced: ``keras.ops``
        and ``step`` only, no NumPy on tensors, no Python branching on tensor values; the batch
        size may be unknown while tracing (``keras.ops.shape(x)[0]`` is then a tensor).
        Nothing ``f`` computes is differentiated by the weight update (return constants: an
        attack's result goes through ``keras.ops.stop_gradient``).  Transforms of several
        regularisers are chained in ``--reg`` order, sharing the step.  Before the first epoch,
        cnnreg calls ``f`` once eagerly on two grey images, so that a mistake stops the run in
        one line before training starts.  Not applied to validation or test data.
        """
        return None

    def loss_params(self) -> dict[str, Any]:
        """Keyword arguments for ``keras.losses.CategoricalCrossentropy``, e.g. ``{"label_smoothing": 0.1}``.

        Called at each compile; the dicts of several regularisers are merged in ``--reg`` order.
        """
        return {}

    def callbacks(self) -> list[Any]:
        """Keras callbacks added to every ``model.fit`` of the run (new instances every call).

        They run after cnnreg's own recorder, which checkpoints the epoch; their state is not
        checkpointed, so after ``cnnreg resume`` they start afresh.
        """
        return []

    def describe(self) -> str:
        """What the run header shows: :attr:`label`, else the class name (set ``label`` instead)."""
        return self.label or type(self).__name__


def combine_batch_transforms(transforms: list[BatchTransform]) -> BatchTransform | None:
    """One function applying ``transforms`` in order (the ``--reg`` order), or None for none."""
    if not transforms:
        return None

    def apply(x, y, rng):
        for transform in transforms:
            x, y = transform(x, y, rng)
        return x, y

    return apply


class StepContext:
    """What a :meth:`Regulariser.train_step_transform` sees of the training step it runs in.

    Made for every step (while the step is traced, for a compiled one: see
    :func:`bind_step_transform`), so that on every backend:

    * :meth:`logits` is the model at **this step's weights** (on JAX, the values of the step's
      state, not the variables': the step is a pure function of it);
    * :meth:`uniform` is seeded by the run's seed and the optimizer's step count: a rerun, and
      a resumed run (the checkpoint holds the count), draws the same numbers at the same step;
    * :attr:`pixels` maps the model's input to [0, 1] pixels and back, for budgets measured in
      pixels (the training batches arrive preprocessed).
    """

    def __init__(self, logits: Callable[[Any], Any], uniform: Callable[[tuple[Any, ...], float, float], Any], *,
                 pixels: Any = None, iteration: Any = None) -> None:
        self._logits, self._uniform, self._pixels = logits, uniform, pixels
        #: The optimizer's step count before this step's update (a scalar tensor, or an int).
        self.iteration = iteration

    def logits(self, x_model: Any) -> Any:
        """The model's scores before its softmax for the model inputs ``x_model``, ``(N, classes)``
        float32, in inference mode (batch normalisation uses its moving statistics, dropout is
        off, nothing is updated)."""
        return self._logits(x_model)

    def uniform(self, shape: tuple[Any, ...], low: float, high: float) -> Any:
        """float32 random numbers in [low, high) of ``shape`` (ints, or scalar tensors from
        ``keras.ops.shape`` for a batch size unknown while tracing), different on every call
        within the step and at every step, the same on a rerun."""
        return self._uniform(tuple(shape), low, high)

    @property
    def pixels(self):
        """The run's preprocessing as a :class:`cnnreg.kinds.attacks.PixelSpace`:
        ``pixels.to_pixels(x)`` gives [0, 1] pixels, ``pixels.from_pixels(x01)`` the model's
        input.  Found by probing the preprocessing the first time a transform asks; one line
        (:class:`cnnreg.errors.CnnregError`) when it is not affine per pixel."""
        if callable(self._pixels):
            self._pixels = self._pixels()
        if self._pixels is None:
            from cnnreg.errors import CnnregError

            raise CnnregError("this training step has no pixel space (no preprocessing was given to it)")
        return self._pixels

    def target(self):
        """The model at this step as an attack target (:class:`cnnreg.kinds.attacks.AttackTarget`) in
        [0, 1] pixel space: ``attack.perturb(step.target(), step.pixels.to_pixels(x), y)``."""
        from cnnreg.kinds.attacks import ModelTarget

        return ModelTarget(self._logits, self.pixels.from_pixels, uniform=self.uniform, training=True)


def bind_step_transform(model: Any, transform: StepTransform, *, pixels: Any = None) -> Callable[..., Any]:
    """``apply(x, y, uniform, iteration)``: ``transform`` given a :class:`StepContext` of
    ``model`` (its logits at the step's weights, the step's random numbers and count, and
    ``pixels``, a PixelSpace or a function returning one), as
    :func:`cnnreg.backends.wrap_train_step` calls it inside the compiled training step."""
    from cnnreg.kinds.attacks import logits_function

    logits = logits_function(model)

    def apply(x: Any, y: Any, uniform: Callable[..., Any], iteration: Any) -> Any:
        return transform(x, y, StepContext(logits, uniform, pixels=pixels, iteration=iteration))

    return apply


def combine_step_transforms(transforms: list[StepTransform]) -> StepTransform | None:
    """One step transform applying ``transforms`` in order (the ``--reg`` order), or None."""
    if not transforms:
        return None
    if len(transforms) == 1:
        return transforms[0]

    def apply(x, y, step):
        for transform in transforms:
            x, y = transform(x, y, step)
        return x, y

    return apply


def augmentation_layers(regularisers: Any, seed: int) -> list[Any]:
    """Every regulariser's :meth:`Regulariser.augmentation` layers, in ``--reg`` order.

    ``seed`` is wrapped to 0..2**32-1 (JAX takes no other seeds), and a plugin that returns one
    layer (or None) instead of a list is taken at its word rather than failing mid-run.
    """
    layers: list[Any] = []
    for reg in regularisers:
        made = reg.augmentation(int(seed) % 2**32)
        if made is None:
            continue
        layers.extend(made if isinstance(made, (list, tuple)) else [made])
    return layers


#: What ``cnnreg plugin new --kind regulariser`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Smooth L1/L2 penalty on every Conv and Dense kernel",
        primary="factor",
    )
''',
    factories='''\
"""The regulariser's factory: returns a cnnreg.Regulariser."""

from typing import Annotated

from cnnreg.kinds.regularisers import Regulariser
from cnnreg.spec import Range


class SmoothPenalty(Regulariser):
    def __init__(self, factor: float, delta: float) -> None:
        self.factor, self.delta = factor, delta
        self.label = f"smooth L1 penalty {factor:g} (delta {delta:g})"

    def kernel_regularizer(self):
        import keras

        factor, delta = self.factor, self.delta

        def penalty(w):
            a = keras.ops.abs(w)
            return factor * keras.ops.sum(keras.ops.where(a < delta, 0.5 * a * a / delta, a - 0.5 * delta))

        return penalty


def $name(
    factor: Annotated[float, Range(0, None)] = 1e-4,
    delta: Annotated[float, Range(0, None, min_inclusive=False)] = 0.1,
) -> Regulariser:
    """Huber-style penalty: quadratic for small weights, linear for large ones."""
    return SmoothPenalty(factor, delta)
''',
    test='''

def test_penalty_is_positive_and_scales_with_factor():
    import numpy as np

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        small = cnnreg.build("regulariser", "$name=1e-3").kernel_regularizer()
        large = cnnreg.build("regulariser", "$name=1e-2").kernel_regularizer()
    w = np.linspace(-1, 1, 50).astype("float32")
    assert 0 < float(small(w)) < float(large(w))
''',
)


KIND = KindSpec(
    "regulariser", "regularisers", words=("regularizer", "regularizers", "reg", "regs"),
    contract=__name__,
    doc="""Add regularisers: weight penalties, layers to insert, augmentations, loss changes.

    The factory returns a :class:`cnnreg.kinds.regularisers.Regulariser` (see that module and
    docs/plugins.md); give ``primary="rate"`` (or another parameter name) as metadata to choose
    what ``NAME=VALUE`` sets.
    """,
    scaffold=SCAFFOLD,
)
