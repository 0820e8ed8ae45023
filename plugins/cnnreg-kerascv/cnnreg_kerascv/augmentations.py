"""keras-cv augmentations that Keras 3 has no layer for, as cnnreg regularisers.

Image-only ones (``grid_mask``, ``cutout``, ``channel_shuffle``, ``channel_shift``) return a
layer from :meth:`Regulariser.augmentation`; cnnreg applies it to training batches only, on
0..255 pixels.  The ones that mix images and labels (``fourier_mix``, ``mosaic``) are
:meth:`Regulariser.batch_transform` functions.  The factories check that keras-cv is installed
(without importing it); keras-cv and TensorFlow are imported when training starts.

Two things about keras-cv 0.9 shape the code: its layers run their per-image TensorFlow code
50–100× faster traced than eagerly (GridMask: 1 s → 15 ms for 32 images), and cnnreg calls
augmentations eagerly, so each layer runs inside a ``tf.function``; and its layers augment
whether or not ``training`` is set, so never put them inside a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from cnnreg.kinds.regularisers import Regulariser
from cnnreg.spec import Range
from cnnreg_kerascv._kerascv import check, keras_cv

Fraction = Annotated[float, Range(0, 1)]


class KerasCVAugmentation(Regulariser):
    """A keras-cv layer made by ``make(keras_cv, seed, channels)``, applied to training images."""

    def __init__(self, name: str, label: str, make: Callable[[Any, int, int], Any]) -> None:
        check(f"regulariser '{name}'")
        self.name, self.label, self._make = name, label, make

    def augmentation(self, seed: int) -> list[Any]:
        kcv = keras_cv(f"regulariser '{self.name}'")
        # keras-cv 0.9 takes seed 0 for "no seed" (`if seed:`), and then its layers use TensorFlow's
        # global generator, which cnnreg's deterministic mode forbids: never give it 0.
        kcv_seed = 2 * seed + 1
        return [_traced_layer(lambda channels: self._make(kcv, kcv_seed, channels), name=self.name)]


class KerasCVBatchMix(Regulariser):
    """A keras-cv layer that mixes whole batches of images and their one-hot labels."""

    def __init__(self, name: str, label: str, make: Callable[[Any], Any]) -> None:
        check(f"regulariser '{name}'")
        self.name, self.label, self._make = name, label, make

    def batch_transform(self):
        import threading

        state: dict[str, Any] = {}
        lock = threading.Lock()  # cnnreg may prepare batches in several threads

        def apply(x, y, rng):
            import numpy as np

            with lock:
                if not state:
                    import tensorflow as tf

                    layer = self._make(keras_cv(f"regulariser '{self.name}'"))
                    state["layer"] = layer
                    state["call"] = tf.function(lambda images, labels: layer({"images": images, "labels": labels}))
                # The layer's own generator restarts from cnnreg's per-batch seed, so batch i of
                # epoch e is mixed the same way in a rerun or after a resume (but see fourier_mix).
                state["layer"]._random_generator.reset_from_seed(int(rng.integers(2**31 - 1)))
                out = state["call"](np.asarray(x, dtype="float32"), np.asarray(y, dtype="float32"))
            return np.asarray(out["images"], dtype="float32"), np.asarray(out["labels"], dtype="float32")

        return apply


def grid_mask(
    ratio: Annotated[float, Range(0, 1, min_inclusive=False, max_inclusive=False)] = 0.5,
    rotation: Fraction = 0.15,
) -> Regulariser:
    """GridMask (Chen et al. 2020): black out a regular grid of squares, rotated at random.

    Each image gets a grid whose squares take a random fraction in [0, ``ratio``) of each
    cell, rotated by up to ``rotation`` × 360° (``keras_cv.layers.GridMask``, filled with 0;
    keras-cv 0.9's ``fill_mode="gaussian_noise"`` fails under Keras 3, so it is not offered).
    """

    def make(kcv, seed, channels):
        return kcv.layers.GridMask(ratio_factor=(0, ratio), rotation_factor=rotation, fill_mode="constant",
                                   fill_value=0.0, seed=seed)

    return KerasCVAugmentation("grid_mask", f"grid mask ratio < {ratio:g}, rotation ±{rotation * 360:g}°", make)


def cutout(size: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.5) -> Regulariser:
    """Cutout (DeVries & Taylor 2017): black out one rectangle per image.

    Its height and width are random fractions in [0, ``size``) of the image's
    (``keras_cv.layers.RandomCutout``; Keras' own ``RandomErasing`` is similar but fills with
    noise and draws its sizes differently).
    """

    def make(kcv, seed, channels):
        return kcv.layers.RandomCutout(height_factor=size, width_factor=size, fill_mode="constant",
                                       fill_value=0.0, seed=seed)

    return KerasCVAugmentation("cutout", f"cutout < {size:g} of each side", make)


def channel_shuffle(groups: Annotated[int, Range(1, None)] = 3) -> Regulariser:
    """Shuffle the channels in ``groups`` groups (``keras_cv.layers.ChannelShuffle``).

    On RGB images with ``groups=3``: a random permutation of R, G and B per image.  The
    channel count must be divisible by ``groups``; on grayscale images (1 channel) use
    ``--input-shape HxWx3`` (channel shuffle does nothing to one channel).
    """

    def make(kcv, seed, channels):
        if channels % groups:
            from cnnreg.errors import ParameterError

            raise ParameterError(
                f"channel_shuffle: {channels} channel(s) cannot be split into groups={groups}; "
                "for grayscale data use --input-shape HxWx3"
            )
        return kcv.layers.ChannelShuffle(groups=groups, seed=seed)

    return KerasCVAugmentation("channel_shuffle", f"channel shuffle in {groups} groups", make)


def channel_shift(factor: Fraction = 0.1) -> Regulariser:
    """Shift each channel by its own random amount, up to ±``factor`` × 255.

    ``keras_cv.layers.RandomChannelShift`` on the 0..255 range; any number of channels
    (on grayscale images it is a random brightness change).
    """

    def make(kcv, seed, channels):
        return kcv.layers.RandomChannelShift(value_range=(0, 255), factor=factor, channels=channels, seed=seed)

    return KerasCVAugmentation("channel_shift", f"channel shift ±{factor:g}", make)


def fourier_mix(alpha: Annotated[float, Range(0, None, min_inclusive=False)] = 0.5,
                decay_power: Annotated[float, Range(0, None, min_inclusive=False)] = 3.0) -> Regulariser:
    """FMix (Harris et al. 2020): mix pairs of images through a mask made from low-frequency noise.

    The mask keeps a fraction λ ~ Beta(``alpha``, ``alpha``) of the first image, in blobs whose
    smoothness grows with ``decay_power``; labels are mixed by λ
    (``keras_cv.layers.FourierMix``).  Like mixup and cutmix, it acts on training batches.
    λ and the masks follow cnnreg's seed batch by batch; which image is paired with which comes
    from a TensorFlow op with its own state (keras-cv's ``tf.random.shuffle``): the same in a
    rerun, not batch for batch after ``cnnreg resume``.
    """

    def make(kcv):
        import tensorflow as tf

        layer = kcv.layers.FourierMix(alpha=alpha, decay_power=decay_power, seed=1)

        def sample_beta(a, b, shape):  # keras-cv draws λ from unseeded tf.random.gamma
            seeds = layer._random_generator.make_seeds(2)
            x = tf.random.stateless_gamma(shape, seed=seeds[:, 0], alpha=a)
            return x / (x + tf.random.stateless_gamma(shape, seed=seeds[:, 1], alpha=b))

        layer._sample_from_beta = sample_beta
        return layer

    return KerasCVBatchMix("fourier_mix", f"fourier mix α={alpha:g}, decay {decay_power:g}", make)


def mosaic(low: Fraction = 0.25, high: Fraction = 0.75) -> Regulariser:
    """Mosaic (Bochkovskiy et al. 2020, YOLOv4): tile four images around a random centre.

    The centre lies between ``low`` and ``high`` of the height and width; labels are mixed by
    each tile's area (``keras_cv.layers.Mosaic``, classification labels, no boxes).
    """
    if low > high:
        from cnnreg.errors import ParameterError

        raise ParameterError(f"mosaic: low ({low}) must be <= high ({high})")

    def make(kcv):
        layer = kcv.layers.Mosaic(offset=(low, high), seed=1)
        # keras-cv draws the centres from a stateful op; draw them from the layer's generator.
        layer.center_sampler = lambda shape=(), dtype="float32": layer._random_generator.uniform(
            shape, minval=low, maxval=high, dtype=dtype)
        return layer

    return KerasCVBatchMix("mosaic", f"mosaic, centre in {low:g}..{high:g}", make)


def _traced_layer(make: Callable[[int], Any], *, name: str):
    """A Keras layer that builds ``make(channels)`` once it sees its input and runs it traced."""
    import keras
    import tensorflow as tf

    class Traced(keras.layers.Layer):
        def build(self, input_shape):
            inner = make(int(input_shape[-1]))
            self._traced = tf.function(inner, reduce_retracing=True)

        def call(self, images, training=True):
            return self._traced(images)

        def compute_output_shape(self, input_shape):
            return input_shape

    return Traced(name=name)
