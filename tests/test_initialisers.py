"""Each initialiser produces the variance of the lecture's table, within sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnreg

FAN_IN, FAN_OUT = 400, 600
FAN_AVG = (FAN_IN + FAN_OUT) / 2
TRUNCATED = 0.7737413  # variance of a standard normal cut at ±2σ (Keras' TruncatedNormal)

# Expected variance from the DOMAIN table (Glorot 1/fan_avg, He 2/fan_in, LeCun 1/fan_in).
EXPECTED = {
    "glorot_uniform": 1 / FAN_AVG,
    "glorot_normal": 1 / FAN_AVG,
    "he_uniform": 2 / FAN_IN,
    "he_normal": 2 / FAN_IN,
    "lecun_uniform": 1 / FAN_IN,
    "lecun_normal": 1 / FAN_IN,
    "variance_scaling:scale=2,mode=fan_avg": 2 / FAN_AVG,
    "variance_scaling:scale=3,mode=fan_out,distribution=uniform": 3 / FAN_OUT,
    "orthogonal": 1 / max(FAN_IN, FAN_OUT),
    "random_normal=0.1": 0.01,
    "truncated_normal=0.1": 0.01 * TRUNCATED,
    "random_uniform=0.1": 0.01 / 3,
}


@pytest.mark.parametrize("spec", sorted(EXPECTED))
def test_variance_matches_the_table(spec):
    import keras

    initializer = cnnreg.build("initialiser", spec)
    values = keras.ops.convert_to_numpy(initializer((FAN_IN, FAN_OUT)))
    n = values.size
    expected = EXPECTED[spec]
    # sampling error of a variance estimate: sd ≈ var * sqrt(2/n) (normal) — allow 6 of them,
    # plus the kurtosis of uniform/truncated draws is smaller, so this is conservative.
    tolerance = 6 * expected * math.sqrt(2 / n)
    if spec == "orthogonal":
        tolerance = 0.02 * expected  # rows/columns are exactly orthonormal: tight
    assert abs(values.var() - expected) < tolerance, (spec, values.var(), expected)
    assert abs(values.mean()) < 6 * math.sqrt(expected / n) + 1e-12


def test_uniform_limits_match_the_table():
    import keras

    values = keras.ops.convert_to_numpy(cnnreg.build("initialiser", "he_uniform")((FAN_IN, FAN_OUT)))
    assert np.abs(values).max() <= math.sqrt(6 / FAN_IN) + 1e-7
    assert np.abs(values).max() > 0.99 * math.sqrt(6 / FAN_IN)


def test_seed_makes_draws_reproducible():
    import keras

    a = cnnreg.build("initialiser", "he_normal=7")((10, 10))
    b = cnnreg.build("initialiser", "he_normal:seed=7")((10, 10))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_suits_metadata_matches_the_table():
    from cnnreg.kinds.initialisers import suggest_for, suits

    assert suits(cnnreg.get("initialiser", "he_normal"), "selu") is False
    assert suits(cnnreg.get("initialiser", "lecun_normal"), "selu") is True
    assert suits(cnnreg.get("initialiser", "glorot_uniform"), "tanh") is True
    assert suits(cnnreg.get("initialiser", "orthogonal"), "relu") is None
    assert (suggest_for("relu"), suggest_for("selu"), suggest_for("softmax")) == ("he_normal", "lecun_normal", "glorot_uniform")
