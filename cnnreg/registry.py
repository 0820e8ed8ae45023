"""The component registry: named factories of every kind, each knowing its provider.

The kinds are declared in :mod:`cnnreg.kinds` (one module per kind, with its contract; the table
:data:`cnnreg.kinds.KIND_SPECS`); the registry keeps what plugins register of each.

Hooks receive a :class:`KindRegistry` (the registry seen from one plugin and one kind) and call
``registry.add(name, factory, ...)``.  A factory is a callable or a lazy ``"package.module:attr"``
string that is imported only when the component is built or inspected in detail, so listing
components never imports keras.

Names are case-insensitive.  cnnreg's own components (the built-in plugins) keep their names and
aliases: a plugin's component of the same name is *shadowed*, reachable only as
``provider/name``, and so is a plugin's alias equal to a built-in name or alias.  When two other
providers register the same name, both stay reachable as ``provider/name`` and the bare name is
ambiguous.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnreg import kinds
from cnnreg import spec as spec_mod
from cnnreg.errors import (
    AmbiguousComponentError,
    CnnregError,
    ParameterError,
    PluginError,
    UnknownComponentError,
    choices_text,
    first_line,
)
from cnnreg.kinds import KindSpec, kind_spec, normalize_kind

__all__ = [
    "KindSpec", "KIND_SPECS", "KINDS", "SUPPLIED", "FRAMEWORK", "kind_spec", "normalize_kind",
    "Component", "Parameter", "Registry", "KindRegistry",
]


# The kinds are declared in cnnreg.kinds; these names are read from its table each time (module
# __getattr__), so that they always agree with it, even when a test adds a kind.
#: The kinds, singular, as used in hooks, the CLI and JSON output.
KINDS: tuple[str, ...]
#: Parameters the framework supplies when it builds a component of each kind; the user never
#: sets them in a spec, and they are not the component's primary parameter.
SUPPLIED: dict[str, tuple[str, ...]]
#: Parameters of the framework's contract with each kind (what it passes, or may pass, when it
#: builds one): never picked as a component's primary parameter (``NAME=VALUE``) unless the
#: component names it with ``primary=`` metadata, as the keras.applications bridge does for
#: ``weights``.
FRAMEWORK: dict[str, tuple[str, ...]]
#: The table of kinds (:data:`cnnreg.kinds.KIND_SPECS`).
KIND_SPECS: tuple[KindSpec, ...]


def __getattr__(name: str) -> Any:
    if name == "KIND_SPECS":
        return kinds.KIND_SPECS
    if name == "KINDS":
        return _kinds()
    if name == "SUPPLIED":
        return {k.name: kinds.supplied(k.name) for k in kinds.KIND_SPECS}
    if name == "FRAMEWORK":
        return {k.name: kinds.framework(k.name) for k in kinds.KIND_SPECS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _kinds() -> tuple[str, ...]:
    return tuple(k.name for k in kinds.KIND_SPECS)


@dataclass(frozen=True)
class Parameter:
    """One user-settable parameter of a component, read from its factory's signature."""

    name: str
    hint: Any
    default: Any
    required: bool
    doc: str = ""

    @property
    def type_text(self) -> str:
        return spec_mod.describe_type(self.hint) if self.hint is not inspect.Parameter.empty else "any value"

    def to_dict(self) -> dict[str, Any]:
        hint = self.hint
        if typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        return {
            "name": self.name,
            "type": _hint_text(hint),
            "description": self.type_text,
            "default": jsonable(self.default) if not self.required else None,
            "required": self.required,
        }


def _hint_text(hint: Any) -> str:
    """``int | None`` for ``Optional[Annotated[int, Range(...)]]``: the types, not the checks."""
    if hint is inspect.Parameter.empty:
        return "Any"
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _hint_text(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else _hint_text(a) for a in typing.get_args(hint))
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


