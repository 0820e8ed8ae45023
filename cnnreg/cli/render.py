"""Rich rendering helpers shared by the commands (imported only when output is produced)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

#: stdout for results, stderr for errors and warnings; plain text when not a terminal.
console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One line on stderr: ``error: message``."""
    err_console.print(f"[bold red]error:[/] {_escape(message)}")


def warn(message: str) -> None:
    """One line on stderr: ``warning: message``."""
    err_console.print(f"[yellow]warning:[/] {_escape(message)}")


def print_json(data: Any) -> None:
    """Stable JSON for scripts: sorted keys, two-space indent, to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def human_count(n: int | float) -> str:
    """1234567 → '1.23 M' (for summaries; exact figures stay in tables and JSON)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g}"


def print_wide(renderable: Any, *, limit: int = 400) -> None:
    """Print ``renderable`` at its natural width (up to ``limit`` columns), even when that is wider
    than the terminal or a pipe's 80 columns: a wide table stays whole instead of squeezed."""
    measured = Console(width=limit).measure(renderable).maximum
    if measured <= console.width:
        console.print(renderable)
        return
    wide = Console(file=console.file, width=measured, highlight=False, soft_wrap=False,
                   force_terminal=console.is_terminal, color_system=console.color_system, no_color=console.no_color)
    wide.print(renderable)
