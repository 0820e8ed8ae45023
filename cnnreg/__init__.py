"""cnnreg: a config-free plugin framework and model registry for convolutional networks.

Public API (importing cnnreg never imports keras): one function per command, named as the
command, with its options as keyword arguments, returning a result whose ``to_dict()`` is the
command's ``--json`` (:mod:`cnnreg.api`, docs/python-api.md)::

    import cnnreg
    cnnreg.summary("resnet34", classes=10).to_dict()
    cnnreg.run("lenet5", epochs=1, run_dir="r")
    cnnreg.evaluate("r").to_dict()

and the registry::

    cnnreg.components("architecture")              # every registered architecture
    cnnreg.get("initialiser", "he_normal")         # one component (name, alias or provider/name)
    cnnreg.build("initialiser", "variance_scaling:scale=2,mode=fan_avg")
    cnnreg.build("architecture", "resnet34", input_shape=(32, 32, 3), num_classes=10)

The contract classes of the kinds (``cnnreg.Regulariser``, ``cnnreg.Attack``, ``cnnreg.Dataset``
...) are exported from here; each lives with its kind in :mod:`cnnreg.kinds`.  Everything is
imported when first used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

from cnnreg.errors import CnnregError
from cnnreg.hookspecs import hookimpl
from cnnreg.version import __version__

#: What ``cnnreg.NAME`` is, imported when first read: ``"module:attribute"``.
_LAZY = {
    # the contracts, one module per kind
    "KindSpec": "cnnreg.kinds:KindSpec",
    "Regulariser": "cnnreg.kinds.regularisers:Regulariser",
    "StepContext": "cnnreg.kinds.regularisers:StepContext",
    "Dataset": "cnnreg.kinds.datasets:Dataset",
    "Split": "cnnreg.kinds.datasets:Split",
    "WeightsEntry": "cnnreg.kinds.weights:WeightsEntry",
    "WeightsFile": "cnnreg.kinds.weights:WeightsFile",
    "Attack": "cnnreg.kinds.attacks:Attack",
    "AttackTarget": "cnnreg.kinds.attacks:AttackTarget",
    "Schedule": "cnnreg.kinds.schedules:Schedule",
    # the registry
    "Component": "cnnreg.registry:Component",
}

__all__ = [
    "__version__", "hookimpl", "components", "get", "build", "get_registry", "CnnregError", *_LAZY,
    # one function per command (cnnreg.api.COMMANDS)
    "run", "resume", "rerun", "list_runs", "evaluate", "predict", "lr_find", "diagnose", "publish", "attack", "summary",
    "estimate", "compare", "list_components", "show", "list_plugins", "dataset_info", "dataset_samples", "pull_weights",
    "new_plugin", "sweep", "show_sweep", "log_run", "export",
]

#: Modules that moved, by their old name: ``import cnnreg.regularisers`` still works (with a
#: DeprecationWarning) and gives the module under its new name, the same object.
MOVED = {
    "cnnreg.regularisers": "cnnreg.kinds.regularisers",
    "cnnreg.data": "cnnreg.kinds.datasets",
    "cnnreg.attacks": "cnnreg.kinds.attacks",
    "cnnreg.adversarial.target": "cnnreg.kinds.attacks",
    "cnnreg.zoo.entry": "cnnreg.kinds.weights",
    "cnnreg.zoo.publish": "cnnreg.training.publish",
    "cnnreg.builtin.architectures.preprocess": "cnnreg.kinds.architectures",
    "cnnreg.builtin.architectures._common": "cnnreg.kinds.architectures",
    "cnnreg.builtin.keras_weights": "cnnreg.builtin.weights.applications",
}


def _api() -> dict[str, str]:
    """The public functions, one per command (:data:`cnnreg.api.COMMANDS`), by name."""
    from cnnreg.api import COMMANDS

    return {target.rpartition(":")[2]: target for target in COMMANDS.values()}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name) or _api().get(name)
    if target is not None:
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_api()})


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a module's old name (:data:`MOVED`) and gives the module under its new one."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        warnings.warn(f"{spec.name} is now {MOVED[spec.name]}; import it from there", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # put back in exec_module: the module keeps its own
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def get_registry():
    """The registry of every loaded component (plugins are loaded on first use)."""
    from cnnreg.plugins import get_host

    return get_host().registry


def components(kind: str | None = None) -> list:
    """Registered components of ``kind`` (``"architecture"``, ``"initialiser"``, ...), or all."""
    return get_registry().components(kind)


def get(kind: str, spec: str):
    """The component named by ``spec`` (its parameters, if any, are not applied)."""
    from cnnreg.spec import parse

    return get_registry().get(kind, parse(spec).name)


def build(kind: str, spec: str, **kwargs: Any) -> Any:
    """Build the component named by ``spec`` (``NAME``, ``NAME=VALUE``, ``NAME:K=V,...``).

    ``kwargs`` are the framework's own arguments, e.g. an architecture's ``input_shape`` and
    ``num_classes``; the spec's parameters are checked against the factory's signature.
    """
    return get_registry().build(kind, spec, **kwargs)
