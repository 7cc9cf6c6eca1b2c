"""Two controllers share one plant on one database: the cells split between them, every
step runs exactly once whoever runs it, a controller that stops hands its cells and its
units to the other, a late write from one that lost its cell is refused, and operator
requests reach the controller bound to act. (Several processes and SIGKILL: the e2e
test ``tests/e2e/test_shared_plant.py``.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

import pytest

from drivers.sim import SimCell
from mes.domain import Event
from mes.errors import Fenced
from mes.service.controller import CellSetup, Controller, ControllerOptions
from mes.service.membership import SharingOptions
from mes.service.supervisor import Backoff
from mes.store import Store
from tests.service.conftest import release_units

CELLS = [
    CellSetup("a1", frozenset({"cap.a"}), "sim"),
    CellSetup("a2", frozenset({"cap.a"}), "sim"),
    CellSetup("b1", frozenset({"cap.b"}), "sim"),
    CellSetup("b2", frozenset({"cap.b"}), "sim"),
]
OPTIONS = ControllerOptions(poll_s=0.1, drain_s=0.01, backoff=Backoff(first_s=0.01, cap_s=0.05))


def sharing(name: str, **more: object) -> SharingOptions:
    return SharingOptions(name=name, heartbeat_s=0.1, ttl_beats=30, handoff_s=0.3, **more)


@contextlib.asynccontextmanager
async def controller(
    store: Store, name: str, sims: Mapping[str, SimCell], journal: Journal, **more: object
) -> AsyncIterator[Controller]:
    made = Controller(
        store, CELLS, dict(sims), options=OPTIONS, actor=name, sharing=sharing(name, **more)
    )
    journal.watch(made)
    task = asyncio.create_task(made.run(), name=name)
    async with asyncio.timeout(5):
        await made.started.wait()
    try:
        yield made
    finally:
        if not task.done():
            made.stop()
            made.stop()
        async with asyncio.timeout(10):
            with contextlib.suppress(Fenced):
                await task


class Journal:
    """What the controllers under test commit, as it becomes durable, to wait on."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.by: dict[int, str] = {}  # id(event) -> the controller that committed it
        self._changed = asyncio.Event()

    def watch(self, controller: Controller) -> None:
        def seen(events: list[Event]) -> None:
            self.events.extend(events)
            self.by.update((id(e), controller.actor) for e in events)
            self._changed.set()

        controller.recorder.subscribe(seen)

    async def until(self, done: Callable[[list[Event]], bool], seconds: float = 30.0) -> None:
        async with asyncio.timeout(seconds):
            while not done(self.events):
                self._changed.clear()
                await self._changed.wait()


def finished(ids: list[str]) -> Callable[[list[Event]], bool]:
    def done(events: list[Event]) -> bool:
        ended = {
            e.subject for e in events if e.kind == "unit" and e.transition in ("finish", "scrap")
        }
        return ended >= set(ids)

    return done


def sims(speed: float = 200.0) -> dict[str, SimCell]:
    return {c.name: SimCell(c.name, speed=speed, jitter=0.0) for c in CELLS}


def assert_each_step_ran_once(store: Store, ids: list[str], cells: Mapping[str, SimCell]) -> None:
    executed = [job for sim in cells.values() for job in sim.executed]
    assert len(executed) == len(set(executed)), "a job id ran twice"
    for unit_id in ids:
        record = store.unit_record(unit_id)
        assert record is not None
        for step in record["steps"]:
            done = [j for j in step["jobs"] if j["state"] == "done"]
            assert len(done) == 1, (step["id"], step["jobs"])
            assert done[0]["id"] in executed


@pytest.fixture
def store(db_url: str):
    store = Store.open(db_url)
    yield store
    store.close()


async def test_two_controllers_split_the_cells_and_run_every_step_once(store: Store) -> None:
    cells, journal = sims(), Journal()
    ids = release_units(store, 40)
    async with (
        controller(store, "one", cells, journal) as one,
        controller(store, "two", cells, journal) as two,
    ):
        await journal.until(finished(ids))
        assert len(one.membership.leases) == len(two.membership.leases) == 2
    assert set(store.unit_states().values()) == {"done"}
    assert_each_step_ran_once(store, ids, cells)
    assert {e.actor for e in journal.events if e.transition == "complete"} == {"one", "two"}


async def test_a_controller_that_stops_hands_cells_and_units_to_the_other(store: Store) -> None:
    cells, journal = sims(speed=50.0), Journal()
    ids = release_units(store, 30)
    async with controller(store, "stays", cells, journal) as stays:
        async with controller(store, "goes", cells, journal) as goes:
            await journal.until(lambda events: any(e.actor == "goes" for e in events))
            assert goes.membership.leases
        # "goes" stopped with jobs on its cells: "stays" takes them and follows them
        await journal.until(finished(ids))
        assert sorted(stays.membership.leases) == ["a1", "a2", "b1", "b2"]
    assert set(store.unit_states().values()) == {"done"}
    assert_each_step_ran_once(store, ids, cells)


