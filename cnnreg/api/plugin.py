"""``cnnreg plugin new`` as a function: write an installable plugin package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from cnnreg.api.results import Result
from cnnreg.version import __version__

__all__ = ["new_plugin", "NewPlugin"]


@dataclass(repr=False)
class NewPlugin(Result):
    """``cnnreg plugin new``: the package written at ``root`` (its folder is the distribution's
    name), the component of each kind, and its ``files`` (relative to ``root``, sorted)."""

    name: str
    root: Path
    components: dict[str, str]
    files: list[Path] = field(default_factory=list)

    @property
    def distribution(self) -> str:
        return self.root.name

    def to_dict(self) -> dict[str, Any]:
        """What ``cnnreg plugin new --json`` prints."""
        return {"cnnreg": __version__, "plugin": {
            "name": self.name, "distribution": self.distribution, "path": str(self.root),
            "components": dict(self.components), "files": [str(p) for p in self.files],
            "next": f"pip install -e {self.root} && cnnreg list --provider {self.distribution}",
        }}

    def title(self) -> str:
        return f"wrote {self.root}/ (next: pip install -e {self.root} && cnnreg list --provider {self.distribution})"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        return ["file"], [[str(p)] for p in self.files]


def new_plugin(
    name: str,
    *,
    kind: Union[Sequence[str], Mapping[str, str], str] = (),
    dist: Optional[str] = None,
    directory: Path = Path("."),
) -> NewPlugin:
    """Write an installable plugin package ``cnnreg-NAME`` (or ``dist``) into ``directory``,
    with working components and their tests (``cnnreg plugin new``).  ``kind``: ``KIND`` or
    ``KIND=COMPONENT`` items (default: an architecture called ``name``), e.g.
    ``["architecture=acmenet", "initialiser"]``, or a mapping kind → component name."""
    from cnnreg.scaffold import check_name, parse_kinds
    from cnnreg.scaffold import new_plugin as write_package

    if isinstance(kind, str):
        kind = [kind]
    elif isinstance(kind, Mapping):
        kind = [f"{k}={v}" for k, v in kind.items()]
    name = check_name(name)  # the package name's own message before the components' names
    components = parse_kinds(list(kind or ()), name)
    root = write_package(name, components, directory, distribution=dist)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    return NewPlugin(name, root, components, files)
