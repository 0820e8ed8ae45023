"""What the public functions return: results that print as their command's ``--json``.

Every result is a :class:`Result`: ``to_dict()`` gives exactly the JSON the command prints with
``--json`` (the ``"cnnreg"`` version first among its keys, as there), and the attributes give the
same data as Python objects.  In Jupyter a result shows itself as a table (``_repr_html_``): its
:meth:`Result.table` rows under its :meth:`Result.title`.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["Result", "html_table"]


class Result:
    """Base class of the public functions' results."""

    def to_dict(self) -> dict[str, Any]:
        """What the command prints with ``--json``."""
        raise NotImplementedError

    def title(self) -> str:
        """One line saying what this is (the heading of the notebook table)."""
        return type(self).__name__

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """``(columns, rows)`` to show in a notebook; the JSON's top level by default."""
        data = {k: v for k, v in self.to_dict().items() if k != "cnnreg"}
        return ["field", "value"], [[k, v if isinstance(v, (str, int, float)) or v is None else json.dumps(v, default=str)[:200]]
                                    for k, v in data.items()]

    def _repr_html_(self) -> str:
        columns, rows = self.table()
        return f"<p><b>{html.escape(self.title())}</b></p>" + html_table(columns, rows)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.title()}>"


def html_table(columns: list[str], rows: list[list[Any]], *, limit: int = 500) -> str:
    """A plain HTML table (escaped), at most ``limit`` rows (a note says how many were left out)."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            text = f"{value:.4g}"
        else:
            text = "" if value is None else str(value)
        return html.escape(text)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows[:limit])
    more = f"<p>... {len(rows) - limit} more rows</p>" if len(rows) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"
