"""Each order's customer status on MQTT (written to the outbox; the publisher's delivery is
tested elsewhere): received, in production at the family's stage, delayed after faults,
ready; an estimate while open; and never a cell's name, a job id or a fault's text,
whatever the plant went through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.fake import FakeDriver
from mes.mqtt.orders import OrderTracker
from mes.mqtt.topics import Namespace
from mes.service.controller import CellSetup, Controller
from mes.store import Store
from tests.service.conftest import FAST, Plant, running
from tests.service.test_stock import order

CELLS = [
    CellSetup("printer-7", frozenset({"cap.print"}), "fake"),
    CellSetup("printer-8", frozenset({"cap.print"}), "fake"),
    CellSetup("laser-9", frozenset({"cap.engrave"}), "fake"),
]
NS = Namespace("acme", "works")
SECRET = "nozzle jam E4711 on the hot end"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    yield store
    store.close()


def statuses(store: Store, order_id: str) -> list[dict]:
    rows = store.outbox_page(0)
    topic = NS.order(order_id, "status")
    return [json.loads(r.payload) for r in rows if r.topic == topic]


def tracker(store: Store) -> OrderTracker:
    return OrderTracker(store, NS, CELLS, "rank", clock=lambda: datetime.now(UTC), forecast_s=0.0)


async def test_an_orders_status_goes_out_in_customer_words_only(store: Store) -> None:
    fakes = {c.name: FakeDriver(c.name) for c in CELLS}
    controller = Controller(store, CELLS, fakes, options=FAST)
    plant = Plant(store, fakes, controller)
    controller.recorder.subscribe(plant.on_events)
    good, bad = order(store, "SO-7", "pla", "pla")
    track = tracker(store)
    assert track.track() == 1
    assert statuses(store, "SO-7")[-1]["units"][0]["text"] == "received"
    async with running(plant):
        jobs = {}
        for name in ("printer-7", "printer-8"):
            job = await plant.started(name)
            jobs[job.unit_id] = (name, job)
        track.track()
        now = statuses(store, "SO-7")[-1]
        assert [u["text"] for u in now["units"]] == ["in production: printing"] * 2
        assert now["eta"] is not None and now["eta_basis"].startswith("estimated")
        name, job = jobs[good]
        fakes[name].complete(job.job_id)
        engrave = await plant.started("laser-9")
        # The other unit's print faults on both printers: it waits for an operator.
        name, job = jobs[bad]
        fakes[name].fault(job.job_id, "E4711", SECRET)
        other = "printer-8" if name == "printer-7" else "printer-7"
        retry = await plant.started(other)
        fakes[other].fault(retry.job_id, "E4711", SECRET)
        await plant.wait_for(lambda e: e.subject == bad and e.transition == "fail")
        fakes["laser-9"].complete(engrave.job_id)
        await plant.wait_for(lambda e: e.subject == good and e.transition == "finish")
        track.track()
    last = statuses(store, "SO-7")[-1]
    by_unit = {u["unit"]: u for u in last["units"]}
    assert by_unit[good]["status"] == "ready" and by_unit[good]["eta"] is not None
    assert (by_unit[bad]["status"], by_unit[bad]["eta"]) == ("delayed", None)
    assert (last["status"], last["eta"]) == ("delayed", None)
    for payload in statuses(store, "SO-7"):
        text = json.dumps(payload)
        for secret in ("printer-7", "printer-8", "laser-9", "E4711", SECRET, "cap.print"):
            assert secret not in text, (secret, text)
        assert '"job' not in text and '"cell' not in text
    retained = [r for r in store.outbox_page(0) if r.topic == NS.order("SO-7", "status")]
    assert all(r.retain for r in retained)


async def test_nothing_new_is_told_twice(store: Store) -> None:
    order(store, "SO-8", "petg")
    track = tracker(store)
    assert track.track() == 1
    assert track.track() == 0  # nothing moved: nothing written
    assert len(statuses(store, "SO-8")) == 1
