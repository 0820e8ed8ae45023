"""The hooks a cnnreg plugin implements.

A plugin is a module (or any object) with functions decorated by ``cnnreg.hookimpl`` and named
after the hooks below; declare it in your package's ``pyproject.toml``::

    [project.entry-points.cnnreg]
    mynet = "cnnreg_mynet.plugin"

Each kind of :data:`cnnreg.kinds.KIND_SPECS` has its hook, ``register_<kinds>(registry)``
(``register_architectures``, ``register_initialisers`` ...: ``help(cnnreg.hookspecs)`` lists
them with their contracts, each written in full in its module of :mod:`cnnreg.kinds`).  The hook
receives a registry bound to that kind and to your distribution, so every component you add is
listed with your package as its provider.  Implement only the hooks you need.  Keep plugin modules light: import keras, tensorflow or anything heavy inside your
factories, never at module level (``cnnreg list`` and ``--help`` must not pay for it), and give
factories as ``"package.module:attr"`` strings where you can.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from cnnreg import kinds
from cnnreg.kinds import KindSpec

if TYPE_CHECKING:  # pragma: no cover
    import typer

    from cnnreg.registry import KindRegistry

PROJECT = "cnnreg"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


def _kind_hookspec(kind: KindSpec) -> Callable[..., None]:
    """The hookspec of one kind: ``register_<plural>(registry)``, documented with its contract."""

    def hook(registry: "KindRegistry") -> None:
        pass

    hook.__name__ = hook.__qualname__ = kind.hook
    hook.__module__ = __name__
    hook.__doc__ = kind.doc
    return hookspec(hook)


def kind_hookspecs() -> dict[str, Callable[..., None]]:
    """One hookspec per kind of :data:`cnnreg.kinds.KIND_SPECS`, by hook name."""
    return {kind.hook: _kind_hookspec(kind) for kind in kinds.KIND_SPECS}


def add_to(pm: pluggy.PluginManager) -> None:
    """Give ``pm`` every hook: ``register_commands`` and one per kind as the table is now."""
    pm.add_hookspecs(sys.modules[__name__])
    later = {name: spec for name, spec in kind_hookspecs().items() if name not in globals()}
    if later:  # a kind declared after this module was imported (a test's)
        pm.add_hookspecs(types.SimpleNamespace(**later))


# register_architectures, register_initialisers, ...: one hook per kind, made from the table so
# that a new kind gets its hook by being declared; help(cnnreg.hookspecs) shows each contract.
globals().update(kind_hookspecs())


@hookspec
def register_commands(app: "typer.Typer") -> None:
    """Add CLI commands to the ``cnnreg`` Typer app: ``@app.command()`` inside the hook.

    Import heavy libraries inside the command function, not in the hook.
    """
