"""The real-time dispatch rule: hand ready steps to idle capable cells, in microseconds.

Rules (selectable by name; a higher order priority always wins first):

- ``rank`` (the default; the original rule): ready steps by rank (priority, due date,
  release order); each goes to the idle capable cell that finishes it soonest, setup
  included.
- ``ect``: earliest completion time: the step a cell would finish soonest, setup
  included (its duration factor times the expected time, plus the setup from the
  cell's current attribute state to the step's attributes). Same-material,
  same-colour work therefore runs back to back, which is what keeps changeovers rare.
- ``setup``: shortest setup first, then due date and release order: a cell keeps running
  work of the attributes it is set up for (material, colour) while there is any, so
  changeovers happen only when that work runs out. Best for throughput when due dates
  are loose; ``slack`` when they are tight.
- ``slack``: least due-date slack: due date minus (setup + expected time + the unit's
  remaining work). Steps without a due date come after all that have one.

A step avoids the cell it last failed on whenever another cell could take it.

Theory of operation. :class:`Dispatcher` keeps the ready steps indexed so that a
decision never looks at every step: steps are grouped by capability and attribute
values; within a group the setup a given cell needs is the same for every step, so the
group's best step for a rule is the top of a heap whose key does not depend on the
cell. A freed cell then compares only the tops of the groups of its capabilities
(a few dozen heaps among ten thousand steps), computing each group's setup once.
Removal is lazy (an entry is dropped when it surfaces). A plan from the optimizer
(:meth:`Dispatcher.follow`) reserves steps for cells: a freed cell takes the first
ready step of its plan, else falls back to the rule over the unreserved steps, and a
cell that would still idle takes planned steps back (:meth:`Dispatcher.unreserve`): a
plan never leaves a cell idle beside work it can do. A cell that goes down or is held
(:meth:`Dispatcher.cell_down`) gets nothing, and the steps
planned for it return to the common pool for the other cells.

:func:`assign` is the original batch interface (used by the controller), now a thin
wrapper: it loads a :class:`Dispatcher` and pairs steps with idle cells.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from routing.scheduling.model import setup_time

_NO_DUE = datetime.max.replace(tzinfo=UTC)
RULES = ("rank", "ect", "setup", "slack")
LOOKAHEAD = 8  # planned steps a freed cell may look past to find a ready one


@dataclass(frozen=True, slots=True)
class ReadyStep:
    """A step that may start now, with what ranks it.

    Attributes:
        attributes: Setup-relevant values, e.g. ``{"material": "pla"}``.
        remaining_s: Expected work left in the unit after this step (for ``slack``).
        cells: The only cells that may run it (its program fits them); empty: any
            cell with the capability.
    """

    step_id: str
    capability: str
    expected_s: float
    priority: int = 0
    due: datetime | None = None
    released: tuple[datetime, str, int, int] | None = None
    avoid: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)
    remaining_s: float = 0.0
    cells: frozenset[str] = frozenset()

    @property
    def rank(self) -> tuple[int, datetime, tuple[datetime, str, int, int] | tuple[()]]:
        # Higher priority first; earlier due first (no due date last); then FIFO.
        return (-self.priority, self.due or _NO_DUE, self.released or ())


@dataclass(frozen=True, slots=True)
class IdleCell:
    """A cell that can take a job now, with its current attribute state and setups.

    Attributes:
        factors: Capability -> duration factor (1.0 when absent).
        state: Attribute values loaded now (e.g. the filament).
        setup_s: Attribute -> setup seconds when that attribute changes.
    """

    name: str
    capabilities: frozenset[str]
    factors: Mapping[str, float] = field(default_factory=dict)
    state: Mapping[str, str] = field(default_factory=dict)
    setup_s: Mapping[str, float] = field(default_factory=dict)

    def duration(self, step: ReadyStep) -> float:
        """Expected run time of ``step`` here."""
        return step.expected_s * self.factors.get(step.capability, 1.0)

    def setup(self, step: ReadyStep) -> float:
        """Setup needed here before ``step``."""
        return setup_time(self.setup_s, self.state, step.attributes)

    def completion(self, step: ReadyStep) -> float:
        """Setup plus run time of ``step`` here: the ``ect`` measure."""
        return self.setup(step) + self.duration(step)


class _Entry:
    """A ready step as the dispatcher holds it."""

    __slots__ = ("group", "key", "open", "planned", "step", "tie")

    def __init__(self, step: ReadyStep, seq: int, rule: str) -> None:
        self.step = step
        self.planned: str | None = None  # reserved for this cell
        self.open = False  # in its group's heap and takeable by any cell
        self.group = (tuple(sorted(step.attributes.items())), step.cells)
        due = step.due.timestamp() if step.due is not None else math.inf
        self.tie: tuple[float, tuple[object, ...], int] = (due, step.released or (), seq)
        # The part of the rule's key that does not depend on the cell (see _best).
        if rule == "ect":
            self.key = (-step.priority, step.expected_s)
        elif rule == "setup":
            self.key = (-step.priority, 0.0)
        elif rule == "slack":
            self.key = (-step.priority, due - step.expected_s - step.remaining_s)
        else:
            self.key = (-step.priority, due)


_GroupKey = tuple[tuple[tuple[str, str], ...], frozenset[str]]
_HeapItem = tuple[tuple[int, float], tuple[float, tuple[object, ...], int], _Entry]
Score = tuple[object, ...]


class _Group:
    """Open steps of one capability, one set of attribute values and one set of eligible
    cells, best on top."""

    __slots__ = ("attributes", "cells", "count", "heap")

    def __init__(self, attributes: Mapping[str, str], cells: frozenset[str]) -> None:
        self.attributes = attributes
        self.cells = cells
        self.heap: list[_HeapItem] = []
        self.count = 0


class Dispatcher:
    """Ready steps indexed for fast decisions when a cell frees up.

    Args:
        rule: One of :data:`RULES`.

    Raises:
        ValueError: an unknown rule.
    """

    def __init__(self, rule: str = "rank") -> None:
        if rule not in RULES:
            raise ValueError(f"unknown dispatch rule {rule!r}; choose from {', '.join(RULES)}")
        self.rule = rule
        self._entries: dict[str, _Entry] = {}
        self._groups: dict[str, dict[_GroupKey, _Group]] = {}
        self._seq = itertools.count()
        self._cells: dict[str, frozenset[str]] = {}  # known cells that are up
        self._cap_count: dict[str, int] = {}  # capability -> known up cells offering it
        self._down: set[str] = set()
        self._plan: dict[str, list[str]] = {}  # cell -> planned step ids, in order
        self._planned_for: dict[str, str] = {}  # step id -> cell

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, step_id: object) -> bool:
        return step_id in self._entries

    # -- steps -------------------------------------------------------------------------

    def add(self, step: ReadyStep) -> None:
        """A step became ready (replaces a step with the same id)."""
        self.remove(step.step_id)
        entry = _Entry(step, next(self._seq), self.rule)
        self._entries[step.step_id] = entry
        cell = self._planned_for.get(step.step_id)
        if cell is not None and cell not in self._down:
            entry.planned = cell
        else:
            self._open(entry)

    def remove(self, step_id: str) -> ReadyStep | None:
        """A step is no longer ready (dispatched elsewhere, aborted, its unit held)."""
        entry = self._entries.pop(step_id, None)
        if entry is None:
            return None
        if entry.open:
            self._close(entry)
        return entry.step

    def _open(self, entry: _Entry) -> None:
        by_attrs = self._groups.setdefault(entry.step.capability, {})
        group = by_attrs.get(entry.group)
        if group is None:
            group = by_attrs[entry.group] = _Group(dict(entry.step.attributes), entry.step.cells)
        heapq.heappush(group.heap, (entry.key, entry.tie, entry))
        group.count += 1
        entry.open = True

    def _close(self, entry: _Entry) -> None:
        entry.open = False  # its heap item goes stale and is dropped when it surfaces
        by_attrs = self._groups[entry.step.capability]
        group = by_attrs[entry.group]
        group.count -= 1
        if group.count == 0:
            del by_attrs[entry.group]
            if not by_attrs:
                del self._groups[entry.step.capability]

    # -- cells and plans ---------------------------------------------------------------

    def cell_up(self, name: str, capabilities: Iterable[str]) -> None:
        """A cell is (back) in service: it may take work, and steps may avoid it."""
        self._down.discard(name)
        self._register(name, frozenset(capabilities))

    def _register(self, name: str, capabilities: frozenset[str]) -> None:
        old = self._cells.get(name)
        if old == capabilities:
            return
        for cap in old or ():
            self._cap_count[cap] -= 1
        for cap in capabilities:
            self._cap_count[cap] = self._cap_count.get(cap, 0) + 1
        self._cells[name] = capabilities

    def cell_down(self, name: str) -> list[str]:
        """A cell failed, was held or disconnected: it gets nothing until :meth:`cell_up`,
        and the ready steps planned for it go back to the common pool.

        Returns:
            Ids of the ready steps re-routed to the other cells.
        """
        self._down.add(name)
        self._register(name, frozenset())
        del self._cells[name]
        moved = []
        for step_id in self._plan.pop(name, []):
            if self._planned_for.get(step_id) == name:
                del self._planned_for[step_id]
            entry = self._entries.get(step_id)
            if entry is not None and entry.planned == name:
                entry.planned = None
                self._open(entry)
                moved.append(step_id)
        return moved

    def follow(self, plan: Mapping[str, Sequence[str]]) -> None:
        """Reserve steps for cells, in order (e.g. the optimizer's schedule); replaces the
        previous plan. Steps not in the plan stay in the common pool."""
        for entry in self._entries.values():
            if entry.planned is not None:
                entry.planned = None
                self._open(entry)
        self._plan = {cell: list(steps) for cell, steps in plan.items() if cell not in self._down}
        self._planned_for = {s: cell for cell, steps in self._plan.items() for s in steps}
        for step_id, cell in self._planned_for.items():
            held = self._entries.get(step_id)
            if held is not None:
                if held.open:
                    self._close(held)
                held.planned = cell

    # -- decisions ---------------------------------------------------------------------

    def pick(self, cell: IdleCell) -> ReadyStep | None:
        """The step ``cell`` should run next (removed from the ready set), or None.

        A cell marked down gets nothing. A cell with a plan takes its first ready planned
        step; otherwise the rule chooses among the unreserved steps.
        """
        if cell.name in self._down:
            return None
        self._register(cell.name, cell.capabilities)
        entry = self._planned_next(cell.name, take=True)
        if entry is None:
            found, _ = self._best(cell, self._cap_count)
            if found is None:
                return None
            entry = found[1]
        self.remove(entry.step.step_id)
        return entry.step

    def assign(self, idle: Sequence[IdleCell]) -> list[tuple[ReadyStep, IdleCell]]:
        """Pairs (step, cell) to dispatch now, each cell at most once, best pair first.

        A step avoids the cell it failed on when another of these idle cells can take it.
        """
        free = {c.name: c for c in idle if c.name not in self._down}
        counts: dict[str, int] = {}
        for cell in free.values():
            for cap in cell.capabilities:
                counts[cap] = counts.get(cap, 0) + 1
        # Each free cell's best candidate, kept between rounds while still valid: until its
        # step is taken, or (if it passed over a step avoiding it) until a cell leaves.
        cache: dict[str, tuple[tuple[Score, _Entry] | None, bool]] = {}
        pairs: list[tuple[ReadyStep, IdleCell]] = []
        while free:
            for name, cell in free.items():
                cached = cache.get(name)
                if cached is None or (cached[0] is not None and not self._takeable(cached[0][1])):
                    planned = self._planned_next(name, take=False)
                    if planned is not None:
                        cache[name] = (((-math.inf,), planned), False)
                    else:
                        cache[name] = self._best(cell, counts)
            choices = [(c[0][0], name) for name, c in cache.items() if c[0] is not None]
            if not choices:
                break
            name = min(choices)[1]
            found, _ = cache.pop(name)
            assert found is not None
            entry, cell = found[1], free.pop(name)
            self._planned_next(name, take=True)  # consume it if it was planned
            self.remove(entry.step.step_id)
            pairs.append((entry.step, cell))
            for cap in cell.capabilities:
                counts[cap] -= 1
            for other in [n for n, (_, skipped) in cache.items() if skipped]:
                del cache[other]
        if free and self._planned_for and any(self.unreserve(cell) for cell in free.values()):
            pairs += self.assign(list(free.values()))  # what the plan held back
        return pairs

    def waits_for_plan(self, cell: str) -> bool:
        """Whether the plan holds steps for ``cell`` that are not dispatched yet (the cell
        idles for them by design: its next planned step is not ready yet)."""
        return any(self._planned_for.get(s) == cell for s in self._plan.get(cell, ()))

    def unreserve(self, cell: IdleCell) -> int:
        """Open every ready step reserved by the plan that ``cell`` could run.

        A plan is advice: it must never leave a cell idle beside work it can do (the
        step it waits for may be late, or planned for a cell that is busy elsewhere).

        Returns:
            How many steps were opened.
        """
        opened = 0
        for entry in self._entries.values():
            step = entry.step
            if (
                entry.planned is not None
                and step.capability in cell.capabilities
                and (not step.cells or cell.name in step.cells)
            ):
                self._planned_for.pop(step.step_id, None)
                entry.planned = None
                self._open(entry)
                opened += 1
        return opened

    def _takeable(self, entry: _Entry) -> bool:
        return self._entries.get(entry.step.step_id) is entry

    def _planned_next(self, name: str, take: bool) -> _Entry | None:
        queue = self._plan.get(name)
        if not queue:
            return None
        while queue and queue[0] not in self._planned_for:
            queue.pop(0)  # dispatched or re-planned
        for i, step_id in enumerate(queue[:LOOKAHEAD]):
            entry = self._entries.get(step_id)
            if entry is not None and entry.planned == name:
                if take:
                    del queue[i]
                    del self._planned_for[step_id]
                return entry
        return None

    def _best(
        self, cell: IdleCell, counts: Mapping[str, int]
    ) -> tuple[tuple[Score, _Entry] | None, bool]:
        """Best open step for ``cell`` by the rule with its score (lower is better), and
        whether a step avoiding this cell was passed over.

        ``counts`` says how many cells (this one included) offer each capability; a step
        avoids this cell only if another one could take it.
        """
        best: Score | None = None
        found: _Entry | None = None
        skipped = False
        factors, state, setup_s, rule = cell.factors, cell.state, cell.setup_s, self.rule
        for capability in cell.capabilities:
            groups = self._groups.get(capability)
            if not groups:
                continue
            factor = factors.get(capability, 1.0)
            avoidable = counts.get(capability, 0) > 1
            for group in groups.values():
                if group.cells and cell.name not in group.cells:
                    continue  # its program does not fit this cell
                entry, passed = _top(group, cell.name, avoidable and len(group.cells) != 1)
                skipped |= passed
                if entry is None:
                    continue
                setup = setup_time(setup_s, state, group.attributes) if setup_s else 0.0
                if rule == "ect":
                    completion = setup + entry.step.expected_s * factor
                    key: Score = (entry.key[0], completion, entry.tie)
                elif rule == "setup":
                    key = (entry.key[0], setup, entry.tie)
                elif rule == "slack":
                    key = (entry.key[0], entry.key[1] - setup, entry.tie)
                else:
                    completion = setup + entry.step.expected_s * factor
                    key = (entry.key[0], entry.key[1], entry.tie[1:], completion)
                if best is None or key < best:
                    best, found = key, entry
        if best is None or found is None:
            return None, skipped
        return ((*best, cell.name), found), skipped


def _top(group: _Group, cell: str, avoidable: bool) -> tuple[_Entry | None, bool]:
    """The group's best open step this cell may take (dropping stale heap items), and
    whether a step avoiding this cell was passed over."""
    heap = group.heap
    skipped: list[_HeapItem] = []
    found = None
    while heap:
        entry = heap[0][2]
        if not entry.open:
            heapq.heappop(heap)
        elif avoidable and entry.step.avoid == cell:
            skipped.append(heapq.heappop(heap))  # another cell can take it
        else:
            found = entry
            break
    for item in skipped:
        heapq.heappush(heap, item)
    return found, bool(skipped)


def assign(
    ready: Iterable[ReadyStep], idle: Sequence[IdleCell], rule: str = "rank"
) -> list[tuple[ReadyStep, IdleCell]]:
    """Pairs of (step, cell) to dispatch now; each cell gets at most one step.

    Args:
        ready: The steps that may start now.
        idle: The cells that can take a job now.
        rule: One of :data:`RULES` (``rank``, the original rule, by default).
    """
    if not idle:
        return []
    dispatcher = Dispatcher(rule)
    offered = frozenset().union(*(c.capabilities for c in idle))
    for step in ready:
        if step.capability in offered:
            dispatcher.add(step)
    return dispatcher.assign(idle)
