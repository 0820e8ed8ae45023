"""``cnnreg plugin new``: write an installable plugin package with working components.

One package, any number of kinds: ``cnnreg plugin new acme --kind architecture=acmenet --kind
initialiser=acme_init`` writes the distribution ``cnnreg-acme`` (or ``--dist NAME``) with the
module ``cnnreg_acme``: a pyproject declaring the ``cnnreg`` entry point, one plugin module
implementing the hook of each kind, one module of factories per kind (importing keras only when
called), tests using :mod:`cnnreg.testing` (including the lazy-import rule), and a README with the
install and publish steps naming the files the build really writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

from cnnreg import __version__
from cnnreg.errors import CnnregError, choices_text
from cnnreg.registry import kind_spec, normalize_kind

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: PEP 508 project names (case-insensitive).
_DIST = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)


def check_name(name: str, *, what: str = "plugin name") -> str:
    """A lower-case Python identifier (``-`` becomes ``_``), or one line saying what is wrong."""
    name = name.strip().lower().replace("-", "_")
    if not _NAME.match(name):
        raise CnnregError(
            f"{what} '{name}' must start with a letter and use lower-case letters, digits and '_'"
        )
    return name


def check_distribution(name: str) -> str:
    """A valid PyPI project name (PEP 508), or one line."""
    name = name.strip()
    if not _DIST.match(name):
        raise CnnregError(
            f"distribution name '{name}' is not a valid package name: use letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return name


def normalized(distribution: str) -> str:
    """The file-name form of a distribution name (PEP 625 / wheel): ``cnnreg-My.Net`` → ``cnnreg_my_net``."""
    return re.sub(r"[-_.]+", "_", distribution).lower()


def dependency_bound(version: str = __version__) -> tuple[str, str]:
    """(requirement, the comment that says what it allows) for a plugin written against ``version``."""
    major, minor = (int(part) for part in version.split(".")[:2])
    requirement = f"cnnreg>={major}.{minor},<{major + 1}"
    comment = (
        f"# The cnnreg this was written against: {major}.{minor} or later, before {major + 1}.0 "
        "(a new major version may change the plugin API)."
    )
    return requirement, comment


def parse_kinds(items: Sequence[str], name: str) -> dict[str, str]:
    """``["architecture", "initialiser=my_init"]`` → kind → component name (default ``name``)."""
    chosen: dict[str, str] = {}
    for item in items or ["architecture"]:
        kind_text, _, component = item.partition("=")
        try:
            kind = normalize_kind(kind_text)
        except CnnregError:
            raise CnnregError(f"unknown component kind '{kind_text.strip()}'" + choices_text(kind_text.strip(), KINDS)) from None
        if kind not in KINDS:
            raise CnnregError(f"cnnreg plugin new cannot scaffold a {kind} yet" + choices_text(kind, KINDS))
        if kind in chosen:
            raise CnnregError(f"--kind {kind} is given twice; one component per kind")
        chosen[kind] = check_name(component or name, what=f"{kind} name")
    return chosen


def new_plugin(
    name: str,
    kinds: Mapping[str, str] | Sequence[str] | str = ("architecture",),
    directory: Path = Path("."),
    *,
    distribution: str | None = None,
) -> Path:
    """Write the package into ``directory/DISTRIBUTION`` and return that path.

    ``name`` names the package (distribution ``cnnreg-NAME`` unless ``distribution`` is given,
    and the entry point); ``kinds`` maps each kind to its component's name, or lists kinds whose
    component is called ``name``.
    """
    name = check_name(name)
    if isinstance(kinds, str):
        kinds = [kinds]
    components = dict(kinds) if isinstance(kinds, Mapping) else parse_kinds(list(kinds), name)
    for kind in components:
        if kind not in KINDS:
            raise CnnregError(f"unknown kind '{kind}'" + choices_text(kind, KINDS))
    dist = check_distribution(distribution or f"cnnreg-{name.replace('_', '-')}")
    module = normalized(dist)
    if not module.isidentifier():
        raise CnnregError(f"distribution name '{dist}' gives the module name '{module}', which Python cannot import")
    root = Path(directory) / dist
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CnnregError(f"{root} already exists and is not empty; choose another --dir or name")
    requirement, bound_comment = dependency_bound()
    values = {
        "name": name,
        "dist": dist,
        "module": module,
        "version": "0.1.0",
        "sdist": f"{module}-0.1.0.tar.gz",
        "wheel": f"{module}-0.1.0-py3-none-any.whl",
        "requirement": requirement,
        "bound_comment": bound_comment,
        "kinds_text": ", ".join(f"the {kind} `{component}`" for kind, component in components.items()),
        "components_dict": "{" + ", ".join(f'"{k}": "{v}"' for k, v in components.items()) + "}",
        "show_lines": "\n".join(f"cnnreg show {kind}/{component}" for kind, component in components.items()),
        "factory_lines": "\n".join(
            f"* `$module/{KIND_MODULES[kind]}.py`: the {kind} `{component}`." for kind, component in components.items()
        ).replace("$module", module),
    }
    files = {
        "pyproject.toml": Template(PYPROJECT).substitute(values),
        "README.md": Template(README).substitute(values),
        f"{module}/__init__.py": Template(INIT).substitute(values),
        f"{module}/plugin.py": Template(_PLUGIN_HEAD).substitute(values)
        + "".join(Template(PLUGIN[k]).substitute(values, name=c, kmod=KIND_MODULES[k]) for k, c in components.items()),
        "tests/test_plugin.py": Template(_TEST_HEAD).substitute(values)
        + "".join(Template(TEST[k]).substitute(values, name=c) for k, c in components.items()),
    }
    for kind, component in components.items():
        files[f"{module}/{KIND_MODULES[kind]}.py"] = Template(COMPONENTS[kind]).substitute(values, name=component)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "$version"
description = "A cnnreg plugin: $kinds_text"
readme = "README.md"
requires-python = ">=3.10"
$bound_comment
dependencies = ["$requirement"]

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

A [cnnreg](https://pypi.org/project/cnnreg/) plugin that adds $kinds_text.

## Install and use

```bash
pip install -e .            # from this folder; `pip install $dist` once published
cnnreg list --provider $dist
$show_lines
```

## Develop

$factory_lines
* `$module/plugin.py` registers them, one hook per kind.

Each factory's signature and type hints are the parameters users set on the command line
(`NAME:KEY=VALUE,...`). Import keras and other heavy libraries inside the function, never at
module level. `pytest` runs `tests/test_plugin.py`, which loads the plugin with `cnnreg.testing`
without installing it, and checks that loading it imports no keras, tensorflow, jax or torch.

## Publish to PyPI

```bash
pip install build twine
python -m build             # writes dist/$sdist and dist/$wheel
twine upload dist/*
```

Bump `version` in pyproject.toml for every release, and keep the `cnnreg` dependency range at
the versions you tested.
"""

