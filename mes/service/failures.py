"""What follows a failed step: the journal, the as-built result and an alarm; then a
retry on another cell, rework from a named step or scrap by the family's quality policy,
or the unit failed for an operator. And a job lost on a cell: interrupted, re-run only
where the cell's config says that is safe. Decisions on the controller's live state,
recorded in the caller's batch.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from mes.domain import Event, Step, StepEvent, StepState, Unit, UnitEvent, UnitState
from mes.store import Changes

if TYPE_CHECKING:
    from mes.service.controller import Controller

log = logging.getLogger(__name__)


def record_failure(
    controller: Controller,
    step: Step,
    cell: str,
    code: str,
    text: str,
    changes: Changes,
    now: datetime,
    measurements: dict[str, float] | None = None,
) -> None:
    """Fail ``step``'s job on ``cell``: journal, as-built result, a high alarm."""
    job_id = step.job_id
    event = step.handle(StepEvent.FAIL, now)
    changes.add(Event.of(event, controller.actor, job_id=job_id, cell=cell, code=code, text=text))
    step.finished_at = now
    step.result = {"outcome": "unsuccessful", "code": code, "text": text}
    if measurements is not None:
        step.result["measurements"] = measurements
    changes.job(step)
    alarm = f"{code} {text} (job {job_id}, {step.id})"
    changes.alarm("high", alarm, now, cell=cell, subject=step.id, code=code)


def after_failure(
    controller: Controller,
    unit: Unit,
    step: Step,
    cell: str,
    changes: Changes,
    now: datetime,
    quality: bool = False,
) -> None:
    if controller.replanner is not None:
        controller.replanner.request()  # the plan assumed this step would succeed
    controller._avoid[step.id] = cell  # another cell next time, if one can take it
    policy = step.quality.get("policy", "retry") if quality else "retry"
    attempts = step.quality.get("retries", 2) + 1 if quality else controller.options.max_attempts
    if policy == "scrap" and unit.state is not UnitState.HELD:
        changes.add(
            Event.of(
                unit.handle(UnitEvent.SCRAP, now),
                controller.actor,
                step=step.id,
                reason="out of limits: the family scraps",
            ),
            unit,
        )
        changes.alarm(
            "medium",
            f"unit {unit.id} scrapped: {step.id} out of limits",
            now,
            cell=cell,
            subject=unit.id,
            code="quality-scrap",
        )
        controller.forget(unit)
        return
    if policy == "rework" and step.attempts < attempts:
        rework_from_failure(controller, unit, step, changes, now)
        return
    if step.attempts < attempts:
        changes.add(
            Event.of(
                step.handle(StepEvent.RETRY, now),
                controller.actor,
                attempt=step.attempts + 1,
                avoid=cell,
            )
        )
        controller.make_ready(step)
    elif unit.state in (UnitState.IN_PROGRESS, UnitState.HELD):
        changes.add(
            Event.of(
                unit.handle(UnitEvent.FAIL, now),
                controller.actor,
                step=step.id,
                attempts=step.attempts,
            ),
            unit,
        )
        changes.alarm(
            "high",
            f"unit failed: {step.name} failed {step.attempts} times; an operator decides "
            f"(mes step retry {step.id} | mes unit scrap {unit.id})",
            now,
            cell=cell,
            subject=unit.id,
            code="unit-failed",
        )


def rework_from_failure(
    controller: Controller, unit: Unit, failed: Step, changes: Changes, now: datetime
) -> None:
    """Make the unit again from the family's ``rework_from`` step onwards."""
    start = failed.quality.get("rework_from", failed.seq)
    rework(controller, unit, start, changes, now, controller.actor, f"{failed.name} out of limits")


def rework(
    controller: Controller,
    unit: Unit,
    start: int,
    changes: Changes,
    now: datetime,
    actor: str,
    reason: str,
) -> None:
    """Send ``unit`` back to step ``start``: that step and every later one that ended
    (done, failed, aborted, interrupted) waits to run again."""
    for step in unit.steps:
        if step.seq < start:
            continue
        if step.state in (StepState.DONE, StepState.FAILED):
            event = StepEvent.REWORK
        elif step.state in (StepState.ABORTED, StepState.INTERRUPTED):
            event = StepEvent.RETRY
        else:
            continue
        changes.add(Event.of(step.handle(event, now), actor, reason=reason), step)
        if event is StepEvent.RETRY:  # straight back to ready
            controller.make_ready(step)
    for step in unit.next_ready():
        changes.add(Event.of(step.handle(StepEvent.READY, now), actor), step)
        controller.make_ready(step)


def interrupt(
    controller: Controller, step: Step, changes: Changes, reason: str, now: datetime
) -> None:
    changes.add(
        Event.of(
            step.handle(StepEvent.INTERRUPT, now),
            controller.actor,
            job_id=step.job_id,
            reason=reason,
        ),
        step,
    )
    step.result = {"outcome": "interrupted", "text": reason}
    changes.job(step)
    assert step.cell is not None
    if controller.setups[step.cell].rerun_interrupted:
        changes.add(
            Event.of(
                step.handle(StepEvent.RETRY, now),
                controller.actor,
                reason="cell allows re-running an interrupted job",
            )
        )
        controller.make_ready(step)
    else:
        log.warning(
            "step %s interrupted on %s: %s; waiting for an operator", step.id, step.cell, reason
        )
        changes.alarm(
            "high",
            f"job {step.job_id} lost: {reason}; it may have been part-made, so it is not "
            f"re-run unattended (mes step retry {step.id} | mes unit scrap {step.unit_id})",
            now,
            cell=step.cell,
            subject=step.id,
            code="interrupted",
        )
    controller.ready.refresh(controller.units[step.unit_id])
