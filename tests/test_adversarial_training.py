"""Adversarial training (issue 15, section 3): the regulariser contract's training-step extension
(``train_step_transform`` and ``StepContext``), the backends' wrapped ``train_step`` and the
built-in ``adversarial`` regulariser.

The suite runs on TensorFlow; the other backends get the same model-level check in a
subprocess (keras picks its backend once per process).  Models are tiny; runs are one or two
epochs of 8x8 digits.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import cnnreg
from cnnreg import testing
from cnnreg.errors import CnnregError
from cnnreg.testing import run_cli

from runhelpers import history, interrupted_run, one_line  # noqa: E402

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]
TESTS = Path(__file__).resolve().parent
#: The backend of this process (the conftest leaves keras on its default unless asked).
HERE = (os.environ.get("KERAS_BACKEND") or "tensorflow").strip().lower()
# --- the model-level check, run here on TensorFlow and in a subprocess on JAX and PyTorch ------


def check_backend() -> str:
    """On the backend in use: (1) the step transform sees this step's weights; (2) the real
    ``adversarial`` transform (PGD from a random start, on half of each batch) changes training, and is
    reproducible from the seed alone; (3) a model saved while wrapped loads in safe mode."""
    import os
    import tempfile

    import keras
    from keras import ops

    from cnnreg import backends
    from cnnreg.kinds.attacks import PixelSpace
    from cnnreg.kinds.regularisers import bind_step_transform

    if keras.backend.backend() != "tensorflow":  # as runs do: keras' seeding imports TensorFlow else
        from cnnreg.backends.tensorflow import hide_until_imported

        hide_until_imported()

    def linear():
        inputs = keras.Input((4, 4, 1))
        out = keras.layers.Dense(3, activation="softmax", name="predictions")(keras.layers.Flatten()(inputs))
        model = keras.Model(inputs, out)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
        return model

    def follow_yourself(x, y, step):
        # step 0 trains on the true labels, later steps on the model's own predictions at the
        # step's weights: a zero gradient, so the weights stop moving, if step.logits sees them
        # (stale weights, say the variables' values on JAX, would keep them moving)
        own = ops.softmax(step.logits(x), axis=-1)
        return x, ops.where(ops.cast(step.iteration, "float32") >= 1.0, own, y)

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 1, (32, 4, 4, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(32) % 3]
    one, four = linear(), linear()
    four.set_weights(one.get_weights())
    start = one.get_weights()
    for model, steps in ((one, 1), (four, 4)):
        backends.wrap_train_step(model, bind_step_transform(model, follow_yourself), seed=0)
        model.fit(x, y, batch_size=8, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(start, one.get_weights()))
    after = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), four.get_weights()))
    assert moved > 1e-3 and after < 1e-5, (moved, after)

    path = os.path.join(tempfile.mkdtemp(), "wrapped.keras")
    four.save(path)  # still wrapped: the file is a plain model
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert "train_step" not in vars(loaded)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), four.predict(x, verbose=0), atol=1e-6)
    assert backends.unwrap_train_step(four) and "train_step" not in vars(four)
    assert not backends.unwrap_train_step(four)

    def normalised():  # batch normalisation: non-trainable state the attack must read, not update
        inputs = keras.Input((4, 4, 1))
        h = keras.layers.BatchNormalization()(keras.layers.Flatten()(inputs))
        out = keras.layers.Dense(3, activation="softmax", name="predictions")(h)
        model = keras.Model(inputs, out)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
        return model

    keras.utils.set_random_seed(1)
    initial = normalised().get_weights()
    pixels = PixelSpace.probe(lambda p: p / 127.5 - 1.0, 1)  # scale_minus1_1: the model sees [-1, 1]
    xm = x * 2.0 - 1.0
    transform = cnnreg.build("regulariser", "adversarial:eps=0.1,attack=pgd,steps=1,ratio=0.5").train_step_transform()

    def trained(model):
        model.set_weights(initial)
        model.optimizer.iterations.assign(0)  # SGD keeps no other state
        model.fit(xm, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        return model.get_weights()

    models = []
    for seed in (0, 1):
        models.append(normalised())
        backends.wrap_train_step(models[-1], bind_step_transform(models[-1], transform, pixels=lambda: pixels), seed=seed)
    # the same model again (its compiled step kept): the same numbers, so no state but the seed
    # and the step count feeds the randomness; another seed: other numbers, so the attack ran
    first, again, other = trained(models[0]), trained(models[0]), trained(models[1])
    assert all(np.array_equal(a, b) for a, b in zip(first, again)), "not reproducible from the seed"
    assert not all(np.allclose(a, b) for a, b in zip(first, other)), "the seed changes nothing"
    return keras.backend.backend()


_SUBPROCESS = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import test_adversarial_training as t
print("checked", t.check_backend())
"""


def test_the_step_transform_sees_the_current_weights():
    assert check_backend() == HERE


