"""The store's reads for watchers (the dashboard), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mes.domain import Cell, CellEvent, Event, StepEvent, UnitEvent
from mes.store import Changes, Store
from tests.store.test_store import T0, make_order


@pytest.fixture
def store(db_url: str):
    store = Store.open(db_url)
    yield store
    store.close()


def test_wip_board_and_touched_units(store: Store) -> None:
    order, units, programs, events = make_order(units=3)
    store.release([order], units, programs, events)
    cell = Cell("p1", frozenset({"print.fdm"}), "fake")
    store.register_cells([cell], T0)
    last = store.last_event_id()
    rows = {r["id"]: r for r in store.wip()}
    assert set(rows) == {"SO-1.1", "SO-1.2", "SO-1.3"}
    first = rows["SO-1.1"]
    assert (first["steps"], first["settled"], first["left_s"]) == (2, 0, 1020.0)
    assert (first["step"], first["step_state"], first["due"]) == ("print", "ready", order.due)

    unit = units[0]
    step = unit.steps[0]
    changes = Changes()
    changes.add(Event.of(unit.handle(UnitEvent.START, T0), "t"), unit)
    changes.add(Event.of(step.handle(StepEvent.DISPATCH, T0), "t"))
    step.cell, step.job_id = "p1", 7
    changes.add(step)
    changes.job(step, at=T0)
    changes.add(Event.of(cell.handle(CellEvent.CONNECT, T0), "t"))
    changes.add(Event.of(cell.handle(CellEvent.START, T0), "t"))
    cell.job_id = 7
    changes.add(cell)
    changes.progress["p1"] = 0.25
    store.apply(changes)

    touched, newest = store.touched_units(last)
    assert touched == {"SO-1.1"} and newest > last
    (row,) = store.wip(touched)
    assert (row["state"], row["step"], row["step_state"], row["cell"]) == (
        "in_progress",
        "print",
        "dispatched",
        "p1",
    )
    (board,) = store.cell_board()
    assert (board["unit_id"], board["step_name"], board["expected_s"], board["progress"]) == (
        "SO-1.1",
        "print",
        900.0,
        0.25,
    )
    assert store.last_job("p1")["id"] == 7 and store.last_job("nope") is None
    assert set(store.ready_steps()) == {"SO-1.2/print", "SO-1.3/print"}
    count, work = store.work_content(T0 - timedelta(hours=1))
    assert count == 3 and work == {"print.fdm": 2700.0, "laser.engrave": 360.0}
    cells = store.events_since(("cell",), T0 - timedelta(seconds=1))
    assert [e["after"] for e in cells] == ["idle", "starting"]
    assert store.events_since(("cell",), T0 + timedelta(seconds=1)) == []
    assert store.finished_units(T0) == [] and store.finished_jobs(T0) == []
