"""Order files: a planner's TOML, JSON or CSV file read into plain order specs.

Checks here are structural only: the shape of the file, the known keys, ids, priorities,
due dates and the types of option values. Whether a family exists and whether its options
are valid is decided later, at release, by the family itself
(:meth:`routing.family.Family.configure`). Every problem in a file is collected, each with
file, line and key path, and raised once as one :class:`~mes.errors.OrderError`; no other
exception leaves this module.

Line numbers come from a second scan of the text once it parsed
(:mod:`mes.settings.toml_lines`, :mod:`mes.service.json_lines`); where that cannot tell,
the nearest enclosing element's line is given, or ``None``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TypeVar

from mes.errors import OrderError, Problem
from mes.service.json_lines import scan_json
from mes.settings.toml_lines import KeyPath, scan, syntax_problem

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_UNITS_PER_FILE = 100_000

FORMATS = {".toml": "toml", ".json": "json", ".csv": "csv"}
ORDER_KEYS = ("id", "priority", "due", "units")
UNIT_KEYS = ("family", "options")
PRIORITY_MIN, PRIORITY_MAX = -100, 100
DUE_FORMAT = "an ISO-8601 date or date-time, e.g. 2026-12-01 or 2026-12-01T17:00:00Z"

T = TypeVar("T")

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_KINDS: tuple[tuple[type, str], ...] = (
    *((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")),
    *((list, "array"), (dict, "table"), (datetime, "date-time"), (date, "date"), (time, "time")),
)


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """One unit as written in an order file: its family and chosen options (unchecked)."""

    family: str
    options: dict[str, object]
    where: str
    line: int | None


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One order as written in an order file; ``id`` None means the releaser assigns one."""

    id: str | None
    priority: int
    due: datetime | None
    units: tuple[UnitSpec, ...]
    where: str
    line: int | None


def read_order_file(path: Path | str) -> list[OrderSpec]:
    """Read an order file, choosing the format by its suffix (.toml, .json or .csv).

    Args:
        path: the file to read; at most ``MAX_FILE_BYTES`` bytes of UTF-8 text.

    Returns:
        The orders in file order.

    Raises:
        OrderError: with every problem found (unknown suffix, unreadable or oversize
            file, not UTF-8, syntax, structure), each naming file, line and key path.
    """
    source = str(path)
    suffix = Path(path).suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        shown = repr(suffix) if suffix else "(no suffix)"
        raise OrderError(
            Problem(f"unsupported file type {shown}; use .toml, .json or .csv", file=source)
        )
    limit = MAX_FILE_BYTES
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = b"" if size > limit else fh.read(limit + 1)
    except OSError as exc:
        reason = f"cannot read the file: {exc.strerror or exc}"
        raise OrderError(Problem(reason, file=source)) from exc
    if size > limit or len(data) > limit:
        reason = f"file is too large ({max(size, len(data))} bytes; the limit is {limit} bytes)"
        raise OrderError(Problem(reason, file=source))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        reason = f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded)"
        raise OrderError(Problem(reason, file=source, line=line)) from exc
    return parse_orders(text, fmt, source)


def parse_orders(text: str, fmt: str, source: str = "<input>") -> list[OrderSpec]:
    """Parse the text of an order file.

    Args:
        text: the whole file; a leading byte-order mark is ignored.
        fmt: ``"toml"``, ``"json"`` or ``"csv"``.
        source: the file name to put in problems.

    Returns:
        The orders in file order.

    Raises:
        OrderError: with every problem found, each naming file, line and key path.
    """
    text = text.removeprefix("\ufeff")
    if fmt == "csv":
        # Imported here: order_csv builds on the specs and checks of this module.
        from mes.service.order_csv import parse_csv

        orders, problems = parse_csv(text, source, MAX_UNITS_PER_FILE)
    elif fmt in ("toml", "json"):
        data, lines, problems = _load(text, fmt, source)
        orders = []
        if not problems:
            builder = _Builder(source, lines)
            orders = builder.document(data)
            problems = builder.problems
    else:
        reason = f"unknown order file format {fmt!r}; expected toml, json or csv"
        raise OrderError(Problem(reason, file=source))
    if problems:
        raise OrderError(problems)
    return orders


