"""``cnnreg plugin new``: write an installable plugin package with one working component.

The package is ``cnnreg-NAME`` with module ``cnnreg_NAME``: a pyproject declaring the ``cnnreg``
entry point, a plugin module implementing the hook for the chosen kind, the component's factory
(importing keras only when called), a test using :mod:`cnnreg.testing`, and a README with the
install and publish steps.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from cnnreg import __version__
from cnnreg.errors import CnnregError, choices_text

KINDS = ("architecture", "initialiser", "regulariser", "dataset")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_name(name: str) -> str:
    name = name.strip().lower().replace("-", "_")
    if not _NAME.match(name):
        raise CnnregError(
            f"plugin name '{name}' must start with a letter and use lower-case letters, digits and '_' "
            "(it becomes the module cnnreg_NAME and the component NAME)"
        )
    return name


def new_plugin(name: str, kind: str, directory: Path) -> Path:
    """Write the package into ``directory/cnnreg-NAME`` and return that path."""
    name = check_name(name)
    if kind not in KINDS:
        raise CnnregError(f"unknown kind '{kind}'" + choices_text(kind, KINDS))
    root = Path(directory) / f"cnnreg-{name.replace('_', '-')}"
    if root.exists() and any(root.iterdir()):
        raise CnnregError(f"{root} already exists and is not empty; choose another --dir or name")
    module = f"cnnreg_{name}"
    values = {
        "name": name,
        "dist": f"cnnreg-{name.replace('_', '-')}",
        "module": module,
        "kind": kind,
        "hook": f"register_{kind}s",
        "cnnreg_version": __version__,
        "cnnreg_major": __version__.split(".")[0],
        "cnnreg_minor": __version__.split(".")[1],
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{module}/__init__.py": INIT,
        f"{module}/plugin.py": PLUGIN[kind],
        f"{module}/components.py": COMPONENTS[kind],
        "tests/test_plugin.py": TEST[kind],
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
    return root


PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A cnnreg plugin: the $kind '$name'"
readme = "README.md"
requires-python = ">=3.10"
# Depend on the cnnreg API you were written against (same major version).
dependencies = ["cnnreg>=$cnnreg_major.$cnnreg_minor,<$cnnreg_major.99"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This line is what makes cnnreg find the plugin once the package is installed.
[project.entry-points.cnnreg]
$name = "$module.plugin"

[tool.setuptools]
packages = ["$module"]
"""

README = """\
# $dist

A [cnnreg](https://pypi.org/project/cnnreg/) plugin that adds the $kind `$name`.

## Install and use

```bash
pip install -e .            # from this folder; `pip install $dist` once published
cnnreg list --provider $dist
cnnreg show $name
```

## Develop

* `$module/components.py` holds the factory: its signature and type hints are the
  parameters users set on the command line (`$name:KEY=VALUE,...`). Import keras and other
  heavy libraries inside the function, never at module level.
* `$module/plugin.py` registers it through the `$hook` hook.
* `pytest` runs `tests/test_plugin.py`, which loads the plugin with `cnnreg.testing` without
  installing it.

## Publish to PyPI

```bash
pip install build twine
python -m build             # writes dist/$dist-0.1.0.tar.gz and the wheel
twine upload dist/*
```

Name your package `cnnreg-SOMETHING` so people find it, bump `version` for every release, and
keep the `cnnreg` dependency range at the major version you tested.
"""

INIT = '''\
"""$dist: a cnnreg plugin adding the $kind '$name'."""

__version__ = "0.1.0"
'''

_PLUGIN_HEAD = '''\
"""The cnnreg plugin module named by the entry point. Keep it light: no keras import here."""

import cnnreg


@cnnreg.hookimpl
def $hook(registry):
'''

PLUGIN = {
    "architecture": _PLUGIN_HEAD + '''\
    registry.add(
        "$name",
        "$module.components:$name",  # lazy: imported when the architecture is built or shown
        summary="A small convolutional network (conv-BN-ReLU blocks, global pooling)",
        default_input_shape=(32, 32, 3),
        min_input_size=8,
        family="$name",
        activation="relu",
        batchnorm=True,
        preprocess="cnnreg.builtin.architectures.preprocess:scale_0_1",
    )
''',
    "initialiser": _PLUGIN_HEAD + '''\
    registry.add(
        "$name",
        "$module.components:$name",
        summary="Scaled He normal: variance gain * 2 / fan_in",
        suits=("relu", "leaky_relu", "elu", "gelu"),
    )
''',
    "regulariser": _PLUGIN_HEAD + '''\
    registry.add(
        "$name",
        "$module.components:$name",
        summary="Smooth L1/L2 penalty on every Conv and Dense kernel",
        primary="factor",
    )
''',
    "dataset": _PLUGIN_HEAD + '''\
    registry.add(
        "$name",
        "$module.components:$name",
        summary="Generated stripes: horizontal vs vertical (no download)",
        needs_network=False,
    )
''',
}

