"""A sweep's search space, read from run options that take several values.

Every option of ``cnnreg run`` may name several values in ``cnnreg sweep``:

* a list: ``--init he_normal,glorot_uniform``, ``--reg none,dropout=0.3``, ``--batch-size 32,64``.
  Commas separate the alternatives unless an alternative has parameters after a colon; then
  ``|`` separates them: ``--optimizer 'sgd:momentum=0.9|adam'``.  ``none`` is no component (no
  regulariser in that ``--reg`` slot, the architecture's own initialisation, ...);
* a range: ``--lr 1e-4..1e-1:log``, ``--epochs 5..20``, and inside one component's parameters:
  ``--reg dropout:rate=0.1..0.5`` (``:log`` after a range of a number > 0 samples it on a log
  scale);
* ``--seed 0,1,2``: replicates, not a dimension: every configuration runs with every seed.

:func:`parse_space` turns the options into :class:`Dimension` s (what Optuna samples, named
after their option: ``init``, ``reg``, ``reg2`` for the second ``--reg``, ``reg.rate`` for a
range inside the regulariser's parameters) and the fixed options; :func:`run_options` turns one
sample back into the options of one run.  Nothing here imports Optuna: the distributions are
made by :meth:`Dimension.distribution` when a study samples.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnreg.errors import ParameterError
from cnnreg.spec import shown

__all__ = ["Dimension", "Space", "parse_space", "alternatives", "run_options", "NUMERIC", "OPTIONAL"]

#: Options whose values are numbers: int or float.
NUMERIC: dict[str, type] = {
    "epochs": int, "batch_size": int, "fine_tune_epochs": int, "early_stop": int, "seed": int,
    "lr": float, "fine_tune_lr": float,
}
#: Options where ``none`` means "not given" (the run's default: no component, no limit).
OPTIONAL = ("init", "reg", "clip", "schedule", "class_weight", "early_stop", "fine_tune_lr", "lr", "input_shape")
#: A range: ``LOW..HIGH`` or ``LOW..HIGH:log``.
RANGE = re.compile(r"^\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)\s*\.\.\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)\s*(:\s*log)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Dimension:
    """One thing a sweep varies: the alternatives of an option, or a range."""

    name: str  #: the parameter's name in the study: ``init``, ``reg2``, ``lr``, ``reg.rate``
    option: str  #: the run option it sets (``reg`` for every ``--reg`` slot)
    slot: int = 0  #: which ``--reg`` (0 for the first)
    choices: tuple[Any, ...] | None = None  #: the alternatives (a list), else a range
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    integer: bool = False
    #: A component spec with ``{}`` where a sampled parameter value goes: ``dropout:rate={}``.
    template: str | None = None

    @property
    def is_list(self) -> bool:
        return self.choices is not None

    def distribution(self):
        """The Optuna distribution of this dimension (imports Optuna)."""
        import optuna

        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(_text(c) for c in self.choices)
        return f"{_text(self.low)}..{_text(self.high)}" + (" (log)" if self.log else "")


@dataclass
class Space:
    """What a sweep varies and what it keeps: its dimensions, its fixed options, its seeds."""

    dimensions: list[Dimension] = field(default_factory=list)
    fixed: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])

    @property
    def all_lists(self) -> bool:
        """Whether every dimension is a list (a grid can be made of them)."""
        return all(d.is_list for d in self.dimensions)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the lists, in the order the options were given."""
        names = [d.name for d in self.dimensions]
        return [dict(zip(names, values)) for values in itertools.product(*(d.choices for d in self.dimensions))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimensions": {d.name: d.describe() for d in self.dimensions},
            "fixed": {k: v for k, v in self.fixed.items()},
            "seeds": list(self.seeds),
        }


