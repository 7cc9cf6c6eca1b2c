"""Blanks at the store: a release takes the oldest blank of its variant and skips its
generic steps; an empty stock leaves the full routing; concurrent releases never take
the same blank and concurrent replenishers never overshoot (PostgreSQL and SQLite);
a scrapped stock unit or blank leaves stock; stock outlives the store being reopened."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from mes.errors import DomainError
from mes.service.stock import plan_stock, stock_units
from mes.store import Store
from mes.store.stock import Levels, StockRelease
from routing.family import variant_key
from tests.service.test_stock import TAG
from tests.service.test_stock import order as release_tags

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PLA = variant_key({"material": "pla"})


@pytest.fixture
def store(db_url: str):
    store = Store.open(db_url)
    yield store
    store.close()


def make_blanks(store: Store, count: int, material: str = "pla") -> list[str]:
    """``count`` stock units released and (as if run) done, one minute apart."""
    ids = plan_stock(store, TAG, {"material": material}, count, T0, actor="test")
    with store.engine.begin() as conn:
        for n, unit_id in enumerate(ids):
            at = T0 + timedelta(minutes=n + 1)
            conn.execute(
                text("UPDATE unit SET state = 'done', finished_at = :at WHERE id = :u"),
                {"at": at.replace(tzinfo=None), "u": unit_id},
            )
            conn.execute(
                text("UPDATE step SET state = 'done', cell = 'p1' WHERE unit_id = :u"),
                {"u": unit_id},
            )
    return ids


def order(store: Store, order_id: str, *materials: str) -> list[str]:
    return release_tags(store, order_id, *materials, at=T0 + timedelta(hours=1), actor="cli")


def test_a_unit_takes_the_oldest_blank_and_starts_at_its_first_custom_step(store: Store) -> None:
    oldest, newer = make_blanks(store, 2)
    (unit_id,) = order(store, "C1", "pla")
    record = store.unit_record(unit_id)
    assert record is not None
    assert [(s["name"], s["state"]) for s in record["steps"]] == [
        ("print", "skipped"),
        ("engrave", "ready"),
    ]
    assert record["blank"]["id"] == oldest and record["blank"]["cells"] == ["p1"]
    assert record["blank"]["made_at"] == T0 + timedelta(minutes=1)
    journal = [(e["subject"], e["transition"]) for e in record["journal"]]
    assert journal == [
        (unit_id, "release"),
        (f"{unit_id}/print", "skip"),
        (f"{unit_id}/engrave", "ready"),
    ]
    assert record["journal"][1]["data"]["blank"] == oldest
    level = store.stock_levels()[("tag", PLA)]
    assert (level.in_stock, level.making) == (1, 0)
    (consumed,) = [e for e in store.events("blank") if e["transition"] == "consume"]
    assert (consumed["subject"], consumed["data"]["unit"]) == (oldest, unit_id)
    assert newer in {b["unit_id"] for b in store.blanks()}


def test_an_empty_stock_leaves_the_whole_routing(store: Store) -> None:
    make_blanks(store, 1, "petg")
    plan_stock(store, TAG, {"material": "pla"}, 1, T0)  # being made: not in stock yet
    (unit_id,) = order(store, "C1", "pla")
    record = store.unit_record(unit_id)
    assert record is not None and record["blank"] is None
    assert [s["state"] for s in record["steps"]] == ["ready", "pending"]
    levels = store.stock_levels()
    assert levels[("tag", PLA)].making == 1
    assert levels[("tag", variant_key({"material": "petg"}))].in_stock == 1


def test_units_of_one_release_take_what_there_is_in_order(store: Store) -> None:
    make_blanks(store, 1)
    first, second = order(store, "C1", "pla", "pla")
    assert store.unit_record(first)["blank"] is not None  # type: ignore[index]
    assert store.unit_record(second)["blank"] is None  # type: ignore[index]


def test_releasing_the_same_order_again_takes_no_second_blank(store: Store) -> None:
    make_blanks(store, 2)
    order(store, "C1", "pla")
    order(store, "C1", "pla")
    assert store.stock_levels()[("tag", PLA)].in_stock == 1


def test_concurrent_releases_never_take_the_same_blank(store: Store) -> None:
    blanks = set(make_blanks(store, 10))
    threads, errors = 8, []
    start = threading.Barrier(threads)

    def one(n: int) -> None:
        try:
            start.wait()
            order(store, f"C{n}", "pla", "pla")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=one, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT unit_id, state, consumed_by FROM blank")).all()
    taken = Counter(r.consumed_by for r in rows if r.state == "consumed")
    assert {r.unit_id for r in rows if r.state == "consumed"} == blanks  # every one taken
    assert len(taken) == 10 and max(taken.values()) == 1  # each by one unit, once
    skipped = {
        u
        for u, s in store.unit_states().items()
        if u.startswith("C") and store.unit_record(u)["blank"] is not None  # type: ignore[index]
    }
    assert skipped == set(taken)
    assert ("tag", PLA) not in store.stock_levels()  # none in stock, none being made


def test_concurrent_replenishers_never_overshoot_a_target(store: Store) -> None:
    threads, target = 6, 5
    start = threading.Barrier(threads)

    def top_up(levels: Levels, next_id: Callable[[], str]) -> StockRelease:
        level = levels.get(("tag", PLA))
        short = target - (level.total if level else 0)
        if short <= 0:
            return [], [], [], []
        return stock_units(TAG, {"material": "pla"}, short, next_id(), T0, actor="stock")

    def one() -> None:
        start.wait()
        store.replenish(top_up)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert store.stock_levels()[("tag", PLA)].making == target
    orders = [o for o in store.orders() if o["source"] == "stock"]
    assert len(orders) == 1 and orders[0]["id"] == "STOCK-000001"
    assert orders[0]["priority"] < -100  # below any customer's


def test_a_scrapped_stock_unit_or_blank_leaves_stock(store: Store) -> None:
    first, second, third = make_blanks(store, 3)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE unit SET state = 'scrapped' WHERE id = :u"), {"u": first})
    store.scrap_blank(second, T0, "alice", "dropped")
    assert store.stock_levels()[("tag", PLA)].in_stock == 1
    (unit_id,) = order(store, "C1", "pla")
    assert store.unit_record(unit_id)["blank"]["id"] == third  # type: ignore[index]
    with pytest.raises(DomainError, match="scrapped already"):
        store.scrap_blank(second, T0, "alice", "again")
    with pytest.raises(DomainError, match=f"taken by unit {unit_id}"):
        store.scrap_blank(third, T0, "alice", "too late")
    (scrap,) = [e for e in store.events("blank") if e["transition"] == "scrap"]
    assert (scrap["subject"], scrap["actor"], scrap["data"]) == (
        second,
        "alice",
        {"reason": "dropped"},
    )


def test_stock_outlives_reopening_the_store(db_url: str) -> None:
    store = Store.open(db_url)
    make_blanks(store, 2)
    store.close()
    store = Store.open(db_url)
    try:
        assert store.stock_levels()[("tag", PLA)].in_stock == 2
    finally:
        store.close()
