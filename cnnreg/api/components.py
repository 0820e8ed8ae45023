"""``cnnreg list``, ``cnnreg show`` and ``cnnreg plugins`` as functions: what is installed.

Nothing here imports keras: the registry's components are data until one is built.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Optional

from cnnreg.api.results import Result
from cnnreg.errors import CnnregError, UnknownComponentError, choices_text
from cnnreg.registry import kind_spec, normalize_kind
from cnnreg.version import __version__

__all__ = [
    "list_components", "show", "list_plugins", "find_component", "listed",
    "ComponentList", "ComponentInfo", "PluginList",
]


# --- cnnreg list -------------------------------------------------------------------------------


@dataclass(repr=False)
class ComponentList(Result):
    """What ``cnnreg list`` shows: the components found, kind by kind (``kinds`` in that order)."""

    kinds: tuple[str, ...]
    components: list = field(default_factory=list)  # cnnreg.registry.Component

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "components": [listed(c) for c in self.components]}

    def title(self) -> str:
        what = kind_spec(self.kinds[0]).plural if len(self.kinds) == 1 else "components"
        return f"{len(self.components)} {what}"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[c.kind, c.name if not c.shadowed_by else c.qualified_name, ", ".join(c.aliases), c.summary,
                 c.provider, c.provider_version] for c in self.components]
        return ["kind", "name", "aliases", "summary", "provider", "version"], rows

    def __iter__(self):
        return iter(self.components)

    def __len__(self) -> int:
        return len(self.components)


def list_components(kind: Optional[str] = None, *, filter: Optional[str] = None,
                    provider: Optional[str] = None) -> ComponentList:
    """Installed components (``cnnreg list``): of ``kind`` (``"architectures"``, ``"weights"``
    ...; default: every kind), whose name or an alias matches the glob ``filter``
    (case-insensitive), provided by the package ``provider``."""
    from cnnreg.plugins import get_host
    from cnnreg.registry import KINDS  # now: a plugin's kind counts

    host = get_host()
    chosen = KINDS if kind is None else (normalize_kind(kind),)
    found = [c for k in chosen for c in host.registry.components(k)]
    if provider is not None:
        providers = {c.provider for c in host.registry.components()}
        if provider.lower() not in {p.lower() for p in providers}:
            _no_such_provider(provider, providers, host.plugin_list())
        found = [c for c in found if c.provider.lower() == provider.lower()]
    if filter:
        pattern = filter.lower()
        found = [
            c for c in found
            if fnmatch.fnmatchcase(c.name.lower(), pattern)
            or any(fnmatch.fnmatchcase(a.lower(), pattern) for a in c.aliases)
        ]
    return ComponentList(tuple(chosen), found)


def listed(component) -> dict:
    """A component in ``cnnreg list --json``; a weights entry with its fields (what the table
    shows: classes, metrics, parameters, files), which are plain data."""
    data = component.to_dict()
    if component.kind == "weights":
        from cnnreg.registry import jsonable

        data["entry"] = {"name": component.name, **jsonable(component.metadata)}
    return data


def _no_such_provider(provider: str, providers, plugins) -> None:
    """Why ``provider`` names nothing: an installed package that failed to load or is blocked
    says so (with its error); anything else is an unknown package."""
    wanted = provider.lower()
    mine = [p for p in plugins if not p.builtin and wanted in (p.distribution.lower(), p.name.lower())]
    broken = [p for p in mine if p.status in ("failed", "hook-error")]
    if broken:
        errors = "; ".join(f"plugin '{p.name}' {p.error}" for p in broken)
        raise CnnregError(f"package '{broken[0].distribution}' is installed but failed to load: {errors} "
                          "(see `cnnreg plugins`)")
    blocked = [p for p in mine if p.status == "blocked"]
    if blocked:
        raise CnnregError(f"package '{blocked[0].distribution}' is installed but not loaded: {blocked[0].error}")
    if mine:
        raise CnnregError(f"package '{mine[0].distribution}' provides no components "
                          "(its plugins add commands only; see `cnnreg plugins`)")
    installed = set(providers) | {p.distribution for p in plugins}
    raise CnnregError(f"no installed package '{provider}' provides components" + choices_text(provider, installed))


# --- cnnreg show -------------------------------------------------------------------------------


def find_component(text: str):
    """``NAME``, ``KIND/NAME``, ``provider/NAME`` or ``KIND/provider/NAME`` → one component."""
    from cnnreg.plugins import get_host
    from cnnreg.registry import KINDS  # now: a plugin's kind counts
    from cnnreg.spec import parse

    registry = get_host().registry
    head, sep, rest = text.partition("/")
    if sep:
        try:
            kind = normalize_kind(head)
        except CnnregError:
            kind = None
        if kind is not None:
            return registry.get(kind, parse(rest).name)
    name = parse(text).name
    found, errors = [], []
    for kind in KINDS:
        try:
            found.append(registry.get(kind, name))
        except UnknownComponentError as exc:
            errors.append(exc)
    if len(found) == 1:
        return found[0]
    if found:
        options = ", ".join(f"{c.kind}/{c.name}" for c in found)
        raise CnnregError(f"'{text}' names components of several kinds; use one of {options}")
    from cnnreg.kinds.weights import NAME

    if NAME.match(name) and "/" not in name:  # ARCH.TAG: the weights kind's own line (registry.get)
        raise errors[KINDS.index("weights")]
    every = {c.name for c in registry.components()}
    aliases = {a: n for kind in KINDS for a, n in registry.aliases(kind).items()}
    raise UnknownComponentError(
        f"unknown component '{text}'"
        + choices_text(name.rpartition("/")[2], every, aliases=aliases, hint="see `cnnreg list`")
    )


@dataclass(repr=False)
class ComponentInfo(Result):
    """What ``cnnreg show`` shows: the component, its JSON ``data`` (parameters, metadata, doc)
    and, for a weights entry, the entry (files, metrics), else None."""

    component: Any  # cnnreg.registry.Component
    data: dict
    entry: Any = None  # cnnreg.kinds.weights.WeightsEntry for the weights kind

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "component": self.data}

    def title(self) -> str:
        c = self.component
        return f"{c.kind} {c.name}" + (f": {c.summary}" if c.summary else "")

    def table(self) -> tuple[list[str], list[list[Any]]]:
        c, data = self.component, self.data
        rows: list[list[Any]] = [["kind", c.kind], ["name", c.name]]
        if c.aliases:
            rows.append(["aliases", ", ".join(c.aliases)])
        rows += [["provider", f"{c.provider} {c.provider_version} (plugin '{c.plugin}')"],
                 ["factory", data.get("factory", "")]]
        if c.tags:
            rows.append(["tags", ", ".join(c.tags)])
        if self.entry is not None:
            entry = self.entry.to_dict()
            for key in ("architecture", "input_shape", "num_classes", "dataset", "preprocess", "license", "source",
                        "zoo"):
                if entry.get(key) is not None:
                    value = entry[key]
                    rows.append([key, "x".join(map(str, value)) if key == "input_shape" else value])
            for metric in self.entry.metrics:
                values = ", ".join(f"{k} {v}" for k, v in metric.items() if k not in ("dataset", "split", "source"))
                rows.append([f"metrics ({metric.get('dataset')} {metric.get('split')})", values])
            for role, file in self.entry.files.items():
                rows.append([f"file {role}", f"{file.url} ({file.hash or 'no hash'})"])
            return ["field", "value"], rows
        for key, value in data.get("metadata", {}).items():
            rows.append([key, value if isinstance(value, (str, int, float)) else str(value)])
        for p in data.get("parameters", []):
            default = "required" if p["required"] else repr(p["default"])
            primary = ", primary (NAME=VALUE sets it)" if p["name"] == data.get("primary") else ""
            rows.append([f"parameter {p['name']}", f"{p['description']} = {default}{primary}"])
        return ["field", "value"], rows


def show(name: str) -> ComponentInfo:
    """One component (``cnnreg show``), named ``NAME``, ``KIND/NAME`` or ``PROVIDER/NAME``:
    parameters with types and defaults, docstring, provider, metadata; a weights entry with its
    files, hashes and metrics (nothing is imported or downloaded)."""
    component = find_component(name)
    if component.kind == "weights":
        from cnnreg.kinds.weights import entry_of
        from cnnreg.registry import callable_ref, jsonable

        entry = entry_of(component)
        data = component.to_dict()
        data.update(
            factory=component.factory if isinstance(component.factory, str) else callable_ref(component.factory),
            metadata=jsonable(component.metadata), parameters=[], primary=None, doc=component.summary,
            entry=entry.to_dict(),
        )
        return ComponentInfo(component, data, entry)
    return ComponentInfo(component, component.to_dict(detail=True))


# --- cnnreg plugins ----------------------------------------------------------------------------


@dataclass(repr=False)
class PluginList(Result):
    """What ``cnnreg plugins`` shows: every plugin with its package, hooks, status and error."""

    plugins: list = field(default_factory=list)  # cnnreg.plugins.PluginInfo

    @property
    def shadowed(self) -> list[dict]:
        """The plugins' names that a built-in holds (``{"kind", "name", "alias", "use"}``)."""
        return [item for p in self.plugins for item in p.shadowed]

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "plugins": [p.to_dict() for p in self.plugins]}

    def title(self) -> str:
        problems = sum(p.status not in ("ok",) for p in self.plugins)
        return f"{len(self.plugins)} plugins" + (f", {problems} not ok" if problems else "")

    def table(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[p.name, p.distribution, p.version, p.builtin, ", ".join(h.replace("register_", "") for h in p.hooks),
                 p.components, p.status, p.error] for p in self.plugins]
        return ["plugin", "package", "version", "built-in", "hooks", "components", "status", "error"], rows

    def __iter__(self):
        return iter(self.plugins)

    def __len__(self) -> int:
        return len(self.plugins)


def list_plugins() -> PluginList:
    """Every plugin (``cnnreg plugins``) with its version, hooks, status and error; a plugin that
    failed is listed with its error."""
    from cnnreg.plugins import get_host

    return PluginList(list(get_host().plugin_list()))
