"""cnnreg-lookahead without installing it (cnnreg.testing): registration, the factory, the
Keras class (learning rate, clipping, saving)."""

import re

import numpy as np
import pytest

import cnnreg
from cnnreg import testing
from cnnreg.errors import ParameterError

import cnnreg_lookahead.plugin as plugin


@pytest.fixture
def registry():
    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-lookahead", version="0.1.0") as registry:
        yield registry


def _numpy(value):
    import keras

    return keras.ops.convert_to_numpy(value)


def test_registers_one_optimizer(registry):
    mine = [c for c in registry if c.provider == "cnnreg-lookahead"]
    assert [(c.kind, c.name) for c in mine] == [("optimizer", "lookahead")]
    component = mine[0]
    assert component.metadata["keras_objects"] == "cnnreg_lookahead.optimizer"
    assert component.metadata["paper"]["year"] == 2019 and component.primary == "inner"
    assert [p.name for p in component.parameters()] == ["learning_rate", "inner", "k", "alpha"]
    result = testing.run_cli("show", "lookahead")
    assert result.exit_code == 0, result.output
    for needle in ("cnnreg-lookahead", "inner", "alpha", "1907.08610"):
        assert needle in result.stdout, result.stdout


def test_plugin_module_does_not_import_keras():
    testing.assert_light_imports("cnnreg_lookahead.plugin")


def test_builds_a_keras_optimizer_around_the_inner_one(registry):
    import keras

    from cnnreg_lookahead.optimizer import Lookahead

    optimizer = cnnreg.build("optimizer", "lookahead:inner=sgd,k=7,alpha=0.25", learning_rate=0.3)
    assert isinstance(optimizer, Lookahead) and isinstance(optimizer, keras.optimizers.Optimizer)
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.SGD)
    assert (optimizer.k, optimizer.alpha) == (7, 0.25)
    assert float(_numpy(optimizer.learning_rate)) == pytest.approx(0.3)
    # the primary parameter, the defaults (adam, k 5, alpha 0.5, Adam's rate)
    assert isinstance(cnnreg.build("optimizer", "lookahead=sgd").inner_optimizer, keras.optimizers.SGD)
    default = cnnreg.build("optimizer", "lookahead")
    assert isinstance(default.inner_optimizer, keras.optimizers.Adam) and (default.k, default.alpha) == (5, 0.5)
    assert float(_numpy(default.learning_rate)) == pytest.approx(0.001)


@pytest.mark.parametrize("spec", [
    "lookahead:inner=sgd:momentum=0.5,k=3",                        # one inner parameter: no brackets needed
    "lookahead:inner=[sgd:momentum=0.5,nesterov=true],k=3",         # several: in brackets
    "lookahead:inner=(sgd:momentum=0.5,nesterov=true),k=3",
])
def test_inner_optimizer_parameters(registry, spec):
    optimizer = cnnreg.build("optimizer", spec, learning_rate=0.1)
    inner = optimizer.inner_optimizer
    assert inner.momentum == 0.5 and inner.nesterov == ("nesterov" in spec) and optimizer.k == 3


