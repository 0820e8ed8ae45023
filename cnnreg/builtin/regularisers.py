"""Built-in plugin: the regularisers the lecture names, plus Keras 3's augmentation layers.

Penalties (``l1``, ``l2``, ``l1_l2``) and ``max_norm`` go on the kernel of every Conv and Dense
layer; ``dropout`` and ``batchnorm`` set the architecture's own parameters where it has them
(dropout is otherwise inserted before the classifier); ``label_smoothing`` changes the loss; the
augmentations (``flip``, ``crop``, ``rotate``, ``zoom``, ``translate``, ``color``,
``randaugment``, ``mixup``, ``cutmix``) run on the training split only; ``adversarial`` trains
on adversarial versions of part of each batch, made inside the training step by an attack.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from cnnreg.builtin.attacks import EIGHT_LEVELS, Eps
from cnnreg.hookspecs import hookimpl
from cnnreg.kinds.regularisers import Regulariser
from cnnreg.spec import Range

Positive = Annotated[float, Range(0, None, min_inclusive=False)]
#: Penalty factors: far beyond any useful setting (1e-5 to 1e-2 are usual), and small enough
#: that factor × Σw² stays finite in float32 (max 3.4e38).
PenaltyFactor = Annotated[float, Range(0, 1e20)]
Rate = Annotated[float, Range(0, 1, max_inclusive=False)]
Factor = Annotated[float, Range(0, 1)]


class Penalty(Regulariser):
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1, self.l2 = l1, l2
        terms = [f"l1 {l1:g}"] * bool(l1) + [f"l2 {l2:g}"] * bool(l2)
        self.label = " + ".join(terms) + " kernel penalty"

    def kernel_regularizer(self):
        import keras

        return keras.regularizers.L1L2(l1=self.l1, l2=self.l2)


def l1(factor: PenaltyFactor = 1e-5) -> Regulariser:
    """L1 penalty ``factor * sum(|w|)`` on every Conv and Dense kernel (sparse weights)."""
    return Penalty(l1=factor)


def l2(factor: PenaltyFactor = 1e-4) -> Regulariser:
    """L2 penalty ``factor * sum(w²)`` on every Conv and Dense kernel (weight decay)."""
    return Penalty(l2=factor)


def l1_l2(l1: PenaltyFactor = 1e-5, l2: PenaltyFactor = 1e-4) -> Regulariser:
    """Both L1 and L2 penalties on every Conv and Dense kernel."""
    return Penalty(l1=l1, l2=l2)


class MaxNorm(Regulariser):
    def __init__(self, max_value: float) -> None:
        self.max_value = max_value
        self.label = f"max-norm {max_value:g} on kernels"

    def kernel_constraint(self, kernel_rank: int):
        import keras

        # the norm of each output unit's incoming weights: all axes but the last
        return keras.constraints.MaxNorm(self.max_value, axis=list(range(kernel_rank - 1)))


def max_norm(max_value: Positive = 3.0) -> Regulariser:
    """Max-norm constraint: each unit's incoming weight vector has L2 norm ≤ ``max_value``."""
    return MaxNorm(max_value)


class Dropout(Regulariser):
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.label = f"dropout {rate:g}"

    def architecture_params(self):
        return {"dropout": self.rate}

    def head_layers(self):
        import keras

        return [keras.layers.Dropout(self.rate, name="reg_dropout")]


def dropout(rate: Rate = 0.5) -> Regulariser:
    """Dropout at ``rate``: the architecture's own, else one layer before the classifier.

    The architecture's own dropout (between dense layers and before the classifier) where it has a
    ``dropout`` parameter, otherwise one Dropout layer before the classifier (AlexNet: 50% on F9
    and F10; GoogLeNet: 40% before the classifier)."""
    return Dropout(rate)


class BatchNorm(Regulariser):
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.label = "batchnorm " + ("on" if enabled else "off")

    def architecture_params(self):
        return {"batchnorm": self.enabled}

    def required_architecture_params(self):
        return ("batchnorm",)


