"""The real-time dispatch rule: hand ready steps to idle capable cells.

Rule (a simple one until the scheduler issue replaces it): take ready steps by rank
(order priority, then due date, then release order); give each the idle capable cell
that would finish it soonest (the cell's duration factor for the capability), avoiding
the cell the step last failed on when another can take it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

_NO_DUE = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReadyStep:
    """A step that may start now, with what ranks it."""

    step_id: str
    capability: str
    expected_s: float
    priority: int = 0
    due: datetime | None = None
    released: tuple[datetime, str, int, int] | None = None
    avoid: str | None = None

    @property
    def rank(self) -> tuple[int, datetime, tuple[datetime, str, int, int] | tuple[()]]:
        # Higher priority first; earlier due first (no due date last); then FIFO.
        return (-self.priority, self.due or _NO_DUE, self.released or ())


@dataclass(frozen=True, slots=True)
class IdleCell:
    """A cell that can take a job now."""

    name: str
    capabilities: frozenset[str]
    factors: Mapping[str, float] = field(default_factory=dict)

    def duration(self, step: ReadyStep) -> float:
        return step.expected_s * self.factors.get(step.capability, 1.0)


def assign(
    ready: Iterable[ReadyStep], idle: Sequence[IdleCell]
) -> list[tuple[ReadyStep, IdleCell]]:
    """Pairs of (step, cell) to dispatch now; each cell gets at most one step."""
    free = list(idle)
    if not free:
        return []
    offered = frozenset().union(*(c.capabilities for c in free))
    pairs: list[tuple[ReadyStep, IdleCell]] = []
    for step in sorted((s for s in ready if s.capability in offered), key=lambda s: s.rank):
        capable = [c for c in free if step.capability in c.capabilities]
        if not capable:
            continue
        preferred = [c for c in capable if c.name != step.avoid] or capable
        cell = min(preferred, key=lambda c: (c.duration(step), c.name))
        pairs.append((step, cell))
        free.remove(cell)
        if not free:
            break
        offered = frozenset().union(*(c.capabilities for c in free))
    return pairs
