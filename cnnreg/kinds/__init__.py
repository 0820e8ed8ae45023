"""The kinds of component: one module per kind, holding its declaration and its contract.

Each module of this package declares its kind as ``KIND``, a :class:`KindSpec` (the kind's name
and the words the CLI accepts for it, its hook, what the framework supplies to its factories,
the hook's docstring, the example a scaffolded plugin starts from), and writes the contract a
component of that kind keeps beside it: the classes a factory returns (``Regulariser``,
``Attack``, ``Dataset``, ``WeightsEntry``, ``Schedule`` ...) and the functions the framework
asks them through.  :data:`KIND_SPECS` below is the one table of kinds; everything else follows
from it: the registry's kinds and their words, the hooks in :mod:`cnnreg.hookspecs`,
``cnnreg list KIND``, ``show``, ``plugins``, ``--json`` and ``cnnreg plugin new --kind``.

A new kind is a module here (with its ``KIND``) and a line in :data:`KIND_SPECS`, and a
built-in plugin module in :mod:`cnnreg.builtin` that registers its components.

These modules are light: importing them imports no keras, TensorFlow or NumPy (``cnnreg list``
reads the table); the contracts import what they need inside their functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cnnreg.errors import CnnregError, choices_text

__all__ = ["KindSpec", "Scaffold", "Labelled", "KIND_SPECS", "KINDS", "kind_spec", "normalize_kind", "supplied", "framework"]


class Labelled:
    """What the objects of several kinds share (a schedule, a logger): a one-line ``label`` that
    the run header shows (:meth:`describe`; empty: the class name), and the Keras callbacks it
    adds to ``fit`` (:meth:`callbacks`, none by default)."""

    label: str = ""

    def callbacks(self) -> list[Any]:
        """Keras callbacks for ``fit`` (new ones on every call)."""
        return []

    def describe(self) -> str:
        """What the run header shows: :attr:`label`, else the class name."""
        return self.label or type(self).__name__


@dataclass(frozen=True)
class Scaffold:
    """What ``cnnreg plugin new --kind KIND`` writes for a kind: three ``string.Template`` texts.

    ``register`` is the body of the plugin's hook (the ``registry.add(...)`` call); ``factories``
    the module holding the component's factory; ``test`` a test of the component, appended to the
    package's tests.  Their placeholders: ``$name`` (the component), ``$module`` (the package),
    ``$kmod`` (the module of factories, the kind's plural), ``$dist`` (the distribution).
    """

    register: str
    factories: str
    test: str


@dataclass(frozen=True)
class KindSpec:
    """One kind of component, declared once, in its module of :mod:`cnnreg.kinds`.

    ``name`` is the singular used in hooks, the CLI and JSON (``"architecture"``); ``plural`` names
    its ``cnnreg list`` table; ``hook`` is the hook plugins implement (default
    ``register_<plural>``); ``words`` are other words the CLI accepts for the kind.  ``supplied``
    are the arguments the framework passes when it builds a component (never user parameters);
    ``framework`` are further arguments of the framework's contract with the kind (never chosen as
    the primary ``NAME=VALUE`` parameter).  ``doc`` is the hook's docstring, the contract in
    short, and ``contract`` where the whole contract is written (the kind's module).
    ``scaffold`` is what ``cnnreg plugin new`` writes for the kind (None: it cannot scaffold one).
    ``unknown(name, names)`` ends the line for a name of this kind that is not registered (None:
    the closest names and the valid ones, :func:`cnnreg.errors.choices_text`).
    """

    name: str
    plural: str
    hook: str = ""
    words: tuple[str, ...] = ()
    supplied: tuple[str, ...] = ()
    framework: tuple[str, ...] = ()
    doc: str = ""
    contract: str = ""
    scaffold: Scaffold | None = None
    unknown: Callable[[str, Iterable[str]], str] | None = None

    def __post_init__(self) -> None:
        if not self.hook:
            object.__setattr__(self, "hook", f"register_{self.plural}")


from cnnreg.kinds import (  # noqa: E402  (each module declares its KIND with the classes above)
    architectures, attacks, datasets, initialisers, loggers, optimizers, regularisers, schedules, weights,
)

#: Every kind of component, in the order ``cnnreg list`` shows them.
KIND_SPECS: tuple[KindSpec, ...] = (
    architectures.KIND,
    initialisers.KIND,
    regularisers.KIND,
    datasets.KIND,
    weights.KIND,
    attacks.KIND,
    optimizers.KIND,
    schedules.KIND,
    loggers.KIND,
)

# Derived from KIND_SPECS each time they are read (module __getattr__), so that they always agree
# with the table, even when a test adds a kind to it.
#: The kinds, singular, as used in hooks, the CLI and JSON output.
KINDS: tuple[str, ...]


def __getattr__(name: str) -> Any:
    if name == "KINDS":
        return tuple(k.name for k in KIND_SPECS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kind_spec(kind: str) -> KindSpec:
    """The declaration of ``kind`` (any word for it: ``"archs"``, ``"weights"``, ``"init"`` ...)."""
    text = kind.strip().lower()
    for spec in KIND_SPECS:
        if text in (spec.name, spec.plural, *spec.words):
            return spec
    names = tuple(k.name for k in KIND_SPECS)
    hint = choices_text(kind, names)
    if "did you mean" not in hint:  # close to another word for a kind ('zooo' → zoo → weights)?
        hint = choices_text(kind, names, aliases={w: k.name for k in KIND_SPECS for w in (k.plural, *k.words)})
    raise CnnregError(f"unknown component kind '{kind}'" + hint)


def normalize_kind(text: str) -> str:
    """``"architectures"``, ``"initializer"``, ``"reg"`` ... → the canonical singular kind."""
    return kind_spec(text).name


def supplied(kind: str) -> tuple[str, ...]:
    """What the framework supplies to ``kind``'s factories (nothing for a kind not in the table)."""
    return next((k.supplied for k in KIND_SPECS if k.name == kind), ())


def framework(kind: str) -> tuple[str, ...]:
    """The framework's arguments of ``kind``: what it supplies, and what else its contract
    passes (never a component's primary parameter unless it says so)."""
    return next(((*k.supplied, *k.framework) for k in KIND_SPECS if k.name == kind), ())