def batchnorm(enabled: bool = True) -> Regulariser:
    """Batch normalisation on or off (``batchnorm=false``) where the architecture supports it."""
    return BatchNorm(enabled)


class LabelSmoothing(Regulariser):
    def __init__(self, amount: float) -> None:
        self.amount = amount
        self.label = f"label smoothing {amount:g}"

    def loss_params(self):
        return {"label_smoothing": self.amount}


def label_smoothing(amount: Rate = 0.1) -> Regulariser:
    """Label smoothing: targets 1 - amount + amount / classes and amount / classes.

    One-hot targets become ``1 - amount + amount / classes`` and ``amount / classes``
    (``keras.losses.CategoricalCrossentropy(label_smoothing=amount)``)."""
    return LabelSmoothing(amount)


class Augment(Regulariser):
    """Augmentation through Keras 3 preprocessing layers built by ``make(seed)``."""

    def __init__(self, label: str, make) -> None:
        self.label = label
        self._make = make

    def augmentation(self, seed: int):
        return self._make(seed)


def flip(mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal") -> Regulariser:
    """Random flips (``keras.layers.RandomFlip``), training split only."""
    def make(seed):
        import keras

        return [keras.layers.RandomFlip(mode, seed=seed)]

    return Augment(f"random {mode} flip", make)


def crop(fraction: Annotated[float, Range(0.1, 1)] = 0.875) -> Regulariser:
    """Random crop of ``fraction`` of each side, resized back (AlexNet: 224 of 256 = 0.875)."""

    def make(seed):
        return [_RandomResizedCropLayer(fraction, seed)]

    return Augment(f"random crop {fraction:g}", make)


def rotate(factor: Factor = 0.05) -> Regulariser:
    """Random rotation by up to ``factor`` × 360° (``keras.layers.RandomRotation``)."""

    def make(seed):
        import keras

        return [keras.layers.RandomRotation(factor, fill_mode="nearest", seed=seed)]

    return Augment(f"random rotation ±{factor * 360:g}°", make)


def zoom(factor: Factor = 0.1) -> Regulariser:
    """Random zoom in or out by up to ``factor`` (``keras.layers.RandomZoom``)."""

    def make(seed):
        import keras

        return [keras.layers.RandomZoom(factor, factor, fill_mode="nearest", seed=seed)]

    return Augment(f"random zoom ±{factor:g}", make)


def translate(factor: Factor = 0.1) -> Regulariser:
    """Random shifts by up to ``factor`` of height and width (``keras.layers.RandomTranslation``)."""

    def make(seed):
        import keras

        return [keras.layers.RandomTranslation(factor, factor, fill_mode="nearest", seed=seed)]

    return Augment(f"random shift ±{factor:g}", make)


def color(brightness: Factor = 0.2, contrast: Factor = 0.2) -> Regulariser:
    """Lighting changes: random brightness and contrast (pixel range 0..255)."""

    def make(seed):
        import keras

        layers = []
        if brightness:
            layers.append(keras.layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed))
        if contrast:
            layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=(seed + 1) % 2**32))
        return layers

    return Augment(f"brightness ±{brightness:g}, contrast ±{contrast:g}", make)


def randaugment(num_ops: Annotated[int, Range(1, 10)] = 2, factor: Factor = 0.5) -> Regulariser:
    """RandAugment (Cubuk et al. 2019): ``num_ops`` random operations of strength ``factor``."""

    def make(seed):
        import keras

        return [keras.layers.RandAugment(value_range=(0, 255), num_ops=num_ops, factor=factor, seed=seed)]

    return Augment(f"randaugment {num_ops} ops × {factor:g}", make)


class BatchMix(Regulariser):
    def __init__(self, kind: str, alpha: float) -> None:
        self.kind, self.alpha = kind, alpha
        self.label = f"{kind} α={alpha:g}"

    def batch_transform(self):
        return _mixup(self.alpha) if self.kind == "mixup" else _cutmix(self.alpha)


