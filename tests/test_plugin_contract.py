"""The plugin author's contract in docs/plugins.md holds: its worked example works as printed.

The worked example (section 5) is a whole plugin package, one fenced block per file, each
preceded by ``<!-- worked-example: PATH -->``.  These tests write the blocks to a folder, load
the package the way an installed one is loaded and run the example's own tests, so the docs
cannot drift from what cnnreg does.  The regulariser contract's method table and role table are
checked against ``cnnreg.kinds.regularisers.Regulariser`` and the built-ins, and the scaffold's
output printed in the quick start against ``cnnreg plugin new``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import shlex
import sys
from pathlib import Path

import pytest

from cnnreg import testing

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
_FILE = re.compile(r"<!-- worked-example: (?P<path>\S+) -->\n```[a-z]*\n(?P<code>.*?)^```", re.S | re.M)


def example_files() -> dict[str, str]:
    """Path in the example package → the text of its block in docs/plugins.md."""
    return {m["path"]: m["code"] for m in _FILE.finditer(DOC.read_text())}


def example_tests() -> list[str]:
    files = example_files()
    test_file = next((text for path, text in files.items() if path.endswith("tests/test_plugin.py")), "")
    return [node.name for node in ast.parse(test_file).body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


def section(title: str) -> str:
    """The text of the docs section under the heading ``title`` (up to the next heading of its level)."""
    text = DOC.read_text()
    match = re.search(rf"^(#+) {re.escape(title)}\n", text, re.M)
    assert match, f"docs/plugins.md has no section '{title}'"
    level = len(match[1])
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, match.end())
    return text[match.end(): end.start() if end else len(text)]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The worked example written to a folder and importable; yields (package root, its test module)."""
    files = example_files()
    roots = {path.split("/", 1)[0] for path in files}
    assert len(roots) == 1, f"the worked example's files are not in one package folder: {sorted(roots)}"
    base = tmp_path_factory.mktemp("example")
    for path, text in files.items():
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_text(text)
    root = base / roots.pop()
    packages = [p.name for p in root.iterdir() if (p / "__init__.py").exists()]
    sys.path.insert(0, str(root))
    try:
        spec = importlib.util.spec_from_file_location("_worked_example_tests", root / "tests" / "test_plugin.py")
        tests = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tests)
        yield root, tests
    finally:
        sys.path.remove(str(root))
        for name in list(sys.modules):
            if name == "_worked_example_tests" or name.split(".")[0] in packages:
                del sys.modules[name]


def test_the_worked_example_is_a_whole_package():
    files = example_files()
    assert {"pyproject.toml", "tests/test_plugin.py"} <= {p.split("/", 1)[1] for p in files}
    listing = section("5. A worked example: a regulariser plugin").split("```text\n", 1)[1].split("```", 1)[0]
    assert [line.strip() for line in listing.splitlines()[1:]] == [p.split("/", 1)[1] for p in files], \
        "the file tree printed in section 5 lists other files than its blocks"


@pytest.mark.parametrize("name", example_tests())
def test_the_worked_example_passes_its_own_tests(example, name, tmp_path):
    _root, tests = example
    function = getattr(tests, name)
    arguments = {"tmp_path": tmp_path} if "tmp_path" in inspect.signature(function).parameters else {}
    function(**arguments)


def test_its_entry_point_loads_it_like_an_installed_package(example):
    root, _tests = example
    pyproject = (root / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    distribution = re.search(r'^\[project\]\nname = "([^"]+)"', pyproject, re.M)[1]
    name, module = re.search(r'^\[project\.entry-points\.cnnreg\]\n(\S+) = "([^"]+)"\n', pyproject, re.M).groups()
    with testing.isolated(), testing.entry_point(name, module, distribution=distribution) as registry:
        mine = [c for c in registry.components("regulariser") if c.provider == distribution]
        assert {c.name for c in mine} == {"erase", "shear"}
        assert all(c.summary and c.metadata.get("role") for c in mine)


def test_the_run_header_shows_each_label(example):
    _root, tests = example
    with testing.isolated(), testing.plugin(tests.plugin, distribution="cnnreg-erasing"):
        result = testing.run_cli("run", "mlp_bn", "--reg", "erase", "--reg", "shear=0.1",
                                 "--dataset", "digits:size=8", "--epochs", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    header = " ".join(result.stdout.replace("│", " ").split())  # unwrap the panel's lines
    assert "erase: random erasing 0.3 of each side, p=0.5; shear:factor=0.1: random shear ±0.1" in header


def test_every_method_of_the_regulariser_base_class_is_in_the_contract():
    from cnnreg.kinds.regularisers import Regulariser

    text = section("Regularisers")
    methods = {name: f for name, f in vars(Regulariser).items() if callable(f) and not name.startswith("_")}
    for name, function in methods.items():
        documented = re.findall(rf"`{name}\(([^)]*)\)", text)
        assert documented, f"docs/plugins.md does not describe Regulariser.{name}"
        parameters = [p for p in inspect.signature(function).parameters if p != "self"]
        for shown in documented:
            assert [p.split(":")[0].strip() for p in shown.split(",") if p.strip()] == parameters, \
                f"docs/plugins.md shows `{name}({shown})`; the method takes {parameters}"
    assert "**`label: str`**" in text and "label" in vars(Regulariser)


def test_every_role_of_the_builtins_is_in_the_role_table():
    with testing.isolated() as registry:
        builtins = {c.name: c.metadata.get("role") for c in registry.components("regulariser") if c.builtin}
    rows = {m[1]: m[3] for m in re.finditer(r"^\| `([a-z ]+)` \| (.*?) \| (.*?) \|$", section("Regularisers"), re.M)}
    for name, role in builtins.items():
        assert role in rows, f"built-in regulariser '{name}' has role {role!r}, which the role table lacks"
        assert f"`{name}`" in rows[role], f"the role table does not list '{name}' under `{role}`"


def scaffold_examples() -> list[tuple[str, list[str]]]:
    """(command, printed lines) of each ``<!-- scaffold-output -->`` block of the quick start."""
    found = []
    for block in re.findall(r"<!-- scaffold-output -->\n```text\n(.*?)^```", DOC.read_text(), re.S | re.M):
        command, *printed = block.rstrip("\n").split("\n")
        found.append((command.removeprefix("$ "), printed))
    return found


@pytest.mark.parametrize("command, printed", scaffold_examples())
def test_the_quick_start_shows_what_the_scaffold_prints(command, printed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = shlex.split(command)
    assert args[:3] == ["cnnreg", "plugin", "new"]
    result = testing.run_cli(*args[1:])
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip("\n").split("\n") == printed
