"""CSV order files: one unit per row, rows grouped into orders by ``order_id``.

The header row names the columns. ``family`` is required; ``order_id``, ``priority`` and
``due`` are optional; every other column is an option, named ``option.NAME`` or plain
``NAME``. An empty cell means "not given" (the family default applies at release), so
option values stay text here and the family coerces them. Rows with the same
``order_id`` form one order (in file order, wherever they stand); rows without one are
each their own order. Rows of one order must agree on ``priority`` and ``due`` where they
give them. Line numbers are the CSV line where a row starts; the header is line 1.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mes.errors import Problem
from mes.service.order_files import (
    OrderSpec,
    UnitSpec,
    check_due,
    check_order_id,
    check_priority,
    show,
)

FIELDS = ("order_id", "family", "priority", "due")
OPTION_PREFIX = "option."

_Add = Callable[[int | None, str, str], None]  # records one problem: line, path, reason
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class _Column:
    header: str  # as written, for problems
    name: str  # field or option name; "" for a column refused in the header
    is_option: bool


@dataclass(slots=True)
class _Row:
    line: int
    order_id: str | None
    family: str
    options: dict[str, object]
    priority: int | None
    due: datetime | None


def parse_csv(text: str, source: str, max_units: int) -> tuple[list[OrderSpec], list[Problem]]:
    """Parse a CSV order file.

    Args:
        text: the whole file.
        source: the file name to put in problems.
        max_units: the most rows (units) accepted.

    Returns:
        The orders in order of their first row, and every problem found; the orders are
        only meaningful when there are no problems.
    """
    problems: list[Problem] = []

    def add(line: int | None, path: str, reason: str) -> None:
        problems.append(Problem(reason, source, line, path))

    records = _records(text, add)
    if records is None:
        return [], problems
    if not records:
        add(1, "", "the file is empty: a header row naming the columns is required")
        return [], problems
    header_line, header = records[0]
    columns = _columns(header, header_line, add)
    if not any(c is not None and c.name == "family" and not c.is_option for c in columns):
        found = ", ".join(repr(h.strip()) for h in header)
        add(header_line, "family", f"the header has no 'family' column (columns: {found})")
        return [], problems
    rows = [_row(line, cells, columns, add) for line, cells in records[1:]]
    if len(rows) > max_units:
        add(None, "", f"too many units ({len(rows)}; at most {max_units} per file)")
    if not rows:
        add(header_line, "", "no orders: the file has a header but no rows")
    groups: dict[object, list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.order_id if row.order_id is not None else row.line, []).append(row)
    orders = [_order(group, add) for group in groups.values()]
    return orders, problems


def _records(text: str, add: _Add) -> list[tuple[int, list[str]]] | None:
    """Non-blank records with the line each starts on; None after a syntax error."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        began = f" (the row starts at line {start})" if reader.line_num != start else ""
        add(reader.line_num or 1, "", f"CSV syntax error: {exc}{began}")
        return None
    return records


def _columns(header: list[str], line: int, add: _Add) -> list[_Column | None]:
    columns: list[_Column | None] = []
    seen: dict[tuple[str, bool], str] = {}
    for cell in header:
        text = cell.strip()
        if not text:
            columns.append(None)
            continue
        if text in FIELDS:
            column = _Column(text, text, is_option=False)
        else:
            name = text.removeprefix(OPTION_PREFIX).strip()
            if not name:
                add(line, text, f"column {text!r} names no option (write option.NAME)")
                columns.append(_Column(text, "", is_option=True))
                continue
            column = _Column(text, name, is_option=True)
        key = (column.name, column.is_option)
        if key in seen:
            add(line, text, f"duplicate column: the same as column {seen[key]!r}")
            columns.append(_Column(text, "", column.is_option))
            continue
        seen[key] = text
        columns.append(column)
    return columns


def _row(line: int, cells: list[str], columns: list[_Column | None], add: _Add) -> _Row:
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        add(line, "", f"the row has {len(cells)} cells but the header has {len(columns)}")
    fields: dict[str, str] = {}
    options: dict[str, object] = {}
    for column, cell in zip(columns, cells, strict=False):
        if not cell.strip():
            continue  # not given
        if column is None:
            add(line, "", f"value {show(cell)} is in a column with no name in the header")
        elif not column.name:
            continue  # the header's problem says why
        elif column.is_option:
            options[column.name] = cell
        else:
            fields[column.name] = cell.strip()
    family = fields.get("family", "")
    if not family:
        add(line, "family", "is empty: every row needs a family")
    priority: int | None = None
    if "priority" in fields:
        text = fields["priority"]
        try:
            priority = check_priority(int(text) if _INTEGER.fullmatch(text) else text)
        except ValueError as exc:
            add(line, "priority", str(exc))
    due: datetime | None = None
    if "due" in fields:
        try:
            due = check_due(fields["due"])
        except ValueError as exc:
            add(line, "due", str(exc))
    return _Row(line, fields.get("order_id"), family, options, priority, due)


def _order(rows: list[_Row], add: _Add) -> OrderSpec:
    first = rows[0]
    order_id = first.order_id
    if order_id is not None:
        try:
            check_order_id(order_id)
        except ValueError as exc:
            add(first.line, "order_id", str(exc))
    for name in ("priority", "due"):
        given = [row for row in rows if getattr(row, name) is not None]
        for row in given[1:]:
            if getattr(row, name) != getattr(given[0], name):
                add(
                    row.line,
                    name,
                    f"rows {given[0].line} and {row.line} of order {order_id!r} disagree on "
                    f"{name} ({getattr(given[0], name)} vs {getattr(row, name)}); "
                    "rows of one order must agree",
                )
                break
    priority = next((r.priority for r in rows if r.priority is not None), 0)
    due = next((r.due for r in rows if r.due is not None), None)
    units = tuple(UnitSpec(r.family, r.options, f"row {r.line}", r.line) for r in rows)
    if order_id is None:
        where = f"row {first.line}"
    else:
        where = f"order {order_id} ({_rows_label([r.line for r in rows])})"
    return OrderSpec(order_id, priority, due, units, where, first.line)


def _rows_label(lines: list[int]) -> str:
    if len(lines) == 1:
        return f"row {lines[0]}"
    if lines == list(range(lines[0], lines[0] + len(lines))):
        return f"rows {lines[0]}-{lines[-1]}"
    return "rows " + ", ".join(map(str, lines))
