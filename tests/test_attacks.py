"""The attack kind: its listing, fractions in specs, FGSM against a gradient worked out by hand
on every backend, and what must hold of every built-in attack's output.

The numbers are checked on a linear softmax classifier, whose input gradient NumPy computes
exactly: for logits z = x·W + b, d CE / d x = (softmax(z) − y)·Wᵀ per example.  Other backends
run in subprocesses (a process picks its Keras backend once, before keras is imported).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cnnreg.errors import ParameterError
from cnnreg.spec import coerce
from cnnreg.testing import run_cli

# --- the kind on the command line ----------------------------------------------------------------


def test_list_attacks():
    result = run_cli("list", "attacks")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("attacks (3)")
    data = json.loads(run_cli("list", "attacks", "--json").stdout)["components"]
    assert [c["name"] for c in data] == ["fgsm", "pgd", "universal"]
    assert all(c["kind"] == "attack" for c in data)
    assert run_cli("list", "adversaries").exit_code == 0  # another word for the kind


def test_show_pgd():
    out = run_cli("show", "pgd").stdout
    for text in ("attack pgd", "Madry", "Towards Deep Learning Models Resistant", "random_start", "8/255"):
        assert text in out, text
    data = json.loads(run_cli("show", "attack/pgd", "--json").stdout)["component"]
    assert data["kind"] == "attack" and data["primary"] == "eps"
    params = {p["name"]: p for p in data["parameters"]}
    assert set(params) == {"eps", "steps", "step_size", "norm", "random_start"}
    assert params["eps"]["default"] == pytest.approx(8 / 255)  # a number in JSON, 8/255 on screen
    assert data["metadata"]["norms"] == ["inf", "2"]


@pytest.mark.parametrize("args", [("show", "pgdd"), ("show", "attack/pgdd")])
def test_unknown_attack_is_one_line_with_the_closest(args):
    result = run_cli(*args)
    assert result.exit_code == 2
    assert "did you mean 'pgd'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


PROBE = """
import sys, json
from cnnreg.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'keras', 'tensorflow', 'jax', 'torch'})
sys.stderr.write('HEAVY=' + json.dumps(heavy) + '\\n')
"""


def test_listing_and_showing_attacks_imports_no_heavy_framework(subprocess_env):
    proc = subprocess.run([sys.executable, "-c", PROBE, "show", "pgd:eps=8/255,steps=3"], capture_output=True,
                          text=True, env=subprocess_env, timeout=60)
    line = [l for l in proc.stderr.splitlines() if l.startswith("HEAVY=")]
    assert line, proc.stderr
    assert json.loads(line[0][len("HEAVY="):]) == []
    assert "attack pgd" in proc.stdout


# --- building: parameters, fractions, labels -------------------------------------------------------


def build(spec: str):
    from cnnreg.plugins import get_host

    return get_host().registry.build("attack", spec)


def test_specs_build_attacks_with_labels():
    attack = build("pgd:eps=8/255,steps=10")
    assert attack.eps == 8 / 255 and attack.steps == 10 and attack.norm == "inf" and not attack.universal
    assert attack.label == "PGD L∞ eps 8/255, 10 steps of 2/255"
    assert build("fgsm=0.1").label == "FGSM L∞ eps 0.1"
    assert build("fgsm:eps=0.5,norm=2").label == "FGSM L2 eps 0.5"
    assert build("pgd:eps=0.1,steps=4,step_size=0.05,random_start=false").label == \
        "PGD L∞ eps 0.1, 4 steps of 0.05, no random start"
    universal = build("universal:eps=4/255,steps=5")
    assert universal.universal and universal.norm == "inf" and universal.label.startswith("universal L∞ eps 4/255")
    assert build("madry").describe().startswith("PGD")  # an alias
    # '/' passes through every form of the grammar
    assert build("fgsm=8/255").eps == build("pgd:8/255,steps=3").eps == build("fgsm").eps == 8 / 255


@pytest.mark.parametrize("spec, message", [
    ("pgd:eps=8/0", "'8/0' divides by zero"),
    ("pgd:eps=a/b", "a fraction of two numbers such as 8/255"),
    ("pgd:eps=1/2/3", "one fraction"),
    ("pgd:eps=-1/255", "must be >= 0"),
    ("fgsm:eps=8", "at most 1 under L∞"),
    ("pgd:steps=0", "must be in [1, 100000]"),
    ("pgd:norm=l2", "is not allowed"),
    ("fgsm:norm=3", "(valid: 2, inf)"),
    ("pgd:stepz=3", "did you mean 'steps'"),
])
def test_parameter_mistakes_are_one_line(spec, message):
    with pytest.raises(ParameterError) as info:
        build(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text, expected", [("8/255", 8 / 255), (" 1 / 4 ", 0.25), ("-3/2", -1.5), ("1e3/1e1", 100.0),
                                            ("0/5", 0.0)])
def test_a_float_may_be_a_fraction(text, expected):
    assert coerce(text, float, where="p") == expected
    assert coerce(f"{text}x1/2", tuple[float, float], where="p") == (expected, 0.5)


@pytest.mark.parametrize("text, message", [("8/0", "divides by zero"), ("0/0", "divides by zero"),
                                           ("inf/2", "finite"), ("1e300/1e-300", "finite"), ("/3", "such as 8/255"),
                                           ("3/", "such as 8/255")])
def test_bad_fractions(text, message):
    with pytest.raises(ParameterError) as info:
        coerce(text, float, where="p")
    assert message in str(info.value)
    with pytest.raises(ParameterError):  # fractions are for floats only
        coerce("8/2", int, where="p")


# --- the numbers, by hand, on every backend ----------------------------------------------------------

BY_HAND = r"""
import numpy as np, keras
from keras import ops
from cnnreg.kinds.attacks import eager_target, logits_function, ModelTarget
from cnnreg.plugins import get_host

