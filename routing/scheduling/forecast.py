"""When will each open unit be done? Replay the dispatcher on the open work. Pure.

Theory of operation: the forecast runs the plant's own dispatch rule
(:class:`~routing.scheduling.dispatch.Dispatcher`, the rule the controller uses) forward
in simulated time over the open work as it stands: the jobs on cells finish after their
expected remaining time, a freed cell takes the step the rule gives it (setups
included), a unit is in one cell at a time and its next steps become ready as their
predecessors end. A unit's estimate is when its last step ends.

What it is not: it assumes expected durations (times each cell's factor), no faults,
no new orders, no operator holds, and cells that stay as they are now (a cell down stays
down). Units held, failed or with a step waiting for an operator get no estimate, nor
does work no cell that is up can do. Customer units rank above stock work, as in
dispatch (their priority does it).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from routing.scheduling.dispatch import Dispatcher, IdleCell, ReadyStep
from routing.scheduling.model import next_state, setup_time


@dataclass(frozen=True, slots=True)
class OpenStep:
    """A step of an open unit. ``state``: ``open`` (to run), ``on_cell`` (running or
    handed to a cell: it ends after ``remaining_s``), or ``settled`` (done or skipped)."""

    id: str
    seq: int
    capability: str
    expected_s: float
    state: str
    after: tuple[int, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    cells: frozenset[str] = frozenset()
    remaining_s: float = 0.0


@dataclass(frozen=True, slots=True)
class OpenUnit:
    """An open unit and what ranks it (its order's priority and due date, its release)."""

    id: str
    steps: tuple[OpenStep, ...]
    priority: int = 0
    due: datetime | None = None
    released: tuple[datetime, str, int] | None = None


@dataclass(frozen=True, slots=True)
class ForecastCell:
    """A cell as the forecast sees it: up or not, free in how long, set up for what."""

    name: str
    capabilities: frozenset[str]
    factors: Mapping[str, float] = field(default_factory=dict)
    setup_s: Mapping[str, float] = field(default_factory=dict)
    loaded: Mapping[str, str] = field(default_factory=dict)
    free_in_s: float = 0.0
    up: bool = True


def forecast(
    units: Iterable[OpenUnit], cells: Sequence[ForecastCell], rule: str = "rank"
) -> dict[str, float]:
    """Seconds from now until each unit is done, for the units that can be estimated."""
    up = {c.name: c for c in cells if c.up}
    dispatcher = Dispatcher(rule)
    by_id: dict[str, OpenUnit] = {}
    owner: dict[str, str] = {}  # step id -> unit id
    settled: dict[str, set[int]] = {}
    offered: dict[str, list[str]] = {}
    events: list[tuple[float, int, str, str]] = []  # (time, tie, unit or "", cell)
    tie = itertools.count()
    free_at = {name: cell.free_in_s for name, cell in up.items()}
    loaded = {name: dict(cell.loaded) for name, cell in up.items()}
    for name, at in free_at.items():
        if at > 0:
            heapq.heappush(events, (at, next(tie), "", name))
    out: dict[str, float] = {}
    for unit in units:
        if not _doable(unit, up.values()):
            continue
        by_id[unit.id] = unit
        owner.update((s.id, unit.id) for s in unit.steps)
        settled[unit.id] = {s.seq for s in unit.steps if s.state == "settled"}
        running = [s for s in unit.steps if s.state == "on_cell"]
        if running:
            step = running[0]
            settled[unit.id].add(step.seq)  # from its end on
            heapq.heappush(events, (step.remaining_s, next(tie), unit.id, ""))
        elif not _offer(dispatcher, unit, settled[unit.id], offered):
            out[unit.id] = 0.0
    now = 0.0
    while True:
        idle = [
            IdleCell(c.name, c.capabilities, c.factors, loaded[c.name], c.setup_s)
            for c in up.values()
            if free_at[c.name] <= now
        ]
        for ready, cell in dispatcher.assign(idle) if idle else []:
            unit_id = owner[ready.step_id]
            for other in offered.pop(unit_id, []):
                dispatcher.remove(other)  # one place at a time
            unit = by_id[unit_id]
            step = next(s for s in unit.steps if s.id == ready.step_id)
            setup = setup_time(cell.setup_s, loaded[cell.name], step.attributes)
            end = now + setup + step.expected_s * cell.factors.get(step.capability, 1.0)
            loaded[cell.name] = next_state(loaded[cell.name], step.attributes)
            free_at[cell.name] = end
            settled[unit_id].add(step.seq)
            heapq.heappush(events, (end, next(tie), unit_id, cell.name))
        if not events:
            return out
        now = events[0][0]
        while events and events[0][0] <= now:
            _, _, unit_id, _ = heapq.heappop(events)
            if not unit_id or _offer(dispatcher, by_id[unit_id], settled[unit_id], offered):
                continue
            if len(settled[unit_id]) == len(by_id[unit_id].steps):
                out[unit_id] = now  # its last step ended


def _offer(
    dispatcher: Dispatcher,
    unit: OpenUnit,
    settled: set[int],
    offered: dict[str, list[str]],
) -> bool:
    """Offer the unit's steps whose predecessors are settled; whether any was."""
    steps = [s for s in unit.steps if s.seq not in settled and settled.issuperset(s.after)]
    for step in steps:
        dispatcher.add(
            ReadyStep(
                step.id,
                step.capability,
                step.expected_s,
                priority=unit.priority,
                due=unit.due,
                released=(*unit.released, step.seq) if unit.released else None,
                attributes=step.attributes,
                cells=step.cells,
            )
        )
    offered[unit.id] = [s.id for s in steps]
    return bool(steps)


def _doable(unit: OpenUnit, cells: Iterable[ForecastCell]) -> bool:
    """Every open step has a cell that is up and may run it."""
    cells = list(cells)
    return all(
        any(
            step.capability in c.capabilities and (not step.cells or c.name in step.cells)
            for c in cells
        )
        for step in unit.steps
        if step.state == "open"
    )