@dataclass
class Component:
    """A registered component: a named factory of one kind, from one provider."""

    kind: str
    name: str
    factory: Callable[..., Any] | str
    provider: str
    provider_version: str
    plugin: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Registered by one of cnnreg's built-in plugins (its names and aliases take precedence).
    builtin: bool = False
    #: The provider of the built-in that took this component's bare name, else None.
    shadowed_by: str | None = None
    #: This component's aliases that a built-in's name or alias took.
    shadowed_aliases: tuple[str, ...] = ()
    _loaded: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def lazy(self) -> bool:
        return isinstance(self.factory, str) and self._loaded is None

    def load(self) -> Callable[..., Any]:
        """The factory callable, importing a lazy ``"module:attr"`` factory on first use."""
        if self._loaded is None:
            if callable(self.factory):
                self._loaded = self.factory
            else:
                self._loaded = resolve_reference(
                    self.factory, what=f"{self.kind} '{self.name}' from {self.provider}"
                )
        return self._loaded

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.load().__doc__ or self.summary or "")

    def parameters(self) -> list[Parameter]:
        """User-settable parameters, from the factory's signature and type hints."""
        factory = self.load()
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):
            return []
        hints = _type_hints(factory)
        supplied = kinds.supplied(self.kind)
        params = []
        for p in signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in supplied:
                continue
            hint = hints.get(p.name, p.annotation)
            if hint is inspect.Parameter.empty and p.default is not p.empty and p.default is not None:
                hint = type(p.default)
            params.append(Parameter(p.name, hint, p.default, p.default is p.empty))
        return params

    def accepts_any_keyword(self) -> bool:
        try:
            signature = inspect.signature(self.load())
        except (TypeError, ValueError):
            return True
        return any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())

    @property
    def primary(self) -> str | None:
        """The parameter that ``NAME=VALUE`` sets, or None.

        Metadata ``primary`` when the component declares it; else its first parameter, unless
        that is one of the framework's (an architecture's ``include_top``, ``weights``...: see
        :data:`FRAMEWORK`), in which case the component has no primary parameter: its options
        (``batchnorm``, ``dropout``...) are set by name.
        """
        if "primary" in self.metadata:
            return self.metadata["primary"]
        params = self.parameters()
        if not params or params[0].name in kinds.framework(self.kind):
            return None
        return params[0].name

    def resolve(self, params: Mapping[str, Any] | None = None, *, supplied: Mapping[str, Any] = ()) -> dict[str, Any]:
        """Check and convert ``params`` (strings from a spec, or Python values).

        ``supplied`` are the framework's own arguments (an architecture's ``input_shape``...),
        passed through unchecked.  Unknown keys, missing required parameters, wrong types and
        out-of-range values raise :class:`ParameterError` with one line.
        """
        params = dict(params or {})
        supplied = dict(supplied)
        label = f"{self.kind} '{self.name}'"
        declared = {p.name: p for p in self.parameters()}
        if spec_mod.PRIMARY in params:
            primary = self.primary
            if primary is None and declared:
                raise ParameterError(
                    f"{label} has no primary parameter; write {self.name}:KEY=VALUE "
                    f"(parameters: {', '.join(declared)})"
                )
            if primary is None:
                raise ParameterError(f"{label} takes no parameters (got '{params[spec_mod.PRIMARY]}')")
            if primary in params:
                raise ParameterError(f"{label}: parameter '{primary}' is given twice")
            params[primary] = params.pop(spec_mod.PRIMARY)
        result: dict[str, Any] = {}
        open_keywords = self.accepts_any_keyword()
        for key, value in params.items():
            if key not in declared:
                if open_keywords:
                    result[key] = value
                    continue
                if not declared:
                    raise ParameterError(f"{label} takes no parameters (got '{key}')")
                raise ParameterError(f"unknown parameter '{key}' for {label}" + choices_text(key, declared))
            result[key] = spec_mod.coerce(value, declared[key].hint, where=f"{label} parameter '{key}'")
        missing = [n for n, p in declared.items() if p.required and n not in result and n not in supplied]
        if missing:
            raise ParameterError(
                f"{label} needs parameter '{missing[0]}' ({declared[missing[0]].type_text}); "
                f"write {self.name}:{missing[0]}=VALUE"
            )
        return {**result, **supplied}

    def build(self, params: Mapping[str, Any] | None = None, **supplied: Any) -> Any:
        """Resolve ``params`` and call the factory with them and ``supplied``."""
        return self.load()(**self.resolve(params, supplied=supplied))

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "qualified_name": self.qualified_name,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "provider": self.provider,
            "provider_version": self.provider_version,
            "tags": list(self.tags),
            "builtin": self.builtin,
            "shadowed_by": self.shadowed_by,
            "shadowed_aliases": list(self.shadowed_aliases),
        }
        if detail:
            data["factory"] = self.factory if isinstance(self.factory, str) else callable_ref(self.factory)
            data["metadata"] = jsonable(self.metadata)
            data["parameters"] = [p.to_dict() for p in self.parameters()]
            data["primary"] = self.primary
            data["doc"] = self.doc
        return data


