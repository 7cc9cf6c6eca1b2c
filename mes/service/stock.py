"""Making blanks ahead: stock units released by a planner (``mes stock plan``) or by the
controller to keep the plant's stock targets, filled only by cells with nothing else to do.

Theory of operation: a stock unit is a unit of a family's generic steps alone
(:func:`routing.planner.plan_blank`), released under a stock order whose priority is
below any customer's (:data:`~mes.domain.stock.STOCK_PRIORITY`), so the controller runs
it with the same machinery as any unit (dispatch, hand-off, recovery, quality, as-built
record) and its blank is in stock once it is done.

The :class:`StockKeeper` runs in each controller. After every dispatch round the
controller tells it which of its cells are still idle (:meth:`StockKeeper.idle`): no
ready customer step could go to them. For each such cell that can run the first
generic step of a variant below its target, it releases one stock unit (preferring a
variant the cell needs no changeover for, then the emptiest), so stock is made just in
time for idle cells and never queues ahead of customer work. Levels count blanks in
stock and being made; they are read and the units released in one transaction under
the store's stock lock (:meth:`~mes.store.Store.replenish`), so controllers sharing a
plant never overshoot a target. A job already on a cell is never pre-empted: a customer
unit arriving meanwhile waits for it, the price of using idle time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mes.domain import Event, Order, Program, StepEvent, StepState, Unit, UnitState
from mes.domain.stock import STOCK_PRIORITY, STOCK_SOURCE
from mes.errors import OrderError, Problem, StoreError
from mes.service.release import ReleaseMessages, _place, _unit
from mes.store import Store
from mes.store.stock import Levels, StockRelease
from routing.family import Family, OptionValue, describe_variant, variant_key
from routing.fit import Station
from routing.planner import PlannedStep, plan_blank
from routing.scheduling.dispatch import IdleCell
from routing.scheduling.model import setup_time

if TYPE_CHECKING:
    from mes.service.controller import Controller

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StockTarget:
    """Keep ``target`` blanks of one variant in stock or being made."""

    family: Family
    values: Mapping[str, OptionValue]
    target: int
    steps: tuple[PlannedStep, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, family: Family, chosen: Mapping[str, object], target: int) -> StockTarget:
        """A target, its variant checked by the family.

        Raises:
            OrderError: not a valid variant of a family with generic steps.
        """
        values = family.configure_variant(chosen)
        return cls(family, values, target, tuple(plan_blank(family, values)))

    @property
    def key(self) -> tuple[str, str]:
        return (self.family.name, variant_key(self.values))

    def fits(self, cell: IdleCell) -> bool:
        """Whether ``cell`` can run this blank's first step."""
        first = self.steps[0]
        return first.capability in cell.capabilities

    def setup_s(self, cell: IdleCell) -> float:
        """The changeover ``cell`` needs before this blank's first step."""
        return setup_time(cell.setup_s, cell.state, self.steps[0].attributes)


def stock_units(
    family: Family,
    values: Mapping[str, OptionValue],
    count: int,
    order_id: str,
    now: datetime,
    *,
    actor: str,
    stations: Sequence[Station] = (),
) -> StockRelease:
    """An order of ``count`` stock units of one variant (not stored).

    Raises:
        OrderError: the blank's program fits no capable cell, or cannot be planned.
    """
    steps = plan_blank(family, values)
    where = f"stock {family.name} {describe_variant(variant_key(values))}"
    if all(step.skipped for step in steps):
        raise OrderError([Problem("no generic step applies to this variant", path=where)])
    try:
        placed = [_place(step, stations) for step in steps]
    except ValueError as exc:
        raise OrderError([Problem(str(exc), path=where)]) from exc
    order = Order(order_id, now, STOCK_PRIORITY, None, STOCK_SOURCE)
    units, events = [], []
    for seq in range(1, count + 1):
        unit = _unit(order_id, seq, family, dict(values), steps, placed, now)
        data = {"order": order_id, "family": family.name, "stock": True}
        events.append(Event(now, actor, "unit", unit.id, "release", "", unit.state.value, data))
        for step in unit.next_ready():
            events.append(Event.of(step.handle(StepEvent.READY, now), actor))
        units.append(unit)
    programs = list({s.program.id: s.program for s in steps}.values())
    return [order], units, programs, events


def plan_stock(
    store: Store,
    family: Family,
    chosen: Mapping[str, object],
    quantity: int,
    now: datetime,
    *,
    actor: str = "planner",
    stations: Sequence[Station] = (),
    messages: ReleaseMessages | None = None,
) -> list[str]:
    """Release ``quantity`` stock units of a variant (``mes stock plan``): cells make
    them when they have nothing else to do.

    Returns:
        The stock units' ids.

    Raises:
        OrderError: not a valid variant, or its blank fits no cell.
    """
    values = family.configure_variant(chosen)
    stock_units(family, values, 1, "STOCK-CHECK", now, actor=actor, stations=stations)

    def decide(_levels: Levels, next_id: Callable[[], str]) -> StockRelease:
        return stock_units(family, values, quantity, next_id(), now, actor=actor, stations=stations)

    return store.replenish(decide, messages)