INIT = '''\
"""$dist: a cnnreg plugin adding $kinds_text."""

__version__ = "$version"
'''

_PLUGIN_HEAD = '''\
"""The cnnreg plugin module named by the entry point. Keep it light: no keras import here."""

import cnnreg
'''



def _hook(kind: str) -> str:
    """The start of a plugin's hook for ``kind``, named as cnnreg.registry.KIND_SPECS declares."""
    return f"\n\n@cnnreg.hookimpl\ndef {kind_spec(kind).hook}(registry):\n"


PLUGIN = {
    "architecture": _hook("architecture") + '''\
    registry.add(
        "$name",
        "$module.$kmod:$name",  # lazy: imported when the architecture is built or shown
        summary="A small convolutional network (conv-BN-ReLU blocks, global pooling)",
        default_input_shape=(32, 32, 3),
        min_input_size=8,
        family="$name",
        activation="relu",
        batchnorm=True,
        preprocess="cnnreg.builtin.architectures.preprocess:scale_0_1",
    )
''',
    "initialiser": _hook("initialiser") + '''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Scaled He normal: variance gain * 2 / fan_in",
        suits=("relu", "leaky_relu", "elu", "gelu"),
    )
''',
    "regulariser": _hook("regulariser") + '''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Smooth L1/L2 penalty on every Conv and Dense kernel",
        primary="factor",
    )
''',
    "dataset": _hook("dataset") + '''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Generated stripes: horizontal vs vertical (no download)",
        needs_network=False,
    )
''',
    "attack": _hook("attack") + '''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Basic iterative method: signed gradient steps of eps / steps, no random start",
        role="iterative",
        norms=("inf",),
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


def $name(
    gain: Annotated[float, Range(0, 100, min_inclusive=False)] = 1.0,
    seed: Annotated[int, Range(0, 2**32 - 1)] | None = None,  # JAX takes unsigned 32-bit seeds
):
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
    "attack": '''\
"""The attack's factory: returns a cnnreg.attacks.Attack (perturb images in [0, 1] pixel space)."""

from typing import Annotated

from cnnreg.attacks import Attack, project
from cnnreg.spec import Range


class BasicIterative(Attack):
    norm = "inf"

    def __init__(self, eps: float, steps: int) -> None:
        self.eps, self.steps = eps, steps
        self.label = f"basic iterative L∞ eps {eps:.3g}, {steps} steps"

    def perturb(self, target, x, y, eps=None):
        from keras import ops  # keras.ops only: it runs on every backend and in a training step

        eps = self.eps if eps is None else float(eps)
        x = ops.cast(ops.convert_to_tensor(x), "float32")
        x_adv = x
        for _ in range(self.steps):  # a count fixed by the parameters, never by tensor values
            _, grad = target.gradient(x_adv, y)
            x_adv = project(x_adv + (eps / self.steps) * ops.sign(grad), x, eps, "inf")
        return ops.stop_gradient(x_adv)


def $name(eps: Annotated[float, Range(0, 1)] = 8 / 255, steps: Annotated[int, Range(1, 1000)] = 5) -> Attack:
    """Basic iterative method (Kurakin et al. 2016): FGSM in ``steps`` steps of eps / steps."""
    return BasicIterative(eps, steps)
''',
}

_TEST_HEAD = '''\
"""Tests for the $dist plugin, without installing it (cnnreg.testing)."""

import cnnreg
from cnnreg import testing

import $module.plugin as plugin

COMPONENTS = $components_dict


def test_the_components_are_registered_with_this_package_as_provider():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist") as registry:
        for kind, name in COMPONENTS.items():
            assert registry.get(kind, name).provider == "$dist"
            result = testing.run_cli("show", f"{kind}/{name}")
            assert result.exit_code == 0, result.stderr


def test_loading_the_plugin_imports_no_heavy_library():
    testing.assert_light_imports("$module.plugin")  # `cnnreg list` stays fast with it installed
'''

TEST = {
    "architecture": '''

def test_it_builds_with_the_requested_classes():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        model = cnnreg.build("architecture", "$name:width=8,blocks=2", input_shape=(16, 16, 3), num_classes=4)
    assert model.output_shape == (None, 4)
''',
    "initialiser": '''

def test_variance_is_gain_times_he():
    import keras

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        init = cnnreg.build("initialiser", "$name:gain=0.5,seed=1")
    values = keras.ops.convert_to_numpy(init((500, 500)))
    assert abs(values.var() - 0.5 * 2 / 500) < 0.1 * 0.5 * 2 / 500
''',
    "regulariser": '''

def test_penalty_is_positive_and_scales_with_factor():
    import numpy as np

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        small = cnnreg.build("regulariser", "$name=1e-3").kernel_regularizer()
        large = cnnreg.build("regulariser", "$name=1e-2").kernel_regularizer()
    w = np.linspace(-1, 1, 50).astype("float32")
    assert 0 < float(small(w)) < float(large(w))
''',
    "dataset": '''

def test_splits_and_classes():
    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        data = cnnreg.build("dataset", "$name:size=100")
    assert data.class_names == ["horizontal", "vertical"]
    assert sum(data.sizes().values()) == 100 and data.train.x.shape[1:] == (16, 16, 1)
''',
    "attack": '''

def test_the_attack_stays_within_eps_and_lowers_the_loss_margin():
    import keras
    import numpy as np

    from cnnreg.adversarial.target import eager_target

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        attack = cnnreg.build("attack", "$name:eps=8/255,steps=3")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(16) % 3]
    target = eager_target(model, lambda pixels: pixels / 255.0)  # cnnreg passes 0..255 pixels
    x_adv = keras.ops.convert_to_numpy(attack.perturb(target, x, y))
    assert np.abs(x_adv - x).max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    loss = lambda images: float(keras.ops.convert_to_numpy(target.gradient(images, y)[0]))
    assert loss(x_adv) > loss(x)
''',
}

#: The kinds the scaffold can write, and the module of the package that holds each kind's factory.
KINDS = tuple(COMPONENTS)
KIND_MODULES = {kind: kind_spec(kind).plural for kind in KINDS}
