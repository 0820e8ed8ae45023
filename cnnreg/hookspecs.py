"""The hooks a cnnreg plugin implements.

A plugin is a module (or any object) with functions decorated by ``cnnreg.hookimpl`` and named
after the hooks below; declare it in your package's ``pyproject.toml``::

    [project.entry-points.cnnreg]
    mynet = "cnnreg_mynet.plugin"

Each ``register_<kind>s`` hook receives a registry bound to that kind and to your distribution,
so every component you add is listed with your package as its provider.  Implement only the hooks
you need.  Keep plugin modules light: import keras, tensorflow or anything heavy inside your
factories, never at module level (``cnnreg list`` and ``--help`` must not pay for it), and give
factories as ``"package.module:attr"`` strings where you can.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import typer

    from cnnreg.registry import KindRegistry

PROJECT = "cnnreg"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_architectures(registry: "KindRegistry") -> None:
    """Add architectures: ``registry.add(name, factory, summary=..., **metadata)``.

    The factory is ``factory(input_shape, num_classes, *, include_top=True, **params) ->
    keras.Model`` built from Keras 3 layers only.  Useful metadata: ``default_input_shape``,
    ``min_input_size``, ``family``, ``paper``, ``activation``, ``batchnorm``, ``preprocess``
    (a ``"module:attr"`` string) and ``weights`` (name → ``{"url": ..., "sha256": ...}``).
    See docs/plugins.md for the full contract.
    """


@hookspec
def register_initialisers(registry: "KindRegistry") -> None:
    """Add weight initialisers: the factory returns a ``keras.initializers.Initializer``.

    Give the activations it suits as metadata, ``suits=("relu", "elu", ...)``, so that
    ``cnnreg run`` can warn when it is paired with an architecture whose activation it does not
    suit.
    """


@hookspec
def register_regularisers(registry: "KindRegistry") -> None:
    """Add regularisers: weight penalties, layers to insert, augmentations, loss changes.

    The factory returns a :class:`cnnreg.regularisers.Regulariser` (see docs/plugins.md); give
    ``primary="rate"`` (or another parameter name) as metadata to choose what ``NAME=VALUE`` sets.
    """


@hookspec
def register_datasets(registry: "KindRegistry") -> None:
    """Add datasets: the factory returns the train / validation / test splits and class names.

    Say ``needs_network=True`` in the metadata when the data must be downloaded.
    """


@hookspec
def register_commands(app: "typer.Typer") -> None:
    """Add CLI commands to the ``cnnreg`` Typer app: ``@app.command()`` inside the hook.

    Import heavy libraries inside the command function, not in the hook.
    """
