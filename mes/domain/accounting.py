"""State time accounting per cell, the basis of OEE: how long each cell spent executing,
idle with nothing to do (starved), idle while work waited for it (blocked), held,
faulted and offline. Derived from the journal, so it is exactly as true as the record.

Pure: takes the cell journal entries (time, cell, state after) and a window; the
``starved``/``blocked`` split needs to know when ready work existed for the cell, which
the caller passes as intervals (empty: every idle second counts as starved).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

CATEGORIES = ("executing", "starved", "blocked", "held", "faulted", "offline")

_CATEGORY = {
    "starting": "executing",
    "execute": "executing",
    "complete": "executing",
    "idle": "starved",
    "held": "held",
    "aborted": "faulted",
    "stopped": "faulted",
    "offline": "offline",
}


def state_times(
    changes: Iterable[tuple[datetime, str, str]],
    start: datetime,
    end: datetime,
    waiting: Mapping[str, Sequence[tuple[datetime, datetime]]] | None = None,
) -> dict[str, dict[str, float]]:
    """Seconds per category per cell in ``[start, end)``.

    Args:
        changes: ``(time, cell, state after)`` for every cell transition, any order.
        start: Window start; a cell's state before its first change in the window is
            the state of its last change before ``start`` (offline if none).
        end: Window end.
        waiting: Per cell, intervals when ready work waited for it: idle time inside
            them counts as ``blocked`` rather than ``starved``.
    """
    by_cell: dict[str, list[tuple[datetime, str]]] = {}
    for at, cell, state in sorted(changes):
        by_cell.setdefault(cell, []).append((at, state))
    out: dict[str, dict[str, float]] = {}
    for cell, history in by_cell.items():
        totals = dict.fromkeys(CATEGORIES, 0.0)
        state = "offline"
        cursor = start
        for at, after in history:
            if at <= start:
                state = after
                continue
            if at >= end:
                break
            _add(totals, state, cursor, at, (waiting or {}).get(cell, ()))
            cursor, state = at, after
        _add(totals, state, cursor, end, (waiting or {}).get(cell, ()))
        out[cell] = totals
    return out


def _add(
    totals: dict[str, float],
    state: str,
    begin: datetime,
    end: datetime,
    waiting: Sequence[tuple[datetime, datetime]],
) -> None:
    seconds = max(0.0, (end - begin).total_seconds())
    category = _CATEGORY.get(state, "offline")
    if category == "starved" and waiting:
        blocked = sum(max(0.0, (min(end, b) - max(begin, a)).total_seconds()) for a, b in waiting)
        totals["blocked"] += blocked
        seconds -= blocked
    totals[category] += seconds


def waiting_intervals(
    step_changes: Iterable[tuple[datetime, str, str]],
    eligible: Mapping[str, Iterable[str]],
    end: datetime,
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per cell, when ready work it could have taken existed (merged intervals).

    Args:
        step_changes: ``(time, step id, state after)`` for every step transition.
        eligible: Step id -> the cells that could run it.
        end: Where an interval still open ends.
    """
    by_step: dict[str, list[tuple[datetime, str]]] = {}
    for at, step, state in sorted(step_changes):
        by_step.setdefault(step, []).append((at, state))
    # Steps that the same cells could run share their intervals: merge per set of cells
    # first (thousands of ready steps, a handful of sets), then per cell.
    by_cells: dict[frozenset[str], list[tuple[datetime, datetime]]] = {}
    for step, history in by_step.items():
        spans = by_cells.setdefault(frozenset(eligible.get(step, ())), [])
        for (at, state), nxt in zip(history, [*history[1:], (end, "")], strict=True):
            if state == "ready" and nxt[0] > at:
                spans.append((at, nxt[0]))
    raw: dict[str, list[tuple[datetime, datetime]]] = {}
    for cells, spans in by_cells.items():
        merged = _merged(spans)
        for cell in cells:
            raw.setdefault(cell, []).extend(merged)
    return {cell: _merged(spans) for cell, spans in raw.items()}


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for begin, finish in sorted(spans):
        if out and begin <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], finish))
        else:
            out.append((begin, finish))
    return out


def availability(times: Mapping[str, float]) -> float:
    """OEE availability: run time over planned time (all but held, which is planned
    downtime)."""
    planned = sum(v for k, v in times.items() if k != "held")
    return times.get("executing", 0.0) / planned if planned else 0.0
