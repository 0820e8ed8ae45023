"""cnnreg's attacks against a reference implementation: IBM's Adversarial Robustness Toolbox.

The same small trained model and the same inputs in [0, 1]; ART gets the model's logits (cnnreg's
own ``logits_function``) with a from-logits cross-entropy and clip values (0, 1).  FGSM is
deterministic, and so is PGD without its random start: the adversarial inputs must be equal; PGD
from a random point of the ball (different random numbers in each library) is compared by its
robust accuracy over 400 inputs.  ART runs on TensorFlow: on another backend the module reruns itself in a subprocess.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

# not pytest.importorskip: importing art (and the torch it imports) takes seconds, in every
# pytest-xdist worker's collection
pytestmark = pytest.mark.skipif(importlib.util.find_spec("art") is None, reason="art is not installed")

ON_TENSORFLOW = os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
EXAMPLES = 400


@pytest.fixture(scope="module")
def setup():
    """A small conv net trained on 8x8 digits in [0, 1], ART's classifier of it, the attack
    target cnnreg uses and 400 held-out inputs with one-hot labels."""
    import keras
    import tensorflow as tf
    from art.estimators.classification import TensorFlowV2Classifier
    from sklearn.datasets import load_digits

    from cnnreg.kinds.attacks import eager_target, logits_function

    digits = load_digits()
    x = (digits.images[..., None] / 16.0).astype("float32")
    y = digits.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:1200], y[:1200], epochs=10, batch_size=64, verbose=0)
    inputs = keras.Input((8, 8, 1))
    logits = keras.Model(inputs, logits_function(model)(inputs))
    classifier = TensorFlowV2Classifier(
        logits, nb_classes=10, input_shape=(8, 8, 1), clip_values=(0.0, 1.0),
        loss_object=tf.keras.losses.CategoricalCrossentropy(from_logits=True))
    xt, yt = x[1200:1200 + EXAMPLES], y[1200:1200 + EXAMPLES]
    onehot = np.eye(10, dtype="float32")[yt]
    target = eager_target(model, lambda pixels: pixels / 255.0, batch_size=128, seed=0)

    def accuracy(images):
        return float(np.mean(np.asarray(target.logits(images)).argmax(axis=1) == yt))

    assert accuracy(xt) > 0.85, "the reference model did not train"
    return classifier, target, xt, onehot, accuracy


def attack(spec: str):
    from cnnreg.plugins import get_host

    return get_host().registry.build("attack", spec)


@pytest.mark.skipif(not ON_TENSORFLOW, reason="ART's TensorFlow classifier: see test_on_tensorflow_in_a_subprocess")
@pytest.mark.parametrize(("norm", "eps"), [("inf", 8 / 255), ("2", 0.5)])
def test_fgsm_equals_art(setup, norm, eps):
    from art.attacks.evasion import FastGradientMethod

    classifier, target, x, onehot, accuracy = setup
    reference = FastGradientMethod(classifier, norm=np.inf if norm == "inf" else 2, eps=eps, batch_size=128).generate(x, onehot)
    ours = np.asarray(attack(f"fgsm:eps={eps},norm={norm}").perturb(target, x, onehot))
    assert np.abs(ours - reference).max() <= 1e-5
    assert accuracy(ours) < accuracy(x) - 0.02  # the perturbation does something


@pytest.mark.skipif(not ON_TENSORFLOW, reason="ART's TensorFlow classifier: see test_on_tensorflow_in_a_subprocess")
@pytest.mark.parametrize(("norm", "eps"), [("inf", 0.1), ("2", 0.5)])
def test_pgd_without_random_start_equals_art(setup, norm, eps):
    """Deterministic without its random start: the same 10 steps give the same inputs, up to
    float32 rounding (ART clips to [0, 1] before projecting, cnnreg after; the same set)."""
    from art.attacks.evasion import ProjectedGradientDescent

    classifier, target, x, onehot, accuracy = setup
    steps = 10
    reference = ProjectedGradientDescent(classifier, norm=np.inf if norm == "inf" else 2, eps=eps,
                                         eps_step=2.5 * eps / steps, max_iter=steps, num_random_init=0,
                                         batch_size=128, verbose=False).generate(x, onehot)
    ours = np.asarray(attack(f"pgd:eps={eps},steps={steps},norm={norm},random_start=false").perturb(target, x, onehot))
    assert np.abs(ours - reference).max() <= 1e-5
    assert accuracy(ours) == accuracy(reference) < accuracy(x) - 0.1


@pytest.mark.skipif(not ON_TENSORFLOW, reason="ART's TensorFlow classifier: see test_on_tensorflow_in_a_subprocess")
def test_pgd_robust_accuracy_matches_art(setup):
    from art.attacks.evasion import ProjectedGradientDescent

    classifier, target, x, onehot, accuracy = setup
    eps, steps = 0.1, 10
    reference = ProjectedGradientDescent(classifier, norm=np.inf, eps=eps, eps_step=2.5 * eps / steps, max_iter=steps,
                                         num_random_init=1, batch_size=128, verbose=False).generate(x, onehot)
    ours = np.asarray(attack(f"pgd:eps={eps},steps={steps}").perturb(target, x, onehot))
    assert np.abs(ours - x).max() <= eps + 1e-6 and abs(np.abs(reference - x).max() - eps) < 1e-6
    assert accuracy(reference) < accuracy(x) - 0.1, "PGD should hurt this undefended model"
    assert abs(accuracy(ours) - accuracy(reference)) <= 0.01, (accuracy(ours), accuracy(reference))


@pytest.mark.skipif(ON_TENSORFLOW, reason="runs in this process")
def test_on_tensorflow_in_a_subprocess(subprocess_env):
    env = dict(subprocess_env, KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