async def test_a_late_write_after_the_cell_was_taken_is_refused(store: Store) -> None:
    cells, journal = sims(speed=5.0), Journal()
    release_units(store, 2)
    stalls = Controller(store, CELLS, cells, options=OPTIONS, actor="stalls", sharing=sharing("s"))
    journal.watch(stalls)
    task = asyncio.create_task(stalls.run())
    await journal.until(lambda events: any(e.transition == "accept" for e in events))
    # Another controller takes every cell, as if "stalls" had stalled past its lease: its
    # next write (the job's end, or its heartbeat) is refused and it stops.
    names = [c.name for c in CELLS]
    store.join("thief", "thief", "elsewhere", [], names)
    store.give_up(stalls.membership.id, names)
    assert len(store.acquire("thief", names, 60, "elsewhere", 4)) == 4
    async with asyncio.timeout(10):
        with pytest.raises(Fenced, match="lost the lease"):
            await task
    assert {lease["owner"] for lease in store.leases().values()} == {"thief"}


async def test_requests_go_to_the_controller_that_holds_the_cell(store: Store) -> None:
    cells, journal = sims(), Journal()
    async with (
        controller(store, "left", cells, journal, cells=frozenset({"a1", "b1"})),
        controller(store, "right", cells, journal, cells=frozenset({"a2", "b2"})),
    ):
        now = datetime.now(UTC)
        store.submit(now, "ops", "test", "cell.hold", "a2", "maintenance")
        store.submit(now, "ops", "test", "cell.hold", "a1", "maintenance")
        await journal.until(lambda events: sum(e.kind == "request" for e in events) == 2)
    holds = {
        e.subject: e.data for e in journal.events if e.kind == "cell" and e.transition == "hold"
    }
    assert set(holds) == {"a1", "a2"}
    answers = [e for e in journal.events if e.kind == "request"]
    assert {(e.subject, e.after) for e in answers} == {("a1", "done"), ("a2", "done")}


@pytest.mark.pg
async def test_a_release_wakes_an_idle_controller_at_once(pg_url: str) -> None:
    """Polling once a minute: only PostgreSQL's NOTIFY can make it start within seconds."""
    store, journal = Store.open(pg_url), Journal()
    slow = ControllerOptions(poll_s=60, drain_s=0.01, backoff=OPTIONS.backoff)
    made = Controller(store, CELLS, sims(), options=slow, actor="idle", sharing=sharing("idle"))
    journal.watch(made)
    task = asyncio.create_task(made.run())
    try:
        async with asyncio.timeout(5):
            await made.started.wait()
        release_units(store, 1)
        await journal.until(lambda events: any(e.transition == "dispatch" for e in events), 5)
    finally:
        made.stop()
        made.stop()
        await task
        store.close()


def test_the_cells_named_on_the_command_line_are_the_ones_a_controller_may_drive(
    tmp_path, fast_plant_file
) -> None:
    """``mes run --cells`` and ``--area`` reach the controller (bootstrap wires them)."""
    from mes.bootstrap import build_controller, sharing_options
    from mes.errors import InputError
    from mes.settings import load_plant

    plant = load_plant(fast_plant_file)
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    sharing = sharing_options(plant, "hall-a", ["printer-1", "laser-1"])
    controller = build_controller(plant, store, actor="hall-a", sharing=sharing)
    assert controller.membership.options.cells == {"printer-1", "laser-1"}
    assert controller.membership.wanted == ["laser-1", "printer-1"]
    with pytest.raises(InputError, match="no cell 'printer-9'"):
        sharing_options(plant, "hall-a", ["printer-9"])
    with pytest.raises(InputError, match="no cell in area 'hall-z'"):
        sharing_options(plant, "hall-a", area="hall-z")
    store.close()


@pytest.fixture
def fast_plant_file(tmp_path):
    from tests.conftest import REPO
    from tests.e2e.conftest import FAST_CELLS

    text = f'[plant]\nname = "Fast"\nproducts = "{REPO / "config" / "products"}"\n'
    for name, capabilities in FAST_CELLS.items():
        caps = ", ".join(f'"{c}"' for c in capabilities)
        text += (
            f'\n[[cells]]\nname = "{name}"\ncapabilities = [{caps}]\n[cells.driver]\nkind = "sim"\n'
        )
    path = tmp_path / "plant.toml"
    path.write_text(text)
    return path
