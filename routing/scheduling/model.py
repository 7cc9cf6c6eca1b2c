"""The scheduling problem as plain data: operations, machines, jobs, and a schedule.

Theory of operation: a :class:`Problem` is a set of :class:`Operation` s, each runnable on
one of several :class:`Machine` s with a duration per machine, ordered by precedence
(``after``: usually a chain per job, any acyclic graph is allowed, also across jobs). A
:class:`Job` carries what ranks its operations (due date, priority). A machine declares
sequence-dependent setups as seconds per attribute change (``{"material": 600,
"colour": 300}``); an operation carries attribute values (``{"material": "pla"}``); a
machine starts in a known attribute state and each operation it runs updates that state
with the operation's attributes. The setup before an operation is the sum of the
declared setups of every attribute it carries whose value differs from the machine's
state (a value the machine has never had counts as a change). A setup happens on the
machine between two operations and may overlap the wait for the part (anticipatory).

Availability: a machine is ``available`` (from ``available_from`` on), ``held`` or
``down``; held and down machines take no work. Times are plain numbers in one unit
(seconds in the plant, abstract units in benchmarks); nothing here reads a clock.

A :class:`Schedule` maps each operation id to a :class:`Slot` (machine, start, end).
:mod:`routing.scheduling.check` verifies one against its problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property


class ProblemError(ValueError):
    """A problem that is not well formed: the message names the item and the reason."""


class Availability(StrEnum):
    """Whether a machine may take work."""

    AVAILABLE = "available"
    HELD = "held"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Operation:
    """One piece of work: where it may run, for how long, and what must finish first.

    Attributes:
        id: Unique within the problem.
        job: The job it belongs to (for due date and priority).
        durations: Eligible machine name -> processing time on that machine.
        after: Ids of operations that must finish before this one starts.
        attributes: Setup-relevant values, e.g. ``{"material": "pla", "colour": "black"}``.
    """

    id: str
    job: str
    durations: Mapping[str, float]
    after: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Job:
    """What ranks a job's operations: a due date (same time unit) and a priority (higher
    first)."""

    id: str
    due: float | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Machine:
    """A machine (a cell): its setups, its current attribute state, its availability.

    Attributes:
        name: Unique within the problem.
        setup_s: Attribute name -> setup time when that attribute changes.
        state: Current attribute values (what is loaded now).
        availability: Held and down machines take no work.
        available_from: Earliest time a new operation (or its setup) may start.
    """

    name: str
    setup_s: Mapping[str, float] = field(default_factory=dict)
    state: Mapping[str, str] = field(default_factory=dict)
    availability: Availability = Availability.AVAILABLE
    available_from: float = 0.0

    @property
    def usable(self) -> bool:
        """True when the machine may take work at all."""
        return self.availability is Availability.AVAILABLE

    def setup_before(self, state: Mapping[str, str], attributes: Mapping[str, str]) -> float:
        """Setup time on this machine to go from ``state`` to run an operation with
        ``attributes``."""
        return setup_time(self.setup_s, state, attributes)


def setup_time(
    setup_s: Mapping[str, float], state: Mapping[str, str], attributes: Mapping[str, str]
) -> float:
    """Sum of the declared setups of every attribute whose value must change.

    Args:
        setup_s: Attribute name -> setup time, as a machine declares it.
        state: The machine's attribute values now; a missing value counts as a change.
        attributes: The next operation's attribute values.
    """
    total = 0.0
    for key, seconds in setup_s.items():
        want = attributes.get(key)
        if want is not None and state.get(key) != want:
            total += seconds
    return total


def next_state(state: Mapping[str, str], attributes: Mapping[str, str]) -> dict[str, str]:
    """The machine's attribute state after it ran an operation with ``attributes``."""
    return {**state, **attributes}


@dataclass(frozen=True, slots=True)
class Slot:
    """Where and when one operation runs."""

    machine: str
    start: float
    end: float


