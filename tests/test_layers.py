"""The house has layers: every import of every module of cnnreg, lazy ones too, keeps them.

Each module belongs to a row of :data:`ROWS`; it may import modules of its own row and of rows
above it, never of a row below.  A few rules go further than the rows (:data:`ONLY`,
:data:`NEVER`), and no private name (``_x``) is taken from another module.  The imports are read
from the source (``ast``), so an import inside a function counts as much as one at the top, and
a string naming a module (a lazy factory, the plugin host's built-ins) is not an import.
docs/design.md shows the rows.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnreg"

#: The rows, top of the house last: a module imports its own row and the rows before it.
ROWS: tuple[tuple[str, ...], ...] = (
    ("cnnreg.version", "cnnreg.errors", "cnnreg.spec", "cnnreg.files"),  # the bottom: nothing else of cnnreg
    ("cnnreg.images", "cnnreg.backends"),  # one image file; what needs TensorFlow, JAX or PyTorch
    ("cnnreg.kinds",),  # each kind's declaration and contract
    ("cnnreg.registry",),
    ("cnnreg.hookspecs",),
    ("cnnreg.plugins",),  # the plugin host
    ("cnnreg.datasets", "cnnreg.zoo", "cnnreg.analysis", "cnnreg.scaffold"),  # services that use kinds
    ("cnnreg.builtin",),  # the built-in plugins
    ("cnnreg.training",),  # runs: config, model, batches, steps, loop, resume, saved runs, reports
    ("cnnreg.adversarial", "cnnreg.sweeps"),  # drivers that use training
    ("cnnreg.api",),  # one public function per command
    ("cnnreg.cli",),  # Typer: parse, call the public function, render
    ("cnnreg.testing", "cnnreg.__main__"),
    ("cnnreg",),  # the public API, re-exported lazily; no module imports it for its own work
)

#: Packages that only the named importers may import (besides their own modules).
ONLY: dict[str, tuple[str, ...]] = {
    "cnnreg.builtin": (),  # the plugin host names its modules as strings
    "cnnreg.cli": ("cnnreg.__main__", "cnnreg.testing"),
    "cnnreg": (),
}

#: Imports the rows would allow but the design does not: importer → what it never imports.
NEVER: dict[str, tuple[str, ...]] = {
    "cnnreg.backends": ("cnnreg.kinds", "cnnreg.images"),  # backends know no kind
    "cnnreg.images": ("cnnreg.backends",),
    "cnnreg.analysis": ("cnnreg.zoo", "cnnreg.datasets"),  # a model in, numbers out
    "cnnreg.zoo": ("cnnreg.analysis",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of cnnreg
    name: str  # the attribute taken from it ("" for the module itself)
    line: int

    def __str__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        return f"{self.importer}:{self.line} imports {what}"


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import of a cnnreg module in ``path`` (at any depth), and every ``m._x`` read of
    a private name from an imported cnnreg module ``m``."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "cnnreg" or alias.name.startswith("cnnreg."):
                    found.append(Import(module, alias.name, "", node.lineno))
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source != "cnnreg" and not source.startswith("cnnreg."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:  # `from cnnreg.training import rundir`
                    found.append(Import(module, submodule, "", node.lineno))
                    aliases[alias.asname or alias.name] = submodule
                else:
                    found.append(Import(module, source, alias.name, node.lineno))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(Import(module, aliases[node.value.id], node.attr, node.lineno))
    return found


def row_of(module: str) -> int:
    best, found = -1, None
    for index, row in enumerate(ROWS):
        for prefix in row:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found is not None, f"{module} is in no row of tests/test_layers.py"
    return found


def package_of(module: str, table) -> str | None:
    """The longest key of ``table`` that ``module`` is or is inside (the root package ``cnnreg``
    only itself)."""
    keys = [k for k in table if module == k or (k != "cnnreg" and module.startswith(k + "."))]
    return max(keys, key=len) if keys else None


def breaches() -> list[str]:
    found = []
    for module, path in MODULES.items():
        for imp in imports_of(module, path):
            target = imp.target
            if imp.name.startswith("_") and not imp.name.startswith("__") and target != module:
                found.append(f"{imp}: a private name of another module")
            if row_of(target) > row_of(module):
                found.append(f"{imp}: a lower layer imports a higher one")
            owner = package_of(target, ONLY)
            if owner is not None and package_of(module, ONLY) != owner:
                if not any(module == allowed or module.startswith(allowed + ".") for allowed in ONLY[owner]):
                    found.append(f"{imp}: only {', '.join(ONLY[owner]) or owner + ' itself'} may import {owner}")
            rule = package_of(module, NEVER)
            if rule is not None and any(target == t or target.startswith(t + ".") for t in NEVER[rule]):
                found.append(f"{imp}: {rule} never imports {target}")
            if target not in MODULES:
                found.append(f"{imp}: there is no module {target}")
    return sorted(found)


def test_every_module_is_in_a_row():
    for module in MODULES:
        row_of(module)


def test_no_import_breaks_a_layer():
    found = breaches()
    assert not found, f"{len(found)} breaches:\n" + "\n".join(found)


@pytest.mark.parametrize("source, problem", [
    ("def f():\n    from cnnreg.training import loop\n", "a lower layer imports a higher one"),
    ("from cnnreg.registry import _jsonable\n", "a private name"),
    ("import cnnreg.registry as r\nx = r._jsonable\n", "a private name"),
    ("from cnnreg.builtin import initialisers\n", "may import cnnreg.builtin"),
    ("from cnnreg import __version__\n", "may import cnnreg"),
])
def test_the_check_sees_each_kind_of_breach(tmp_path, monkeypatch, source, problem):
    """A lazy import, a private name by either spelling, a built-in plugin, the public API: each
    is found in a module of the zoo (a service row)."""
    fake = PACKAGE / "zoo" / "fake_module_for_test_layers.py"
    monkeypatch.setitem(MODULES, "cnnreg.zoo.fake_module_for_test_layers", fake)
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source if self == fake else real_read(self, *a, **k))
    assert any(problem in line and "fake_module_for_test_layers" in line for line in breaches())