def alternatives(option: str, text: str) -> list[str]:
    """The alternatives in one option's text: split at ``|`` when there is one, else at commas
    unless there is a colon (a component with parameters, whose commas are its own)."""
    flag = "--" + option.replace("_", "-")
    if "|" in text:
        parts = text.split("|")
    elif ":" in text:
        parts = [text]
    else:
        parts = text.split(",")
    parts = [p.strip() for p in parts]
    if not text.strip() or any(not p for p in parts):
        raise ParameterError(f"{flag} has an empty alternative in '{shown(text)}'; separate alternatives with ',' "
                             "(or '|' when they have parameters)")
    return parts


def parse_space(options: Mapping[str, Any], seeds: Sequence[int] | str | int = (0,)) -> Space:
    """The search space of a sweep from the run options as given (texts with several values,
    or Python values: a list is a list of alternatives).  ``reg`` is a list of ``--reg`` slots."""
    space = Space(seeds=_seeds(seeds))
    for option, value in options.items():
        if option == "log":  # where every trial logs to: one list for all, never swept
            specs = [value] if isinstance(value, str) else list(value or [])
            if specs:
                space.fixed["log"] = specs
            continue
        if option == "reg":
            slots = [value] if isinstance(value, str) else list(value or [])
            for slot, text in enumerate(slots):
                _add(space, "reg", text, slot=slot, name="reg" if slot == 0 else f"reg{slot + 1}")
            continue
        if value is None:
            continue
        _add(space, option, value, name=option)
    if "dataset" in {d.option for d in space.dimensions}:
        raise ParameterError("--dataset takes one value in a sweep: every trial uses the same data split, so trials compare")
    return space


def _add(space: Space, option: str, value: Any, *, name: str, slot: int = 0) -> None:
    """Add ``option``'s value to ``space``: a fixed value, a list dimension or a range."""
    if isinstance(value, (list, tuple)):
        parts = [str(v) if not isinstance(v, str) else v for v in value]
    elif isinstance(value, str):
        parts = alternatives(option, value)
    else:  # one Python value (a number, a bool)
        parts = [value]
    flag = "--" + option.replace("_", "-")
    if len(parts) == 1 and isinstance(parts[0], str):
        ranged = _range_dimension(option, parts[0], name=name, slot=slot)
        if ranged is not None:
            space.dimensions.append(ranged)
            return
    values = [_value(option, p) for p in parts]
    if len(values) == 1:
        if option == "reg":
            space.fixed.setdefault("reg", {})[slot] = values[0]
        else:
            space.fixed[option] = values[0]
        return
    if len(set(map(repr, values))) != len(values):
        raise ParameterError(f"{flag} names the same alternative twice ({', '.join(map(_text, values))})")
    space.dimensions.append(Dimension(name, option, slot=slot, choices=tuple(values)))


def _range_dimension(option: str, text: str, *, name: str, slot: int) -> Dimension | None:
    """A range, ``LOW..HIGH[:log]``, as the whole value of a numeric option or as one
    parameter of a component spec; None when ``text`` has no range."""
    flag = "--" + option.replace("_", "-")
    whole = RANGE.match(text)
    if whole:
        kind = NUMERIC.get(option)
        if kind is None:
            raise ParameterError(f"{flag} takes no range ('{shown(text)}'); give a list of alternatives")
        return _checked_range(flag, name, option, slot, whole, integer=kind is int, template=None)
    if ".." not in text:
        return None
    from cnnreg.spec import parse

    spec = parse(text)
    ranged = [(key, RANGE.match(str(v))) for key, v in spec.params.items() if isinstance(v, str) and ".." in v]
    if not ranged:
        return None
    if len(ranged) > 1:
        raise ParameterError(f"{flag} '{shown(text)}' has {len(ranged)} ranges; a sweep varies one parameter of a component")
    key, match = ranged[0]
    if match is None:
        raise ParameterError(f"{flag}: '{shown(str(spec.params[key]))}' is not a range LOW..HIGH (or LOW..HIGH:log)")
    from cnnreg.spec import PRIMARY, format_spec

    others = {k: v for k, v in spec.params.items() if k != key}
    if key == PRIMARY:  # NAME=LOW..HIGH
        template = f"{spec.name}={{}}"
    else:
        template = format_spec(spec.name, {**others, key: "\x00"}).replace("\x00", "{}")
    label = spec.name if key == PRIMARY else key
    integer = "." not in match.group(1) + match.group(2) and "e" not in (match.group(1) + match.group(2)).lower()
    return _checked_range(flag, f"{name}.{label}", option, slot, match, integer=integer, template=template)


