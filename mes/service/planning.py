"""Planning ahead: the optimizer orders the open work; the dispatcher follows the plan.

Theory of operation: when new work arrives or a cell goes down (and at most once per
``interval_s``), the :class:`Replanner` takes a snapshot of the open work: every step
not yet started of every unit that may run, with its eligible cells and durations, its
precedence and setup attributes; every cell with what it is set up for, whether it is
up, and when it will be free. The optimizer (OR-Tools CP-SAT, in its own process so the
event loop never waits) returns a schedule; its per-cell sequences go to the dispatcher
(:meth:`~routing.scheduling.dispatch.Dispatcher.follow`). A freed cell takes its next
planned step if that step is ready, else falls back to the dispatch rule; a cell that
goes down gets nothing and its planned steps return to the pool. Plans are only advice:
nothing is recorded from them, and without OR-Tools the dispatcher runs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from mes.domain import CellState, Step, StepState, UnitState
from mes.domain.step import ON_CELL
from mes.domain.stock import STOCK_SOURCE
from routing.scheduling.model import Availability, Job, Machine, Operation, Problem, ProblemError

if TYPE_CHECKING:
    from mes.service.controller import Controller

log = logging.getLogger(__name__)

_OPEN = (StepState.PENDING, StepState.READY)


def snapshot(controller: Controller, now: datetime) -> Problem | None:
    """The open work of ``controller`` as a scheduling problem (None if there is none)."""
    cells = controller.cells
    up = {
        name
        for name, cell in cells.items()
        if cell.state not in (CellState.OFFLINE, CellState.ABORTED, CellState.STOPPED)
        and not controller.setups[name].read_only
    }
    operations: list[Operation] = []
    jobs: list[Job] = []
    for unit in controller.units.values():
        if unit.state not in (UnitState.RELEASED, UnitState.IN_PROGRESS):
            continue
        order = controller.orders.get(unit.order_id)
        if order is not None and order.source == STOCK_SOURCE:
            continue  # blanks fill idle time, by rule: the plan is for customers' work
        open_steps = [s for s in unit.steps if s.state in _OPEN]
        if not open_steps:
            continue
        by_seq = {s.seq: s for s in open_steps}
        ops: list[Operation] = []
        for step in open_steps:
            eligible = [
                name
                for name in up
                if step.capability in cells[name].capabilities
                and (not step.cells or name in step.cells)
            ]
            if not eligible:
                ops = []  # a step nobody can run now: leave the unit to the rule
                break
            factors = {n: controller.setups[n].factors.get(step.capability, 1.0) for n in eligible}
            ops.append(
                Operation(
                    step.id,
                    unit.id,
                    {n: max(1.0, round(step.expected_s * factors[n])) for n in eligible},
                    tuple(by_seq[a].id for a in step.after if a in by_seq),
                    dict(step.attributes),
                )
            )
        if ops:
            operations += ops
            due = (order.due - now).total_seconds() if order and order.due else None
            jobs.append(Job(unit.id, due, order.priority if order else 0))
    if not operations:
        return None
    running = {s.cell: s for s in controller.steps.values() if s.state in ON_CELL}
    machines = [
        Machine(
            name,
            dict(controller.setups[name].setup_s),
            dict(controller.loaded[name]),
            Availability.AVAILABLE if name in up else Availability.DOWN,
            _busy_for(controller, name, running.get(name)),
        )
        for name in cells
    ]
    try:
        return Problem(tuple(operations), tuple(machines), tuple(jobs), name="open work")
    except ProblemError as exc:
        log.warning("cannot plan the open work: %s", exc)
        return None


def _busy_for(controller: Controller, name: str, step: Step | None) -> float:
    """Expected seconds until ``name`` is free (the remaining time of ``step``, its job)."""
    if step is None:
        return 0.0
    factor = controller.setups[name].factors.get(step.capability, 1.0)
    return max(0.0, step.expected_s * factor * (1 - controller.progress.get(name, 0.0)))


class Replanner:
    """Re-plans the open work in the optimizer's process and hands the plan on."""

    def __init__(self, controller: Controller, time_limit_s: float, interval_s: float) -> None:
        self.controller = controller
        self.time_limit_s = time_limit_s
        self.interval_s = interval_s
        self.due = asyncio.Event()
        #: Set once the dispatcher follows a plan.
        self.planned = asyncio.Event()
        self.plans = 0

    def request(self) -> None:
        """Something changed enough to plan again (new work, a cell down)."""
        self.due.set()

    async def run(self) -> None:
        """Plan now, then when asked and at least every ``interval_s``, until cancelled."""
        from routing.scheduling.optimizer import Planner

        planner = Planner()
        try:
            while True:
                began = time.monotonic()
                problem = snapshot(self.controller, self.controller.clock())
                if problem is not None:
                    try:
                        schedule = await planner.plan_async(problem, self.time_limit_s)
                    except Exception:  # the plan is advice: the rule carries on without it
                        log.exception("the optimizer failed; dispatching by rule")
                    else:
                        self._follow(schedule.sequences(), problem)
                # Plan again when asked (new work, a cell down, a fault) or after the
                # interval anyway, since reality drifts from any plan; but never more
                # often than a few times per interval, however often asked.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.due.wait(), self.interval_s)
                self.due.clear()
                gap = max(2 * self.time_limit_s, self.interval_s / 5)
                await asyncio.sleep(max(0.0, gap - (time.monotonic() - began)))
        finally:
            await asyncio.to_thread(planner.close)

    def _follow(self, sequences: Mapping[str, list[str]], problem: Problem) -> None:
        ready = self.controller.ready
        # Steps dispatched while the optimizer worked are simply skipped by the dispatcher.
        ready.dispatcher.follow(sequences)
        self.plans += 1
        self.planned.set()
        log.info(
            "plan %d: %d steps on %d cells", self.plans, len(problem.operations), len(sequences)
        )