def choose(
    targets: Sequence[StockTarget], levels: Levels, idle: Sequence[IdleCell]
) -> dict[tuple[str, str], int]:
    """How many blanks of which variants the idle cells should start: one per cell, for
    a variant below its target whose first step it can run; a variant needing no
    changeover there first, then the emptiest (the lowest share of its target).
    """
    short = {}
    for target in targets:
        level = levels.get(target.key)
        have = level.total if level is not None else 0
        if have < target.target:
            short[target.key] = target.target - have
    chosen: dict[tuple[str, str], int] = {}
    by_key = {t.key: t for t in targets}
    for cell in sorted(idle, key=lambda c: c.name):
        fitting = [by_key[k] for k, n in short.items() if n > 0 and by_key[k].fits(cell)]
        if not fitting:
            continue
        best = min(
            fitting,
            key=lambda t: (
                t.setup_s(cell) > 0,
                1 - short[t.key] / t.target,
                targets.index(t),
            ),
        )
        short[best.key] -= 1
        chosen[best.key] = chosen.get(best.key, 0) + 1
    return chosen


def _work_coming(controller: Controller, cell: IdleCell) -> bool:
    """Whether customer work is on its way to this cell: the optimizer's plan holds steps
    for it, or a step it could take is ready but not offered yet (its G-code is being
    made). Then the cell is not idle for long, and not for stock."""
    if controller.ready.dispatcher.waits_for_plan(cell.name):
        return True
    for step in controller.steps.values():
        if (
            step.state is StepState.READY
            and step.id not in controller.ready
            and step.capability in cell.capabilities
            and (not step.cells or cell.name in step.cells)
            and controller.ready.runnable(controller.units[step.unit_id])
        ):
            return True
    return False


def _free(controller: Controller, idle: list[IdleCell]) -> list[IdleCell]:
    """The idle cells no stock unit already here (released, not started) will take."""
    waiting = [
        step
        for unit in controller.units.values()
        if unit.state is UnitState.RELEASED
        and (order := controller.orders.get(unit.order_id)) is not None
        and order.source == STOCK_SOURCE
        for step in unit.steps
        if step.state is StepState.READY
    ]
    free = []
    for cell in idle:
        taker = next(
            (
                s
                for s in waiting
                if s.capability in cell.capabilities and (not s.cells or cell.name in s.cells)
            ),
            None,
        )
        if taker is None:
            free.append(cell)
        else:
            waiting.remove(taker)
    return free


class StockKeeper:
    """Keeps the plant's stock targets with the idle time of one controller's cells."""

    def __init__(
        self,
        store: Store,
        targets: Sequence[StockTarget],
        *,
        stations: Sequence[Station] = (),
        messages: ReleaseMessages | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.targets = list(targets)
        self.stations = stations
        self.messages = messages
        self.poll_s = poll_s
        self._idle: list[IdleCell] = []
        self._wake = asyncio.Event()
        #: Stock units released so far, and rounds of idle cells looked at.
        self.released = 0
        self.rounds = 0
        self._levels: Levels | None = None
        self._levels_at = 0.0

    def idle(self, cells: list[IdleCell]) -> None:
        """The cells still idle after a dispatch round (no ready step could go there)."""
        self._idle = [c for c in cells if any(t.fits(c) for t in self.targets)]
        if self._idle:
            self._wake.set()

    async def run(self, controller: Controller) -> None:
        """Until cancelled: after each dispatch round that leaves cells idle, release the
        stock units they should make; once a ``poll_s`` ask for a round (blanks taken
        by releases elsewhere lower the levels without waking anything here). Stock is
        a helper: a failure is logged and the next round tries again."""
        while True:
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel.
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                controller.wake()  # a dispatch round tells which cells are idle now
                continue
            self._wake.clear()
            self.rounds += 1
            idle, self._idle = self._idle, []
            try:
                await self._round(controller, idle)
            except (OrderError, StoreError) as exc:
                log.error("cannot release stock units: %s", exc)
                await asyncio.sleep(self.poll_s)
            except Exception:  # never let stock stop the plant
                log.exception("the stock keeper failed; trying again")
                await asyncio.sleep(self.poll_s)

    async def _round(self, controller: Controller, idle: list[IdleCell]) -> None:
        """Release what ``idle`` cells should make, if anything."""
        # Cheap first: levels read at most once a poll (a round may come with every
        # dispatch), then whether these cells could make anything short at all.
        loop = asyncio.get_running_loop()
        if self._levels is None or loop.time() - self._levels_at >= self.poll_s:
            self._levels = await asyncio.to_thread(self.store.stock_levels)
            self._levels_at = loop.time()
        if not choose(self.targets, self._levels, idle):
            return
        idle = _free(controller, [c for c in idle if not _work_coming(controller, c)])
        if not idle:
            return
        self._levels = None  # what the release finds under the lock is what counts
        released = await asyncio.to_thread(
            self.store.replenish, self._decider(idle, controller.clock()), self.messages
        )
        if released:
            self.released += len(released)
            log.info("stock: %d blanks to make (%s)", len(released), ", ".join(released))
            # Into this controller's custody at once: its cells are the idle ones.
            await controller.take(await controller.membership.claim(ids=released))

    def _decider(
        self, idle: list[IdleCell], now: datetime
    ) -> Callable[[Levels, Callable[[], str]], StockRelease]:
        def decide(levels: Levels, next_id: Callable[[], str]) -> StockRelease:
            orders: list[Order] = []
            units: list[Unit] = []
            programs: dict[str, Program] = {}
            events: list[Event] = []
            chosen = choose(self.targets, levels, idle)
            for target in self.targets:
                count = chosen.get(target.key, 0)
                if count:
                    made_orders, made_units, made_programs, made_events = stock_units(
                        target.family,
                        target.values,
                        count,
                        next_id(),
                        now,
                        actor="stock",
                        stations=self.stations,
                    )
                    orders += made_orders
                    units += made_units
                    programs.update((p.id, p) for p in made_programs)
                    events += made_events
            return orders, units, list(programs.values()), events

        return decide
