"""Recovery: reconcile a cell that (re)connected with the steps recorded on it.

Theory of operation: when a cell connects, its :class:`CellStatus` (current job, last
finished job and its report) is compared with the steps the store says are on it, by
job id. A job the cell runs is followed, one it finished last is recorded from its
report (never re-run), one it never received is handed over again under the same id,
and one it lost is interrupted (re-run under a new id only where the cell's config says
that is safe). While this is recorded the cell takes no new job, and a report of a job
found finished settles its step without moving the cell (see ``Controller.job_finished``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mes.domain import Cell, CellEvent, CellState, CellStatus, Event, StepEvent, StepState
from mes.domain.step import ON_CELL
from mes.service.failures import interrupt
from mes.service.operator import wait_for_operator
from mes.service.supervisor import Action
from mes.store import Changes

if TYPE_CHECKING:
    from mes.service.controller import Controller


async def reconcile(controller: Controller, name: str, status: CellStatus) -> Action | None:
    """Reconcile cell ``name`` that reports ``status``; return what its supervisor does."""
    cell, now = controller.cells[name], controller.clock()
    if not controller.setups[name].read_only:
        controller.ready.dispatcher.cell_up(name, cell.capabilities)
    changes = Changes()
    changes.add(
        Event.of(
            cell.handle(CellEvent.CONNECT, now), controller.actor, reported=status.state.value
        ),
        cell,
    )
    changes.clear(name, "link", now)
    controller._reconciling.add(name)
    on_cell = [s for s in controller.steps.values() if s.cell == name and s.state in ON_CELL]
    # The one the cell knows comes first; any other was never delivered (the cell runs
    # one job at a time), so it is handled as such below, after this one.
    on_cell.sort(key=lambda s: s.job_id not in (status.job_id, status.last_job_id))
    step = on_cell[0] if on_cell else None
    for stale in on_cell[1:]:
        if stale.state is StepState.DISPATCHED:
            changes.add(
                Event.of(
                    stale.handle(StepEvent.REJECT, now),
                    controller.actor,
                    job_id=stale.job_id,
                    reason="never delivered: the cell had another job",
                ),
                stale,
            )
            changes.job(stale, state="rejected")
            controller.make_ready(stale)
        else:
            interrupt(controller, stale, changes, "the cell no longer knows this job", now)
    action: Action | None = None
    finished = None
    if step is not None:
        assert step.job_id is not None
        program = await controller.programs.get(step.program_id)
        job = controller._job(step, name, program)
        if status.job_id == step.job_id:
            changes.add(Event.of(cell.handle(CellEvent.START, now), controller.actor))
            changes.add(
                Event.of(
                    cell.handle(CellEvent.ACCEPT, now),
                    controller.actor,
                    job_id=step.job_id,
                    recovered=True,
                )
            )
            cell.job_id = step.job_id
            if step.state is StepState.DISPATCHED:
                changes.add(Event.of(step.handle(StepEvent.ACCEPT, now), controller.actor))
                step.started_at = step.started_at or now
                changes.job(step)
            changes.add(step)
            action = Action("follow", job)
        elif status.last_job_id == step.job_id and status.last_report is not None:
            finished = (job, status.last_report)
        elif (
            step.state is StepState.DISPATCHED
            and not controller.supervisors[name].driver.remembers_jobs
        ):
            # The cell cannot say whether the hand-off reached it (a print streams from
            # its host): it may have begun, so it is never sent again under this id.
            interrupt(
                controller, step, changes, "the hand-off may have begun; the cell cannot say", now
            )
        elif step.state is StepState.DISPATCHED:
            # The hand-off was recorded but never reached the cell: hand it over
            # again under the same job id (the cell refuses an id it already ran).
            changes.add(
                Event.of(
                    cell.handle(CellEvent.START, now),
                    controller.actor,
                    job_id=step.job_id,
                    again=True,
                )
            )
            cell.job_id = step.job_id
            action = Action("start", job)
        else:
            interrupt(controller, step, changes, "the cell no longer knows this job", now)
    if action is None and cell.state is CellState.IDLE:
        _hold_again(controller, cell, step is not None, changes, now)
    try:
        await controller.recorder.commit(changes)
        if finished is not None:
            await controller.job_finished(name, *finished)
    finally:
        controller._reconciling.discard(name)
    controller._wake.set()
    return action


def _hold_again(
    controller: Controller, cell: Cell, ended_a_job: bool, changes: Changes, now: datetime
) -> None:
    """Hold a connected idle cell again if an operator's hold or confirmation is due: an
    operator holds it (a hold outlives lost links and restarts), it waits for a
    confirmation, or needs one after a job it ended while the controller was away."""
    prompt = controller.setups[cell.name].confirm_after_job
    if cell.waiting_for or (prompt and ended_a_job):
        why = "a job ended while the controller was away" if ended_a_job else "still waiting"
        wait_for_operator(controller, cell, cell.waiting_for or prompt, why, changes, now)
    elif cell.hold:
        controller.ready.dispatcher.cell_down(cell.name)
        changes.add(
            Event.of(
                cell.handle(CellEvent.HOLD, now),
                controller.actor,
                reason=f"still held by an operator: {cell.hold}",
            ),
            cell,
        )
