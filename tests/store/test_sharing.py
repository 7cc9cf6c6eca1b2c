"""Several controllers on one database, at the store: leases with fencing tokens that
only grow, renewals that tell a controller what it lost, writes refused from one that
lost a cell or a unit, and custody claimed by one claimer only, even concurrently."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from mes.domain import Cell, CellEvent, Event
from mes.errors import Fenced
from mes.store import Changes, Store
from tests.store.test_store import make_order

CELLS = ["laser-1", "printer-1", "printer-2"]
HOST = "test-host"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str):
    store = Store.open(db_url)
    for me in ("a", "b"):
        store.join(me, me, HOST, [], CELLS)
    yield store
    store.close()


def test_a_free_cell_is_taken_once_with_a_token_that_grows(store: Store) -> None:
    first = store.acquire("a", CELLS, ttl_s=60, host=HOST, limit=2)
    assert sorted(first) == ["laser-1", "printer-1"]
    assert store.acquire("b", CELLS, ttl_s=60, host=HOST, limit=5) == {
        "printer-2": max(first.values()) + 1
    }
    assert store.acquire("b", CELLS, ttl_s=60, host=HOST, limit=5) == {}  # a is alive


def test_a_heartbeat_renews_and_names_what_was_lost(store: Store) -> None:
    mine = store.acquire("a", ["printer-1"], ttl_s=60, host=HOST, limit=1)
    assert store.heartbeat("a", mine) == set()
    store.give_up("a", ["printer-1"])
    taken = store.acquire("b", ["printer-1"], ttl_s=60, host=HOST, limit=1)
    assert taken["printer-1"] > mine["printer-1"]
    assert store.heartbeat("a", mine) == {"printer-1"}


def test_the_cells_of_a_member_whose_heart_stopped_are_taken_over(store: Store) -> None:
    store.acquire("a", CELLS, ttl_s=60, host=HOST, limit=3)
    with store.engine.begin() as conn:  # a's last heartbeat: long ago
        conn.execute(text("UPDATE controller SET heartbeat_at = :t WHERE id = 'a'"), {"t": T0})
    assert sorted(store.acquire("b", CELLS, ttl_s=60, host=HOST, limit=3)) == CELLS


def test_on_this_host_a_member_whose_process_is_gone_is_taken_over_at_once(store: Store) -> None:
    store.acquire("a", CELLS, ttl_s=60, host=HOST, limit=3)
    with store.engine.begin() as conn:  # a pid no process has (above the kernel's max)
        conn.execute(text("UPDATE controller SET pid = 99999999 WHERE id = 'a'"))
    assert sorted(store.acquire("b", CELLS, ttl_s=60, host=HOST, limit=3)) == CELLS
    assert sorted(store.acquire("c", CELLS, ttl_s=60, host="elsewhere", limit=3)) == []


def test_a_write_with_a_token_that_moved_on_is_refused_whole(store: Store) -> None:
    old = store.acquire("a", ["printer-1"], ttl_s=60, host=HOST, limit=1)
    store.register_cells([Cell("printer-1", frozenset({"print.fdm"}), "sim")], T0)
    store.give_up("a", ["printer-1"])
    store.acquire("b", ["printer-1"], ttl_s=60, host=HOST, limit=1)
    cell = Cell("printer-1", frozenset({"print.fdm"}), "sim")
    changes = Changes(fences=old)
    changes.add(Event.of(cell.handle(CellEvent.CONNECT, T0), "a"), cell)
    with pytest.raises(Fenced, match=r"lost the lease of printer-1 \(now b, token"):
        store.apply(changes)
    assert store.cells()[0]["state"] == "offline"  # nothing of the batch was written


def test_custody_is_claimed_by_one_and_others_cannot_write_the_unit(store: Store) -> None:
    order, units, programs, events = make_order(units=3)
    store.release([order], units, programs, events)
    mine = store.claim_units("a", 60, HOST, capabilities={"print.fdm"}, limit=2)
    assert [u.id for u in mine] == ["SO-1.1", "SO-1.2"]
    theirs = store.claim_units("b", 60, HOST, capabilities={"print.fdm"})
    assert [u.id for u in theirs] == ["SO-1.3"]
    assert store.claim_units("b", 60, HOST, ids=["SO-1.1"]) == []
    changes = Changes(writer="b")
    changes.add(mine[0])
    with pytest.raises(Fenced, match=r"lost custody of SO-1.1 \(now a\)"):
        store.apply(changes)
    store.apply(Changes(writer="a", custody={"SO-1.1": ""}))  # a lets it go
    assert [u.id for u in store.claim_units("b", 60, HOST, ids=["SO-1.1"])] == ["SO-1.1"]


def test_a_unit_with_no_step_its_claimer_can_do_is_not_claimed(store: Store) -> None:
    order, units, programs, events = make_order(units=1)
    store.release([order], units, programs, events)
    assert store.claim_units("a", 60, HOST, capabilities={"laser.engrave"}) == []


def test_leaving_frees_leases_and_units_not_on_a_cell(store: Store) -> None:
    order, units, programs, events = make_order(units=1)
    store.release([order], units, programs, events)
    store.acquire("a", CELLS, ttl_s=60, host=HOST, limit=3)
    store.claim_units("a", 60, HOST, capabilities={"print.fdm"})
    store.leave("a")
    assert {lease["owner"] for lease in store.leases().values()} == {""}
    assert store.custody(["SO-1.1"]) == {"SO-1.1": ("", "released")}


@pytest.mark.pg
def test_concurrent_claimers_never_get_the_same_unit(pg_url: str) -> None:
    """Eight threads claim from 200 units at once on PostgreSQL (SKIP LOCKED): every
    unit is claimed exactly once."""
    store = Store.open(pg_url)
    order, units, programs, events = make_order(units=200)
    store.release([order], units, programs, events)
    got: dict[str, list[str]] = {}
    start = threading.Barrier(8)

    def claimer(me: str) -> None:
        mine = got.setdefault(me, [])
        start.wait()
        while batch := store.claim_units(me, 60, HOST, capabilities={"print.fdm"}, limit=7):
            mine.extend(u.id for u in batch)

    for n in range(8):
        store.join(f"c{n}", f"c{n}", HOST, [], CELLS)
    threads = [threading.Thread(target=claimer, args=(f"c{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    claimed = [u for ids in got.values() for u in ids]
    assert sorted(claimed) == sorted(u.id for u in units)
    assert sum(1 for ids in got.values() if ids) > 1  # they really competed
    store.close()
