"""Built-in plugin: Keras' weight initialisers, with the activations each one suits (the
lecture's table of Glorot, He and LeCun initialisation is in :mod:`cnnreg.kinds.initialisers`,
with the contract).  Factories import keras only when called.
"""

from __future__ import annotations

from typing import Annotated, Literal

from cnnreg.hookspecs import hookimpl
from cnnreg.kinds.initialisers import GLOROT_SUITS, HE_SUITS, LECUN_SUITS
from cnnreg.spec import Range

#: Bound on means, spreads and gains: far beyond any useful setting, and small enough that a draw
#: (at most mean + ~13 stddev) stays finite in float32 (max 3.4e38).
LIMIT = 1e20
Positive = Annotated[float, Range(0, LIMIT, min_inclusive=False)]
Mean = Annotated[float, Range(-LIMIT, LIMIT)]
#: Keras seeds: JAX takes unsigned 32-bit seeds only (the same range as ``--seed``).
Seed = Annotated[int, Range(0, 2**32 - 1)]



def glorot_uniform(seed: Seed | None = None):
    """Glorot (Xavier) uniform: U(-r, r) with r = sqrt(3 / fan_avg), variance 1 / fan_avg."""
    import keras

    return keras.initializers.GlorotUniform(seed=seed)


def glorot_normal(seed: Seed | None = None):
    """Glorot (Xavier) normal: truncated normal with variance 1 / fan_avg."""
    import keras

    return keras.initializers.GlorotNormal(seed=seed)


def he_uniform(seed: Seed | None = None):
    """He (Kaiming) uniform: U(-r, r) with r = sqrt(6 / fan_in), variance 2 / fan_in."""
    import keras

    return keras.initializers.HeUniform(seed=seed)


def he_normal(seed: Seed | None = None):
    """He (Kaiming) normal: truncated normal with variance 2 / fan_in."""
    import keras

    return keras.initializers.HeNormal(seed=seed)


def lecun_uniform(seed: Seed | None = None):
    """LeCun uniform: U(-r, r) with r = sqrt(3 / fan_in), variance 1 / fan_in."""
    import keras

    return keras.initializers.LecunUniform(seed=seed)


def lecun_normal(seed: Seed | None = None):
    """LeCun normal: truncated normal with variance 1 / fan_in (for SELU)."""
    import keras

    return keras.initializers.LecunNormal(seed=seed)


def variance_scaling(
    scale: Positive = 1.0,
    mode: Literal["fan_in", "fan_out", "fan_avg"] = "fan_in",
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] = "truncated_normal",
    seed: Seed | None = None,
):
    """Variance scaling: variance scale / fan (the general form of Glorot, He and LeCun).

    He normal is ``variance_scaling:scale=2,mode=fan_in``; Glorot uniform is
    ``variance_scaling:scale=1,mode=fan_avg,distribution=uniform``.
    """
    import keras

    return keras.initializers.VarianceScaling(scale=scale, mode=mode, distribution=distribution, seed=seed)


def orthogonal(gain: Positive = 1.0, seed: Seed | None = None):
    """Orthogonal matrix (Saxe et al. 2013) times ``gain``; keeps norms through linear layers."""
    import keras

    return keras.initializers.Orthogonal(gain=gain, seed=seed)


def random_normal(stddev: Positive = 0.05, mean: Mean = 0.0, seed: Seed | None = None):
    """Normal distribution N(mean, stddev²), independent of the layer's fan."""
    import keras

    return keras.initializers.RandomNormal(mean=mean, stddev=stddev, seed=seed)


def truncated_normal(stddev: Positive = 0.05, mean: Mean = 0.0, seed: Seed | None = None):
    """Normal N(mean, stddev²) cut at two standard deviations (variance ≈ 0.774 stddev²)."""
    import keras

    return keras.initializers.TruncatedNormal(mean=mean, stddev=stddev, seed=seed)


def random_uniform(limit: Positive = 0.05, seed: Seed | None = None):
    """Uniform U(-limit, limit), independent of the layer's fan (variance limit² / 3)."""
    import keras

    return keras.initializers.RandomUniform(minval=-limit, maxval=limit, seed=seed)


_ENTRIES = [
    # name, factory, suits, variance (normal σ² or uniform, per the table), reference, aliases
    ("glorot_uniform", glorot_uniform, GLOROT_SUITS, "1 / fan_avg", "Glorot & Bengio 2010", ("xavier_uniform",)),
    ("glorot_normal", glorot_normal, GLOROT_SUITS, "1 / fan_avg", "Glorot & Bengio 2010", ("xavier_normal",)),
    ("he_uniform", he_uniform, HE_SUITS, "2 / fan_in", "He et al. 2015", ("kaiming_uniform",)),
    ("he_normal", he_normal, HE_SUITS, "2 / fan_in", "He et al. 2015", ("kaiming_normal",)),
    ("lecun_uniform", lecun_uniform, LECUN_SUITS, "1 / fan_in", "LeCun et al. 1998", ()),
    ("lecun_normal", lecun_normal, LECUN_SUITS, "1 / fan_in", "LeCun et al. 1998; Klambauer et al. 2017", ()),
    ("variance_scaling", variance_scaling, None, "scale / fan (mode)", "He et al. 2015", ()),
    ("orthogonal", orthogonal, None, "gain² / max(fan_in, fan_out)", "Saxe et al. 2013", ()),
    ("random_normal", random_normal, None, "stddev²", "", ()),
    ("truncated_normal", truncated_normal, None, "≈ 0.774 stddev²", "", ()),
    ("random_uniform", random_uniform, None, "limit² / 3", "", ()),
]


@hookimpl
def register_initialisers(registry):
    for name, factory, suits, variance, reference, aliases in _ENTRIES:
        metadata = {"variance": variance, "reference": reference}
        if suits is not None:
            metadata["suits"] = suits
        registry.add(name, factory, aliases=aliases, tags=("keras",), **metadata)
