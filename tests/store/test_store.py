"""Store round trips on SQLite and PostgreSQL: what goes in comes out, atomically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from mes.domain import (
    Cell,
    CellEvent,
    Event,
    Order,
    Program,
    Step,
    StepEvent,
    StepState,
    Unit,
    UnitEvent,
    UnitState,
)
from mes.errors import OrderError, StoreError
from mes.store import Changes, Store, resolve_url

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def make_order(order_id: str = "SO-1", digest: str = "d1", units: int = 2):
    order = Order(order_id, T0, priority=2, due=T0 + timedelta(days=3), source="t", digest=digest)
    program = Program.recipe({"width_mm": 160, "text": "ALICE"})
    made = []
    for seq in range(1, units + 1):
        unit = Unit(
            f"{order_id}.{seq}",
            order_id,
            seq,
            "nameplate",
            {"width_mm": 160, "text": "ALICE", "gloss": True, "depth": 1.5},
            T0,
        )
        unit.steps = [
            Step(f"{unit.id}/print", unit.id, 1, "print", "print.fdm", program.id, 900.0),
            Step(f"{unit.id}/engrave", unit.id, 2, "engrave", "laser.engrave", program.id, 120.0),
        ]
        unit.steps[0].handle(StepEvent.READY, T0)
        made.append(unit)
    events = [Event(T0, "planner", "unit", u.id, "release", "", "released") for u in made]
    return order, made, [program], events


@pytest.fixture
def store(db_url: str):
    store = Store.open(db_url)
    yield store
    store.close()


def test_release_round_trip(store: Store):
    order, units, programs, events = make_order()
    assert store.release([order], units, programs, events) == set()
    loaded = store.load_units()
    assert [u.id for u in loaded] == ["SO-1.1", "SO-1.2"]
    unit = loaded[0]
    assert unit.options == {"width_mm": 160, "text": "ALICE", "gloss": True, "depth": 1.5}
    assert unit.released_at == T0 and unit.released_at.tzinfo is not None
    assert [(s.seq, s.name, s.state) for s in unit.steps] == [
        (1, "print", StepState.READY),
        (2, "engrave", StepState.PENDING),
    ]
    assert store.load_orders(["SO-1"])["SO-1"] == order
    assert store.program(programs[0].id) == programs[0]
    ids, last = store.released_since(0)
    assert ids == ["SO-1.1", "SO-1.2"] and last == store.last_event_id()


def test_release_is_idempotent_by_order_id_and_refuses_other_content(store: Store):
    order, units, programs, events = make_order()
    store.release([order], units, programs, events)
    assert store.release([order], units, programs, events) == {"SO-1"}
    other, units2, _, events2 = make_order("SO-1", digest="d2")
    new, units3, programs3, events3 = make_order("SO-2")
    with pytest.raises(OrderError, match="already released with other content"):
        store.release([new, other], units3 + units2, programs3, events3 + events2)
    # All or nothing: SO-2 was not stored either.
    assert [o["id"] for o in store.orders()] == ["SO-1"]
    assert len(store.events()) == 2


def test_apply_records_transitions_jobs_and_journal_in_one_batch(store: Store):
    order, units, programs, events = make_order(units=1)
    store.release([order], units, programs, events)
    unit = store.load_units()[0]
    step = unit.steps[0]
    cell = Cell("printer-1", frozenset({"print.fdm"}), "sim")
    store.register_cells([cell], T0)
    job_id = store.reserve_job_ids(1)[0]

    changes = Changes()
    changes.add(Event.of(cell.handle(CellEvent.CONNECT, T0), "c"))
    changes.add(Event.of(step.dispatch("printer-1", job_id, T0), "c", job_id=job_id))
    changes.job(step, at=T0)
    changes.add(Event.of(unit.handle(UnitEvent.START, T0), "c"))
    changes.add(step, unit, cell)
    store.apply(changes)

    t1 = T0 + timedelta(minutes=15)
    changes = Changes()
    changes.add(Event.of(step.handle(StepEvent.ACCEPT, T0), "c"))
    step.started_at = T0
    changes.add(Event.of(step.handle(StepEvent.COMPLETE, t1), "c"))
    step.finished_at = t1
    step.result = {"outcome": "successful", "measurements": {"width_mm": 160.1}}
    changes.job(step)
    changes.add(step)
    store.apply(changes)

    record = store.unit_record("SO-1.1")
    assert record is not None and record["state"] == UnitState.IN_PROGRESS.value
    first = record["steps"][0]
    assert (first["state"], first["cell"], first["job_id"]) == ("done", "printer-1", job_id)
    (job,) = first["jobs"]
    assert (job["id"], job["cell"], job["started_at"], job["finished_at"]) == (
        job_id,
        "printer-1",
        T0,
        t1,
    )
    assert job["result"]["measurements"] == {"width_mm": 160.1}
    assert [e["transition"] for e in record["journal"]] == [
        "release",
        "dispatch",
        "start",
        "accept",
        "complete",
    ]
    assert store.cells()[0]["state"] == "idle"


def test_job_ids_never_repeat_across_reopen(db_url: str):
    first = Store.open(db_url)
    a = first.reserve_job_ids(5)
    first.close()
    second = Store.open(db_url)
    b = second.reserve_job_ids(5)
    second.close()
    assert set(a).isdisjoint(b) and min(b) > max(a)


def test_finished_units_are_not_loaded_as_active(store: Store):
    order, units, programs, events = make_order()
    store.release([order], units, programs, events)
    unit = units[0]
    unit.state = UnitState.SCRAPPED
    changes = Changes()
    changes.add(unit)
    store.apply(changes)
    assert [u.id for u in store.load_units()] == ["SO-1.2"]
    assert [u.id for u in store.load_units(["SO-1.1"])] == ["SO-1.1"]


def test_sqlite_is_durable_by_configuration(sqlite_url: str):
    store = Store.open(sqlite_url)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert store.integrity_check() == "ok"
    store.close()


def test_a_database_from_before_schema_version_5_is_refused(sqlite_url: str):
    store = Store.open(sqlite_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('schema', '4')"))
    store.close()
    with pytest.raises(StoreError, match="store schema version 4, from before version 5"):
        Store.open(sqlite_url)


def test_bad_urls_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="cannot use database URL"):
        Store.open("nosuchdb+driver://x/y")
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open("postgresql://nobody:secret@127.0.0.1:1/none")
    assert resolve_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_url("postgresql://h/db") == "postgresql+psycopg://h/db"


def test_password_is_never_shown(monkeypatch):
    with pytest.raises(StoreError) as err:
        Store.open("postgresql://nobody:S3CR3T@127.0.0.1:1/none")
    assert "S3CR3T" not in str(err.value)


def test_alarms_raised_and_cleared_in_one_batch_apply_in_order(store: Store):
    lost_and_back = Changes()
    lost_and_back.alarm("medium", "link lost", T0, cell="p1", subject="link")
    lost_and_back.clear("p1", "link", T0)
    store.apply(lost_and_back)
    cleared_then_new = Changes()
    cleared_then_new.clear("p2", "", T0)
    cleared_then_new.alarm("high", "E1 jam", T0, cell="p2", subject="s1", code="E1")
    store.apply(cleared_then_new)
    state = {a["cell"]: a["active"] for a in store.alarms()}
    assert state == {"p1": False, "p2": True}
    (open_alarm,) = [a for a in store.alarms(open_only=True) if a["active"]]
    assert store.alarm(open_alarm["id"])["text"] == "E1 jam"
