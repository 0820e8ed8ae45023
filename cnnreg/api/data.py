"""``cnnreg data info`` and ``cnnreg data show`` as functions: look at a dataset before training on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from cnnreg.api.results import Result, html_table
from cnnreg.version import __version__

__all__ = ["dataset_info", "dataset_samples", "DatasetInfo", "DatasetSamples"]


@dataclass(repr=False)
class DatasetInfo(Result):
    """``cnnreg data info``: ``info`` is the dataset's description as ``--json`` gives it (classes,
    ``counts`` per split and class, image shape, location, imbalance, unreadable files)."""

    info: dict

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def counts(self) -> dict[str, list[int]]:
        """Examples per class, split by split."""
        return dict(self.info["counts"])

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "dataset": self.info}

    def title(self) -> str:
        i = self.info
        sizes = ", ".join(f"{k} {v:,}" for k, v in i["sizes"].items())
        text = f"{i['dataset']}: {i['num_classes']} classes, {i['total']:,} examples ({sizes})"
        if i["imbalance"]["imbalanced"]:
            text += "; imbalanced"
        return text

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Examples per class: one column per split, and the total."""
        splits = list(self.info["counts"])
        rows = [[name, *(self.info["counts"][s][i] for s in splits), self.info["class_totals"][i]]
                for i, name in enumerate(self.info["classes"])]
        return ["class", *splits, "total"], rows


def dataset_info(dataset: str) -> DatasetInfo:
    """Classes, examples per class and split, image shape, where the data is, class imbalance
    (``cnnreg data info``); ``dataset``: a spec such as ``"digits"``, ``"tfds:NAME"`` or
    ``"folder:PATH"``."""
    from cnnreg.datasets.explore import info

    return DatasetInfo(info(dataset))


@dataclass(repr=False)
class DatasetSamples(Result):
    """``cnnreg data show``: ``grid`` as ``--json`` gives it (the PNG's ``path``, the split, the
    drawn size, the augmentations, each sample's class)."""

    grid: dict

    @property
    def path(self) -> Path:
        """The PNG written."""
        return Path(self.grid["path"])

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "grid": self.grid}

    def title(self) -> str:
        return f"{len(self.grid['samples'])} samples of {self.grid['split']} → {self.grid['path']}"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        return ["#", "class"], [[i, s["class"]] for i, s in enumerate(self.grid["samples"], start=1)]

    def _repr_html_(self) -> str:
        """The grid itself (when the PNG is still there) above the table of the samples' classes."""
        import base64
        import html

        columns, rows = self.table()
        image = ""
        try:
            data = base64.b64encode(self.path.read_bytes()).decode("ascii")
            image = f'<img src="data:image/png;base64,{data}" alt="{html.escape(self.title())}"/>'
        except OSError:
            pass
        return f"<p><b>{html.escape(self.title())}</b></p>" + image + html_table(columns, rows)


def dataset_samples(
    dataset: str,
    *,
    n: int = 16,
    augment: Sequence[str] = (),
    split: str = "train",
    output: Path = Path("samples.png"),
    size: Optional[int] = None,
    seed: int = 0,
) -> DatasetSamples:
    """Write a PNG grid of ``n`` labelled samples of ``split`` to ``output``, through the
    augmentation regulariser specs ``augment`` as in training (``cnnreg data show``)."""
    from cnnreg.datasets.explore import sample_grid

    augment = [augment] if isinstance(augment, str) else list(augment or ())
    return DatasetSamples(sample_grid(dataset, Path(output), n=n, split=split, augment=augment, seed=seed, size=size))