def build(spec):
    return get_host().registry.build("attack", spec)

def numpy_(t):
    return np.asarray(ops.convert_to_numpy(t))

rng = np.random.default_rng(3)
n, k, shape = 12, 4, (4, 4, 1)
d = int(np.prod(shape))
W = rng.normal(0, 1, (d, k)).astype("float32")
b = rng.normal(0, 0.5, (k,)).astype("float32")
model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(k, activation="softmax")])
model.layers[-1].set_weights([W, b])
x = rng.uniform(0, 1, (n,) + shape).astype("float32")
y = np.eye(k, dtype="float32")[rng.integers(0, k, n)]

# by hand: dCE/dx = (softmax(z) - y) W^T
z = x.reshape(n, d).astype("float64") @ W + b
p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
grad = ((p - y) @ W.T).reshape(x.shape)
loss = -(y * np.log(p)).sum()
assert np.abs(grad).min() > 1e-4, "a gradient component near 0: its sign is not well defined"

target = eager_target(model, lambda pixels: pixels / 255.0, batch_size=5)  # 3 chunks
value, g = target.gradient(ops.convert_to_tensor(x), ops.convert_to_tensor(y))
assert np.allclose(numpy_(g), grad, rtol=1e-4, atol=1e-6), np.abs(numpy_(g) - grad).max()
assert abs(float(numpy_(value)) - loss) < 1e-4 * max(1.0, loss)

eps = 0.1
fgsm = numpy_(build(f"fgsm:eps={eps}").perturb(target, x, y))
expected = np.clip(x + eps * np.sign(grad), 0, 1)
err_inf = float(np.abs(fgsm - expected).max())
assert err_inf <= 1e-6, err_inf
assert (expected == 0).any() and (expected == 1).any()  # the clip to [0, 1] is exercised

eps2 = 0.5
fgm = numpy_(build(f"fgsm:eps={eps2},norm=2").perturb(target, x, y))
unit = grad / np.sqrt((grad.reshape(n, -1) ** 2).sum(1)).reshape(n, 1, 1, 1)
err_2 = float(np.abs(fgm - np.clip(x + eps2 * unit, 0, 1)).max())
assert err_2 <= 1e-6, err_2

