"""The component-spec grammar, shared by every option that names a component.

    NAME                      he_normal
    NAME=VALUE                l2=1e-4            (sets the component's primary parameter)
    NAME:KEY=VALUE,KEY=VALUE  variance_scaling:scale=2,mode=fan_avg
    NAME:VALUE,KEY=VALUE      folder:/data/flowers,resize=crop   (first item may be the primary)

Values stay strings here; :func:`coerce` converts them with the factory's type hints
(int, float, bool, str, ``Literal`` choices, tuples such as ``224x224x3`` or ``224,224,3``,
``Optional``, ``Annotated[..., Range(...)]``); a float may be a fraction, ``eps=8/255``.  A
comma followed by something without ``=`` continues the previous value, so
``input_shape=32,32,3`` stays one value.

Every number must be finite: ``nan`` never, ``inf`` (or ``1e309``, which is inf) only where a
parameter says so with :class:`AllowInf`, and floats within float32's range (what Keras computes
in); integers fit in 64 bits.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cnnreg.errors import ParameterError, SpecError, choices_text

__all__ = ["Spec", "Range", "AllowInf", "PRIMARY", "parse", "coerce", "format_spec"]

#: Key under which ``NAME=VALUE`` and a leading bare ``NAME:VALUE`` store their value until the
#: component's primary parameter is known.
PRIMARY = "__primary__"

# \Z, not $: "$" also matches before a final newline, which would let "name\n" through.
NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?\Z")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

#: The largest float32 (Keras' weights and losses are float32; anything larger is inf there).
FLOAT32_MAX = 3.4028234663852886e38
#: Integers are at most 64 bits (NumPy, TensorFlow and JAX take no more).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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
        lo = "" if self.min is None else ("[" if self.min_inclusive else "(") + _number(self.min)
        hi = "" if self.max is None else _number(self.max) + ("]" if self.max_inclusive else ")")
        if self.min is None:
            return f"<= {_number(self.max)}" if self.max_inclusive else f"< {_number(self.max)}"
        if self.max is None:
            return f">= {_number(self.min)}" if self.min_inclusive else f"> {_number(self.min)}"
        return f"in {lo}, {hi}"


def _number(value: float) -> str:
    """4294967295 as such (not 4.29497e+09), 1e20 as 1e+20, 0.5 as 0.5."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


class AllowInf:
    """Marks a float parameter that accepts ``inf`` (say a limit where inf means "none"):
    ``Annotated[float, Range(0, None), AllowInf]``.  Without it, ``inf`` is refused."""


@dataclass(frozen=True)
class Spec:
    """A parsed component spec: a name and string parameters (values not yet converted)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or format_spec(self.name, self.params)


def shape_text(shape: Any) -> str:
    """``(224, 224, 3)`` → ``"224x224x3"``: a shape as ``--input-shape`` writes it."""
    return "x".join(str(d) for d in shape)


def shown(value: Any, limit: int = 100) -> str:
    """``value`` as text for an error line: control characters (newlines...) escaped, and cut
    to ``limit`` characters, so that the line stays one readable line."""
    text = value if isinstance(value, str) and value.isprintable() else \
        "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(text: str) -> Spec:
    """Parse ``NAME``, ``NAME=VALUE`` or ``NAME:KEY=VALUE,...``; raise :class:`SpecError`."""
    original = shown(text)  # for error lines; the Spec keeps the text as given
    given, text = text, text.strip()
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
    return Spec(name=name, params=params, text=given)


def _check_name(name: str, original: str) -> None:
    if not name:
        raise SpecError(f"bad spec '{original}': the component name is missing before ':' or '='")
    if not NAME.match(name):
        raise SpecError(
            f"bad spec '{original}': '{shown(name)}' is not a component name "
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
                raise SpecError(f"bad spec '{original}': '{shown(piece)}' is not KEY=VALUE")
            params[last] += "," + piece  # continuation: input_shape=32,32,3
            continue
        key = key.strip()
        if not _KEY.match(key):
            raise SpecError(f"bad spec '{original}': '{shown(key)}' is not a parameter name (in '{shown(piece)}')")
        if value == "" or value.startswith("="):
            raise SpecError(f"bad spec '{original}': '{shown(piece)}' needs one '=' and a value")
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
    Raises :class:`ParameterError` with one line saying what was expected.  Floats must be
    finite (and within float32's range) unless the hint is ``Annotated[..., AllowInf]``;
    ``nan`` is refused always.
    """
    ranges: list[Range] = []
    allow_inf = False
    if typing.get_origin(hint) is typing.Annotated:
        args = typing.get_args(hint)
        hint, ranges = args[0], [a for a in args[1:] if isinstance(a, Range)]
        allow_inf = any(a is AllowInf or isinstance(a, AllowInf) for a in args[1:])
    try:
        result = _convert(value, hint, where, allow_inf)
    except _NotFinite:
        if ranges:  # say the range too: "must be a finite number > 0 (got inf)"
            raise ParameterError(f"{where} must be a finite number {ranges[0]} (got {shown(value)})") from None
        raise
    except _TooLarge:
        if ranges:  # the declared range says more than "64 bits"
            raise ParameterError(f"{where} must be {ranges[0]} (got {shown(value)})") from None
        raise
    for r in ranges:
        if isinstance(result, (int, float)) and not isinstance(result, bool) and not r.check(result):
            raise ParameterError(f"{where} must be {r} (got {shown(value)})")
    return result


class _NotFinite(ParameterError):
    """A float that is inf or beyond float32 (coerce adds the parameter's range)."""


class _TooLarge(ParameterError):
    """An integer beyond 64 bits (coerce says the parameter's range instead, if it has one)."""


class _WrongType(ParameterError):
    """Not a value of the hint's type at all (``X | None`` then says "X or none")."""