def _checked_range(flag: str, name: str, option: str, slot: int, match, *, integer: bool, template: str | None) -> Dimension:
    low_text, high_text, log = match.group(1), match.group(2), bool(match.group(3))
    try:
        low, high = (int(low_text), int(high_text)) if integer else (float(low_text), float(high_text))
    except ValueError:
        raise ParameterError(f"{flag}: '{low_text}..{high_text}' is not a range of {'whole ' if integer else ''}numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ParameterError(f"{flag}: a range goes from a lower to a higher number (got {low_text}..{high_text})")
    if log and low <= 0:
        raise ParameterError(f"{flag}: a log range needs numbers > 0 (got {low_text}..{high_text}:log)")
    return Dimension(name, option, slot=slot, low=low, high=high, log=log, integer=integer, template=template)


def _value(option: str, text: Any) -> Any:
    """One alternative as the run takes it: a number for a numeric option, None for ``none``
    where that means "not given", else the text."""
    flag = "--" + option.replace("_", "-")
    if not isinstance(text, str):
        return text
    if text.lower() == "none" and option in OPTIONAL:
        return None
    kind = NUMERIC.get(option)
    if kind is None or (option == "lr" and text.lower() == "auto"):
        return text
    try:
        return kind(text) if kind is float else int(text)
    except ValueError:
        raise ParameterError(f"{flag} takes {'whole numbers' if kind is int else 'numbers'} (got '{shown(text)}')") from None


def _seeds(value: Sequence[int] | str | int) -> list[int]:
    """``--seed 0,1,2`` (or ``0..2``): the replicates, each once, in order."""
    if isinstance(value, bool):
        raise ParameterError(f"--seed takes whole numbers (got {value!r})")
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        match = RANGE.match(value)
        if match and not match.group(3):
            try:
                low, high = int(match.group(1)), int(match.group(2))
            except ValueError:
                raise ParameterError(f"--seed takes whole numbers (got '{shown(value)}')") from None
            if high < low:
                raise ParameterError(f"--seed: a range goes from a lower to a higher number (got '{shown(value)}')")
            return list(range(low, high + 1))
        value = alternatives("seed", value)
    seeds: list[int] = []
    for item in value:
        try:
            seed = int(item)
        except (TypeError, ValueError):
            raise ParameterError(f"--seed takes whole numbers (got '{shown(str(item))}')") from None
        if not 0 <= seed <= 2**32 - 1:
            raise ParameterError(f"--seed must be an integer from 0 to {2**32 - 1} (got {seed})")
        if seed not in seeds:
            seeds.append(seed)
    return seeds or [0]


def run_options(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """The run options of one sample: the fixed options, then each dimension's value (a
    component range filled into its spec); ``reg`` becomes the list of its slots' specs, the
    ``none`` slots left out."""
    options = {k: v for k, v in space.fixed.items() if k != "reg"}
    slots: dict[int, Any] = dict(space.fixed.get("reg", {}))
    for dimension in space.dimensions:
        value = params[dimension.name]
        if dimension.template is not None:
            value = dimension.template.format(_text(value))
        if dimension.option == "reg":
            slots[dimension.slot] = value
        else:
            options[dimension.option] = value
    options["reg"] = [slots[i] for i in sorted(slots) if slots[i] is not None]
    return options


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)
