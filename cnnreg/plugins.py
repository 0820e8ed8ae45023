"""Plugin loading: built-ins first, then entry points of group ``cnnreg``, one at a time.

A plugin that fails to import, fails pluggy's validation or whose hook raises is recorded with
its error (``cnnreg plugins`` shows it) and reported in one warning line; everything else keeps
working.  ``CNNREG_DISABLE_PLUGINS=a,b`` blocks plugins (by entry-point or distribution name);
``CNNREG_LOAD_PLUGINS=a,b`` loads only those (empty: built-ins only); a name in either that no
plugin has is reported in one warning line.  Built-ins load first and keep their names: see
:mod:`cnnreg.registry` for what a plugin's component of the same name becomes (shadowed).
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from cnnreg import hookspecs, kinds
from cnnreg.errors import closest
from cnnreg.registry import Registry
from cnnreg.version import __version__

__all__ = [
    "BUILTIN_PACKAGE", "BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "EntryPointInfo", "PluginInfo", "Host", "LoadSettings",
    "settings", "get_host", "reset_host", "set_reporter", "builtin_plugins",
]

ENTRY_POINT_GROUP = "cnnreg"

#: The package of cnnreg's built-in plugins: each of its public modules is one, registered
#: through the same hooks as third-party plugins (a new one is picked up by being there).
BUILTIN_PACKAGE = "cnnreg.builtin"

#: kind → the name of its hook, and the built-in plugin modules (read, not stored, so that they
#: follow the kind table and the package).
KIND_HOOKS: dict[str, str]
BUILTIN_PLUGINS: tuple[str, ...]


def __getattr__(name: str) -> Any:
    if name == "KIND_HOOKS":
        return {kind.name: kind.hook for kind in kinds.KIND_SPECS}
    if name == "BUILTIN_PLUGINS":
        return builtin_plugins()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def builtin_plugins() -> tuple[str, ...]:
    """The built-in plugin modules: the public modules of :data:`BUILTIN_PACKAGE`, by name."""
    import pkgutil

    package = importlib.import_module(BUILTIN_PACKAGE)
    return tuple(sorted(f"{BUILTIN_PACKAGE}.{module.name}" for module in pkgutil.iter_modules(package.__path__)
                        if not module.name.startswith("_")))


class CnnregPluginWarning(UserWarning):
    """A plugin could not be loaded, or one of its hooks failed."""


@dataclass(frozen=True)
class EntryPointInfo:
    """An entry point in group ``cnnreg``: real (from importlib.metadata) or simulated in tests."""

    name: str
    value: str
    distribution: str
    version: str
    #: A plugin object to use instead of importing ``value`` (cnnreg.testing).
    obj: Any = None

    def load(self) -> Any:
        if self.obj is not None:
            return self.obj
        module_name, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
        return obj


@dataclass
class PluginInfo:
    """What ``cnnreg plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    status: str = "ok"  # ok | failed | hook-error | warning | blocked
    hooks: list[str] = field(default_factory=list)
    error: str = ""
    components: int = 0
    #: This plugin's names (component names, or aliases) that a built-in holds:
    #: ``{"kind", "name", "alias", "use"}``, ``use`` the ``provider/name`` that reaches it.
    shadowed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "status": self.status,
            "hooks": list(self.hooks),
            "components": self.components,
            "error": self.error or None,
            "shadowed": [dict(item) for item in self.shadowed],
        }