# compiled: every attack traces (keras.ops and fixed loops only), with the batch size unknown
logits = logits_function(model)
backend = keras.backend.backend()
compiled = {}
if backend == "tensorflow":
    import tensorflow as tf
    def uniform(shape, low, high):
        return tf.random.stateless_uniform(shape, seed=[1, 2], minval=low, maxval=high)
    traced = ModelTarget(logits, lambda t: t, uniform=uniform, training=True)
    for spec in ("fgsm:eps=0.1", "pgd:eps=0.1,steps=3", "pgd:eps=0.5,norm=2,steps=2", "universal:eps=0.1,steps=2"):
        attack = build(spec)
        fn = tf.function(lambda a, c, attack=attack: attack.perturb(traced, a, c),
                         input_signature=[tf.TensorSpec((None,) + shape, "float32"), tf.TensorSpec((None, k), "float32")])
        compiled[spec] = numpy_(fn(x, y))
elif backend == "jax":
    import jax
    def uniform(shape, low, high):
        return jax.random.uniform(jax.random.PRNGKey(0), shape, minval=low, maxval=high)
    traced = ModelTarget(logits, lambda t: t, uniform=uniform, training=True)
    for spec in ("fgsm:eps=0.1", "pgd:eps=0.1,steps=3", "pgd:eps=0.5,norm=2,steps=2", "universal:eps=0.1,steps=2"):
        attack = build(spec)
        compiled[spec] = numpy_(jax.jit(lambda a, c, attack=attack: attack.perturb(traced, a, c))(x, y))
if compiled:
    assert np.abs(compiled["fgsm:eps=0.1"] - expected).max() <= 1e-6
    for spec, out in compiled.items():
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1, spec
        assert not np.array_equal(out, x), spec
print(f"OK {backend} {err_inf:.2g} {err_2:.2g} compiled={len(compiled)}")
"""


def test_fgsm_is_eps_times_the_sign_of_the_gradient_by_hand():
    """In this process, on its backend (TensorFlow unless KERAS_BACKEND says otherwise)."""
    import keras

    namespace: dict = {}
    exec(compile(BY_HAND, "by_hand", "exec"), namespace)
    assert keras.backend.backend() in ("tensorflow", "jax", "torch")


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_fgsm_by_hand_on_the_other_backends(backend, subprocess_env):
    from runhelpers import script_on_backend

    proc = script_on_backend(BY_HAND, backend, subprocess_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"OK {backend} "), proc.stdout
    if backend != "torch":
        assert "compiled=4" in proc.stdout


# --- properties of every attack on a small conv model ------------------------------------------------

SPECS = ["fgsm", "fgsm:norm=2", "pgd:steps=5", "pgd:steps=5,norm=2", "pgd:steps=5,random_start=false",
         "universal:steps=5"]


@pytest.fixture(scope="module")
def conv():
    """A random conv net on 8x8x1 images; labels are its own clean predictions (accuracy 1), so
    every drop in accuracy is the attack's doing."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(6, 3, activation="relu"), keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    x = np.random.default_rng(0).uniform(0, 1, (32, 8, 8, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[model.predict(x, verbose=0).argmax(1)]
    return model, x, y


def attack_accuracy(conv, spec, eps, seed=0):
    """(x_adv, accuracy) for ``spec`` at ``eps``, with a fresh target (same seed: same draws)."""
    from keras import ops

    from cnnreg.kinds.attacks import eager_target

    model, x, y = conv
    target = eager_target(model, lambda pixels: pixels / 255.0, batch_size=16, seed=seed)
    x_adv = np.asarray(ops.convert_to_numpy(build(spec).perturb(target, x, y, eps=eps)))
    predicted = np.asarray(ops.convert_to_numpy(target.logits(x_adv))).argmax(1)
    return x_adv, float((predicted == y.argmax(1)).mean())