def describe_type(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is Any or hint is None or hint is type(None):
        return "any value" if hint is Any else "none"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {describe_type(args[0])} like 224x224x3"
        return "a tuple like " + "x".join("N" for _ in args)
    if typing.get_origin(hint) is typing.Annotated:
        return describe_type(typing.get_args(hint)[0])
    names = {int: "an integer", float: "a number", bool: "true or false", str: "text", Path: "a path"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _convert(value: Any, hint: Any, where: str, allow_inf: bool = False) -> Any:
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return coerce(value, hint, where=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in _NONE)):
            return None
        others = [arg for arg in args if arg is not type(None)]
        if len(others) == 1:
            try:
                return _convert(value, others[0], where, allow_inf)
            except _WrongType:
                raise ParameterError(f"{where} must be {describe_type(hint)} (got '{shown(value)}')") from None
            # anything else is X's own line: "must be in [0, 4294967295]", "must be a finite number"
        for arg in others:
            try:
                return _convert(value, arg, where, allow_inf)
            except ParameterError:
                continue
        raise ParameterError(f"{where} must be {describe_type(hint)} (got '{shown(value)}')")
    if origin is Literal:
        options = typing.get_args(hint)
        if value in options:
            return value
        if isinstance(value, str):
            for option in options:
                if isinstance(option, str) and option.lower() == value.lower():
                    return option
        text = choices_text(shown(value), [str(o) for o in options])
        raise ParameterError(f"{where}: '{shown(value)}' is not allowed{text}")
    if origin in (tuple, list) or hint in (tuple, list):
        return _convert_sequence(value, hint, where, allow_inf)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise _WrongType(f"{where} must be true or false (got '{shown(value)}')")
    if hint is int:
        return _to_int(value, where)
    if hint is float:
        return _to_float(value, where, allow_inf)
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
            raise _WrongType(f"{where} must be {describe_type(hint)} (got '{shown(value)}')") from None
    return value


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        try:
            if isinstance(value, bool):
                raise ValueError
            text = str(value).strip().replace("_", "")
            if isinstance(value, float) or "e" in text.lower():
                real = float(text)  # "1e3" is a whole number; "1e400" is inf, refused here
                if not real.is_integer():
                    raise ValueError
                number = int(real)
            elif text.lstrip("+-").isdigit() and len(text) > 30:
                number = INT64_MAX + 1  # too long for int(): certainly out of range
            else:
                number = int(text)
        except (TypeError, ValueError, OverflowError):
            raise _WrongType(f"{where} must be an integer (got '{shown(value)}')") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise _TooLarge(f"{where} must be an integer between -2**63 and 2**63 - 1 (got {shown(value)})")
    return number


def _to_float(value: Any, where: str, allow_inf: bool) -> float:
    if isinstance(value, str) and "/" in value:
        return _check_float(_fraction(value, where), value, where, allow_inf)
    try:
        if isinstance(value, bool):
            raise ValueError
        result = float(value) if isinstance(value, (int, float)) else float(str(value))
    except (TypeError, ValueError):
        raise _WrongType(f"{where} must be a number (got '{shown(value)}')") from None
    except OverflowError:  # an int beyond float: as good as inf
        result = math.inf if value > 0 else -math.inf
    return _check_float(result, value, where, allow_inf)


def _check_float(result: float, value: Any, where: str, allow_inf: bool) -> float:
    if result != result:  # NaN is never a useful setting
        raise ParameterError(f"{where} must be a number, not nan (got '{shown(value)}')")
    if not allow_inf and not -FLOAT32_MAX <= result <= FLOAT32_MAX:
        if math.isinf(result):
            raise _NotFinite(f"{where} must be a finite number (got {shown(value)})")
        raise _NotFinite(f"{where} must be a finite number within float32's ±3.4e38 (got {shown(value)})")
    return result


def _fraction(text: str, where: str) -> float:
    """``8/255`` as 8 / 255: budgets in grey levels read as such (``pgd:eps=8/255``).  Both
    sides finite numbers, one ``/``, a divisor that is not zero; one line otherwise."""
    top, _, bottom = text.partition("/")
    if "/" in bottom:
        raise ParameterError(f"{where} must be a number or one fraction such as 8/255 (got '{shown(text)}')")
    try:
        numerator, denominator = float(top.strip()), float(bottom.strip())
    except ValueError:
        raise ParameterError(f"{where} must be a number or a fraction of two numbers such as 8/255 "
                             f"(got '{shown(text)}')") from None
    if not (math.isfinite(numerator) and math.isfinite(denominator)):
        raise _NotFinite(f"{where} must be a finite number (got {shown(text)})")
    if denominator == 0:  # said plainly: ZeroDivisionError's text would not name the parameter
        raise ParameterError(f"{where}: '{shown(text)}' divides by zero")
    try:
        return numerator / denominator
    except OverflowError:  # 1e300/1e-300
        return math.inf


def _convert_sequence(value: Any, hint: Any, where: str, allow_inf: bool = False) -> Any:
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
                f"{where} must be {describe_type(hint)} with {len(args)} values (got '{shown(_format_value(value))}')"
            )
        element_hints = list(args)
    converted = []
    for item, element_hint in zip(items, element_hints):
        try:
            converted.append(_convert(item.strip() if isinstance(item, str) else item, element_hint, where, allow_inf))
        except ParameterError as exc:
            finite = ", each a finite number" if isinstance(exc, _NotFinite) else ""
            raise ParameterError(
                f"{where} must be {describe_type(hint)}{finite} (got '{shown(_format_value(value))}')"
            ) from None
    origin = typing.get_origin(hint) or hint
    return list(converted) if origin is list else tuple(converted)