@dataclass(frozen=True)
class Schedule:
    """Operation id -> slot. Built by the dispatcher simulation or the optimizer.

    A machine runs its operations in start order. Operations that start and end at the
    same instant on one machine (zero durations) are ambiguous by time alone; they run
    in the order the slots are listed, and the schedulers list them that way.
    """

    slots: Mapping[str, Slot]

    @property
    def makespan(self) -> float:
        """Latest end of any operation (0 for an empty schedule)."""
        return max((s.end for s in self.slots.values()), default=0)

    def sequences(self) -> dict[str, list[str]]:
        """Machine name -> operation ids in start order (then end, then as listed)."""
        out: dict[str, list[str]] = {}
        for op_id, slot in sorted(self.slots.items(), key=lambda kv: (kv[1].start, kv[1].end)):
            out.setdefault(slot.machine, []).append(op_id)
        return out


@dataclass(frozen=True)
class Problem:
    """A scheduling problem; validated on construction.

    Raises:
        ProblemError: duplicate or unknown ids, a precedence cycle, an operation with no
            eligible machine, a negative or non-finite time.
    """

    operations: tuple[Operation, ...]
    machines: tuple[Machine, ...]
    jobs: tuple[Job, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            shown = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise ProblemError(f"{self.name or 'problem'}: {shown}{more}")
        self.topological_order  # noqa: B018 - raises on a cycle

    def _problems(self) -> Iterable[str]:
        machines = {m.name for m in self.machines}
        if len(machines) != len(self.machines):
            yield "duplicate machine names"
        for m in self.machines:
            if not _time_ok(m.available_from):
                yield f"machine {m.name!r}: available_from must be a finite number >= 0"
            for key, s in m.setup_s.items():
                if not _time_ok(s):
                    yield f"machine {m.name!r}: setup {key!r} must be a finite number >= 0"
        jobs = {j.id for j in self.jobs}
        if len(jobs) != len(self.jobs):
            yield "duplicate job ids"
        ids = {op.id for op in self.operations}
        if len(ids) != len(self.operations):
            yield "duplicate operation ids"
        for op in self.operations:
            if op.job not in jobs:
                yield f"operation {op.id!r}: unknown job {op.job!r}"
            if not op.durations:
                yield f"operation {op.id!r}: no eligible machine"
            for name, d in op.durations.items():
                if name not in machines:
                    yield f"operation {op.id!r}: unknown machine {name!r}"
                elif not _time_ok(d):
                    yield f"operation {op.id!r}: duration on {name!r} must be finite and >= 0"
            for before in op.after:
                if before not in ids:
                    yield f"operation {op.id!r}: unknown predecessor {before!r}"
                elif before == op.id:
                    yield f"operation {op.id!r}: precedes itself"

    @cached_property
    def operation(self) -> Mapping[str, Operation]:
        """Operation id -> operation."""
        return {op.id: op for op in self.operations}

    @cached_property
    def machine(self) -> Mapping[str, Machine]:
        """Machine name -> machine."""
        return {m.name: m for m in self.machines}

    @cached_property
    def job(self) -> Mapping[str, Job]:
        """Job id -> job."""
        return {j.id: j for j in self.jobs}

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        """Operation ids, every one after all its predecessors (stable: input order).

        Raises:
            ProblemError: the precedences form a cycle.
        """
        waiting = {op.id: len(set(op.after)) for op in self.operations}
        successors: dict[str, list[str]] = {op.id: [] for op in self.operations}
        for op in self.operations:
            for before in set(op.after):
                successors[before].append(op.id)
        order = [op.id for op in self.operations if waiting[op.id] == 0]
        for op_id in order:  # grows while we walk it
            for nxt in successors[op_id]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    order.append(nxt)
        if len(order) != len(self.operations):
            stuck = sorted(k for k, v in waiting.items() if v > 0)[:5]
            raise ProblemError(
                f"{self.name or 'problem'}: precedence cycle through {', '.join(stuck)}"
            )
        return tuple(order)

    @property
    def has_setups(self) -> bool:
        """True when some machine declares a setup for an attribute some operation has."""
        keys = {k for m in self.machines for k, s in m.setup_s.items() if s > 0}
        return any(k in op.attributes for op in self.operations for k in keys)


def _time_ok(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0
