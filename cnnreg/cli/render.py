"""Rich rendering helpers shared by the commands (imported only when output is produced)."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console

#: stdout for results, stderr for errors and warnings; plain text when not a terminal.
console = Console(highlight=False, soft_wrap=False, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
# Rich fixes $COLUMNS when a console is made; without that it reads $COLUMNS (else the terminal's
# size) each time it prints, so a width set later (cnnreg.testing.run_cli in a test) is honoured.
for _console in (console, err_console):
    if getattr(_console, "_width", None) is not None:
        _console._width = None
del _console

#: The widest a paragraph of prose is set (cnnreg show), however wide the terminal.
PROSE_WIDTH = 100


def error(message: str) -> None:
    """One line on stderr: ``error: message`` (wrapped at words on a terminal, see :func:`warn`)."""
    _note("[bold red]error:[/]", message)


def warn(message: str) -> None:
    """One line on stderr: ``warning: message``.  On a terminal it is wrapped at words to the
    terminal's width; into a pipe or a file it stays one line, for grep and scripts."""
    _note("[yellow]warning:[/]", message)


def _note(label: str, message: str) -> None:
    err_console.print(f"{label} {_escape(message)}", soft_wrap=not err_console.is_terminal)


@contextlib.contextmanager
def steps(first: str, *, shown: bool = True) -> Iterator[Callable[[str], None]]:
    """Progress of a command whose steps take seconds or minutes each, on stderr when it is a
    terminal: a spinner with the step under way (a line that ends in "…", starting with
    ``first``) and, kept above it, each finished step's line.  Yields ``say(line)``; in a pipe,
    or when not ``shown`` (--json), it says nothing."""
    if not (shown and err_console.is_terminal):
        yield lambda line: None
        return
    with err_console.status(first) as status:

        def say(line: str) -> None:
            if line.endswith("…"):
                status.update(line)
            else:
                err_console.print(f"  {_escape(line)}", highlight=False)

        yield say


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


def natural_width(renderable: Any, *, limit: int = 400) -> int:
    """The columns ``renderable`` takes when nothing wraps (up to ``limit``)."""
    return Console(width=limit).measure(renderable).maximum


def print_wide(renderable: Any, *, limit: int = 400) -> None:
    """Print ``renderable`` at its natural width (up to ``limit`` columns), even when that is wider
    than the terminal or a pipe's 80 columns: a wide table stays whole instead of squeezed."""
    measured = natural_width(renderable, limit=limit)
    if measured <= console.width:
        # a Listing's lines fit by construction: cropping them would measure every line again
        console.print(renderable, crop=not isinstance(renderable, Listing))
        return
    wide = Console(file=console.file, width=measured, highlight=False, soft_wrap=False, emoji=False,
                   force_terminal=console.is_terminal, color_system=console.color_system, no_color=console.no_color)
    wide.print(renderable)


