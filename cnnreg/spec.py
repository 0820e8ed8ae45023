"""The component-spec grammar, shared by every option that names a component.

    NAME                      he_normal
    NAME=VALUE                l2=1e-4            (sets the component's primary parameter)
    NAME:KEY=VALUE,KEY=VALUE  variance_scaling:scale=2,mode=fan_avg
    NAME:VALUE,KEY=VALUE      folder:/data/flowers,resize=crop   (first item may be the primary)

Values stay strings here; :func:`coerce` converts them with the factory's type hints
(int, float, bool, str, ``Literal`` choices, tuples such as ``224x224x3`` or ``224,224,3``,
``Optional``, ``Annotated[..., Range(...)]``).  A comma followed by something without ``=``
continues the previous value, so ``input_shape=32,32,3`` stays one value.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cnnreg.errors import ParameterError, SpecError, choices_text

__all__ = ["Spec", "Range", "PRIMARY", "parse", "coerce", "format_spec"]

#: Key under which ``NAME=VALUE`` and a leading bare ``NAME:VALUE`` store their value until the
#: component's primary parameter is known.
PRIMARY = "__primary__"

_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Range:
    """Declares the valid range of a numeric parameter: ``Annotated[float, Range(0, 1)]``."""

    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    def check(self, value: float) -> bool:
        if self.min is not None and (value < self.min or (value == self.min and not self.min_inclusive)):
            return False
        if self.max is not None and (value > self.max or (value == self.max and not self.max_inclusive)):
            return False
        return True

    def __str__(self) -> str:
        lo = "" if self.min is None else ("[" if self.min_inclusive else "(") + f"{self.min:g}"
        hi = "" if self.max is None else f"{self.max:g}" + ("]" if self.max_inclusive else ")")
        if self.min is None:
            return f"<= {self.max:g}" if self.max_inclusive else f"< {self.max:g}"
        if self.max is None:
            return f">= {self.min:g}" if self.min_inclusive else f"> {self.min:g}"
        return f"in {lo}, {hi}"


@dataclass(frozen=True)
class Spec:
    """A parsed component spec: a name and string parameters (values not yet converted)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or format_spec(self.name, self.params)


def parse(text: str) -> Spec:
    """Parse ``NAME``, ``NAME=VALUE`` or ``NAME:KEY=VALUE,...``; raise :class:`SpecError`."""
    original = text
    text = text.strip()
    if not text:
        raise SpecError("empty component spec; expected NAME, NAME=VALUE or NAME:KEY=VALUE,...")
    colon, equals = text.find(":"), text.find("=")
    if colon != -1 and (equals == -1 or colon < equals):
        name, rest = text[:colon], text[colon + 1 :]
        _check_name(name, original)
        if not rest.strip():
            raise SpecError(
                f"bad spec '{original}': nothing after ':'; write {name} or {name}:KEY=VALUE,..."
            )
        params = _parse_items(rest, original)
    elif equals != -1:
        name, value = text[:equals], text[equals + 1 :]
        _check_name(name, original)
        if not value or value.startswith("="):
            raise SpecError(f"bad spec '{original}': expected {name}=VALUE with one '=' and a value")
        params = {PRIMARY: value}
    else:
        name, params = text, {}
        _check_name(name, original)
    return Spec(name=name, params=params, text=original)


def _check_name(name: str, original: str) -> None:
    if not name:
        raise SpecError(f"bad spec '{original}': the component name is missing before ':' or '='")
    if not _NAME.match(name):
        raise SpecError(
            f"bad spec '{original}': '{name}' is not a component name "
            "(letters, digits, '_', '-', '.', optionally 'provider/name')"
        )


def _parse_items(rest: str, original: str) -> dict[str, str]:
    params: dict[str, str] = {}
    last: str | None = None
    for position, piece in enumerate(_split_commas(rest)):
        key, sep, value = piece.partition("=")
        if not sep:
            if position == 0:
                last = PRIMARY
                params[PRIMARY] = piece
                continue
            if last is None or not piece:
                raise SpecError(f"bad spec '{original}': '{piece}' is not KEY=VALUE")
            params[last] += "," + piece  # continuation: input_shape=32,32,3
            continue
        key = key.strip()
        if not _KEY.match(key):
            raise SpecError(f"bad spec '{original}': '{key}' is not a parameter name (in '{piece}')")
        if value == "" or value.startswith("="):
            raise SpecError(f"bad spec '{original}': '{piece}' needs one '=' and a value")
        if key in params:
            raise SpecError(f"bad spec '{original}': parameter '{key}' is given twice")
        params[key] = value
        last = key
    return params


