"""Operator actions: requests queued in the store exactly as the CLI queues them.

The dashboard never changes production itself: it inserts a request row (who, from
where, what, on what, why) and the controller carries it out and answers through the
same row (``service/operator.py``). :class:`Requests` submits and then waits for the
answer in a worker thread, so a slow or absent controller never freezes the screen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from mes.store import Store

Reason = Literal["none", "optional", "required"]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One operator action: the request it queues and how it is asked for."""

    action: str
    title: str
    """Imperative, for the palette and the dialog: "Hold cell"."""
    reason: Reason
    """Whether the dialog asks for a reason; holding a cell never needs one."""
    confirm: bool
    help: str


ACTIONS: dict[str, ActionSpec] = {
    spec.action: spec
    for spec in (
        ActionSpec(
            "cell.hold",
            "Hold cell",
            "optional",
            True,
            "No new job goes to the cell; a running job pauses where the machine can.",
        ),
        ActionSpec("cell.resume", "Resume cell", "optional", True, "Resume a held cell."),
        ActionSpec(
            "cell.confirm",
            "Confirm cell (bed cleared / done)",
            "optional",
            True,
            "Confirm what the cell waits for between jobs; it takes the next job.",
        ),
        ActionSpec(
            "unit.hold",
            "Hold unit",
            "required",
            True,
            "None of the unit's steps is dispatched until it is released.",
        ),
        ActionSpec(
            "unit.release", "Release unit", "required", True, "Release a held unit into production."
        ),
        ActionSpec(
            "unit.scrap", "Scrap unit", "required", True, "The unit leaves production for good."
        ),
        ActionSpec(
            "unit.rework",
            "Rework unit",
            "required",
            True,
            "Send the unit back to a step: it and every later step run again.",
        ),
        ActionSpec(
            "step.retry",
            "Retry step",
            "required",
            True,
            "Run a failed, interrupted or aborted step again under a new job id.",
        ),
        ActionSpec(
            "step.abort",
            "Abort step",
            "required",
            True,
            "Abort the step (stops the machine if it runs); its unit waits for an operator.",
        ),
        ActionSpec("alarm.ack", "Acknowledge alarm", "none", False, "Acknowledge the alarm."),
    )
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of a request: ``done``, ``refused`` or still ``pending``."""

    request_id: int
    action: str
    target: str
    state: str
    result: str

    @property
    def text(self) -> str:
        if self.state == "pending":
            return (
                f"request {self.request_id} ({self.action} {self.target}) is queued: no "
                "controller has taken it yet; it is carried out when one runs"
            )
        spec = ACTIONS.get(self.action)
        title = spec.title if spec else self.action
        return f"{title} {self.target}: {self.result}"


class Requests:
    """Queues operator requests in the store and waits for the controller's answers."""

    def __init__(self, store: Store, operator: str, source: str = "dashboard") -> None:
        self.store = store
        self.operator = operator
        self.source = source

    def submit(
        self, action: str, target: str, reason: str = "", args: Mapping[str, Any] | None = None
    ) -> int:
        """Queue one request (blocking: call it from a thread); return its id."""
        return self.store.submit(
            datetime.now(UTC),
            self.operator,
            self.source,
            action,
            target,
            reason,
            dict(args) if args else None,
        )

    async def answer(
        self, request_id: int, action: str, target: str, wait_s: float = 15.0
    ) -> Answer:
        """The controller's answer, or the request still pending after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            row = await asyncio.to_thread(self.store.request, request_id)
            state = "pending" if row is None else str(row["state"])
            if state != "pending" or time.monotonic() >= deadline:
                result = "" if row is None else str(row["result"])
                return Answer(request_id, action, target, state, result)
            await asyncio.sleep(0.2)  # the controller answers through the store
