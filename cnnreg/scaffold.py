"""``cnnreg plugin new``: write an installable plugin package with working components.

One package, any number of kinds: ``cnnreg plugin new acme --kind architecture=acmenet --kind
initialiser=acme_init`` writes the distribution ``cnnreg-acme`` (or ``--dist NAME``) with the
module ``cnnreg_acme``: a pyproject declaring the ``cnnreg`` entry point, one plugin module
implementing the hook of each kind, one module of factories per kind (importing keras only when
called), tests using :mod:`cnnreg.testing` (including the lazy-import rule), and a README with the
install and publish steps naming the files the build really writes.  What it writes for each
kind (the registration, the factory, its test) is that kind's ``scaffold``, declared with the
kind in :mod:`cnnreg.kinds`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

from cnnreg import kinds
from cnnreg.errors import CnnregError, choices_text
from cnnreg.kinds import kind_spec, normalize_kind
from cnnreg.version import __version__

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
                raise CnnregError(f"unknown component kind '{kind_text.strip()}'"
                              + choices_text(kind_text.strip(), scaffold_kinds())) from None
        if kind not in scaffold_kinds():
            raise CnnregError(f"cnnreg plugin new cannot scaffold a {kind} yet" + choices_text(kind, scaffold_kinds()))
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
        if kind not in scaffold_kinds():
            raise CnnregError(f"unknown kind '{kind}'" + choices_text(kind, scaffold_kinds()))
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
            f"* `$module/{kind_spec(kind).plural}.py`: the {kind} `{component}`." for kind, component in components.items()
        ).replace("$module", module),
    }
    files = {
        "pyproject.toml": Template(PYPROJECT).substitute(values),
        "README.md": Template(README).substitute(values),
        f"{module}/__init__.py": Template(INIT).substitute(values),
        f"{module}/plugin.py": Template(_PLUGIN_HEAD).substitute(values)
        + "".join(_hook(k) + Template(kind_spec(k).scaffold.register).substitute(values, name=c, kmod=kind_spec(k).plural)
                  for k, c in components.items()),
        "tests/test_plugin.py": Template(_TEST_HEAD).substitute(values)
        + "".join(Template(kind_spec(k).scaffold.test).substitute(values, name=c) for k, c in components.items()),
    }
    for kind, component in components.items():
        files[f"{module}/{kind_spec(kind).plural}.py"] = Template(kind_spec(kind).scaffold.factories).substitute(
            values, name=component)
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
    """The start of a plugin's hook for ``kind``, named as the kind declares it."""
    return f"\n\n@cnnreg.hookimpl\ndef {kind_spec(kind).hook}(registry):\n"


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

def scaffold_kinds() -> tuple[str, ...]:
    """The kinds ``cnnreg plugin new`` can write: those whose declaration has a scaffold."""
    return tuple(k.name for k in kinds.KIND_SPECS if k.scaffold is not None)


#: The kinds the scaffold can write (read from the kind table each time).
KINDS: tuple[str, ...]


def __getattr__(name: str):
    if name == "KINDS":
        return scaffold_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
