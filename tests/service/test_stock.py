"""Postponement with a real controller: idle cells make blanks up to the targets (custom
work first), a released unit of a stocked variant starts from a blank at its first
custom step, and one of a variant out of stock runs its generic steps itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from drivers.sim.cell import SimCell
from mes.domain.stock import STOCK_SOURCE
from mes.service.controller import CellSetup, Controller
from mes.service.order_files import OrderSpec, UnitSpec
from mes.service.release import release
from mes.service.stock import StockKeeper, StockTarget
from mes.store import Store
from routing.expr import Expression
from routing.family import (
    Family,
    OptionKind,
    OptionSpec,
    Postponement,
    StepSpec,
    variant_key,
)
from tests.service.conftest import FAST, Plant, running

#: A tag: a blank printed in a material (generic), then the buyer's text engraved.
TAG = Family(
    "tag",
    {
        "material": OptionSpec("material", OptionKind.CHOICE, "pla", ("pla", "petg")),
        "text": OptionSpec("text", OptionKind.TEXT, "HI", max_length=10),
    },
    (
        StepSpec(
            "print",
            "cap.print",
            60.0,
            attributes={"material": Expression.parse("material")},
            stage="printing",
        ),
        StepSpec("engrave", "cap.engrave", 5.0, parameters=("text",), stage="engraving"),
    ),
    postponement=Postponement(("print",), ("material",)),
)
CELLS = [
    CellSetup("p1", frozenset({"cap.print"}), "sim"),
    CellSetup("p2", frozenset({"cap.print"}), "sim"),
    CellSetup("e1", frozenset({"cap.engrave"}), "sim"),
]
PLA = variant_key({"material": "pla"})


def build(store: Store, targets: list[StockTarget], speed: float = 200.0) -> Plant:
    sims = {c.name: SimCell(c.name, speed=speed, jitter=0.0) for c in CELLS}
    controller = Controller(store, CELLS, sims, options=FAST)
    controller.stock = StockKeeper(store, targets, poll_s=0.05)
    plant = Plant(store, {}, controller)
    controller.recorder.subscribe(plant.on_events)
    return plant


def order(
    store: Store, order_id: str, *materials: str, at: datetime | None = None, actor: str = "planner"
) -> list[str]:
    """Release an order of one tag per material (now, or ``at``); its unit ids."""
    units = tuple(
        UnitSpec("tag", {"material": m}, f"unit {n}", None) for n, m in enumerate(materials)
    )
    release(
        store,
        [OrderSpec(order_id, 0, None, units, "test", None)],
        {"tag": TAG},
        at or datetime.now(UTC),
        source="test",
        actor=actor,
    )
    return [f"{order_id}.{n}" for n in range(1, len(materials) + 1)]


async def in_stock(store: Store, count: int, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            level = store.stock_levels().get(("tag", PLA))
            if level is not None and level.in_stock >= count:
                return
            await asyncio.sleep(0.02)


async def rounds(controller: Controller, count: int) -> None:
    """Until the stock keeper looked at idle cells ``count`` more times."""
    assert controller.stock is not None
    until = controller.stock.rounds + count
    async with asyncio.timeout(5):
        while True:
            if controller.stock.rounds >= until:
                return
            await asyncio.sleep(0.01)  # polls a counter the keeper raises


async def test_idle_cells_fill_the_target_and_a_unit_starts_from_a_blank(store):
    plant = build(store, [StockTarget.of(TAG, {"material": "pla"}, 3)])
    async with running(plant):
        await in_stock(store, 3)
        await rounds(plant.controller, 5)  # idle cells looked at again: the target is met
        levels = store.stock_levels()[("tag", PLA)]
        assert (levels.in_stock, levels.making) == (3, 0)
        (unit_id,) = order(store, "C1", "pla")
        await plant.wait_for(lambda e: e.subject == unit_id and e.transition == "finish", 10)
        # Taking a blank lowered the level: the keeper makes one more.
        await in_stock(store, 3)
    record = store.unit_record(unit_id)
    assert record is not None and record["blank"] is not None
    steps = {s["name"]: s for s in record["steps"]}
    assert steps["print"]["state"] == "skipped" and steps["print"]["jobs"] == []
    assert steps["print"]["result"]["blank"] == record["blank"]["id"]
    assert [j["cell"] for j in steps["engrave"]["jobs"]] == ["e1"]
    assert record["blank"]["cells"][0] in ("p1", "p2") and record["blank"]["made_at"]
    stock_units = [o for o in store.orders() if o["source"] == STOCK_SOURCE]
    assert sum(sum(o["units"].values()) for o in stock_units) == 4


async def test_a_variant_out_of_stock_runs_its_generic_steps(store):
    plant = build(store, [StockTarget.of(TAG, {"material": "pla"}, 1)])
    async with running(plant):
        await in_stock(store, 1)
        (unit_id,) = order(store, "C1", "petg")
        await plant.wait_for(lambda e: e.subject == unit_id and e.transition == "finish", 10)
    record = store.unit_record(unit_id)
    assert record is not None and record["blank"] is None
    assert [s["state"] for s in record["steps"]] == ["done", "done"]
    assert store.stock_levels()[("tag", PLA)].in_stock == 1


async def test_customer_work_goes_first_and_stock_fills_only_idle_time(store):
    # Slow cells: four custom prints for two printers; stock may start only once a
    # printer has no customer print left to take.
    plant = build(store, [StockTarget.of(TAG, {"material": "petg"}, 5)], speed=100.0)
    units = order(store, "C1", "pla", "pla", "pla", "pla")
    async with running(plant):
        for unit_id in units:
            await plant.wait_for(
                lambda e, u=unit_id: e.subject == u and e.transition == "finish", 10
            )
    dispatches = [
        e.subject.split("/")[0]
        for e in plant.events
        if e.kind == "step" and e.transition == "dispatch" and e.subject.endswith("/print")
    ]
    customer = [i for i, unit in enumerate(dispatches) if unit.startswith("C1.")]
    stock = [i for i, unit in enumerate(dispatches) if unit.startswith("STOCK-")]
    assert len(customer) == 4 and stock
    # The last customer print went to a cell before any stock print did... except
    # on a printer that found no customer print waiting at all.
    assert min(stock) >= 4
