"""The broker stopped for a stretch while the plant runs, and the controller killed
(SIGKILL) during it: once the broker is back every message arrives, in order per topic,
as the journal in the database says (issue 10).

The consumer is a QoS 1 subscriber with a session the broker keeps across its restart
(persistence on). Delivery is at least once: a message may come twice (the last one a
topic had in flight, or one the broker had not seen acknowledged), never out of order.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mes.mqtt.outbox import Outbox
from mes.mqtt.serve import plant_namespace
from mes.settings import load_plant
from mes.store import Store
from tests.e2e.conftest import mes
from tests.e2e.test_run import Running, write_order
from tests.mqtt.conftest import (
    ROOT,
    Broker,
    Got,
    Subscriber,
    _need_mosquitto,
    wait_until,
    write_plant,
)

FAMILIES = ["nameplate", "phone-stand", "sign", "nameplate", "sign", "phone-stand"]
FINISHED = {"done", "scrapped", "failed", "held"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    _need_mosquitto()
    # No ACL file here: Mosquitto 2.0.11 with one does not queue a message for a session
    # restored from disk until its client is back (docs/mqtt.md, "Brokers").
    made = Broker(tmp_path_factory.mktemp("outage-broker"), extra="max_queued_messages 100000")
    made.start()
    yield made
    made.stop()


def expected_topics(store: Store, plant: Path) -> dict[str, list[int]]:
    """Journal ids per ``events`` topic, in journal order, as the tree places them."""
    ns = plant_namespace(load_plant(plant))
    assert ns is not None
    topics: dict[str, list[int]] = {}
    for event in store.events():
        kind, subject = event["kind"], event["subject"]
        if kind == "cell":
            topic = ns.cell(subject, "events")
        elif kind in ("unit", "step"):
            topic = ns.unit(subject.split("/")[0], "events")
        elif kind == "job" and event["data"].get("cell"):
            topic = ns.cell(event["data"]["cell"], "events")
        else:
            continue
        topics.setdefault(topic, []).append(event["id"])
    return topics


def first_seen(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


@pytest.mark.slow
def test_a_broker_outage_and_a_killed_controller_lose_nothing_and_keep_each_topics_order(
    broker: Broker, tmp_path: Path
) -> None:
    plant = write_plant(tmp_path, broker, speed=1000, mqtt_extra="backlog_rate = 400\n")
    db = f"sqlite:///{tmp_path / 'mes.db'}"
    consumer = Subscriber(broker, name="uns-consumer", persistent=True)
    order = write_order(tmp_path / "order.toml", "SO-UNS", FAMILIES)
    released = mes("order", "release", str(order), "--plant", str(plant), db=db)
    assert released.returncode == 0, released.stderr
    store = Store.open(db)
    outbox = Outbox(store)
    run = Running(plant, db)
    try:
        run.expect("controller running")
        # Publishing, and the plant at work.
        consumer.wait_for(lambda got: any(b'"transition":"accept"' in g.payload for g in got), 20)
        broker.stop()
        wait_until(lambda: outbox.counts().pending >= 30, 20, "messages queued in the outbox")
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(timeout=10)
        queued = outbox.counts().pending
        run = Running(plant, db)
        run.expect("controller running")
        wait_until(lambda: outbox.counts().pending >= queued + 30, 20, "more queued meanwhile")
        broker.start()
        wait_until(
            lambda: set(store.unit_states().values()) <= FINISHED and outbox.counts().pending == 0,
            60,
            "every unit finished and the outbox drained",
        )
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=30) == 0, run.seen
    finally:
        run.proc.kill()
    wait_until(lambda: outbox.counts().pending == 0, 10, "the last messages published")
    expected = expected_topics(store, plant)

    def missing(got: list[Got]) -> dict[str, list[int]]:
        seen = {(g.topic, g.json().get("event")) for g in got if g.topic.endswith("/events")}
        gaps = {t: [i for i in ids if (t, i) not in seen] for t, ids in expected.items()}
        return {t: ids for t, ids in gaps.items() if ids}

    try:
        got = consumer.wait_for(lambda got: not missing(got), 30)
    except AssertionError:
        raise AssertionError(f"never arrived: {missing(consumer.got)}") from None
    consumer.close()

    # Every journal entry arrived on its topic, in journal order.
    received: dict[str, list[int]] = {}
    for g in got:
        if g.topic.endswith("/events"):
            received.setdefault(g.topic, []).append(g.json()["event"])
    assert set(received) == set(expected)
    for topic, ids in expected.items():
        assert first_seen(received[topic]) == ids, topic
    # Each state topic moved forward only and ended where the journal did.
    states: dict[str, list[dict[str, Any]]] = {}
    for g in first_seen([g for g in got if g.topic.endswith("/state")]):
        states.setdefault(g.topic, []).append(g.json())
    last_entry = {}
    for event in store.events():
        if event["kind"] in ("cell", "unit"):
            last_entry[event["subject"]] = event["id"]
    for topic, payloads in states.items():
        ids = [p["event"] for p in payloads if p["event"] is not None]
        assert ids == sorted(ids), topic
        subject = payloads[-1].get("cell") or payloads[-1].get("unit")
        assert ids[-1] == last_entry[subject], topic
    # Nothing was left behind or set aside; the last word was the controller's own.
    counts = outbox.counts()
    assert (counts.pending, counts.dead) == (0, 0)
    status = [g.json() for g in got if g.topic == f"{ROOT}/mes/status"]
    assert status[-1]["state"] == "offline" and status[-1]["reason"] == "stopped"
    duplicates = sum(n - 1 for n in Counter((g.topic, g.payload) for g in got).values())
    print(
        f"\n{len(got)} messages on {len(received) + len(states)} topics, "
        f"{sum(map(len, expected.values()))} journal entries, {duplicates} duplicates"
    )
    store.close()
