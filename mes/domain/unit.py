"""A unit: one custom product (family + option values) of an order, and its state machine.

Theory of operation: a unit is ``released`` with its whole routing planned. When its
first step is dispatched it is ``in_progress``; when every step is done or skipped it is
``done``. Steps run in any order their ``after`` graph allows. A step that fails beyond
its retries makes the unit ``failed``, which waits for an operator (rework sends it
back into production, scrap ends it). An operator can
``hold`` a unit that is waiting or in progress: no new step of it is dispatched until it
is released from hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from mes.domain.machine import Transition, advance, table
from mes.domain.step import SETTLED, Step, StepState


class UnitState(StrEnum):
    RELEASED = "released"
    IN_PROGRESS = "in_progress"
    HELD = "held"
    DONE = "done"
    FAILED = "failed"
    SCRAPPED = "scrapped"


class UnitEvent(StrEnum):
    START = "start"
    HOLD = "hold"
    UNHOLD = "unhold"
    FINISH = "finish"
    FAIL = "fail"
    REWORK = "rework"
    SCRAP = "scrap"


_S, _E = UnitState, UnitEvent

UNIT_TRANSITIONS: dict[tuple[UnitState, UnitEvent], UnitState] = table(
    [
        (_S.RELEASED, _E.START, _S.IN_PROGRESS),
        ((_S.RELEASED, _S.IN_PROGRESS), _E.HOLD, _S.HELD),
        (_S.HELD, _E.UNHOLD, _S.IN_PROGRESS),
        (_S.IN_PROGRESS, _E.FINISH, _S.DONE),
        ((_S.IN_PROGRESS, _S.HELD), _E.FAIL, _S.FAILED),
        (_S.FAILED, _E.REWORK, _S.IN_PROGRESS),
        ((_S.RELEASED, _S.IN_PROGRESS, _S.HELD, _S.FAILED), _E.SCRAP, _S.SCRAPPED),
    ]
)

#: Units that will never be worked on again.
FINISHED = frozenset({UnitState.DONE, UnitState.SCRAPPED})


@dataclass(slots=True)
class Unit:
    """One custom unit: its family, its chosen options and its own routing."""

    id: str
    order_id: str
    seq: int
    family: str
    options: dict[str, Any]
    released_at: datetime
    state: UnitState = UnitState.RELEASED
    finished_at: datetime | None = None
    steps: list[Step] = field(default_factory=list)
    #: The variant of its generic steps (a key, see :func:`routing.family.variant_key`):
    #: blanks of this variant may stand in for them ("" : the family makes no blanks).
    variant: str = ""

    def handle(self, event: UnitEvent, at: datetime) -> Transition:
        """Apply ``event`` at time ``at``.

        Raises:
            InvalidTransition: the event is not allowed in the current state.
        """
        before = self.state
        self.state = advance(UNIT_TRANSITIONS, f"unit {self.id}", before, event)
        if self.state in FINISHED:
            self.finished_at = at
        return Transition("unit", self.id, event.value, before.value, self.state.value, at)

    def next_ready(self) -> list[Step]:
        """Pending steps whose predecessors (``Step.after``) are all done or skipped."""
        settled = {step.seq for step in self.steps if step.state in SETTLED}
        return [
            step
            for step in self.steps
            if step.state is StepState.PENDING and settled.issuperset(step.after)
        ]

    @property
    def complete(self) -> bool:
        """Whether every step of the routing is done or skipped."""
        return all(step.state in SETTLED for step in self.steps)

    def __repr__(self) -> str:
        return f"<Unit {self.id} {self.family} {self.state.value}>"
