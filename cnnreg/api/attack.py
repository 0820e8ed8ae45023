"""Adversarial robustness from Python: ``cnnreg.attack``, the function under ``cnnreg attack``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnreg.api.results import Result
from cnnreg.errors import CnnregError
from cnnreg.version import __version__

__all__ = ["attack", "AttackResult", "parse_eps"]


@dataclass(repr=False)
class AttackResult(Result):
    """``attack``: robust accuracy per eps, and the files written."""

    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, **self.result}

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def title(self) -> str:
        r = self.result
        return (f"attack {r['attack']}: {r['model']} on {r['dataset']} ({r['split']}, {r['examples']} examples), "
                f"clean accuracy {r['clean_accuracy']:.4f}")

    def table(self) -> tuple[list[str], list[list[Any]]]:
        clean = self.result["clean_accuracy"]
        return ["eps", "accuracy", "drop", "changed", "confidence"], [
            [row["eps"], row["accuracy"], clean - row["accuracy"], row["changed"], row["mean_confidence"]]
            for row in self.result["results"]]


def parse_eps(text: str | float | Sequence[float | str]) -> list[float]:
    """``"0,0.05,8/255"`` (or a list of numbers and fractions) → floats; one line for anything else."""
    from cnnreg.spec import coerce

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return [float(text)]
    if not isinstance(text, str):
        return [coerce(str(p), float, where="--eps") if isinstance(p, str) else float(p) for p in text]
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise CnnregError(f"--eps takes a comma-separated list of numbers such as 0,2/255,8/255 (got {text!r})")
    return [coerce(p, float, where="--eps") for p in parts]


def attack(
    model: str | Path,
    *,
    attack: str = "fgsm",
    eps: str | float | Sequence[float | str] | None = None,
    split: str = "test",
    dataset: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 128,
    out: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> AttackResult:
    """Robust accuracy of a run's best model or a weights entry under an adversarial attack, per
    eps (``cnnreg attack``): ``eps`` in [0, 1] pixel units (``"0,2/255,8/255"`` or a list;
    default 0 and the attack's own).  robustness.png goes into the run directory or ``out``;
    with ``out`` also the Szegedy figure adversarial.png and the arrays adversarial.npz.
    ``progress(done, total, what)`` is told after each batch."""
    from cnnreg.adversarial.robustness import build_attack, check_eps, robustness
    from cnnreg.backends import load_keras
    from cnnreg.backends import select
    from cnnreg.files import writable_folder
    from cnnreg.training.report import check_split
    from cnnreg.training.saved import open_trained

    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise CnnregError(f"--limit must be >= 1 (got {limit})")
    if isinstance(batch_size, bool) or batch_size < 1:
        raise CnnregError(f"--batch-size must be >= 1 (got {batch_size})")
    values = parse_eps(eps) if eps is not None else None
    built = build_attack(attack)  # an unknown attack or a bad parameter: before any model loads
    eps_list = check_eps(values if values is not None else [0.0, float(built.eps)], built.norm)
    trained = open_trained(model)
    if out is not None:  # before the model loads: a folder that cannot be written costs nothing
        writable_folder(Path(out), "--out")
    chosen = check_split(trained, split, dataset)  # so do a wrong dataset or split
    select(trained.backend)
    load_keras()
    return AttackResult(robustness(trained, built, eps_list, split=chosen, dataset=dataset, limit=limit,
                                   batch_size=batch_size, seed=seed, out=None if out is None else Path(out),
                                   progress=progress, spec=attack))