def check_order_id(value: object) -> str:
    """Return ``value`` if it is a valid order id, else raise ValueError with the reason."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {kind(value)}")
    if not _ID.fullmatch(value):
        raise ValueError(
            "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or "
            f"digit (got {show(value)})"
        )
    return value


def check_priority(value: object) -> int:
    """Return ``value`` if it is a whole number in range, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        pass
    elif PRIORITY_MIN <= value <= PRIORITY_MAX:
        return value
    raise ValueError(
        f"must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX} (got {show(value)})"
    )


def check_due(value: object) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive taken as UTC), else raise ValueError."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"must be {DUE_FORMAT} (got {show(value)})") from None
    else:
        raise ValueError(f"must be {DUE_FORMAT}, not {kind(value)}")
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"is out of range (got {show(value)})") from None


def kind(value: object) -> str:
    """The name of a parsed value's type, in the words of TOML and JSON."""
    other = "null" if value is None else type(value).__name__
    return next((name for cls, name in _KINDS if isinstance(value, cls)), other)


def show(value: object, width: int = 60) -> str:
    """A short repr for a reason; never fails (huge integers cannot be printed)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<{kind(value)}>"
    return text if len(text) <= width else text[: width - 3] + "..."


def label(path: KeyPath) -> str:
    """A key path as text: ``orders[0].units[2].options.text``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE.fullmatch(part) else json.dumps(part)
            out = f"{out}.{name}" if out else name
    return out


@dataclass
class _Builder:
    """Turns parsed TOML or JSON into specs, collecting problems."""

    source: str
    lines: dict[KeyPath, int]
    problems: list[Problem] = field(default_factory=list)
    unit_count: int = 0

    def line(self, path: KeyPath) -> int | None:
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None

    def add(self, path: KeyPath, reason: str) -> None:
        self.problems.append(Problem(reason, self.source, self.line(path), label(path)))

    def document(self, data: object) -> list[OrderSpec]:
        raw: list[tuple[KeyPath, object]] = []
        if isinstance(data, list):
            raw = [((i,), item) for i, item in enumerate(data)]
        elif isinstance(data, dict) and "orders" in data:
            for key in data:
                if key != "orders":
                    self.add((key,), f"unknown key {key!r} at top level; allowed: orders")
            if isinstance(data["orders"], list):
                raw = [(("orders", i), item) for i, item in enumerate(data["orders"])]
            else:
                self.add(("orders",), f"must be an array of orders, not {kind(data['orders'])}")
        elif isinstance(data, dict) and data:
            raw = [((), data)]
        elif not isinstance(data, dict):
            self.add((), f"the file must hold an object with orders, not {kind(data)}")
        if not raw and not self.problems:
            self.add((), "no orders: expected a list of orders, or a single order with units")
        orders: list[OrderSpec] = []
        first_use: dict[str, str] = {}
        for path, item in raw:
            order = self.order(item, path)
            if order is None:
                continue
            if order.id is not None and order.id in first_use:
                self.add(
                    (*path, "id"),
                    f"duplicate order id {order.id!r} (first used by {first_use[order.id]})",
                )
            elif order.id is not None:
                first_use[order.id] = order.where
            orders.append(order)
        if self.unit_count > MAX_UNITS_PER_FILE:
            reason = f"too many units ({self.unit_count}; at most {MAX_UNITS_PER_FILE} per file)"
            self.problems.append(Problem(reason, self.source))
        return orders

    def order(self, raw: object, path: KeyPath) -> OrderSpec | None:
        if not isinstance(raw, dict):
            self.add(path, f"an order must be a table with units, not {kind(raw)}")
            return None
        for key in raw:
            if key not in ORDER_KEYS:
                allowed = ", ".join(ORDER_KEYS)
                self.add((*path, key), f"unknown key {key!r} in an order; allowed: {allowed}")
        order_id = self.field(raw, path, "id", check_order_id, None)
        priority = self.field(raw, path, "priority", check_priority, 0)
        due = self.field(raw, path, "due", check_due, None)
        units: list[UnitSpec] = []
        items = raw.get("units")
        if "units" not in raw or items == []:
            self.add(path, "the order has no units; give at least one unit with a family")
        elif not isinstance(items, list):
            self.add((*path, "units"), f"must be an array of units, not {kind(items)}")
        else:
            for j, item in enumerate(items):
                unit = self.unit(item, (*path, "units", j))
                if unit is not None:
                    units.append(unit)
        where = label(path) or "order"
        return OrderSpec(order_id, priority, due, tuple(units), where, self.line(path))

    def field(
        self,
        raw: dict[str, object],
        path: KeyPath,
        key: str,
        check: Callable[[object], T],
        default: T,
    ) -> T:
        if key not in raw:
            return default
        try:
            return check(raw[key])
        except ValueError as exc:
            self.add((*path, key), str(exc))
            return default

    def unit(self, raw: object, path: KeyPath) -> UnitSpec | None:
        self.unit_count += 1
        if not isinstance(raw, dict):
            self.add(path, f"a unit must be a table with family and options, not {kind(raw)}")
            return None
        for key in raw:
            if key not in UNIT_KEYS:
                self.add(
                    (*path, key),
                    f"unknown key {key!r} in a unit; allowed: family, options "
                    "(option values go under options)",
                )
        family = raw.get("family")
        if "family" not in raw:
            self.add((*path, "family"), "is missing: every unit needs a family")
        elif not isinstance(family, str) or not family.strip():
            self.add((*path, "family"), f"must be a non-empty string (got {show(family)})")
        options = raw.get("options", {})
        if not isinstance(options, dict):
            self.add((*path, "options"), f"must be a table of name = value, not {kind(options)}")
            options = {}
        for name, value in options.items():
            if not isinstance(name, str) or not name.strip():
                self.add((*path, "options", str(name)), "option name must not be empty")
            if not isinstance(value, str | int | float):
                self.add(
                    (*path, "options", name),
                    f"option value must be a string, number or boolean, not {kind(value)}",
                )
        family_name = family if isinstance(family, str) else ""
        return UnitSpec(family_name, dict(options), label(path), self.line(path))