def _split_commas(text: str) -> list[str]:
    """Split on commas that are not inside brackets (TFDS splits such as ``train[:10%]``)."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces


def format_spec(name: str, params: dict[str, Any]) -> str:
    """The spec text that :func:`parse` turns back into ``name`` and ``params``."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in params.items())


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "x".join(_format_value(v) for v in value)
    if value is None:
        return "none"
    return str(value)


# --- conversion by type hints -------------------------------------------------------------

_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}
_NONE = {"none", "null"}


def coerce(value: Any, hint: Any, *, where: str) -> Any:
    """Convert ``value`` (a string from the command line, or a Python value) to ``hint``.

    ``where`` names the parameter for the error line, e.g. ``"dropout parameter 'rate'"``.
    Raises :class:`ParameterError` with one line saying what was expected.
    """
    ranges: list[Range] = []
    if typing.get_origin(hint) is typing.Annotated:
        args = typing.get_args(hint)
        hint, ranges = args[0], [a for a in args[1:] if isinstance(a, Range)]
    result = _convert(value, hint, where)
    for r in ranges:
        if isinstance(result, (int, float)) and not isinstance(result, bool) and not r.check(result):
            raise ParameterError(f"{where} must be {r} (got {value})")
    return result


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is Any or hint is None or hint is type(None):
        return "any value" if hint is Any else "none"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {_describe(args[0])} like 224x224x3"
        return "a tuple like " + "x".join("N" for _ in args)
    if typing.get_origin(hint) is typing.Annotated:
        return _describe(typing.get_args(hint)[0])
    names = {int: "an integer", float: "a number", bool: "true or false", str: "text", Path: "a path"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _convert(value: Any, hint: Any, where: str) -> Any:
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return coerce(value, hint, where=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in _NONE)):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ParameterError:
                continue
        raise ParameterError(f"{where} must be {_describe(hint)} (got '{value}')")
    if origin is Literal:
        options = typing.get_args(hint)
        if value in options:
            return value
        if isinstance(value, str):
            for option in options:
                if isinstance(option, str) and option.lower() == value.lower():
                    return option
        text = choices_text(str(value), [str(o) for o in options])
        raise ParameterError(f"{where}: '{value}' is not allowed{text}")
    if origin in (tuple, list) or hint in (tuple, list):
        return _convert_sequence(value, hint, where)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ParameterError(f"{where} must be true or false (got '{value}')")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            number = float(value) if isinstance(value, str) and ("e" in value.lower()) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number) if isinstance(number, float) else int(str(number).replace("_", ""))
        except (TypeError, ValueError):
            raise ParameterError(f"{where} must be an integer (got '{value}')") from None
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            result = float(str(value))
        except ValueError:
            raise ParameterError(f"{where} must be a number (got '{value}')") from None
        if result != result:  # NaN is never a useful setting
            raise ParameterError(f"{where} must be a number (got '{value}')")
        return result
    if hint is str:
        return value if isinstance(value, str) else str(value)
    if hint is Path:
        return Path(value)
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    if isinstance(value, str) and callable(hint):
        try:
            return hint(value)
        except Exception:
            raise ParameterError(f"{where} must be {_describe(hint)} (got '{value}')") from None
    return value


def _convert_sequence(value: Any, hint: Any, where: str) -> Any:
    args = typing.get_args(hint)
    if isinstance(value, str):
        items: list[Any] = [v for v in re.split(r"[x,×X]", value.strip("()[] ")) if v != ""]
    elif isinstance(value, (tuple, list)):
        items = list(value)
    else:
        items = [value]
    if not args:
        element_hints = [Any] * len(items)
    elif len(args) == 2 and args[1] is Ellipsis:
        element_hints = [args[0]] * len(items)
    else:
        if len(items) != len(args):
            raise ParameterError(
                f"{where} must be {_describe(hint)} with {len(args)} values (got '{_format_value(value)}')"
            )
        element_hints = list(args)
    converted = []
    for item, element_hint in zip(items, element_hints):
        try:
            converted.append(_convert(item.strip() if isinstance(item, str) else item, element_hint, where))
        except ParameterError:
            raise ParameterError(
                f"{where} must be {_describe(hint)} (got '{_format_value(value)}')"
            ) from None
    origin = typing.get_origin(hint) or hint
    return list(converted) if origin is list else tuple(converted)