COMPONENTS = {
    "architecture": '''\
"""The architecture's factory: factory(input_shape, num_classes, *, include_top=True, **params)."""

from typing import Annotated

from cnnreg.spec import Range


def $name(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: Annotated[int, Range(1, 1024)] = 32,
    blocks: Annotated[int, Range(1, 8)] = 3,
    dropout: Annotated[float, Range(0, 1, max_inclusive=False)] = 0.0,
):
    """A small CNN: ``blocks`` × (conv 3×3 → BN → ReLU → max-pool), doubling ``width``."""
    import keras

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for block in range(blocks):
        x = keras.layers.Conv2D(width * 2**block, 3, padding="same", use_bias=False, name=f"block{block + 1}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{block + 1}_bn")(x)
        x = keras.layers.ReLU(name=f"block{block + 1}_relu")(x)
        if min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(name=f"block{block + 1}_pool")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, x, name="$name")
''',
    "initialiser": '''\
"""The initialiser's factory: returns a keras.initializers.Initializer."""

from typing import Annotated

from cnnreg.spec import Range


def $name(gain: Annotated[float, Range(0, None, min_inclusive=False)] = 1.0, seed: int | None = None):
    """He normal scaled by ``gain``: variance gain * 2 / fan_in."""
    import keras

    return keras.initializers.VarianceScaling(scale=2.0 * gain, mode="fan_in", distribution="truncated_normal", seed=seed)
''',
    "regulariser": '''\
"""The regulariser's factory: returns a cnnreg.regularisers.Regulariser."""

from typing import Annotated

from cnnreg.regularisers import Regulariser
from cnnreg.spec import Range


class SmoothPenalty(Regulariser):
    def __init__(self, factor: float, delta: float) -> None:
        self.factor, self.delta = factor, delta
        self.label = f"smooth L1 penalty {factor:g} (delta {delta:g})"

    def kernel_regularizer(self):
        import keras

        factor, delta = self.factor, self.delta

        def penalty(w):
            a = keras.ops.abs(w)
            return factor * keras.ops.sum(keras.ops.where(a < delta, 0.5 * a * a / delta, a - 0.5 * delta))

        return penalty


def $name(
    factor: Annotated[float, Range(0, None)] = 1e-4,
    delta: Annotated[float, Range(0, None, min_inclusive=False)] = 0.1,
) -> Regulariser:
    """Huber-style penalty: quadratic for small weights, linear for large ones."""
    return SmoothPenalty(factor, delta)
''',
    "dataset": '''\
"""The dataset's factory: returns a cnnreg.data.Dataset of 0..255 images and integer labels."""

from typing import Annotated

from cnnreg.spec import Range


def $name(size: Annotated[int, Range(8, None)] = 400, image: Annotated[int, Range(4, 256)] = 16, seed: int = 0):
    """``size`` noisy grayscale images of horizontal (0) or vertical (1) stripes."""
    import numpy as np

    from cnnreg.data import Dataset, Split, split_indices

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size)
    stripes = (np.arange(image) // 2 % 2 * 255.0)[None, :].repeat(image, axis=0)
    x = np.where(labels[:, None, None] == 0, stripes.T[None], stripes[None])
    x = np.clip(x + rng.normal(0, 40, x.shape), 0, 255).astype("float32")[..., None]
    train, val, test = split_indices(labels, (0.7, 0.15, 0.15), seed=seed)
    return Dataset(
        name="$name",
        class_names=["horizontal", "vertical"],
        train=Split(x[train], labels[train]),
        validation=Split(x[val], labels[val]),
        test=Split(x[test], labels[test]),
    )
''',
}

_TEST_HEAD = '''\
"""Tests for the $dist plugin, without installing it (cnnreg.testing)."""

import cnnreg
from cnnreg import testing

import $module.plugin as plugin


def test_the_component_is_registered_with_this_package_as_provider():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist") as registry:
        component = registry.get("$kind", "$name")
        assert component.provider == "$dist"
        result = testing.run_cli("show", "$kind/$name")
        assert result.exit_code == 0, result.stderr


'''

TEST = {
    "architecture": _TEST_HEAD + '''\
def test_it_builds_with_the_requested_classes():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        model = cnnreg.build("architecture", "$name:width=8,blocks=2", input_shape=(16, 16, 3), num_classes=4)
    assert model.output_shape == (None, 4)
''',
    "initialiser": _TEST_HEAD + '''\
def test_variance_is_gain_times_he():
    import keras

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        init = cnnreg.build("initialiser", "$name:gain=0.5,seed=1")
    values = keras.ops.convert_to_numpy(init((500, 500)))
    assert abs(values.var() - 0.5 * 2 / 500) < 0.1 * 0.5 * 2 / 500
''',
    "regulariser": _TEST_HEAD + '''\
def test_penalty_is_positive_and_scales_with_factor():
    import numpy as np

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        small = cnnreg.build("regulariser", "$name=1e-3").kernel_regularizer()
        large = cnnreg.build("regulariser", "$name=1e-2").kernel_regularizer()
    w = np.linspace(-1, 1, 50).astype("float32")
    assert 0 < float(small(w)) < float(large(w))
''',
    "dataset": _TEST_HEAD + '''\
def test_splits_and_classes():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        data = cnnreg.build("dataset", "$name:size=100")
    assert data.class_names == ["horizontal", "vertical"]
    assert sum(data.sizes().values()) == 100 and data.train.x.shape[1:] == (16, 16, 1)
''',
}
