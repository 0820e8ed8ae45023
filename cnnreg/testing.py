"""Helpers for testing cnnreg plugins (and cnnreg itself) without installing anything.

    from cnnreg import testing

    def test_my_plugin_registers_its_architecture():
        with testing.plugin(my_plugin_module, distribution="cnnreg-mynet") as registry:
            assert registry.get("architecture", "mynet").provider == "cnnreg-mynet"

    def test_cli():
        with testing.plugin(my_plugin_module):
            result = testing.run_cli("show", "mynet")
        assert result.exit_code == 0, result.stderr

:func:`isolated` hides whatever plugins happen to be installed, so a test sees the built-ins
plus what it adds; :func:`plugin` registers a plugin object for the duration of a ``with`` block;
:func:`entry_point` simulates an installed entry point (name, module, distribution) that is
imported the way a real one would be; :func:`assert_light_imports` checks the lazy-import rule
(importing a plugin module, and every module its lazy factory strings name, imports none of
keras, tensorflow, jax or torch).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cnnreg import plugins as _plugins
from cnnreg.registry import Registry

__all__ = ["isolated", "plugin", "entry_point", "run_cli", "CliResult", "HEAVY_MODULES", "heavy_imports",
           "assert_light_imports"]

#: What `cnnreg --help`, `list`, `show` and `plugins` must never import (docs/plugins.md).
HEAVY_MODULES = ("keras", "tensorflow", "jax", "torch")


@contextlib.contextmanager
def isolated(*simulated: _plugins.EntryPointInfo) -> Iterator[Registry]:
    """Within the block only the built-ins and ``simulated`` entry points are loaded."""
    settings = _plugins.settings
    saved_override, saved_extra = settings.entry_points, list(settings.extra)
    settings.entry_points = list(simulated)
    settings.extra.clear()
    _plugins.reset_host()
    try:
        yield _LazyRegistry()
    finally:
        settings.entry_points = saved_override
        settings.extra[:] = saved_extra
        _plugins.reset_host()


@contextlib.contextmanager
def plugin(
    obj: Any, *, name: str | None = None, distribution: str = "test-plugin", version: str = "0.0.0"
) -> Iterator[Registry]:
    """Register ``obj`` (a module or object with hook implementations) as if it were installed.

    Yields the registry with the plugin loaded.  Nests: each ``with`` adds one more plugin.
    An object registered this way is loaded even when ``CNNREG_LOAD_PLUGINS`` or
    ``CNNREG_DISABLE_PLUGINS`` would block an installed plugin (use :func:`entry_point` to test
    those variables).
    """
    name = name or getattr(obj, "__name__", None) or type(obj).__name__
    info = _plugins.EntryPointInfo(name, getattr(obj, "__name__", repr(obj)), distribution, version, obj=obj)
    with _added(info) as registry:
        yield registry


@contextlib.contextmanager
def entry_point(
    name: str, module: str, *, distribution: str = "test-plugin", version: str = "0.0.0"
) -> Iterator[Registry]:
    """Simulate an installed entry point ``name = module`` of distribution ``distribution``.

    ``module`` is imported when plugins load, exactly as for a real entry point, so import
    errors behave the same way.
    """
    with _added(_plugins.EntryPointInfo(name, module, distribution, version)) as registry:
        yield registry


@contextlib.contextmanager
def _added(info: _plugins.EntryPointInfo) -> Iterator[Registry]:
    _plugins.settings.extra.append(info)
    _plugins.reset_host()
    try:
        yield _LazyRegistry()
    finally:
        _plugins.settings.extra.remove(info)
        _plugins.reset_host()


class _LazyRegistry:
    """The registry of the current host, loaded when first used (after env changes, say)."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(_plugins.get_host().registry, attr)

    def __iter__(self):
        return iter(_plugins.get_host().registry)

    def __len__(self) -> int:
        return len(_plugins.get_host().registry)

    @property
    def host(self) -> _plugins.Host:
        return _plugins.get_host()


@dataclass
class CliResult:
    """What a ``cnnreg`` command printed and its exit status."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, argv: Sequence[str] | None = None) -> CliResult:
    """Run ``cnnreg ARGS...`` in this process and capture its output and exit status."""
    from cnnreg.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    _plugins.reset_host()  # reload so plugin warnings go through the CLI's reporter
    try:
        main(list(argv if argv is not None else args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout, sys.stderr = saved
        _plugins.set_reporter(None)
        _plugins.reset_host()
    return CliResult(code, out.getvalue(), err.getvalue())


_IMPORT_PROBE = """
import importlib, json, sys
from cnnreg import testing
plugin = importlib.import_module(sys.argv[1])
with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-probe") as registry:
    for component in registry.components():
        if component.provider == "cnnreg-probe":
            component.summary, component.metadata  # what `cnnreg list` reads
            if isinstance(component.factory, str):  # what `cnnreg show` imports
                importlib.import_module(component.factory.partition(":")[0])
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def heavy_imports(module: str, *, heavy: Sequence[str] = HEAVY_MODULES) -> list[str]:
    """The packages of ``heavy`` that a fresh interpreter imports when it loads the plugin module
    ``module`` through the plugin host and imports every module its lazy factories name."""
    import json
    import os
    import subprocess

    path = os.pathsep.join(p for p in [*sys.path, os.environ.get("PYTHONPATH", "")] if p)
    env = dict(os.environ, PYTHONPATH=path, CNNREG_LOAD_PLUGINS="")
    proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, module], capture_output=True, text=True, env=env,
                          timeout=300)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise AssertionError(f"loading plugin module {module} failed: {last}")
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    return sorted(loaded & set(heavy))


def assert_light_imports(module: str, *, heavy: Sequence[str] = HEAVY_MODULES) -> None:
    """Assert the lazy-import rule for the plugin module ``module`` (e.g. ``"cnnreg_mynet.plugin"``):
    loading it, listing its components and importing the modules its lazy factory strings name
    imports none of ``heavy`` (keras, tensorflow, jax, torch), so ``cnnreg list`` stays fast."""
    found = heavy_imports(module, heavy=heavy)
    assert not found, (
        f"loading plugin {module} imports {', '.join(found)}: import heavy libraries inside your factory "
        "functions, not at module level"
    )
