"""Bytes, their units and the numeric precisions cnnreg can estimate memory for.

MB = 10^6 bytes, MiB = 2^20 bytes; every formatted figure carries its unit.
"""

from __future__ import annotations

import re

from cnnreg.errors import ParameterError, choices_text

__all__ = [
    "PRECISIONS",
    "activation_bytes_per_element",
    "check_precision",
    "format_bytes",
    "format_mb",
    "format_mib",
    "parse_memory",
]

# Keras mixed precision computes (and stores activations) in 16 bits but keeps float32 variables.
PRECISIONS: dict[str, int] = {"float32": 4, "mixed_float16": 2, "mixed_bfloat16": 2}
"""Precision name → bytes per activation element. Weights stay float32 (4 bytes) in all three."""

_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_VALID_UNITS = "B, KB, MB, GB, TB (powers of 10) or KiB, MiB, GiB, TiB (powers of 2)"
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def check_precision(precision: str) -> str:
    """Return ``precision`` if cnnreg knows it, else raise :class:`ParameterError`."""
    if precision not in PRECISIONS:
        raise ParameterError(f"unknown precision '{precision}'" + choices_text(str(precision), PRECISIONS))
    return precision


def activation_bytes_per_element(precision: str) -> int:
    """Bytes of one activation value at ``precision`` (float32: 4, mixed_*: 2)."""
    return PRECISIONS[check_precision(precision)]


def parse_memory(text: str | int | float) -> int:
    """Bytes in a memory size: ``"80GiB"``, ``"16GB"``, ``"512MiB"``, ``"1.5TB"``, ``"1000"`` (bytes).

    Units are case-insensitive; a bad string raises :class:`ParameterError` naming the valid units.
    """
    if isinstance(text, bool):
        raise ParameterError(f"invalid memory size {text!r}; use a number with a unit: {_VALID_UNITS}")
    if isinstance(text, (int, float)):
        value, unit = float(text), "b"
    else:
        match = _MEMORY.match(str(text))
        unit = match.group(2).lower() if match else ""
        if not match or (unit or "b") not in _UNITS:
            raise ParameterError(
                f"invalid memory size '{text}'; use a number with a unit: {_VALID_UNITS}, e.g. 16GB, 80GiB"
            )
        value, unit = float(match.group(1)), unit or "b"
    if value <= 0:
        raise ParameterError(f"memory size must be positive, got '{text}'")
    return int(round(value * _UNITS[unit]))


def format_mb(n: int | float, digits: int = 1) -> str:
    """``n`` bytes in MB (10^6 bytes), labelled: ``12000000`` → ``"12.0 MB"``."""
    return f"{n / 10**6:,.{digits}f} MB"


def format_mib(n: int | float, digits: int = 1) -> str:
    """``n`` bytes in MiB (2^20 bytes), labelled: ``12000000`` → ``"11.4 MiB"``."""
    return f"{n / 2**20:,.{digits}f} MiB"


def format_bytes(n: int | float, *, binary: bool = False, digits: int = 2) -> str:
    """``n`` bytes in the largest unit that keeps the number ≥ 1: ``"1.20 GB"`` or ``"1.12 GiB"``."""
    base, names = (1024, ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]) if binary else (
        1000, ["B", "KB", "MB", "GB", "TB", "PB"])
    value, unit = float(n), names[0]
    for unit in names:
        if abs(value) < base or unit == names[-1]:
            break
        value /= base
    return f"{int(n)} B" if unit == "B" else f"{value:.{digits}f} {unit}"