@pytest.mark.parametrize("backend", [b for b in ("tensorflow", "jax", "torch") if b != HERE])
def test_the_step_transform_on_the_other_backends(backend, subprocess_env):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    proc = subprocess.run([sys.executable, "-c", _SUBPROCESS], capture_output=True, text=True,
                          env=dict(subprocess_env, KERAS_BACKEND=backend), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"checked {backend}" in proc.stdout, proc.stdout


# --- the adversarial transform itself ------------------------------------------------------------


def _transform_setup(spec: str, uniform=None):
    import keras

    from cnnreg.kinds.attacks import PixelSpace, logits_function
    from cnnreg.kinds.regularisers import StepContext

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 1))
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, out)
    pixels = PixelSpace.probe(lambda p: p / 255.0, 1)
    x01 = np.random.default_rng(0).uniform(0, 1, (6, 4, 4, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(6) % 3]
    uniform = uniform or (lambda shape, low, high: keras.ops.zeros(shape))
    step = StepContext(logits_function(model), uniform, pixels=pixels)
    return cnnreg.build("regulariser", spec).train_step_transform(), x01, y, step


@pytest.mark.parametrize("ratio, attacked", [(0.5, 3), (0.4, 3), (1.0, 6)])
def test_the_first_rows_are_attacked_within_eps_the_rest_kept(ratio, attacked):
    """ceil(ratio · N) rows change by exactly eps (FGSM, L∞); with a batch size unknown while
    tracing (TensorFlow) the masked path gives the same batch as the sliced one."""
    import keras

    transform, x01, y, step = _transform_setup(f"adversarial:eps=0.05,ratio={ratio}")
    out, labels = transform(x01, y, step)
    out = keras.ops.convert_to_numpy(out)
    change = np.abs(out - x01).reshape(6, -1).max(axis=1)
    np.testing.assert_allclose(change[:attacked], 0.05, atol=1e-5)
    assert (change[attacked:] == 0).all() and np.array_equal(keras.ops.convert_to_numpy(labels), y)
    if HERE != "tensorflow":
        return
    import tensorflow as tf

    traced = tf.function(lambda a, b: transform(a, b, step),
                         input_signature=[tf.TensorSpec((None, 4, 4, 1)), tf.TensorSpec((None, 3))])
    masked, _ = traced(x01, y)
    np.testing.assert_allclose(np.asarray(masked), out, atol=1e-6)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_norm_2_attacks_each_row_by_a_whole_change_of_length_eps(attack):
    """L2 adversarial training: the attacked rows change by at most eps in length (FGSM: by eps,
    unless [0, 1] cuts it), never by more, measured exactly; the rest are kept."""
    import keras

    steps = ",steps=3" if attack == "pgd" else ""
    uniform = lambda shape, low, high: keras.ops.convert_to_tensor(  # noqa: E731 (PGD's random start)
        np.random.default_rng(1).uniform(low, high, tuple(shape)).astype("float32"))
    transform, x01, y, step = _transform_setup(f"adversarial:eps=0.5,ratio=0.5,norm=2,attack={attack}{steps}", uniform)
    out, _ = transform(x01, y, step)
    delta = (keras.ops.convert_to_numpy(out).astype("float64") - x01).reshape(6, -1)
    length = np.sqrt(np.square(delta).sum(axis=1))
    assert (length[:3] <= 0.5).all() and (length[:3] > 0.25).all(), length
    assert (length[3:] == 0).all()
    assert np.abs(delta).max() > 0.5 / 4  # not an L∞ step of eps / 4 per value: one image's length


def test_eps_or_ratio_zero_installs_nothing():
    assert cnnreg.build("regulariser", "adversarial:eps=0").train_step_transform() is None
    assert cnnreg.build("regulariser", "adversarial:ratio=0").train_step_transform() is None


def test_step_context_and_chaining():
    from cnnreg.kinds.regularisers import StepContext, combine_step_transforms

    calls = []
    first = lambda x, y, step: (calls.append("first") or x + 1, y)
    second = lambda x, y, step: (calls.append("second") or x * 2, y)
    assert combine_step_transforms([]) is None and combine_step_transforms([first]) is first
    assert combine_step_transforms([first, second])(1, 0, None) == (4, 0) and calls == ["first", "second"]
    probed = []
    step = StepContext(lambda x: x, lambda *a: None, pixels=lambda: probed.append(1) or "space")
    assert step.pixels == "space" and step.pixels == "space" and probed == [1]  # probed once, lazily
    with pytest.raises(CnnregError, match="no pixel space"):
        _ = StepContext(lambda x: x, lambda *a: None).pixels


# --- the regulariser's spec -----------------------------------------------------------------------


def test_labels_and_one_line_errors_of_the_spec():
    assert cnnreg.build("regulariser", "adversarial:eps=0.1").label == \
        "adversarial training: FGSM L∞ eps 0.1 on 50% of each batch"
    pgd = cnnreg.build("regulariser", "adversarial:eps=8/255,attack=pgd,ratio=1,steps=3")
    assert pgd.label.startswith("adversarial training: PGD L∞ eps 8/255, 3 steps") and pgd.attack.steps == 3
    assert pgd.label.endswith("on every example of each batch")
    with pytest.raises(CnnregError, match=r"unknown attack 'pgdd'; did you mean 'pgd'\?"):
        cnnreg.build("regulariser", "adversarial:attack=pgdd")
    with pytest.raises(CnnregError, match="attack 'fgsm' has no 'steps' parameter"):
        cnnreg.build("regulariser", "adversarial:steps=3")
    assert cnnreg.build("regulariser", "adversarial:eps=0.5,norm=2").label == \
        "adversarial training: FGSM L2 eps 0.5 on 50% of each batch"
    with pytest.raises(CnnregError, match="attack 'universal' attacks under L∞ only, not norm=2"):
        cnnreg.build("regulariser", "adversarial:attack=universal,norm=2")
    with pytest.raises(CnnregError, match=r"parameter 'norm': '1' is not allowed \(valid: 2, inf\)"):
        cnnreg.build("regulariser", "adversarial:norm=1")
    result = run_cli("run", "mlp_bn", "--reg", "adversarial:attack=pgdd", "--epochs", "1", "--dry-run", *FAST)
    one_line(result, "regulariser 'adversarial' parameter 'attack': unknown attack 'pgdd'; did you mean 'pgd'?")


# --- runs -----------------------------------------------------------------------------------------


def test_run_records_the_regulariser_and_rerun_and_resume_reproduce_it(tmp_path):
    """PGD training (random starts) reruns, and resumes, to the same losses on the CPU; eps=0
    trains differently; model.keras loads in safe mode."""
    import keras

    spec = "adversarial:eps=0.1,attack=pgd,steps=2,ratio=0.5"
    args = ["single_conv:filters=4", "--reg", spec, "--epochs", "2", *FAST]
    assert interrupted_run(tmp_path / "a", *args, after=1).exit_code != 0  # Ctrl-C after epoch 1
    resumed = run_cli("resume", str(tmp_path / "a"), "--quiet")
    assert resumed.exit_code == 0, resumed.output
    manifest = json.loads((tmp_path / "a" / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["config"]["regularisers"] == [spec]
    resolved = manifest["resolved"]["regularisers"][0]
    assert resolved["name"] == "adversarial" and resolved["params"]["attack"] == "pgd"
    assert resolved["params"]["eps"] == 0.1 and resolved["params"]["steps"] == 2
    again = run_cli("rerun", str(tmp_path / "a"), "--run-dir", str(tmp_path / "b"), "--quiet")  # uninterrupted
    assert again.exit_code == 0, again.output
    clean = run_cli("rerun", str(tmp_path / "a"), "--set", "regularisers=adversarial:eps=0", "--set", "epochs=1",
                    "--run-dir", str(tmp_path / "c"), "--quiet")
    assert clean.exit_code == 0, clean.output
    a, b, c = (history(tmp_path / name) for name in "abc")
    assert len(a) == len(b) == 2
    for row in (0, 1):
        for key in ("loss", "val_loss", "val_accuracy"):
            assert abs(float(a[row][key]) - float(b[row][key])) < 1e-6, (row, key)
    assert abs(float(a[0]["loss"]) - float(c[0]["loss"])) > 1e-3  # the attack really ran in the step
    model = keras.saving.load_model(tmp_path / "a" / "model.keras", safe_mode=True)
    assert "train_step" not in vars(model)


def _sqrt_plugin():
    """An architecture whose preprocessing (a square root) is not affine: eps cannot be pixels."""
    from cnnreg.builtin.architectures.single_conv import single_conv

    module = types.ModuleType("sqrtplug")

    @cnnreg.hookimpl
    def register_architectures(registry):
        registry.add("sqrt_conv", single_conv, preprocess="numpy:sqrt", primary="filters")

    module.register_architectures = register_architectures
    return module


def _broken_plugin():
    """A regulariser whose step transform drops a row."""
    from cnnreg.kinds.regularisers import Regulariser

    class Drop(Regulariser):
        label = "drops the first row"

        def train_step_transform(self):
            return lambda x, y, step: (x[1:], y[1:])

    module = types.ModuleType("dropplug")

    @cnnreg.hookimpl
    def register_regularisers(registry):
        registry.add("drop_row", lambda: Drop(), role="batch augmentation")

    module.register_regularisers = register_regularisers
    return module


def test_a_transform_that_cannot_run_is_one_line_before_anything_is_written(tmp_path):
    with testing.plugin(_sqrt_plugin(), name="sqrtplug"):
        result = run_cli("run", "sqrt_conv:filters=2", "--reg", "adversarial", "--epochs", "1", *FAST,
                         "--run-dir", str(tmp_path / "sqrt"))
    one_line(result, "adversarial training needs the preprocessing of sqrt_conv (numpy:sqrt) to be affine per pixel")
    assert not (tmp_path / "sqrt" / "run.json").exists()
    with testing.plugin(_broken_plugin(), name="dropplug"):
        result = run_cli("run", "single_conv:filters=2", "--reg", "drop_row", "--epochs", "1", *FAST,
                         "--run-dir", str(tmp_path / "drop"))
    one_line(result, "changed the batch's shapes from (2, 8, 8, 1), (2, 10) to (1, 8, 8, 1), (1, 10)")
    assert not (tmp_path / "drop" / "run.json").exists()
