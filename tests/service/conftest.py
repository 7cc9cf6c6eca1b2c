"""A small plant of scripted cells around a real controller and a real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from drivers.fake import FakeDriver
from mes.domain import Event
from mes.service.controller import CellSetup, Controller, ControllerOptions
from mes.service.order_files import OrderSpec, UnitSpec
from mes.service.release import release
from mes.service.supervisor import Backoff
from mes.store import Store
from routing.family import Family, OptionKind, OptionSpec, StepSpec

WIDGET = Family(
    "widget",
    {"size": OptionSpec("size", OptionKind.INTEGER, default=1, min=1, max=9)},
    (StepSpec("cut", "cap.a", 10.0), StepSpec("check", "cap.b", 5.0)),
)
CELLS = [
    CellSetup("a1", frozenset({"cap.a"}), "fake"),
    CellSetup("a2", frozenset({"cap.a"}), "fake", factors={"cap.a": 1.5}),
    CellSetup("b1", frozenset({"cap.b"}), "fake"),
]
FAST = ControllerOptions(
    max_attempts=2, poll_s=0.05, drain_s=5.0, backoff=Backoff(first_s=0.01, cap_s=0.05)
)


def release_units(
    store: Store, count: int = 1, order_id: str = "O1", due: datetime | None = None
) -> list[str]:
    """``count`` widget units (sizes 1..9 in turn) in one order."""
    units = tuple(UnitSpec("widget", {"size": n % 9 + 1}, f"unit {n}", None) for n in range(count))
    release(
        store,
        [OrderSpec(order_id, 0, due, units, "test", None)],
        {"widget": WIDGET},
        datetime.now(UTC),
        source="test",
    )
    return [f"{order_id}.{n}" for n in range(1, count + 1)]


@dataclass
class Plant:
    store: Store
    fakes: dict[str, FakeDriver]
    controller: Controller
    events: list[Event] = field(default_factory=list)
    _waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = field(
        default_factory=list
    )

    def on_events(self, events: list[Event]) -> None:
        self.events.extend(events)
        for event in events:
            for predicate, future in list(self._waiters):
                if not future.done() and predicate(event):
                    future.set_result(event)

    async def wait_for(self, predicate: Callable[[Event], bool], seconds: float = 5.0) -> Event:
        """The first durable journal entry (already seen or to come) that matches."""
        for event in self.events:
            if predicate(event):
                return event
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        async with asyncio.timeout(seconds):
            return await future

    async def started(self, cell: str):
        async with asyncio.timeout(5):
            return await self.fakes[cell].next_started()


def build(store: Store, cells: list[CellSetup] = CELLS, options: ControllerOptions = FAST) -> Plant:
    fakes = {c.name: FakeDriver(c.name) for c in cells}
    controller = Controller(store, cells, fakes, options=options)
    plant = Plant(store, fakes, controller)
    controller.recorder.subscribe(plant.on_events)
    return plant


@contextlib.asynccontextmanager
async def running(plant: Plant) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(plant.controller.run())
    async with asyncio.timeout(5):
        await plant.controller.started.wait()
    try:
        yield task
    finally:
        if not task.done():
            plant.controller.stop()
            plant.controller.stop()
        async with asyncio.timeout(10):
            await task


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    yield store
    store.close()
