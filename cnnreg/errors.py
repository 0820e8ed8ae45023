"""Errors a user can cause. The CLI prints their message on one line and exits with status 2.

Anything else that escapes is a bug of ours and may show a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "CnnregError",
    "UnknownComponentError",
    "AmbiguousComponentError",
    "SpecError",
    "ParameterError",
    "PluginError",
    "closest",
    "suggestions",
    "suggestion_text",
    "choices_text",
    "first_line",
    "gist",
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
    counts: dict[str, int] = {}
    for char in target:
        counts[char] = counts.get(char, 0) + 1
    best, best_key = None, None
    for candidate, original in lowered.items():
        # difflib's ratio is at most its quick ratio (shared characters, in any order): the
        # candidates that cannot reach 0.6, or the best so far, are passed over without it
        total = len(target) + len(candidate)
        if 2 * min(len(target), len(candidate)) < 0.6 * total:
            continue
        left, shared = dict(counts), 0
        for char in candidate:
            if left.get(char, 0) > 0:
                left[char] -= 1
                shared += 1
        if 2 * shared < 0.6 * total or (best_key is not None and 2 * shared / total < best_key[0] - 1e-6):
            continue
        ratio = difflib.SequenceMatcher(None, target, candidate).ratio()
        if ratio < 0.6:
            continue
        prefix = len(os.path.commonprefix([target, candidate]))
        key = (round(ratio, 6), prefix, -abs(len(candidate) - len(target)), candidate)
        if best_key is None or key > best_key:
            best, best_key = original, key
    return best


#: A prefix this short suggests nothing by itself ('r' starts half the names).
MIN_PREFIX = 2


def suggestions(word: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> list[str]:
    """What ``word`` may have meant: every choice it is a prefix of, else the closest one.

    ``aliases`` maps other accepted spellings to their choice (``{"kaiming_normal": "he_normal"}``):
    they are matched too, and the choice they belong to is suggested.  'he' gives
    ``["he_normal", "he_uniform"]``, 'kaiming' the same two, 'resnet35' ``["resnet34"]``.
    """
    owner = {n.lower(): n for n in sorted(set(choices))}  # sorted: the same spelling wins each time
    for alias, name in (aliases or {}).items():
        owner.setdefault(alias.lower(), name)
    target = word.strip().lower()
    if not target:
        return []
    found: list[str] = []
    if len(target) >= MIN_PREFIX:  # only the matches are put in natural order (a zoo has 100,000 names)
        for spelling in sorted((s for s in owner if s.startswith(target) and s != target), key=_natural):
            if owner[spelling] not in found:
                found.append(owner[spelling])
    if not found:
        best = closest(target, owner)
        if best is not None:
            found.append(owner[best.lower()])
    return found


def _natural(text: str) -> tuple:
    """Sort key: 'resnet18' before 'resnet101' (numbers by value)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text.lower()))


def _quoted(names: list[str], aliases: Mapping[str, str] | None, word: str) -> list[str]:
    """``'he_normal'``, or ``'he_normal' (alias kaiming_normal)`` when what matched was an alias."""
    target = word.strip().lower()
    out = []
    for name in names:
        own = [a for a, n in (aliases or {}).items() if n == name and a.lower() != name.lower()]
        hit = None
        if own and not name.lower().startswith(target):
            hit = next((a for a in own if a.lower().startswith(target)), None) or closest(target, [name, *own])
        out.append(f"'{name}' (alias {hit})" if hit and hit.lower() != name.lower() else f"'{name}'")
    return out


def suggestion_text(word: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None,
                    *, shown: int = 5) -> str:
    """``; did you mean 'x'?``, ``; did you mean 'x' or 'y'?`` or ``""`` when nothing is close."""
    found = suggestions(word, choices, aliases)
    if not found:
        return ""
    if len(found) > shown:
        listed = ", ".join(_quoted(found[:shown - 1], aliases, word))
        return f"; did you mean one of the {len(found)} starting with '{word.strip()}' ({listed}, ...)?"
    quoted = _quoted(found, aliases, word)
    text = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"; did you mean {text}?"


def choices_text(word: str, choices: Iterable[str], *, limit: int = 30, hint: str = "",
                 aliases: Mapping[str, str] | None = None, none: str = "none are installed") -> str:
    """``; did you mean 'x'? (valid: a, b, c)`` for the end of an error line.

    Suggests every choice that starts with ``word`` ('he' → 'he_normal' or 'he_uniform'), else
    the closest one; ``aliases`` (other spelling → choice) are matched as well, and the valid list
    shows the choices only.  Without choices it says ``none`` (and ``hint``).
    """
    choices = sorted(set(choices))
    text = suggestion_text(word, choices, aliases)
    if not choices:
        return text + f" ({none}{'; ' + hint if hint else ''})"
    shown = ", ".join(choices[:limit])
    if len(choices) > limit:
        shown += f", ... {len(choices) - limit} more"
        if hint:
            shown += f"; {hint}"
    return text + f" (valid: {shown})"


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters (an error of ours
    is one line); the exception's type name when it has no message."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def gist(exc: BaseException, limit: int = 300) -> str:
    """The gist of a library's (Keras') error on one line: its first paragraph, and the next one
    after a ':', whitespace collapsed, at most ``limit`` characters."""
    paragraphs = [p for p in re.split(r"\n\s*\n", str(exc).strip()) if p.strip()] or [type(exc).__name__]
    text = paragraphs[0]
    if text.rstrip().endswith(":") and len(paragraphs) > 1:
        text += " " + paragraphs[1].split("Target variable:")[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
