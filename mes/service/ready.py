"""The ready steps and the dispatcher that chooses among them, kept in step.

A step is *ready* when its predecessors are settled; it is *offered* to the dispatcher
only while its unit may run: released or in progress, and not in a cell already (a unit
is one physical thing, in one place at a time). When a unit goes into a cell its other
ready steps are withdrawn; when it comes out they are offered again. The dispatcher
(:class:`routing.scheduling.dispatch.Dispatcher`) keeps the offered steps indexed, so a
decision costs microseconds however long the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from mes.domain import Order, Step, Unit, UnitState
from mes.domain.step import ON_CELL, SETTLED
from routing.scheduling.dispatch import Dispatcher, IdleCell, ReadyStep

_RUNNABLE = (UnitState.RELEASED, UnitState.IN_PROGRESS)


class ReadySteps:
    """Ready steps by id, and the dispatcher's view of those whose unit may run now."""

    def __init__(
        self,
        rule: str,
        units: Mapping[str, Unit],
        orders: Mapping[str, Order],
        avoid: Callable[[str], str | None],
    ) -> None:
        self.dispatcher = Dispatcher(rule)
        self.units = units
        self.orders = orders
        self.avoid = avoid
        self._steps: dict[str, Step] = {}

    def __contains__(self, step_id: object) -> bool:
        return step_id in self._steps

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(list(self._steps.values()))

    def add(self, step: Step) -> None:
        """``step`` became ready; offer it if its unit may run now."""
        self._steps[step.id] = step
        if self.runnable(self.units[step.unit_id]):
            self.dispatcher.add(self.view(step))

    def discard(self, step: Step) -> None:
        """``step`` is no longer ready (dispatched, aborted, failed for good)."""
        if self._steps.pop(step.id, None) is not None:
            self.dispatcher.remove(step.id)

    def refresh(self, unit: Unit) -> None:
        """Offer or withdraw ``unit``'s ready steps after its state changed."""
        runnable = self.runnable(unit)
        for step in unit.steps:
            if step.id in self._steps:
                if runnable:
                    self.dispatcher.add(self.view(step))
                else:
                    self.dispatcher.remove(step.id)

    def assign(self, idle: Sequence[IdleCell]) -> list[tuple[ReadyStep, IdleCell]]:
        """Pairs to dispatch now, one per cell and one per unit; the steps stay ready
        until :meth:`discard` (a pair the caller drops is offered again by
        :meth:`refresh`)."""
        pairs = self.dispatcher.assign(idle)
        seen: set[str] = set()
        out = []
        for ready, cell in pairs:
            unit_id = self._steps[ready.step_id].unit_id
            if unit_id in seen:
                self.dispatcher.add(ready)  # one step per unit at a time
                continue
            seen.add(unit_id)
            out.append((ready, cell))
        return out

    @staticmethod
    def runnable(unit: Unit) -> bool:
        return unit.state in _RUNNABLE and not any(s.state in ON_CELL for s in unit.steps)

    def view(self, step: Step) -> ReadyStep:
        """What the dispatcher needs to know of ``step``."""
        unit = self.units[step.unit_id]
        order = self.orders.get(unit.order_id)
        remaining = sum(
            s.expected_s for s in unit.steps if s.state not in SETTLED and s.id != step.id
        )
        return ReadyStep(
            step.id,
            step.capability,
            step.expected_s,
            priority=order.priority if order else 0,
            due=order.due if order else None,
            released=(unit.released_at, unit.order_id, unit.seq, step.seq),
            avoid=self.avoid(step.id),
            attributes=step.attributes,
            remaining_s=remaining,
            cells=frozenset(step.cells),
        )
