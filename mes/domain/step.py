"""One operation of one unit's routing, and its state machine.

Theory of operation: a step waits (``pending``) until the steps before it are done,
then is ``ready``. The dispatcher picks a cell and a fresh job id and the step becomes
``dispatched``; that is made durable *before* the job is handed to the cell, so after a
crash the controller knows which job id to ask the cell about. The cell echoes the id
(``running``) and reports the outcome (``done`` or ``failed``). A failed, aborted or
interrupted step goes back to ``ready`` only by an explicit ``retry``, which gives it a
new job id: a job id is never reused. ``interrupted`` marks a job whose fate is unknown
after a restart (the cell no longer knows it); it waits for an operator unless its cell
declares that re-running is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from mes.domain.machine import Transition, advance, table


class StepState(StrEnum):
    PENDING = "pending"
    READY = "ready"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ABORTED = "aborted"
    SKIPPED = "skipped"


class StepEvent(StrEnum):
    READY = "ready"
    DISPATCH = "dispatch"
    ACCEPT = "accept"
    REJECT = "reject"
    COMPLETE = "complete"
    FAIL = "fail"
    INTERRUPT = "interrupt"
    ABORT = "abort"
    RETRY = "retry"
    SKIP = "skip"
    REWORK = "rework"


_S, _E = StepState, StepEvent

STEP_TRANSITIONS: dict[tuple[StepState, StepEvent], StepState] = table(
    [
        (_S.PENDING, _E.READY, _S.READY),
        (_S.READY, _E.DISPATCH, _S.DISPATCHED),
        (_S.DISPATCHED, _E.ACCEPT, _S.RUNNING),
        (_S.DISPATCHED, _E.REJECT, _S.READY),
        # A cell may finish a job before its acceptance is recorded (fast cells,
        # or recovery finding the job already done).
        ((_S.DISPATCHED, _S.RUNNING), _E.COMPLETE, _S.DONE),
        ((_S.DISPATCHED, _S.RUNNING), _E.FAIL, _S.FAILED),
        ((_S.DISPATCHED, _S.RUNNING), _E.INTERRUPT, _S.INTERRUPTED),
        ((_S.READY, _S.DISPATCHED, _S.RUNNING), _E.ABORT, _S.ABORTED),
        ((_S.FAILED, _S.INTERRUPTED, _S.ABORTED), _E.RETRY, _S.READY),
        ((_S.PENDING, _S.READY), _E.SKIP, _S.SKIPPED),
        # Back into the plan: a finished step whose unit must be made again from here.
        ((_S.DONE, _S.FAILED), _E.REWORK, _S.PENDING),
    ]
)

#: States in which a step holds a job on a cell.
ON_CELL = frozenset({StepState.DISPATCHED, StepState.RUNNING})
#: States a step never leaves without an operator or a retry.
SETTLED = frozenset({StepState.DONE, StepState.SKIPPED})


@dataclass(slots=True)
class Step:
    """One operation of one unit: what it needs, what the cell gets, where and how it ran."""

    id: str
    unit_id: str
    seq: int
    name: str
    capability: str
    program_id: str
    expected_s: float
    state: StepState = StepState.PENDING
    #: Sequence numbers of the steps that must be settled first (a small graph).
    after: tuple[int, ...] = ()
    #: What drives setup times on a cell (material, colour, tool...).
    attributes: dict[str, str] = field(default_factory=dict)
    #: The cells this step's program fits; empty means any cell with the capability.
    cells: tuple[str, ...] = ()
    #: Limits on the result and the policy when missed: ``limits`` (name -> [low, high]),
    #: ``policy`` (retry, rework, scrap), ``retries``, ``rework_from`` (a step's seq).
    quality: dict[str, Any] = field(default_factory=dict)
    #: What a customer reads while the unit is at this step ("" : in production).
    stage: str = ""
    #: Part of the family's generic stage: made ahead to stock, or by the unit itself.
    generic: bool = False
    cell: str | None = None
    job_id: int | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] = field(default_factory=dict)

    def handle(self, event: StepEvent, at: datetime) -> Transition:
        """Apply ``event`` at time ``at``.

        Raises:
            InvalidTransition: the event is not allowed in the current state.
        """
        before = self.state
        self.state = advance(STEP_TRANSITIONS, f"step {self.id}", before, event)
        return Transition("step", self.id, event.value, before.value, self.state.value, at)

    def dispatch(self, cell: str, job_id: int, at: datetime) -> Transition:
        """Assign the step to ``cell`` under a new ``job_id`` (never reused)."""
        transition = self.handle(StepEvent.DISPATCH, at)
        self.cell = cell
        self.job_id = job_id
        self.attempts += 1
        self.started_at = None
        self.finished_at = None
        self.result = {}
        return transition

    def __repr__(self) -> str:
        return f"<Step {self.id} {self.state.value}>"