def text_width(text: str) -> int:
    """The cells ``text`` takes on a terminal: its length when it is printable ASCII (the common
    case, measured without Rich's per-character walk), else :func:`rich.cells.cell_len`."""
    return len(text) if text.isascii() and text.isprintable() else cell_len(text)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` terminal cells: whole if it fits, else cut at a word boundary
    (when one is near) and ended with "…"."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:max(width, 0)]
    kept, used = [], 0
    for char in text:
        used += cell_len(char)
        if used > width - 1:
            break
        kept.append(char)
    head = "".join(kept)
    space = head.rfind(" ")
    if space >= max(1, (width * 2) // 3):  # back up to the last whole word, unless that wastes a third
        head = head[:space]
    return head.rstrip(" ,;:-(/") + "…"


def cut_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` terminal cells: whole if it fits, else its start and its end
    around "…", so that two names that differ only at the end (two zoos' URLs, conv2_block1_1_conv
    and conv2_block1_2_conv) stay apart."""
    if cell_len(text) <= width:
        return text
    if width <= 2:
        return cut(text, width)
    tail_room = (width - 1) // 2
    head_room = width - 1 - tail_room
    head, used = [], 0
    for char in text:
        if used + cell_len(char) > head_room:
            break
        head.append(char)
        used += cell_len(char)
    tail, used = [], 0
    for char in reversed(text):
        if used + cell_len(char) > tail_room:
            break
        tail.append(char)
        used += cell_len(char)
    return "".join(head) + "…" + "".join(reversed(tail))


def cut_apart(texts: Sequence[str], width: int) -> list[str]:
    """Each of ``texts`` in at most ``width`` cells, cut so that different texts stay different:
    what they share at the start and at the end is shortened (with "…") before the part that tells
    them apart (zoo:/shared/alpha/zoo and zoo:/shared/bravo/zoo → zoo:…alpha…, zoo:…bravo…).
    Texts that fit are kept whole; one text alone to cut is cut in the middle (:func:`cut_middle`)."""
    import os

    distinct = sorted({t for t in set(texts) if cell_len(t) > width})  # those to cut; the rest stay whole
    if len(distinct) < 2:
        cuts = {t: cut_middle(t, width) for t in distinct}
        return [cuts.get(t, t) for t in texts]
    head = os.path.commonprefix(distinct)
    tail = os.path.commonprefix([d[::-1] for d in distinct])[::-1]
    overlap = len(head) + len(tail) - min(len(d) for d in distinct)
    if overlap > 0:
        tail = tail[overlap:]
    cuts = {}
    for text in distinct:
        middle = text[len(head):len(text) - len(tail)]
        room = width - cell_len(middle)
        head_room = min(cell_len(head), max(room - min(cell_len(tail), room // 2), 0))
        tail_room = min(cell_len(tail), room - head_room)
        start = head if cell_len(head) <= head_room else head[:max(head_room - 1, 0)] + "…"
        end = tail if cell_len(tail) <= tail_room else "…" + tail[len(tail) - max(tail_room - 1, 0):]
        shown = start + middle + end
        cuts[text] = shown if cell_len(shown) <= width and (head_room >= 1 or not head) else cut_middle(text, width)
    return [cuts.get(t, t) for t in texts]


def fit_columns(build: Callable[[set[str]], Any], optional: Sequence[str], width: int) -> tuple[Any, list[str]]:
    """``build(hidden)`` with as few of the ``optional`` columns hidden as lets it fit ``width``
    columns, hiding them in the order given; returns the table and the columns hidden (say them
    with :func:`hidden_note`).  With every one hidden and still too wide, that last table."""
    hidden: list[str] = []
    table = build(set())
    for column in optional:
        if natural_width(table) <= width:
            break
        hidden.append(column)
        table = build(set(hidden))
    return table, hidden


def hidden_note(hidden: Iterable[str], where: str = "--json") -> str:
    """``hidden to fit: a, b (see --json)`` (dim), or "" when nothing was hidden."""
    hidden = list(hidden)
    return f"[dim]hidden to fit: {', '.join(hidden)} (see {where})[/]" if hidden else ""


_BULLET = re.compile(r"^(?:[-*+•]|\d+[.)]|\(\w\))\s+")
_GLUE = re.compile(r" (?=[^\w\s(\[{\"'`](?: |$))")
_LITERAL = re.compile(r"``[^`]+``")
_RULE = re.compile(r"^\s*([-=~^*#_])\1{2,}\s*$")


def reflow(text: str, width: int) -> list[str]:
    """A docstring's lines, each paragraph re-filled to ``width`` columns (at most
    :data:`PROSE_WIDTH`), so hard line breaks written for another width do not leave ragged lines.

    Paragraphs are runs of unindented lines; an inline literal (two backticks each side) shows
    with one backtick each side.  List items ("- ", "* ", "1. ") are re-filled with a
    hanging indent; indented blocks (code, ``Args:`` bodies), doctest lines (">>>"), table rows
    ("|") and underlined headings are kept exactly as written.
    """
    width = max(20, min(width, PROSE_WIDTH))
    out: list[str] = []
    words: list[str] = []
    indent = ""

    def flush() -> None:
        nonlocal words, indent
        if words:
            # a lone symbol ("×", "→", "=") stays on the line of the word before it, and an inline
            # literal (``pip install x``) on one line, shown `pip install x` (no RST markup)
            text = _GLUE.sub("\u00a0", " ".join(words))
            text = _LITERAL.sub(lambda m: "`" + m.group(0)[2:-2].replace(" ", "\u00a0") + "`", text)
            lines = textwrap.wrap(text, width, subsequent_indent=indent, break_long_words=False,
                                  break_on_hyphens=False)
            out.extend(line.replace("\u00a0", " ") for line in lines)
        words, indent = [], ""

    lines = text.splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if not stripped:
            flush()
            if out and out[-1] != "":
                out.append("")
            continue
        if words and indent and line[: len(indent)] == indent and not _BULLET.match(stripped):
            words.extend(stripped.split())  # the next line of a list item
            continue
        if line[0] in " \t" or stripped.startswith((">>>", "...", "|")) or _RULE.match(line) or _RULE.match(following):
            flush()
            out.append(line.rstrip())
            continue
        bullet = _BULLET.match(line)
        if bullet:
            flush()
            indent = " " * bullet.end()
            words = [line[: bullet.end()].rstrip()] + line[bullet.end():].split()
            # textwrap joins the marker and the first word with one space: keep the author's gap
            if bullet.end() - len(words[0]) > 1:
                words[0] = line[: bullet.end() - 1]
            continue
        if indent:
            flush()
        words.extend(stripped.split())
        if stripped.endswith("::"):
            flush()
    flush()
    while out and out[-1] == "":
        out.pop()
    return out


class Listing:
    """A table of one-line rows laid out once, for long listings (``cnnreg list``): the look of
    ``rich.table.Table(show_edge=False, pad_edge=False)`` — a title, a bold header, a heavy rule,
    columns parted by " │ " — without Rich measuring, wrapping and rendering every cell, which
    took most of ``cnnreg list``'s time (and 12 s for a zoo of 100,000 entries).  Cells are Rich
    markup that fits its column (cut it first, see :func:`cut`): a column is as wide as its
    widest cell, or ``width``.  A cell without markup stays a string and a row of such cells is
    a few segments (one per styled column, one for the rest).  Takes the ``add_column`` /
    ``add_row`` / ``title`` subset of Rich's table that the listings use."""

    def __init__(self, title: str | None = None) -> None:
        self.title = title
        self.columns: list[dict[str, Any]] = []
        self.rows: list[list[Any]] = []
        self._measured: list[int] | None = None  # the widths, once measured (printing measures twice)

    def add_column(self, header: str, *, style: str | None = None, justify: str = "left",
                   width: int | None = None) -> None:
        self.columns.append({"header": header, "style": style, "justify": justify, "width": width})
        self._measured = None

    def add_row(self, *cells: str) -> None:
        row = list(cells)
        if any("[" in cell for cell in row):  # markup (an escaped "[" included): its spans are kept
            from rich.text import Text

            row = [Text.from_markup(cell, emoji=False) if "[" in cell else cell for cell in row]
        self.rows.append(row)
        self._measured = None

    def _widths(self) -> list[int]:
        if self._measured is None:
            self._measured = self._measure()
        return self._measured

    def _measure(self) -> list[int]:
        widths = []
        for i, column in enumerate(self.columns):
            if column["width"]:
                widths.append(column["width"])
                continue
            texts = {row[i] for row in self.rows if isinstance(row[i], str)}  # a repeated text is measured once
            marked = [row[i].cell_len for row in self.rows if not isinstance(row[i], str)]
            widths.append(max([cell_len(column["header"]), *map(text_width, texts), *marked]))
        return widths

    def __rich_measure__(self, console: Any, options: Any):
        from rich.measure import Measurement

        width = sum(self._widths()) + 3 * (len(self.columns) - 1)
        return Measurement(width, width)

    def __rich_console__(self, console: Any, options: Any):
        from rich.segment import Segment
        from rich.style import Style
        from rich.text import Text

        widths = self._widths()
        total = sum(widths) + 3 * (len(widths) - 1)
        if self.title:
            title = Text.from_markup(self.title, style="table.title", emoji=False)
            yield from title.wrap(console, max(total, min(options.max_width, title.cell_len)))
        header_style = console.get_style("table.header")
        yield from self._line(console, [Text(c["header"]) for c in self.columns], widths, " ┃ ", [header_style] * len(widths))
        rule = "╇".join("━" * (w + (1 if i in (0, len(widths) - 1) else 2)) for i, w in enumerate(widths))
        yield Segment(rule)
        yield Segment.line()
        # without colours (a pipe, a file) a row is one segment
        styles = [Style.parse(column["style"]) if column["style"] and console.color_system else None
                  for column in self.columns]
        if any(styles):
            for row in self.rows:
                yield from self._line(console, row, widths, " │ ", styles)
            return
        lines = []  # no styles: the rows without markup (one unstyled segment each) join one segment
        for row in self.rows:
            segments = list(self._line(console, row, widths, " │ ", styles))
            if len(segments) == 1 and segments[0].style is None:
                lines.append(segments[0].text)
                continue
            if lines:
                yield Segment("".join(lines))
                lines = []
            yield from segments
        if lines:
            yield Segment("".join(lines))

    def _line(self, console: Any, cells: list[Any], widths: list[int], bar: str, styles: list[Any]):
        """One row as segments: each cell's own spans over its column's style, padded to its width;
        unstyled text runs together in one segment."""
        from rich.segment import Segment

        last = len(cells) - 1
        plain: list[str] = []  # unstyled text not yet yielded
        for i, (cell, width, style) in enumerate(zip(cells, widths, styles)):
            if i:
                plain.append(bar)
            is_text = isinstance(cell, str)
            room = " " * (width - (text_width(cell) if is_text else cell.cell_len))
            right = self.columns[i]["justify"] == "right"
            if right:
                plain.append(room)
            if is_text and style is None:
                plain.append(cell)
            else:
                if plain:
                    yield Segment("".join(plain))
                    plain = []
                if is_text:
                    yield Segment(cell, style)
                else:
                    for segment in cell.render(console, end=""):
                        yield Segment(segment.text, style + segment.style if style and segment.style else style or segment.style)
            if not right and i < last:
                plain.append(room)
        plain.append("\n")
        yield Segment("".join(plain))
