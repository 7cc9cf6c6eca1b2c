"""Watching the running plant: jobs overdue on their cell, and tasks that must end.

Theory of operation: :func:`check_overdue` runs with the controller's request poll (every
``poll_s``): a job running longer than ``overdue_factor`` x its expected time plus
``overdue_grace_s`` raises one alarm and a journal entry; the alarm clears with the job's
end like every alarm on the step. :func:`cancel_all` ends the controller's tasks even when
a library swallows a cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mes.domain import Event, StepState
from mes.errors import StoreError
from mes.store import Changes, Store

if TYPE_CHECKING:
    from mes.service.controller import Controller

log = logging.getLogger(__name__)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended.

    A cancellation can be lost inside a library (on Python 3.11 ``asyncio.wait_for``
    returns a reply that arrives in the same loop iteration as the cancellation, and
    pymodbus waits for every reply that way), so whatever still runs after a second is
    cancelled again rather than waited for forever.
    """
    pending = {t for t in tasks if not t.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        for task in pending:
            log.warning("task %s ignored a cancellation; cancelling it again", task.get_name())
            task.cancel()


async def check_overdue(controller: Controller) -> None:
    """Alarm (once per job) when a job runs far past its expected time."""
    now, changes = controller.clock(), Changes()
    for step in controller.steps.values():
        if (
            step.state is not StepState.RUNNING
            or step.started_at is None
            or step.cell is None
            or step.job_id in controller._overdue
        ):
            continue
        factor = controller.setups[step.cell].factors.get(step.capability, 1.0)
        expected = step.expected_s * factor
        limit = expected * controller.options.overdue_factor + controller.options.overdue_grace_s
        if (now - step.started_at).total_seconds() > limit:
            assert step.job_id is not None
            controller._overdue.add(step.job_id)
            changes.add(
                Event(
                    now,
                    controller.actor,
                    "job",
                    str(step.job_id),
                    "overdue",
                    data={"cell": step.cell, "step": step.id, "limit_s": round(limit, 1)},
                )
            )
            changes.alarm(
                "medium",
                f"job {step.job_id} ({step.id}) overdue: running longer than "
                f"{limit:.0f} s (expected {expected:.0f} s)",
                now,
                cell=step.cell,
                subject=step.id,
                code="overdue",
            )
    if changes:
        await controller.recorder.commit(changes)


async def publish_progress(controller: Controller) -> None:
    """Record each held cell's job progress and sensor readings about once a second
    (when they changed), beside the other commits, so watchers in other processes (the
    dashboard) see them."""
    written: dict[str, float] = {}
    heard: dict[str, dict[str, list[float | None]]] = {}
    while True:
        await asyncio.sleep(controller.options.progress_s)
        held = list(controller.membership.leases)
        now = {name: round(controller.progress.get(name, 0.0), 3) for name in held}
        changed = {n: p for n, p in now.items() if written.get(n, 0.0) != p}
        readings = {
            name: {
                sensor: [round(r.value, 1), None if r.target is None else round(r.target, 1)]
                for sensor, r in controller.supervisors[name].driver.readings().items()
            }
            for name in held
        }
        fresh = {n: r for n, r in readings.items() if heard.get(n, {}) != r}
        if changed or fresh:
            await controller.recorder.commit(Changes(progress=changed, readings=fresh))
            written.update(changed)
            heard.update(fresh)


async def checkpoints(store: Store) -> None:
    """Checkpoint the SQLite WAL every second, beside the commits, not inside one (the
    owner calls :meth:`Store.take_over_checkpoints` first, before any thread connects)."""
    while True:
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(store.checkpoint)
        except StoreError as exc:
            log.warning("%s (the WAL grows until a checkpoint succeeds)", exc)
