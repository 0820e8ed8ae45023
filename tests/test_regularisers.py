"""Regularisers, clipping and initialisation as applied to a model."""

from __future__ import annotations

import numpy as np
import pytest

import cnnreg
from cnnreg.training import optim
from cnnreg.training.config import RunConfig
from cnnreg.training.model import prepare
from cnnreg.training.config import resolve


def clipped(spec: str) -> np.ndarray:
    """The update SGD(lr=1) makes to a variable at 0 for the lecture's gradient [0.9, 100]."""
    import keras

    sgd = optim.resolve_optimizer(cnnreg.get_registry(), "sgd", lr=1.0)
    optimizer = optim.make_optimizer(sgd, clip=optim.parse_clip(spec), steps_per_epoch=1, epochs=1)
    variable = keras.Variable(np.zeros(2, dtype="float32"))
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.array([0.9, 100.0], dtype="float32")), variable)])
    return -keras.ops.convert_to_numpy(variable)


def test_the_lectures_clipping_example():
    np.testing.assert_allclose(clipped("value=1"), [0.9, 1.0], atol=1e-7)
    np.testing.assert_allclose(clipped("norm=1"), [0.00899964, 0.99995950], atol=1e-7)
    np.testing.assert_allclose(clipped("global_norm=1"), [0.00899964, 0.99995950], atol=1e-7)


def planned(arch: str, *regs: str, **config):
    return prepare(resolve(RunConfig(architecture=arch, dataset="digits:size=8", regularisers=list(regs), **config)))


def test_l2_penalty_on_every_kernel_and_max_norm_constraint():
    plan = planned("mlp_bn", "l2=0.01", "max_norm=2")
    model = plan.model
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    assert len(model.losses) == len(kernels) == 3
    expected = sum(0.01 * float(np.sum(np.square(k.numpy()))) for k in kernels)
    assert abs(float(sum(model.losses)) - expected) < 1e-3 * expected
    assert all(k.constraint is not None for k in kernels)


def test_dropout_uses_the_architecture_parameter_or_is_inserted():
    import keras

    plan = planned("alexnet", "dropout=0.3", input_shape=(67, 67, 3))
    rates = [layer.rate for layer in plan.model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates and set(rates) == {0.3}
    plan = planned("single_conv:filters=4", "dropout=0.25", input_shape=(16, 16, 1))
    inserted = [layer for layer in plan.model.layers if layer.name == "reg_dropout"]
    assert len(inserted) == 1 and inserted[0].rate == 0.25
    assert plan.model.layers[-1].name == "predictions"


def test_batchnorm_off_and_bn_momentum():
    import keras

    plan = planned("resnet18", "batchnorm=false", input_shape=(32, 32, 1))
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plan.model.layers)
    plan = planned("resnet18", input_shape=(32, 32, 1))
    momenta = {layer.momentum for layer in plan.model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}  # auto: 43 steps per epoch


def test_init_redraws_kernels_and_zeroes_biases():
    plan = prepare(resolve(RunConfig(architecture="mlp_bn", dataset="digits:size=28", init="he_normal", seed=3)))
    dense = [layer for layer in plan.model.layers if layer.__class__.__name__ == "Dense"]
    first = dense[0].kernel.numpy()
    fan_in = first.shape[0]
    assert abs(first.var() - 2 / fan_in) < 0.15 * 2 / fan_in
    assert all(not np.any(layer.bias.numpy()) for layer in dense)
    assert not np.allclose(dense[1].kernel.numpy()[:5, :5], dense[2].kernel.numpy()[:5, :5])


def test_mixup_and_cutmix_keep_label_mass():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 16, 16, 1)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, 8)]
    for spec in ("mixup", "cutmix"):
        transform = cnnreg.build("regulariser", spec).batch_transform()
        nx, ny = transform(x, y, np.random.default_rng(1))
        assert nx.shape == x.shape and np.allclose(ny.sum(axis=1), 1.0)


@pytest.mark.parametrize("spec", ["flip", "crop", "rotate", "zoom", "translate", "color", "randaugment"])
def test_augmentations_change_training_images_only(spec):
    import keras

    layers = cnnreg.build("regulariser", spec).augmentation(seed=1)
    model = keras.Sequential(layers)
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(inference, x, atol=1e-4)
    trained = keras.ops.convert_to_numpy(model(x, training=True))
    assert trained.shape == x.shape and not np.allclose(trained, x)


def test_label_smoothing_goes_to_the_loss():
    assert cnnreg.build("regulariser", "label_smoothing=0.2").loss_params() == {"label_smoothing": 0.2}


def test_schedules():
    import keras

    schedule = cnnreg.build("schedule", "cosine:warmup=1").learning_rate(0.1, steps_per_epoch=10, epochs=10)
    values = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 9, 10, 55, 99)]
    assert values[0] == pytest.approx(0.01) and values[1] == pytest.approx(0.1)
    assert values[2] > values[3] > values[4] >= 0
    step = cnnreg.build("schedule", "step:every=2,factor=0.5").learning_rate(0.1, steps_per_epoch=10, epochs=10)
    assert float(keras.ops.convert_to_numpy(step(45))) == pytest.approx(0.025)
