"""Errors a user can cause. The CLI prints their message on one line and exits with status 2.

Anything else that escapes is a bug of ours and may show a traceback.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable

__all__ = [
    "CnnregError",
    "UnknownComponentError",
    "AmbiguousComponentError",
    "SpecError",
    "ParameterError",
    "PluginError",
    "closest",
    "choices_text",
]


class CnnregError(Exception):
    """A mistake in what the user asked for: one line, exit status 2, no traceback."""

    exit_code = 2


class UnknownComponentError(CnnregError, LookupError):
    """No component of that kind has that name."""


class AmbiguousComponentError(CnnregError, LookupError):
    """Two providers registered the same name; the user must qualify it as ``provider/name``."""


class SpecError(CnnregError, ValueError):
    """A component spec (``NAME``, ``NAME=VALUE``, ``NAME:K=V,...``) is malformed."""


class ParameterError(CnnregError, ValueError):
    """A parameter is unknown, missing, of the wrong type or out of range."""


class PluginError(CnnregError):
    """A component's plugin failed to load, so the component cannot be used."""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word`` (difflib ratio ≥ 0.6), or None when nothing is close.

    Ties go to the longer common prefix, so 'resnet35' suggests 'resnet34', not 'resnet50'.
    """
    lowered = {c.lower(): c for c in choices}
    target = word.lower()
    best, best_key = None, None
    for candidate, original in lowered.items():
        ratio = difflib.SequenceMatcher(None, target, candidate).ratio()
        if ratio < 0.6:
            continue
        prefix = len(os.path.commonprefix([target, candidate]))
        key = (round(ratio, 6), prefix, -abs(len(candidate) - len(target)), candidate)
        if best_key is None or key > best_key:
            best, best_key = original, key
    return best


def choices_text(word: str, choices: Iterable[str], *, limit: int = 30, hint: str = "") -> str:
    """``; did you mean 'x'? (valid: a, b, c)`` for the end of an error line."""
    choices = sorted(set(choices))
    text = ""
    best = closest(word, choices)
    if best is not None:
        text += f"; did you mean '{best}'?"
    if not choices:
        return text + " (none are installed)"
    shown = ", ".join(choices[:limit])
    if len(choices) > limit:
        shown += f", ... {len(choices) - limit} more"
        if hint:
            shown += f"; {hint}"
    return text + f" (valid: {shown})"
