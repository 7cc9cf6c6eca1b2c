"""Operator and planner requests: hold and resume a cell, hold and release a unit, scrap
a unit, retry a step, acknowledge an alarm.

Theory of operation: whoever asks (the CLI now, the dashboard later) queues a request in
the store; the controller takes pending requests in order and carries each out here.
Every precondition is checked before anything changes, so a refused request changes
nothing; the change, its journal entries and the request's answer (done or refused,
with the reason) are committed in one transaction: the audit trail names who asked,
from where, why, and what came of it. Holding a cell needs no login, ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from mes.domain import Cell, CellEvent, CellState, Event, StepEvent, StepState, UnitEvent, UnitState
from mes.domain.step import ON_CELL
from mes.errors import DeviceUnavailable, DomainError, JobRejected, NotFound, NotSupported
from mes.service.failures import rework
from mes.store import Changes

if TYPE_CHECKING:
    from mes.service.controller import Controller

Handler = Callable[["Controller", dict[str, Any], Changes, datetime], Awaitable[str]]


async def carry_out(controller: Controller, request: dict[str, Any]) -> None:
    """Carry out one queued request and record its answer with its change."""
    now = controller.clock()
    handler = HANDLERS.get(request["action"])
    changes = Changes()
    try:
        if handler is None:
            raise DomainError(
                f"unknown action {request['action']!r} (known: {', '.join(HANDLERS)})"
            )
        result, state = await handler(controller, request, changes, now), "done"
    except DomainError as exc:
        changes, result, state = Changes(), str(exc), "refused"
    changes.answer(request["id"], state, result, now)
    changes.add(
        Event(
            now,
            request["actor"],
            "request",
            request["target"],
            request["action"],
            "",
            state,
            {
                "request": request["id"],
                "source": request["source"],
                "reason": request["reason"],
                "result": result,
            },
        )
    )
    await controller.recorder.commit(changes)
    controller.wake()


def _cell(controller: Controller, name: str) -> Any:
    cell = controller.cells.get(name)
    if cell is None:
        raise NotFound(f"no cell {name!r} (cells: {', '.join(controller.cells)})")
    return cell


def _unit(controller: Controller, unit_id: str) -> Any:
    unit = controller.units.get(unit_id)
    if unit is None:
        raise NotFound(f"no unfinished unit {unit_id!r} (it is done, scrapped or unknown)")
    return unit


async def hold_cell(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    cell = _cell(controller, request["target"])
    if cell.hold:
        return "already held"
    if cell.state is CellState.EXECUTE:
        try:
            await _control(controller, cell.name, "hold")
            paused = True
        except NotSupported:
            paused = False
    controller.ready.dispatcher.cell_down(cell.name)
    cell.hold = request["reason"] or f"held by {request['actor']}"
    changes.add(cell)
    if cell.state is CellState.HELD:
        return f"held (it also waits for an operator to {cell.waiting_for})"
    if cell.state is CellState.IDLE:
        changes.add(
            Event.of(cell.handle(CellEvent.HOLD, now), request["actor"], reason=request["reason"]),
            cell,
        )
        return "held"
    if cell.state is CellState.EXECUTE:
        if not paused:
            return f"held after its current job (cell {cell.name} cannot pause a job)"
        changes.add(
            Event.of(cell.handle(CellEvent.PAUSE, now), request["actor"], reason=request["reason"]),
            cell,
        )
        return f"paused job {cell.job_id} on the machine; no new job until resumed"
    return f"held after its current job (cell is {cell.state.value})"


async def _control(
    controller: Controller, cell: str, command: Literal["hold", "resume", "abort"]
) -> None:
    """Send ``command`` to the cell's machine; a refusal or a lost link is the operator's
    answer (NotSupported is left to the caller, which may fall back)."""
    try:
        await controller.supervisors[cell].control(command)
    except (JobRejected, DeviceUnavailable) as exc:
        raise DomainError(f"cell {cell} did not {command}: {exc}") from exc


async def resume_cell(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    cell = _cell(controller, request["target"])
    if cell.waiting_for:
        raise DomainError(
            f"cell {cell.name} waits for an operator to {cell.waiting_for}; once that is "
            f"done: mes cell confirm {cell.name}"
        )
    if cell.state is CellState.HELD and cell.job_id is not None:  # paused with its job
        try:
            await _control(controller, cell.name, "resume")
        except NotSupported as exc:
            raise DomainError(f"cell {cell.name} cannot resume remotely: {exc}") from exc
        changes.add(
            Event.of(
                cell.handle(CellEvent.RESUME, now), request["actor"], reason=request["reason"]
            ),
            cell,
        )
    elif cell.hold and cell.state is not CellState.HELD:
        pass  # the hold was to come when its job ends: no longer
    elif cell.state is CellState.HELD:
        changes.add(
            Event.of(
                cell.handle(CellEvent.UNHOLD, now), request["actor"], reason=request["reason"]
            ),
            cell,
        )
    else:
        raise DomainError(f"cell {cell.name} is not held (it is {cell.state.value})")
    cell.hold = ""
    changes.add(cell)
    controller.ready.dispatcher.cell_up(cell.name, cell.capabilities)
    return "resumed"


async def confirm_cell(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    """An operator did what the cell waited for (bed cleared, stock changed)."""
    cell = _cell(controller, request["target"])
    if not cell.waiting_for:
        raise DomainError(f"cell {cell.name} waits for no confirmation (it is {cell.state.value})")
    done, cell.waiting_for = cell.waiting_for, ""
    changes.clear(cell.name, "attend", now)
    changes.add(cell)
    if cell.hold:
        return f"confirmed ({done}); still held: {cell.hold}"
    changes.add(
        Event.of(
            cell.handle(CellEvent.UNHOLD, now),
            request["actor"],
            confirmed=done,
            reason=request["reason"],
        ),
        cell,
    )
    controller.ready.dispatcher.cell_up(cell.name, cell.capabilities)
    return f"confirmed ({done}); it takes the next job"


async def hold_unit(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    unit = _unit(controller, request["target"])
    changes.add(
        Event.of(unit.handle(UnitEvent.HOLD, now), request["actor"], reason=request["reason"]), unit
    )
    controller.ready.refresh(unit)
    running = [s.id for s in unit.steps if s.state in ON_CELL]
    return "held" + (f"; {running[0]} runs on to its end" if running else "")


async def release_unit(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    unit = _unit(controller, request["target"])
    changes.add(
        Event.of(unit.handle(UnitEvent.UNHOLD, now), request["actor"], reason=request["reason"]),
        unit,
    )
    controller.ready.refresh(unit)
    return "released from hold"


async def scrap_unit(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    unit = _unit(controller, request["target"])
    running = [s for s in unit.steps if s.state in ON_CELL]
    if running:
        raise DomainError(f"{running[0].id} runs on {running[0].cell}: wait for it to end")
    changes.add(
        Event.of(unit.handle(UnitEvent.SCRAP, now), request["actor"], reason=request["reason"]),
        unit,
    )
    changes.clear("", unit.id, now)
    for step in unit.steps:
        changes.clear("", step.id, now)
    controller.forget(unit)
    return "scrapped"


async def retry_step(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    step = controller.steps.get(request["target"])
    if step is None:
        raise NotFound(f"no step {request['target']!r} of an unfinished unit")
    unit = controller.units[step.unit_id]
    if step.state not in (StepState.FAILED, StepState.INTERRUPTED, StepState.ABORTED):
        raise DomainError(
            f"step {step.id} is {step.state.value}: only a failed, interrupted "
            "or aborted step can be retried"
        )
    if unit.state not in (UnitState.IN_PROGRESS, UnitState.FAILED):
        raise DomainError(f"unit {unit.id} is {unit.state.value}")
    if unit.state is UnitState.FAILED:
        changes.add(
            Event.of(
                unit.handle(UnitEvent.REWORK, now), request["actor"], reason=request["reason"]
            ),
            unit,
        )
    changes.add(
        Event.of(step.handle(StepEvent.RETRY, now), request["actor"], reason=request["reason"]),
        step,
    )
    changes.clear("", step.id, now)
    changes.clear("", unit.id, now)
    controller.make_ready(step)
    return "will run again under a new job id"


async def rework_unit(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    unit = _unit(controller, request["target"])
    name = request["args"].get("step", "")
    step = next((s for s in unit.steps if s.name == name), None)
    if step is None:
        names = ", ".join(s.name for s in unit.steps)
        raise DomainError(f"unit {unit.id} has no step {name!r} (steps: {names})")
    if any(s.state in ON_CELL for s in unit.steps):
        raise DomainError(f"unit {unit.id} is in a cell now: wait for its job to end")
    if unit.state is UnitState.FAILED:
        changes.add(
            Event.of(
                unit.handle(UnitEvent.REWORK, now), request["actor"], reason=request["reason"]
            ),
            unit,
        )
    elif unit.state is not UnitState.IN_PROGRESS:
        raise DomainError(f"unit {unit.id} is {unit.state.value}")
    rework(controller, unit, step.seq, changes, now, request["actor"], request["reason"])
    changes.clear("", unit.id, now)
    controller.ready.refresh(unit)
    return f"back to {step.name}"


async def abort_step(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    step = controller.steps.get(request["target"])
    if step is None:
        raise NotFound(f"no step {request['target']!r} of an unfinished unit")
    if step.state in ON_CELL:
        assert step.cell is not None and step.job_id is not None
        if controller.cells[step.cell].job_id != step.job_id:
            raise DomainError(f"step {step.id} is being handed to {step.cell}: try again")
        try:
            await _control(controller, step.cell, "abort")
        except NotSupported as exc:
            raise DomainError(
                f"step {step.id} runs on {step.cell}, which cannot abort remotely: "
                "stop it at the machine"
            ) from exc
        controller.aborting[step.job_id] = request["actor"]
        return (
            f"abort sent to {step.cell}; job {step.job_id} ends as failed and unit "
            f"{step.unit_id} waits for an operator"
        )
    unit = controller.units[step.unit_id]
    changes.add(
        Event.of(step.handle(StepEvent.ABORT, now), request["actor"], reason=request["reason"]),
        step,
    )
    controller.ready.discard(step)
    if unit.state is UnitState.RELEASED:
        changes.add(Event.of(unit.handle(UnitEvent.START, now), request["actor"]))
    if unit.state in (UnitState.IN_PROGRESS, UnitState.HELD):
        changes.add(
            Event.of(unit.handle(UnitEvent.FAIL, now), request["actor"], reason=request["reason"]),
            unit,
        )
    controller.ready.refresh(unit)
    return f"aborted; unit {unit.id} waits for an operator (retry, rework or scrap)"


async def ack_alarm(
    controller: Controller, request: dict[str, Any], changes: Changes, now: datetime
) -> str:
    try:
        alarm_id = int(request["target"])
    except ValueError:
        raise NotFound(f"no alarm {request['target']!r}: alarm ids are numbers") from None
    found = await asyncio.to_thread(controller.store.alarm, alarm_id)
    if found is None:
        raise NotFound(f"no alarm {alarm_id}")
    if found["acked_at"] is not None:
        return f"already acknowledged by {found['acked_by']}"
    changes.acks[alarm_id] = (request["actor"], now)
    return "acknowledged"


HANDLERS: dict[str, Handler] = {
    "cell.hold": hold_cell,
    "cell.resume": resume_cell,
    "cell.confirm": confirm_cell,
    "unit.hold": hold_unit,
    "unit.release": release_unit,
    "unit.scrap": scrap_unit,
    "unit.rework": rework_unit,
    "step.retry": retry_step,
    "step.abort": abort_step,
    "alarm.ack": ack_alarm,
}


def wait_for_operator(
    controller: Controller, cell: Cell, prompt: str, why: str, changes: Changes, now: datetime
) -> None:
    """Hold idle ``cell`` until an operator confirms ``prompt`` (``mes cell confirm``)."""
    controller.ready.dispatcher.cell_down(cell.name)
    if cell.waiting_for != prompt:  # not raised yet (a restart finds it raised)
        changes.alarm(
            "low",
            f"waiting for an operator: {prompt} ({why}); then mes cell confirm {cell.name}",
            now,
            cell=cell.name,
            subject="attend",
            code="attend",
        )
    cell.waiting_for = prompt
    event = cell.handle(CellEvent.HOLD, now)
    changes.add(Event.of(event, controller.actor, waiting_for=prompt, reason=why), cell)