@pytest.mark.parametrize("spec, message", [
    ("lookahead:inner=adamm", "optimizer 'lookahead' parameter 'inner': unknown optimizer 'adamm'; did you mean 'adam'?"),
    ("lookahead:inner=sgd:momentum=2", "optimizer 'lookahead' parameter 'inner': optimizer 'sgd' parameter 'momentum' must be in [0, 1)"),
    ("lookahead:inner=sgd:learning_rate=0.1", "give the learning rate to lookahead"),
    ("lookahead:inner=sgd=0.1", "give the learning rate to lookahead"),
    # a second inner parameter without brackets is lookahead's own, and unknown
    ("lookahead:inner=sgd:momentum=0.5,nesterov=true", "unknown parameter 'nesterov' for optimizer 'lookahead'"),
    ("lookahead:k=0", "optimizer 'lookahead' parameter 'k' must be >= 1"),
    ("lookahead:alpha=0", "optimizer 'lookahead' parameter 'alpha' must be in (0, 1]"),
])
def test_mistakes_are_one_line(registry, spec, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        cnnreg.build("optimizer", spec, learning_rate=0.1)


def test_learning_rate_is_the_inner_optimizers(registry):
    """lr-find sets optimizer.learning_rate every step; a --schedule reaches the inner optimizer."""
    import keras

    optimizer = cnnreg.build("optimizer", "lookahead:inner=sgd", learning_rate=0.1)
    optimizer.learning_rate = 0.02
    assert float(_numpy(optimizer.inner_optimizer.learning_rate)) == pytest.approx(0.02)
    assert float(_numpy(optimizer.learning_rate)) == pytest.approx(0.02)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    scheduled = cnnreg.build("optimizer", "lookahead:inner=adam", learning_rate=schedule)
    assert scheduled.inner_optimizer._learning_rate is schedule
    weight = keras.Variable(np.ones(2, dtype="float32"))
    for _ in range(2):
        scheduled.apply_gradients([(keras.ops.ones(2), weight)])
    assert float(_numpy(scheduled.learning_rate)) == pytest.approx(0.025)  # 0.1 × 0.5²


def test_clipping_set_after_construction_is_applied_once_by_the_inner_optimizer(registry):
    """cnnreg's --clip sets Keras' attributes on what the factory returns."""
    import keras

    from cnnreg.kinds.optimizers import apply_clipping

    optimizer = apply_clipping(cnnreg.build("optimizer", "lookahead:inner=sgd,k=2", learning_rate=0.1),
                               {"clipnorm": 1.0})
    assert optimizer.clipnorm == 1.0 and optimizer.inner_optimizer.clipnorm == 1.0
    weight = keras.Variable(np.zeros(2, dtype="float32"))
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.array([30.0, 40.0], "float32")), weight)])
    np.testing.assert_allclose(_numpy(weight), [-0.06, -0.08], rtol=1e-6)  # 0.1 × the gradient scaled to norm 1
    clipped = apply_clipping(cnnreg.build("optimizer", "lookahead:inner=sgd", learning_rate=0.1), {"clipvalue": 0.5})
    weight = keras.Variable(np.zeros(2, dtype="float32"))
    clipped.apply_gradients([(keras.ops.convert_to_tensor(np.array([3.0, -0.2], "float32")), weight)])
    np.testing.assert_allclose(_numpy(weight), [-0.05, 0.02], rtol=1e-6)
    # the setting travels with the inner optimizer's config
    copy = type(optimizer).from_config(optimizer.get_config())
    assert copy.clipnorm == 1.0 and copy.inner_optimizer.clipnorm == 1.0


def test_variables_are_its_own_then_the_inner_optimizers(registry):
    """What the JAX trainer's stateless step and a checkpoint carry (as LossScaleOptimizer)."""
    import keras

    from cnnreg.analysis.memory import optimizer_slots

    optimizer = cnnreg.build("optimizer", "lookahead:inner=adam", learning_rate=0.1)
    weights = [keras.Variable(np.ones((3, 2), "float32")), keras.Variable(np.ones(4, "float32"))]
    optimizer.build(weights)
    inner = optimizer.inner_optimizer.variables
    assert len(inner) == 2 + 2 * 2 and optimizer.variables[-len(inner):] == inner  # Adam: count, rate, m, v
    slow = [v for v in optimizer.variables[: -len(inner)] if "slow" in v.path]
    assert [tuple(v.shape) for v in slow] == [(3, 2), (4,)]
    assert optimizer.iterations is optimizer.variables[0]
    assert optimizer_slots(optimizer)[1] == 3  # memory estimate: slow + Adam's two


def test_config_round_trip_and_keras_serialization(registry):
    import keras

    from cnnreg_lookahead.optimizer import Lookahead

    optimizer = cnnreg.build("optimizer", "lookahead:inner=sgd:momentum=0.9,k=4,alpha=0.6", learning_rate=0.05)
    config = keras.saving.serialize_keras_object(optimizer)
    assert config["registered_name"] == "cnnreg_lookahead>Lookahead"
    copy = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert isinstance(copy, Lookahead) and (copy.k, copy.alpha) == (4, 0.6)
    assert copy.inner_optimizer.momentum == 0.9
    assert float(_numpy(copy.learning_rate)) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="set it on the inner optimizer"):
        Lookahead(keras.optimizers.SGD(), weight_decay=0.1)


def test_saves_and_loads_with_the_model_in_safe_mode(registry, tmp_path):
    """Every optimizer variable comes back; the inner state is stored once, as the child
    Keras saves it (optimizer/inner_optimizer/vars), not a second time with the wrapper's."""
    import io
    import zipfile

    import h5py
    import keras

    optimizer = cnnreg.build("optimizer", "lookahead:inner=adam,k=2", learning_rate=0.01)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(size=(8, 3)), rng.uniform(size=(8, 2)), batch_size=4, epochs=2, verbose=0)  # 4 steps
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=True, safe_mode=True)
    assert type(loaded.optimizer) is type(optimizer) and int(_numpy(loaded.optimizer.iterations)) == 4
    assert len(loaded.optimizer.variables) == len(optimizer.variables) == 2 + 2 + 2 + 2 * 2  # own, slow, Adam's
    for saved, restored in zip(optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(_numpy(restored), _numpy(saved))
    names = []
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            weights.visit(lambda name: names.append(name) if "/vars/" in name else None)
    assert sum(name.startswith("optimizer/vars/") for name in names) == 4  # count, rate, 2 slow
    assert sum(name.startswith("optimizer/inner_optimizer/vars/") for name in names) == 6
