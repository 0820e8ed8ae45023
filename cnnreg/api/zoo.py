"""``cnnreg weights pull`` as a function: an entry's files from the model zoo into the cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from cnnreg.api.results import Result
from cnnreg.version import __version__

__all__ = ["pull_weights", "PulledWeights"]


@dataclass(repr=False)
class PulledWeights(Result):
    """``cnnreg weights pull``: ``pulled`` as ``--json`` gives it (per file role its local
    ``path``, what was done, size, verified hash, sha256 and URL; the ``recipe`` folder of an
    entry published from a run, else None); ``entry`` the :class:`cnnreg.kinds.weights.WeightsEntry`."""

    pulled: dict
    entry: Any = None

    @property
    def name(self) -> str:
        return self.pulled["name"]

    @property
    def paths(self) -> dict[str, Path]:
        """The local file of each role pulled."""
        return {role: Path(item["path"]) for role, item in self.pulled["files"].items()}

    @property
    def recipe(self) -> Optional[Path]:
        """The folder ``cnnreg rerun`` takes, for an entry published from a run."""
        return Path(self.pulled["recipe"]) if self.pulled["recipe"] else None

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "pulled": self.pulled}

    def title(self) -> str:
        count = len(self.pulled["files"])
        text = f"weights {self.name}: {count} file{'s' if count != 1 else ''} in the cache"
        if self.pulled["recipe"]:
            text += f"; recipe: cnnreg rerun {self.pulled['recipe']}"
        return text

    def table(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[role, item["action"], item["path"], item["size"], item["sha256"], item["url"]]
                for role, item in self.pulled["files"].items()]
        return ["file", "action", "path", "bytes", "sha256", "url"], rows


def pull_weights(name: str, *, file: Optional[str] = None) -> PulledWeights:
    """Download the files of the weights entry ``name`` (``ARCH.TAG``; only the file ``file``,
    ``"model"``, ``"top"`` or ``"notop"``, when given) into the cache once, check their hashes
    and say where they are (``cnnreg weights pull``)."""
    from cnnreg.kinds.weights import entry_of
    from cnnreg.plugins import get_host
    from cnnreg.zoo.cache import pull

    entry = entry_of(get_host().registry.get("weights", name))
    return PulledWeights(pull(entry, file), entry)
