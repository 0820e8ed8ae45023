"""What a fresh install gets: every version bound is explained (tests/test_docs.py checks that the
dependencies it resolves still give every CLI argument its description)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECTS = [ROOT / "pyproject.toml", *sorted((ROOT / "plugins").glob("*/pyproject.toml"))]


def _upper_bounds(text: str) -> list[tuple[int, str]]:
    """(line number, requirement) for each quoted requirement with an upper bound ``<``."""
    found = []
    for number, line in enumerate(text.splitlines()):
        code = line.split("#", 1)[0]
        for requirement in re.findall(r'"([^"]+)"', code):
            if re.match(r"^[A-Za-z0-9_.\[\], -]+[<>=!~]", requirement) and re.search(r"<(?!=)\s*\d", requirement.split(";")[0]):
                found.append((number, requirement))
    return found


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_upper_bound_carries_its_reason(path):
    lines = path.read_text().splitlines()
    for number, requirement in _upper_bounds(path.read_text()):
        same_line = "#" in lines[number]
        above = number > 0 and lines[number - 1].strip().startswith("#")
        # a list of several bounded requirements may share one comment block above the list
        block = any(line.strip().startswith("#") for line in lines[max(0, number - 6) : number]) and any(
            line.rstrip().endswith("[") or "= [" in line for line in lines[max(0, number - 6) : number + 1]
        )
        assert same_line or above or block, f"{path.name}: '{requirement}' has an upper bound without a comment saying why"