def mixup(alpha: Positive = 0.2) -> Regulariser:
    """MixUp (Zhang et al. 2018): blend pairs of images and their labels, λ ~ Beta(α, α)."""
    return BatchMix("mixup", alpha)


def cutmix(alpha: Positive = 1.0) -> Regulariser:
    """CutMix (Yun et al. 2019): paste a box from another image; labels mixed by area."""
    return BatchMix("cutmix", alpha)


def _mixup(alpha: float):
    def apply(x, y, rng):
        lam = rng.beta(alpha, alpha)
        order = rng.permutation(len(x))
        return lam * x + (1 - lam) * x[order], lam * y + (1 - lam) * y[order]

    return apply


def _cutmix(alpha: float):
    def apply(x, y, rng):
        import numpy as np

        lam = rng.beta(alpha, alpha)
        order = rng.permutation(len(x))
        height, width = x.shape[1:3]
        cut_h, cut_w = int(height * np.sqrt(1 - lam)), int(width * np.sqrt(1 - lam))
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        x = x.copy()
        x[:, top:bottom, left:right] = x[order, top:bottom, left:right]
        kept = 1 - (bottom - top) * (right - left) / (height * width)
        return x, kept * y + (1 - kept) * y[order]

    return apply


def _RandomResizedCropLayer(fraction: float, seed: int):
    """RandomCrop to ``fraction`` of the image, then Resizing back, as one layer."""
    import keras

    class RandomCropBack(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.fraction, self.seed = fraction, seed

        def build(self, input_shape):
            height, width = int(input_shape[1]), int(input_shape[2])
            crop_h, crop_w = max(1, round(height * fraction)), max(1, round(width * fraction))
            self.crop = keras.layers.RandomCrop(crop_h, crop_w, seed=seed)
            self.resize = keras.layers.Resizing(height, width)

        def call(self, images, training=True):
            return self.resize(self.crop(images, training=training))

        def compute_output_shape(self, input_shape):
            # the size it started with; stated, because inferring it traces RandomCrop's random
            # offsets, which JAX cannot slice with
            return tuple(input_shape)

    return RandomCropBack(name="random_crop")


class Adversarial(Regulariser):
    """Adversarial training through :meth:`Regulariser.train_step_transform`: the first
    ``ceil(ratio · N)`` rows of every training batch are replaced by the attack's adversarial
    versions at this step's weights, the rest stay clean, and the step trains on the mixed batch
    (Goodfellow et al.'s mixed loss; ``ratio=1`` with ``attack=pgd`` is Madry et al.'s training)."""

    def __init__(self, attack, attack_name: str, eps: float, ratio: float) -> None:
        self.attack, self.attack_name, self.eps, self.ratio = attack, attack_name, eps, ratio
        share = "every example of each batch" if ratio == 1 else f"{_percent(ratio)} of each batch"
        what = attack.describe() if eps else f"{attack_name} at eps 0 (no change)"
        self.label = f"adversarial training: {what} on {share}"

    def train_step_transform(self):
        if self.eps == 0 or self.ratio == 0:
            return None  # nothing would change: no attack in the step
        attack, eps, ratio = self.attack, self.eps, self.ratio

        def transform(x, y, step):
            from keras import ops

            from cnnreg.kinds.attacks import clip_unit

            pixels, target = step.pixels, step.target()

            def adversarial(rows, labels):
                x01 = clip_unit(pixels.to_pixels(rows))
                return ops.cast(pixels.from_pixels(attack.perturb(target, x01, labels, eps=eps)), rows.dtype)

            size = x.shape[0]
            if isinstance(size, int):  # known while tracing (JAX, PyTorch): attack those rows only
                count = min(size, math.ceil(ratio * size))
                if count == size:
                    return adversarial(x, y), y
                return ops.concatenate([adversarial(x[:count], y[:count]), x[count:]], axis=0), y
            # a batch size unknown while tracing (TensorFlow): attack all, keep the first rows
            attacked = adversarial(x, y)
            if ratio == 1:
                return attacked, y
            n = ops.shape(x)[0]
            rows = ops.cast(ops.arange(n), "float32") < ratio * ops.cast(n, "float32")
            return ops.where(ops.reshape(rows, (-1,) + (1,) * (len(x.shape) - 1)), attacked, x), y

        return transform


def _percent(ratio: float) -> str:
    text = f"{ratio * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def adversarial(eps: Eps = EIGHT_LEVELS, attack: str = "fgsm", ratio: Factor = 0.5,
                steps: Annotated[int, Range(0, 100_000)] = 0, norm: Literal["inf", "2"] = "inf") -> Regulariser:
    """Adversarial training (Goodfellow et al. 2015; Madry et al. 2018) on attacked batches.

    A share ``ratio`` of every training batch is replaced by ``attack``'s adversarial versions,
    made inside the training step at its weights.  Goodfellow et al. train on a mix of clean and
    FGSM examples (``ratio=0.5``, the default); Madry et al. on PGD examples only
    (``attack=pgd,ratio=1``).  ``eps`` is in [0, 1] pixel units
    (``8/255``), measured in ``norm``: ``inf`` (the largest change of one value) or ``2``
    (the length of an image's whole change: L2 adversarial training, e.g.
    ``adversarial:attack=pgd,norm=2,eps=0.5``); ``attack`` names any attack (`cnnreg list
    attacks`) that takes that norm, ``steps`` (0: its own default) sets an iterative attack's steps.  The attack runs
    inside the training step at that step's weights, so each step costs about ``1 + steps``
    forward and backward passes more on the attacked rows."""
    from cnnreg.kinds.attacks import Attack
    from cnnreg.errors import CnnregError, ParameterError, PluginError
    from cnnreg.plugins import get_host

    try:
        component = get_host().registry.get("attack", attack)
    except CnnregError as exc:
        raise type(exc)(f"regulariser 'adversarial' parameter 'attack': {exc}") from None
    declared = {p.name for p in component.parameters()}
    params: dict = {}
    if "eps" in declared:
        params["eps"] = eps
    if steps:
        if "steps" not in declared:
            raise ParameterError(f"regulariser 'adversarial': attack '{component.name}' has no 'steps' parameter; "
                                 "leave steps=0 (its parameters: " + (", ".join(sorted(declared)) or "none") + ")")
        params["steps"] = steps
    if "norm" in declared:
        params["norm"] = norm
    try:
        made = component.build(params)
    except CnnregError as exc:
        raise type(exc)(f"regulariser 'adversarial': {exc}") from None
    if not isinstance(made, Attack):
        raise PluginError(f"attack '{component.name}' from {component.provider} returned {type(made).__name__}, "
                          "not a cnnreg.kinds.attacks.Attack (see docs/plugins.md)")
    if str(made.norm) != norm:
        text = {"inf": "L∞", "2": "L2"}
        raise ParameterError(f"regulariser 'adversarial': attack '{component.name}' attacks under "
                             f"{text.get(str(made.norm), made.norm)} only, not norm={norm}; "
                             f"use norm={made.norm}, or an attack with a norm parameter (fgsm, pgd)")
    return Adversarial(made, component.name, float(eps), float(ratio))


_ENTRIES = [
    (l1, "penalty", ()),
    (l2, "penalty", ("weight_decay",)),
    (l1_l2, "penalty", ()),
    (max_norm, "constraint", ()),
    (dropout, "layer", ()),
    (batchnorm, "architecture", ("bn",)),
    (label_smoothing, "loss", ()),
    (flip, "augmentation", ()),
    (crop, "augmentation", ()),
    (rotate, "augmentation", ()),
    (zoom, "augmentation", ()),
    (translate, "augmentation", ("shift",)),
    (color, "augmentation", ("lighting",)),
    (randaugment, "augmentation", ()),
    (mixup, "batch augmentation", ()),
    (cutmix, "batch augmentation", ()),
    (adversarial, "adversarial training", ("adversarial_training",)),
]


@hookimpl
def register_regularisers(registry):
    for factory, role, aliases in _ENTRIES:
        registry.add(factory.__name__, factory, aliases=aliases, tags=(role,), role=role)