def callable_ref(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn
    while hasattr(target, "func") and not inspect.isfunction(target):  # functools.partial
        target = target.func
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:
        pass
    # One unresolvable annotation (say a return type "keras.Model" in a module that imports
    # keras lazily) must not cost the others: evaluate them one by one.
    hints: dict[str, Any] = {}
    namespace = getattr(target, "__globals__", {})
    for name, annotation in getattr(target, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # noqa: S307 - the plugin's own annotation
            except Exception:
                continue
        hints[name] = annotation
    return hints


def resolve_reference(ref: str, *, what: str) -> Any:
    """Import ``"package.module:attr.sub"``; failures become one-line :class:`PluginError`."""
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except CnnregError:
        raise
    except ImportError as exc:
        raise PluginError(f"{what} cannot be loaded: {first_line(exc)}") from exc
    except AttributeError as exc:
        raise PluginError(f"{what} cannot be loaded: '{ref}' does not exist ({first_line(exc)})") from exc
    except Exception as exc:  # a plugin module that raises on import must not escape as a traceback
        raise PluginError(f"{what} cannot be loaded: {type(exc).__name__}: {first_line(exc)}") from exc
    return obj


class Registry:
    """Every registered component, by kind; lookup by name, alias or ``provider/name``."""

    def __init__(self) -> None:
        self._by_kind: defaultdict[str, list[Component]] = defaultdict(list)
        #: Loaders of a kind's components that cost time (an http zoo's index), run the first
        #: time that kind is read: `cnnreg --help` or a run without --weights never waits on them.
        self._deferred: defaultdict[str, list[Callable[[], None]]] = defaultdict(list)
        #: Plugins that failed, by plugin name → error line; used to explain unknown names.
        self.failed_plugins: dict[str, str] = {}
        #: Where problems found while registering are said, one line each (the plugin host sets
        #: it: the CLI prints them; the library warns).
        self.report: Callable[[str], None] = _warn

    def defer(self, kind: str, loader: Callable[[], None]) -> None:
        """Run ``loader`` (which adds components of ``kind``) when ``kind`` is first read."""
        self._deferred[normalize_kind(kind)].append(loader)

    def _bucket(self, kind: str) -> list[Component]:
        while kind in self._deferred:  # a loader may defer another (a weights hook, its zoos)
            for loader in self._deferred.pop(kind):
                loader()
        return self._by_kind[kind]

    def add_component(self, component: Component) -> Component:
        self.add_components([component])
        return component

    def add_components(self, components: Iterable[Component]) -> None:
        """Add components of one kind at once (what a hook registered), in time linear in the
        kind's size: the same provider registering the same name again replaces its earlier
        entry (a plugin that calls its distribution "cnnreg" still cannot replace a built-in)."""
        def key(c: Component) -> tuple[str, str, bool]:
            return (c.name.lower(), c.provider, c.builtin)

        latest = {key(c): c for c in components}
        if not latest:
            return
        bucket = self._by_kind[next(iter(latest.values())).kind]
        bucket[:] = [c for c in bucket if key(c) not in latest]
        bucket.extend(latest.values())
        _mark_shadowed(bucket)

    def view(self, kind: str, *, provider: str, version: str, plugin: str, builtin: bool = False) -> "KindRegistry":
        """What a hook of ``plugin`` (from distribution ``provider``) registers ``kind`` through."""
        return KindRegistry(self, normalize_kind(kind), provider, version, plugin, builtin=builtin)

    def shadowed(self, kind: str | None = None, *, loaded: bool = False) -> list[Component]:
        """Components whose bare name or an alias a built-in took (reachable as provider/name);
        ``loaded``: only among those registered so far (no deferred loader runs)."""
        found = self.components(kind, loaded=loaded)
        return [c for c in found if c.shadowed_by or c.shadowed_aliases]

    def components(self, kind: str | None = None, *, loaded: bool = False) -> list[Component]:
        """Every component of ``kind`` (all kinds when None), in the table's order, then by name;
        ``loaded``: only those registered so far (the deferred loaders of a kind are not run)."""
        order = _kinds()
        wanted = order if kind is None else (normalize_kind(kind),)
        buckets = (self._by_kind[k] if loaded else self._bucket(k) for k in wanted)
        rank = {k: i for i, k in enumerate(order)}
        return sorted((c for bucket in buckets for c in bucket),
                      key=lambda c: (rank[c.kind], c.name.lower(), c.provider))

    def __iter__(self) -> Iterator[Component]:
        return iter(self.components())

    def __len__(self) -> int:
        return sum(len(self._bucket(k)) for k in _kinds())

    def __bool__(self) -> bool:
        """Always true: ``registry or ...`` must not count (and so load) every kind, zoos included."""
        return True

    def names(self, kind: str) -> list[str]:
        """Every name a user can type for this kind (bare names, aliases, qualified names)."""
        names = set()
        for c in self._bucket(normalize_kind(kind)):
            names.update([c.name, *c.aliases])
        return sorted(names)

    def aliases(self, kind: str) -> dict[str, str]:
        """Every alias of this kind → the name of the component it stands for."""
        return {a: c.name for c in self._bucket(normalize_kind(kind)) for a in c.aliases}

    def get(self, kind: str, name: str) -> Component:
        """The component called ``name`` (case-insensitive; alias or ``provider/name``).

        A bare name or alias of a built-in component always means the built-in; otherwise a
        bare name registered by several providers is ambiguous.
        """
        kind = normalize_kind(kind)
        if isinstance(name, spec_mod.Spec):
            name = name.name
        provider, _, bare = name.rpartition("/")
        key = bare.lower()
        matches = [
            c for c in self._bucket(kind)
            if (c.name.lower() == key or key in (a.lower() for a in c.aliases))
            and (not provider or c.provider.lower() == provider.lower())
        ]
        if any(c.builtin for c in matches):
            matches = [c for c in matches if c.builtin]  # cnnreg's own names are never taken
        exact = [c for c in matches if c.name.lower() == key]
        if len(exact) == 1 or (exact and len({c.provider for c in exact}) == 1):
            return exact[-1]
        if len(matches) == 1:
            return matches[0]
        if matches:
            qualified = ", ".join(sorted(c.qualified_name for c in matches))
            raise AmbiguousComponentError(
                f"{kind} name '{spec_mod.shown(name)}' is ambiguous: it is registered by several plugins; "
                f"use one of {qualified}"
            )
        if provider:
            providers = sorted({c.provider for c in self._by_kind[kind] if c.name.lower() == key})
            if providers:
                raise UnknownComponentError(
                    f"{kind} '{spec_mod.shown(bare)}' is not provided by '{spec_mod.shown(provider)}'"
                    + choices_text(provider, providers)
                )
        declared, names = kind_spec(kind), {c.name for c in self._by_kind[kind]}
        message = f"unknown {kind} '{spec_mod.shown(name)}'" + (
            declared.unknown(bare, names) if declared.unknown is not None
            else choices_text(bare, names, aliases=self.aliases(kind), hint=f"see `cnnreg list {declared.plural}`"))
        if self.failed_plugins:
            broken = ", ".join(sorted(self.failed_plugins))
            message += f"; plugins that failed to load: {broken} (see `cnnreg plugins`)"
        raise UnknownComponentError(message)

    def resolve(self, kind: str, spec: str | spec_mod.Spec, **supplied: Any) -> tuple[Component, dict[str, Any]]:
        """Parse ``spec``, find its component and check its parameters."""
        parsed = spec if isinstance(spec, spec_mod.Spec) else spec_mod.parse(spec)
        component = self.get(kind, parsed.name)
        return component, component.resolve(parsed.params, supplied=supplied)

    def build(self, kind: str, spec: str | spec_mod.Spec, **supplied: Any) -> Any:
        """Parse ``spec`` and build the component, passing the framework's ``supplied`` values."""
        component, params = self.resolve(kind, spec, **supplied)
        return component.load()(**params)


@dataclass
class KindRegistry:
    """What a ``register_<kind>s`` hook receives: the registry seen from one plugin and kind."""

    registry: Registry
    kind: str
    provider: str
    version: str
    plugin: str
    added: list[Component] = field(default_factory=list)
    builtin: bool = False

    def add(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        summary: str = "",
        aliases: tuple[str, ...] | list[str] = (),
        tags: tuple[str, ...] | list[str] = (),
        **metadata: Any,
    ) -> Component:
        """Register a component of this hook's kind.

        ``factory`` is a callable or a lazy ``"package.module:attr"`` string (imported only when
        the component is built or shown in detail).  ``summary`` is the one line shown by
        ``cnnreg list``.  Extra keyword arguments are metadata shown by ``cnnreg show``
        (e.g. ``default_input_shape=(224, 224, 3)``, ``suits=("relu",)``, ``primary="rate"``).
        """
        _check_name(name)
        if isinstance(factory, str):
            if ":" not in factory:
                raise ValueError(f"lazy factory {factory!r} for '{name}' must look like 'package.module:attr'")
        elif not callable(factory):
            raise TypeError(f"factory for '{name}' must be callable or a 'module:attr' string")
        component = Component(
            kind=self.kind,
            name=name,
            factory=factory,
            provider=self.provider,
            provider_version=self.version,
            plugin=self.plugin,
            summary=summary or _first_line(factory),
            aliases=tuple(aliases),
            tags=tuple(tags),
            metadata=metadata,  # a fresh dict already (keyword arguments)
            builtin=self.builtin,
        )
        self.added.append(component)
        return component

    def add_many(self, factory: str, entries: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Register many components that share one lazy ``factory``, each given as ``(name,
        summary, metadata)``: what a zoo index registers (100,000 entries in a third of
        :meth:`add`'s time, no keyword arguments unpacked per entry).  Names are checked as in
        :meth:`add`; ``metadata`` is kept as given (not copied)."""
        if not isinstance(factory, str) or ":" not in factory:
            raise ValueError(f"lazy factory {factory!r} must look like 'package.module:attr'")
        append = self.added.append
        for name, summary, metadata in entries:
            _check_name(name)
            append(Component(self.kind, name, factory, self.provider, self.version, self.plugin, summary,
                             metadata=metadata, builtin=self.builtin))

    def commit(self) -> None:
        self.registry.add_components(self.added)

    def defer(self, loader: Callable[["Registry"], None]) -> None:
        """Call ``loader(registry)`` the first time this kind is read, instead of now: for
        components whose listing costs time (a zoo's index over http), so that ``cnnreg --help``
        or a run that never reads this kind does not wait for them.  ``loader`` adds them through
        ``registry.view(...)`` (with a provider of its own) and says problems with
        ``registry.report(line)``."""
        registry = self.registry
        registry.defer(self.kind, lambda: loader(registry))


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not spec_mod.NAME.match(name) or "/" in name:
        raise ValueError(f"invalid component name {name!r}: use letters, digits, '_', '-', '.'")


def _warn(line: str) -> None:
    import warnings

    warnings.warn(line, UserWarning, stacklevel=3)


def _mark_shadowed(bucket: list[Component]) -> None:
    """Mark the non-built-in components of one kind whose name or aliases a built-in holds."""
    taken: dict[str, str] = {}
    for c in bucket:
        if c.builtin:
            for word in (c.name, *c.aliases):
                taken.setdefault(word.lower(), c.provider)
    for c in bucket:
        if not c.builtin:
            c.shadowed_by = taken.get(c.name.lower())
            c.shadowed_aliases = tuple(a for a in c.aliases if a.lower() in taken)


def _first_line(factory: Any) -> str:
    """The first sentence of the factory's docstring, for ``cnnreg list``."""
    if isinstance(factory, str):
        return ""
    paragraph = (inspect.getdoc(factory) or "").strip().split("\n\n")[0]
    return first_sentence(" ".join(paragraph.split()).replace("``", ""))


#: Words ending in "." that do not end a sentence (compared in lower case, without the dot).
ABBREVIATIONS = frozenset({
    "al", "e.g", "i.e", "cf", "vs", "fig", "figs", "eq", "eqs", "ref", "refs", "sec", "ch", "vol", "pp",
    "approx", "resp", "incl", "ca", "dr", "mr", "mrs", "ms", "prof", "jr", "sr", "inc", "ltd", "eds",
})



def first_sentence(text: str, *, brackets: bool = True) -> str:
    """``text`` up to the end of its first sentence: a ".", "!" or "?" followed by a space and not
    a lower-case word, outside parentheses, and not ending an abbreviation ("et al.", "e.g.",
    "Fig.", "vs.") or an initial ("J. Smith")."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([{" and brackets:
            depth += 1
        elif char in ")]}" and brackets:
            depth = max(0, depth - 1)
        elif char in ".!?" and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            rest = text[i + 1:].lstrip()
            if rest and rest[0].islower():
                continue  # "e.g. the" / "etc. and": the sentence goes on
            if char == "." and _abbreviation(text[:i]):
                continue
            return text[: i + 1]
    if depth and brackets:  # an unclosed "(" must not make the whole paragraph one sentence
        return first_sentence(text, brackets=False)
    return text


def _abbreviation(before: str) -> bool:
    """Whether the word just before a "." is an abbreviation or an initial."""
    word = before.rsplit(" ", 1)[-1].lstrip("([{\"'")
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. Smith", "Y. LeCun"
    return word.lower() in ABBREVIATIONS
