"""The regularisers' training-step transforms (adversarial training) in a run's model: chained
in ``--reg`` order, tried once eagerly so that a mistake is one line before anything is written
(:func:`check_step_transforms`), and installed in the backend's compiled step
(:func:`install_step_transforms`, :func:`cnnreg.backends.wrap_train_step`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from cnnreg.errors import CnnregError
from cnnreg.training.config import Plan


def install_step_transforms(plan: Plan, model) -> bool:
    """Put the regularisers' :meth:`~cnnreg.kinds.regularisers.Regulariser.train_step_transform`
    functions, chained in ``--reg`` order, into ``model``'s training step
    (:func:`cnnreg.backends.wrap_train_step`, seeded from the run's seed) after
    :func:`check_step_transforms`; False when there are none."""
    from cnnreg import backends

    checked = check_step_transforms(plan, model)
    backends.unwrap_train_step(model)
    if checked is None:
        return False
    transform, pixels = checked
    from cnnreg.kinds.regularisers import bind_step_transform

    backends.wrap_train_step(model, bind_step_transform(model, transform, pixels=pixels), seed=plan.config.seed)
    return True


def check_step_transforms(plan: Plan, model):
    """``(chained transform, pixel space)`` of the run's regularisers, or None when none has one.

    The chain runs once eagerly on two mid-grey images (the run's own preprocessing of pixel
    127.5) with the model as it is, so that a transform's mistake — a preprocessing that is not
    affine, a plugin's bug — stops the run in one line before its directory is written (the
    loop calls this first) and before the first epoch, not from inside the compiled step.  It
    is tried once per plan (the transforms do not change with the model: a resumed or a
    fine-tuning phase's model installs the same chain)."""
    if plan.step_transforms_checked:
        return plan.step_transforms
    plan.step_transforms = _checked_step_transforms(plan, model)
    plan.step_transforms_checked = True
    return plan.step_transforms


def _checked_step_transforms(plan: Plan, model):
    from cnnreg.errors import PluginError
    from cnnreg.kinds.regularisers import combine_step_transforms

    named = [(resolved, transform) for resolved, reg in plan.regularisers
             if (transform := reg.train_step_transform()) is not None]
    if not named:
        return None
    chained = combine_step_transforms([transform for _, transform in named])
    pixels = _pixel_space(plan)
    names = ", ".join(f"'{resolved.component.name}' from {resolved.component.provider}" for resolved, _ in named)
    try:
        changed = _try_step_transform(plan, model, chained, pixels)
    except CnnregError:
        raise
    except Exception as exc:  # a plugin's bug: one line naming it, before any training
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PluginError(f"the training-step transform of regulariser {names} failed: "
                          f"{type(exc).__name__}: {first}") from exc
    if changed:
        raise PluginError(f"the training-step transform of regulariser {names} {changed}; it must keep them")
    return chained, pixels


@contextlib.contextmanager
def step_transforms_removed(model):
    """Leave the model as compiled once ``fit`` returns or fails (``model.train_step`` is the class's again)."""
    try:
        yield
    finally:
        from cnnreg import backends

        backends.unwrap_train_step(model)


def _pixel_space(plan: Plan):
    """A function giving the run's preprocessing as a PixelSpace, probed once, when first asked."""
    from cnnreg.kinds.attacks import PixelSpace

    found: list[Any] = []

    def pixels():
        if not found:
            what = f"the preprocessing of {plan.architecture.component.name} ({plan.preprocess_ref})"
            found.append(PixelSpace.probe(plan.preprocess, int(plan.input_shape[-1]), what=what))
        return found[0]

    return pixels


def _try_step_transform(plan: Plan, model, transform, pixels) -> str:
    """Run ``transform`` eagerly on two grey images with the model as it is: what it changed of
    the batch's shapes, else ``""``."""
    import keras

    from cnnreg.kinds.attacks import logits_function
    from cnnreg.kinds.regularisers import StepContext

    x = plan.preprocess(np.full((2, *plan.input_shape), 127.5, dtype="float32"))
    x = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    y = keras.ops.convert_to_tensor(np.eye(plan.dataset.num_classes, dtype="float32")[[0, 1 % plan.dataset.num_classes]])
    rng = np.random.default_rng(plan.config.seed)

    def uniform(shape, low, high):
        return keras.ops.convert_to_tensor(rng.uniform(low, high, size=tuple(int(d) for d in shape)).astype("float32"))

    out_x, out_y = transform(x, y, StepContext(logits_function(model), uniform, pixels=pixels, iteration=0))
    if tuple(out_x.shape) != tuple(x.shape) or tuple(out_y.shape) != tuple(y.shape):
        return (f"changed the batch's shapes from {tuple(x.shape)}, {tuple(y.shape)} "
                f"to {tuple(out_x.shape)}, {tuple(out_y.shape)}")
    return ""