def _split_env(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {_norm(v) for v in value.split(",") if v.strip()}


def _env_words(name: str) -> list[str]:
    """The names in a comma-separated variable as written, each once."""
    words: dict[str, str] = {}
    for word in os.environ.get(name, "").split(","):
        if word.strip():
            words.setdefault(_norm(word), word.strip())
    return list(words.values())


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def installed_entry_points() -> list[EntryPointInfo]:
    """Entry points of group ``cnnreg`` in the installed distributions."""
    from importlib.metadata import entry_points

    found = []
    seen = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else ep.value.split(".")[0]
        version = dist.version if dist is not None else "?"
        key = (ep.name, ep.value)
        if key in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add(key)
        found.append(EntryPointInfo(ep.name, ep.value, dist_name, version))
    return found


class Host:
    """The plugin manager and the registry it fills."""

    def __init__(
        self,
        *,
        entry_points: Iterable[EntryPointInfo] | None = None,
        extra_plugins: Iterable[EntryPointInfo] = (),
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        hookspecs.add_to(self.pm)
        self.registry = Registry()
        self.registry.report = lambda line: self._warn(line, hint="")  # a zoo's problem is not a plugin's
        self._plugins: dict[str, PluginInfo] = {}
        self._loaded_kinds: set[str] = set()
        self.problems: list[str] = []
        self._report = report
        self._version = __version__
        self._load(entry_points, extra_plugins)

    # -- loading ------------------------------------------------------------------------------
    def _load(self, entry_points: Iterable[EntryPointInfo] | None, extra: Iterable[EntryPointInfo]) -> None:
        for module in builtin_plugins():
            self._add(EntryPointInfo(module.rsplit(".", 1)[-1], module, "cnnreg", self._version), builtin=True)
        disabled = _split_env("CNNREG_DISABLE_PLUGINS") or set()
        allowed = _split_env("CNNREG_LOAD_PLUGINS")
        points = list(installed_entry_points() if entry_points is None else entry_points) + list(extra)
        self._check_names(points)
        for ep in points:
            names = {_norm(ep.name), _norm(ep.distribution)}
            if ep.obj is not None:  # registered explicitly in code (cnnreg.testing.plugin)
                self._add(ep, builtin=False)
            elif names & disabled:
                self._record(ep, status="blocked", error="blocked by CNNREG_DISABLE_PLUGINS")
            elif allowed is not None and not names & allowed:
                self._record(ep, status="blocked", error="not in CNNREG_LOAD_PLUGINS")
            else:
                self._add(ep, builtin=False)
        self._check_unknown_hooks()
        self._note_failed()
        # each kind's hooks run the first time that kind is read (Registry.defer): `cnnreg --help`
        # calls none, `cnnreg list initialisers` one kind's
        for kind in kinds.KIND_SPECS:
            self.registry.defer(kind.name, lambda kind=kind: self._load_kind(kind.name, kind.hook))

    def _load_kind(self, kind: str, hook: str) -> None:
        if kind in self._loaded_kinds:
            return
        self._loaded_kinds.add(kind)
        self._call_kind_hook(kind, hook)
        self._note_shadowed(kind)
        self._note_failed()

    def _note_failed(self) -> None:
        self.registry.failed_plugins = {
            name: info.error for name, info in self._plugins.items() if info.status in ("failed", "hook-error")
        }

    def load_all(self) -> None:
        """Run every kind's hooks now (``cnnreg plugins`` reports what each plugin registered);
        what the hooks themselves defer (an http zoo's index) still waits for its kind's reader."""
        for kind in kinds.KIND_SPECS:
            self._load_kind(kind.name, kind.hook)

    def _check_names(self, points: list[EntryPointInfo]) -> None:
        """Warn once per name in CNNREG_DISABLE_PLUGINS / CNNREG_LOAD_PLUGINS that no plugin has
        (a typo there would otherwise silently load, or block, the wrong plugins)."""
        builtin = {"cnnreg", *(_norm(m.rsplit(".", 1)[-1]) for m in builtin_plugins())}
        installed = sorted({n for ep in points for n in (ep.name, ep.distribution)}, key=str.lower)
        known = builtin | {_norm(n) for n in installed}
        for variable in ("CNNREG_DISABLE_PLUGINS", "CNNREG_LOAD_PLUGINS"):
            for name in _env_words(variable):
                if _norm(name) in known:
                    continue
                guess = closest(name, installed)
                hint = f"; did you mean '{guess}'?" if guess else ""
                listed = ", ".join(installed) if installed else "none besides the built-ins"
                self._warn(f"{variable} names '{name}', but no plugin is called that{hint} (installed: {listed})")

    def _note_shadowed(self, kind: str) -> None:
        """Record, per plugin, the components of ``kind`` a built-in's name or alias shadows."""
        for c in self.registry.shadowed(kind, loaded=True):  # a deferred zoo is no plugin
            info = self._plugins.get(c.plugin)
            if info is None:
                continue
            words = [(c.name, False)] if c.shadowed_by else []
            for word, alias in words + [(a, True) for a in c.shadowed_aliases]:
                info.shadowed.append({"kind": c.kind, "name": word, "alias": alias, "use": c.qualified_name})

    def _record(self, ep: EntryPointInfo, *, builtin: bool = False, status: str = "ok", error: str = "") -> PluginInfo:
        name = ep.name if ep.name not in self._plugins else f"{ep.distribution}:{ep.name}"
        info = PluginInfo(name, ep.value, ep.distribution, ep.version, builtin, status=status, error=error)
        self._plugins[name] = info
        return info

    def _add(self, ep: EntryPointInfo, *, builtin: bool) -> None:
        info = self._record(ep, builtin=builtin)
        try:
            plugin = ep.load()
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # a broken plugin must never take the CLI down
            self._fail(info, "failed", f"cannot be loaded: {type(exc).__name__}: {exc}")
            return
        info.hooks = sorted(impl_name for impl_name in _hook_names(self.pm, info.name))

    def _check_unknown_hooks(self) -> None:
        """Like pluggy's ``check_pending()``, but per plugin and with a suggestion."""
        known = {kind.hook for kind in kinds.KIND_SPECS} | {"register_commands"}
        for hook_name, caller in vars(self.pm.hook).items():
            if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                info = self._plugins.get(impl.plugin_name)
                if info is None:
                    continue
                guess = closest(hook_name, known)
                hint = f"; did you mean '{guess}'?" if guess else ""
                self._fail(info, "warning", f"implements unknown hook '{hook_name}'{hint}")

    def _call_kind_hook(self, kind: str, hook: str) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            info = self._plugins[impl.plugin_name]
            view = self.registry.view(
                kind, provider=info.distribution, version=info.version, plugin=info.name, builtin=info.builtin
            )
            try:
                impl.function(*[{"registry": view}[arg] for arg in impl.argnames])
            except Exception as exc:
                self._fail(info, "hook-error", f"{hook} raised {type(exc).__name__}: {exc}")
                continue
            view.commit()  # only a hook that completed adds its components
            info.components += len(view.added)

    def _fail(self, info: PluginInfo, status: str, error: str) -> None:
        info.status = status
        info.error = f"{info.error}; {error}" if info.error else error
        self._warn(f"plugin '{info.name}' ({info.distribution} {info.version}) {error}")

    def _warn(self, line: str, *, hint: str = " (see `cnnreg plugins`)") -> None:
        """Report one problem: the CLI's reporter prints it with ``hint`` (where to look; a
        problem the registry reports, such as a zoo's, is not a plugin's), else a warning."""
        self.problems.append(line)
        if self._report is not None:
            self._report(line + hint)
        else:
            warnings.warn(line, CnnregPluginWarning, stacklevel=4)

    # -- commands -----------------------------------------------------------------------------
    def register_commands(self, app: Any) -> None:
        """Let plugins add CLI commands; a failing hook is recorded, the CLI carries on."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(*[{"app": app}[arg] for arg in impl.argnames])
            except Exception as exc:
                self._fail(self._plugins[impl.plugin_name], "hook-error", f"register_commands raised {type(exc).__name__}: {exc}")

    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """Every plugin by name, with what its hooks registered (every kind's hooks have run)."""
        self.load_all()
        return self._plugins

    def plugin_list(self) -> list[PluginInfo]:
        """Every plugin, with what its hooks registered (every kind's hooks have run)."""
        return list(self.plugins.values())


def _hook_names(pm: pluggy.PluginManager, plugin_name: str) -> list[str]:
    plugin = pm.get_plugin(plugin_name)
    callers = pm.get_hookcallers(plugin) or []
    return [caller.name for caller in callers]


@dataclass
class LoadSettings:
    """What :func:`get_host` loads besides the built-ins (:mod:`cnnreg.testing` changes it)."""

    #: The entry points to load instead of the installed ones (None: the installed ones).
    entry_points: list[EntryPointInfo] | None = None
    #: Plugins registered in code, loaded whatever CNNREG_LOAD_PLUGINS / _DISABLE_PLUGINS say.
    extra: list[EntryPointInfo] = field(default_factory=list)


#: The process's load settings.
settings = LoadSettings()
_host: Host | None = None
_reporter: Callable[[str], None] | None = None


def get_host() -> Host:
    """The process-wide plugin host, loaded once on first use."""
    global _host
    if _host is None:
        _host = Host(entry_points=settings.entry_points, extra_plugins=settings.extra, report=_reporter)
    return _host


def reset_host() -> None:
    """Forget the loaded plugins; the next :func:`get_host` loads them again."""
    global _host
    _host = None


def set_reporter(report: Callable[[str], None] | None) -> None:
    """How plugin problems are reported (the CLI prints one line; the library warns)."""
    global _reporter
    _reporter = report
