"""The controller's side of sharing a plant: taking and handing over cells, claiming and
letting go of units, and routing operator requests to the controller bound to act.

Decisions about membership are :mod:`mes.service.membership`'s; this module carries them
out on the controller's live state. Alone, a controller takes every cell and every
unit, and all of this reduces to picking up new releases once a second (sooner when
PostgreSQL notifies).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from mes.domain import CellEvent, CellState, Event, StepState, UnitState
from mes.domain.step import ON_CELL
from mes.errors import StoreError
from mes.service.operator import carry_out
from mes.service.watch import check_overdue
from mes.store import Changes

if TYPE_CHECKING:
    from mes.service.controller import Controller

log = logging.getLogger(__name__)

FINISHED = (UnitState.DONE.value, UnitState.SCRAPPED.value)


async def keep_membership(controller: Controller) -> None:
    """Survey every heartbeat: take the cells gained, give back excess idle ones. A failed
    store stops the controller (a lost lease does too, found by the heartbeat)."""
    membership = controller.membership
    while True:
        await asyncio.sleep(membership.options.heartbeat_s)
        try:
            beat = await membership.survey()
            await take_cells(controller, beat.gained)
            await hand_over(controller, beat.excess)
        except StoreError as exc:
            controller.fail(exc)
            return


async def take_cells(controller: Controller, gained: dict[str, int]) -> None:
    """Start driving cells just leased: their last recorded hold is kept, their row says
    offline until they connect, and the units with a job on them come into custody (to
    be reconciled with the cell by job id when it connects)."""
    if not gained:
        return
    rows = {r["name"]: r for r in await asyncio.to_thread(controller.store.cells)}
    changes = Changes()
    for name in sorted(gained):
        cell = controller.cells[name]
        row = rows.get(name, {})
        cell.hold = row.get("hold") or ""
        cell.waiting_for = row.get("waiting_for") or ""
        changes.add(cell)
    controller.membership.leases.update(gained)  # now requests for them come here
    await controller.recorder.commit(changes)
    units = await controller.membership.claim(on_cells=gained)
    await controller.take(units)
    if controller.membership.others:
        log.info("controller %s drives %s", controller.actor, ", ".join(sorted(gained)))
    for name in sorted(gained):
        controller.start_cell(name)


async def hand_over(controller: Controller, excess: int) -> None:
    """Give back cells above the fair share: ``excess`` of them take no new job (idle ones
    chosen first) and go to the other controllers once idle."""
    membership = controller.membership
    idle = controller.cell_idle
    draining = membership.draining
    if excess <= 0:
        draining.clear()
        return
    # Idle cells first, and of those the kinds held most of: what stays can still make
    # whole units.
    kinds = Counter(controller.cells[n].capabilities for n in membership.leases)
    order = sorted(
        membership.leases,
        key=lambda n: (not idle(n), -kinds[controller.cells[n].capabilities], n),
    )
    for name in order:
        if len(draining) >= excess:
            break
        draining.add(name)
        kinds[controller.cells[name].capabilities] -= 1
    going = sorted(name for name in draining if idle(name))
    if not going:
        return
    changes, now = Changes(), controller.clock()
    for name in going:
        await controller.stop_cell(name)
        cell = controller.cells[name]
        if cell.state is not CellState.OFFLINE:
            changes.add(
                Event.of(
                    cell.handle(CellEvent.DISCONNECT, now),
                    controller.actor,
                    reason="handed to another controller",
                ),
                cell,
            )
    await controller.recorder.commit(changes)
    await membership.give_up(going)
    log.info("controller %s hands over %s", controller.actor, ", ".join(going))


async def poll_work(controller: Controller) -> None:
    """Take new work once per ``poll_s``, and at once when woken (units let go, orders
    released, this controller's cells running low); with other controllers alive, let
    go of units that wait here."""
    while True:
        if not await _woken(controller.work_wake, controller.options.poll_s):
            controller.membership.dry = False  # a poll: look again whatever happened
        await claim_work(controller)
        if controller.membership.others:
            await hand_off(controller)


async def poll_requests(controller: Controller) -> None:
    """Overdue jobs and operator requests, once per ``poll_s`` and when one is queued."""
    while True:
        await _woken(controller.request_wake, controller.options.poll_s)
        await check_overdue(controller)
        for request in await asyncio.to_thread(controller.store.pending_requests):
            if await routed_here(controller, request):
                await carry_out(controller, request)


async def _woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` up to ``seconds``; whether it was set. (``asyncio.timeout``:
    on 3.11, ``wait_for`` can swallow the cancellation that stops the controller.)"""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    finally:
        event.clear()
    return True


async def claim_work(controller: Controller) -> None:
    """Take custody of free units: all of them when alone; with others alive, those with
    a ready step this controller's cells can do, a few per capable cell."""
    membership = controller.membership
    drivable = [
        controller.cells[name]
        for name in membership.leases
        if not controller.setups[name].read_only
    ]
    if not drivable:
        return
    if not membership.others and membership.options.cells is None:
        units = await membership.claim()
    else:
        capabilities = {c for cell in drivable for c in cell.capabilities}
        full = membership.options.claim_ahead * len(drivable)
        if len(controller.ready) > full // 2:
            return  # enough in hand: claim in batches (see Membership.running_low)
        want = full - len(controller.ready)
        units = await membership.claim(capabilities=capabilities, limit=want)
        membership.dry = len(units) < want
    await controller.take(units)


async def hand_off(controller: Controller) -> None:
    """Let go of units whose ready step waited ``handoff_s`` here, or that need a
    capability no cell of this controller has: another controller may take them."""
    now = asyncio.get_running_loop().time()
    limit = controller.membership.options.handoff_s
    capabilities = {
        c for name in controller.membership.leases for c in controller.cells[name].capabilities
    }
    changes = Changes()
    for unit in list(controller.units.values()):
        if any(s.state in ON_CELL for s in unit.steps):
            continue
        ready = [s for s in unit.steps if s.state is StepState.READY]
        if not ready:
            continue
        waited = now - controller.waiting_since.get(unit.id, now)
        if waited >= limit or not any(s.capability in capabilities for s in ready):
            changes.custody[unit.id] = ""
            controller.forget(unit)
    if changes:
        await controller.recorder.commit(changes)


async def routed_here(controller: Controller, request: dict[str, Any]) -> bool:
    """Whether this controller is the one to carry out ``request``: a cell's holder for a
    cell, a unit's custodian for a unit or step (taking custody of a free unit first), and
    the leader for the rest and for what nobody holds."""
    membership = controller.membership
    kind, target = request["action"].split(".", 1)[0], request["target"]
    if kind == "cell":
        return target in membership.leases or (membership.leader and target not in controller.cells)
    if kind not in ("unit", "step"):
        return membership.leader
    unit_id = target.split("/", 1)[0]
    if unit_id in controller.units:
        return True
    units = await membership.claim(ids=[unit_id])
    if units:
        await controller.take(units)
        return True
    found = await asyncio.to_thread(controller.store.custody, [unit_id])
    # Nobody can act on a unit that does not exist or is finished: the leader refuses.
    return membership.leader and (unit_id not in found or found[unit_id][1] in FINISHED)