# --- loading and line maps -------------------------------------------------------------


def _load(text: str, fmt: str, source: str) -> tuple[object, dict[KeyPath, int], list[Problem]]:
    """Parse TOML or JSON text; on failure, the one problem that stopped the parser."""
    try:
        if fmt == "json":
            data = json.loads(text)
            return data, scan_json(text), []
        data = tomllib.loads(text)
        return data, _toml_lines(text, data), []
    except json.JSONDecodeError as exc:
        reason = f"JSON syntax error: {exc.msg} (column {exc.colno})"
        problem = Problem(reason, source, exc.lineno)
    except tomllib.TOMLDecodeError as exc:
        problem = syntax_problem(str(exc), text, source)
    except RecursionError:
        problem = Problem(f"{fmt.upper()}: values are nested too deeply", source)
    except ValueError as exc:  # e.g. an integer with too many digits
        problem = Problem(f"{fmt.upper()}: {show(str(exc), 120)}", source)
    return None, {}, [problem]


def _toml_lines(text: str, data: object) -> dict[KeyPath, int]:
    """Line of each key path in valid TOML text, the root at the first key or header."""
    lines = scan(text).lines
    first = min(lines.values(), default=None)
    # The scan is not tomllib: trust it only under arrays where it counted as many
    # elements (``[[orders]]`` tables, ``[...]`` items) as TOML parsed.
    counts: dict[KeyPath, int] = {}
    for path in lines:
        if path and isinstance(path[-1], int):
            counts[path[:-1]] = max(counts.get(path[:-1], 0), path[-1] + 1)
    for array, count in counts.items():
        node = _get(data, array)
        if not isinstance(node, list) or len(node) != count:
            lines = {key: line for key, line in lines.items() if key[: len(array)] != array}
    if first is not None:
        lines[()] = first
    return lines


def _get(data: object, path: KeyPath) -> object:
    for part in path:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
        elif not (isinstance(part, str) and isinstance(data, dict) and part in data):
            return None
        else:
            data = data[part]
    return data
