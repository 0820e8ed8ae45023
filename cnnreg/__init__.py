"""cnnreg: a config-free plugin framework and model registry for convolutional networks.

Public API (importing cnnreg never imports keras)::

    import cnnreg
    cnnreg.components("architecture")              # every registered architecture
    cnnreg.get("initialiser", "he_normal")         # one component (name, alias or provider/name)
    cnnreg.build("initialiser", "variance_scaling:scale=2,mode=fan_avg")
    cnnreg.build("architecture", "resnet34", input_shape=(32, 32, 3), num_classes=10)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from cnnreg.errors import CnnregError  # noqa: E402
from cnnreg.hookspecs import hookimpl  # noqa: E402

__all__ = ["__version__", "hookimpl", "components", "get", "build", "get_registry", "CnnregError"]


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