@pytest.mark.parametrize("spec", SPECS)
def test_every_attack_stays_in_the_ball_and_in_unit_range(conv, spec):
    _, x, _ = conv
    attack = build(spec)
    eps = 0.5 if attack.norm == "2" else 0.1
    x_adv, accuracy = attack_accuracy(conv, spec, eps)
    delta = (x_adv - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if attack.norm == "inf" else np.sqrt((delta.astype("float64") ** 2).sum(1))
    assert size.max() <= eps + 1e-5
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and x_adv.dtype == np.float32
    assert size.max() > eps / 2 and accuracy < 1  # it did something
    unchanged, clean = attack_accuracy(conv, spec, 0.0)
    assert np.array_equal(unchanged, x) and clean == 1.0


def test_pgd_is_never_weaker_than_fgsm_and_accuracy_never_rises_with_eps(conv):
    budgets = [0.0, 0.02, 0.05, 0.1, 0.2]
    pgd = [attack_accuracy(conv, "pgd:steps=5", eps)[1] for eps in budgets]
    fgsm = [attack_accuracy(conv, "fgsm", eps)[1] for eps in budgets]
    noise = 1 / 32  # one example: the random start
    assert all(p <= f + noise for p, f in zip(pgd, fgsm)), (pgd, fgsm)
    assert all(later <= earlier for earlier, later in zip(pgd, pgd[1:])), pgd
    assert pgd[0] == 1.0 and pgd[-1] < pgd[1]


def test_universal_adds_the_same_perturbation_to_every_input(conv):
    _, x, _ = conv
    eps = 0.1
    x_adv, _ = attack_accuracy(conv, "universal:steps=5", eps)
    delta = x_adv - x
    inside = (x_adv > 0) & (x_adv < 1)  # where [0, 1] did not clip
    shared = np.where(inside, delta, np.nan)
    reference = np.nanmedian(shared, axis=0, keepdims=True)  # one value per pixel
    assert np.all(np.abs(np.where(inside, delta - reference, 0)) <= 1e-6)
    reference = np.nan_to_num(reference)
    assert np.allclose(x_adv, np.clip(x + reference, 0, 1), atol=1e-6)
    assert np.abs(reference).max() <= eps + 1e-6 and np.abs(reference).max() > eps / 2


# --- the plugin example in docs/plugins.md works as printed ------------------------------------------


def test_the_documented_attack_plugin_works(conv):
    import re
    import types
    from pathlib import Path

    from cnnreg import testing

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    code = re.search(r"<!-- attack-example -->\n```python\n(.*?)^```", text, re.S | re.M)[1]
    module = types.ModuleType("cnnreg_mifgsm_plugin")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    assert "keras" not in code.split("def perturb")[0].replace("keras is imported", "")  # lazy-import rule
    _, x, _ = conv
    with testing.plugin(module, distribution="cnnreg-mifgsm"):
        attack = build("mifgsm:eps=8/255,steps=3")
        assert attack.label == "MI-FGSM L∞ eps 0.0314, 3 steps, decay 1"
        assert "mifgsm" in run_cli("list", "attacks").stdout
        x_adv, accuracy = attack_accuracy(conv, "mifgsm:steps=3", 0.1)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-5 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert accuracy < 1


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_projection_never_leaves_more_than_eps_measured_exactly(norm):
    """The change measured in float64 is at most eps, whatever float32 rounding of x + delta
    does (it once read 0.10000003 at eps 0.1), and nearly all of the budget is used."""
    from keras import ops

    from cnnreg.kinds.attacks import inner_radius, project

    rng = np.random.default_rng(0)
    x = rng.uniform(0.25, 0.75, (64, 8, 8, 3)).astype("float32")  # mostly inside [0, 1] after the change
    x[:16] = (1 - rng.uniform(0, 1e-3, x[:16].shape)).astype("float32")  # near 1: the coarsest rounding
    budgets = (0.1, 8 / 255, 0.02, 1e-3, 1e-7) if norm == "inf" else (3.0, 0.5, 0.1, 1e-3, 1e-7)
    for eps in budgets:
        step = rng.normal(0, 1, x.shape) * (eps if norm == "inf" else eps / 8)
        out = np.asarray(ops.convert_to_numpy(project((x + 3 * step).astype("float32"), x, eps, norm)))
        delta = (out.astype("float64") - x).reshape(len(x), -1)
        sizes = np.abs(delta).max(axis=1) if norm == "inf" else np.sqrt(np.square(delta).sum(axis=1))
        assert sizes.max() <= eps, (eps, sizes.max() - eps)
        assert out.min() >= 0 and out.max() <= 1
        if 1e-3 <= eps <= 0.5:  # (a larger L2 change is cut by [0, 1])
            assert sizes.max() >= inner_radius(eps, norm, 8 * 8 * 3) * (1 - 1e-5), (eps, sizes.max())
            assert inner_radius(eps, norm, 8 * 8 * 3) >= eps * (1 - 1e-5) - 2e-6
