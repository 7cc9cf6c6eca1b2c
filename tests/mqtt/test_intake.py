"""Orders from upstream: published on ``<root>/orders/in`` or dropped into the watched
folder, released exactly as ``mes order release`` does (all or nothing, idempotent by
order id), and what became of each published back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mes.mqtt.serve import serving_mqtt
from mes.settings import load_plant
from mes.store import Store
from tests.mqtt.conftest import ROOT, Broker, Got, Subscriber, write_plant

GOOD = {
    "id": "ERP-100",
    "priority": 2,
    "units": [
        {"family": "nameplate", "options": {"material": "petg", "width_mm": 120, "text": "Ada"}},
        {"family": "sign", "options": {"text": "Hello"}},
    ],
}
#: Refused whole: one unit is fine, the others break a range, a rule and the family list.
BAD = {
    "id": "ERP-101",
    "units": [
        {"family": "nameplate", "options": {"width_mm": 120}},
        {"family": "nameplate", "options": {"width_mm": 999}},
        {"family": "nameplate", "options": {"material": "wood-pla", "width_mm": 240}},
        {"family": "teapot"},
    ],
}


@asynccontextmanager
async def plant_taking_orders(broker: Broker, tmp_path: Path) -> AsyncIterator[Store]:
    plant = load_plant(
        write_plant(
            tmp_path,
            broker,
            mqtt_extra="intake = true\n",
            extra='\n[intake]\nfolder = "inbox"\npoll_s = 0.1\nsettle_s = 0\n',
        )
    )
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    try:
        async with serving_mqtt(plant, store, lambda _: None) as publisher:
            assert publisher is not None
            await asyncio.wait_for(publisher.connected.wait(), 10)
            yield store
    finally:
        store.close()


def send(broker: Broker, payload: bytes, reply_to: str | None = None, **props: Any) -> None:
    """Publish an order at QoS 1 as an upstream system would, and wait for the broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="erp", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if reply_to:
        properties.ResponseTopic = reply_to
    for name, value in props.items():
        setattr(properties, name, value)
    client.publish(f"{ROOT}/orders/in", payload, qos=1, properties=properties).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def outcomes(got: list[Got], topic: str) -> list[dict[str, Any]]:
    return [g.json() for g in got if g.topic == topic]


async def test_orders_on_the_topic_are_released_once_and_a_bad_one_refused_whole(
    broker: Broker, tmp_path: Path
) -> None:
    replies = f"{ROOT}/erp/replies"
    watcher = Subscriber(broker, name="erp-watcher")
    async with plant_taking_orders(broker, tmp_path) as store:
        order = json.dumps(GOOD).encode()
        await asyncio.to_thread(send, broker, order, replies, CorrelationData=b"req-1")
        got = await watcher.until(lambda got: len(outcomes(got, replies)) == 1, 15)
        await asyncio.to_thread(send, broker, order, replies, CorrelationData=b"req-2")
        await asyncio.to_thread(send, broker, json.dumps(BAD).encode())
        got = await watcher.until(
            lambda got: (
                len(outcomes(got, replies)) == 2
                and len(outcomes(got, f"{ROOT}/orders/results")) == 1
            ),
            15,
        )
        states = store.unit_states()
    watcher.close()
    first, again = outcomes(got, replies)
    assert (first["outcome"], first["released"], first["units"]) == ("released", ["ERP-100"], 2)
    assert first["correlation"] == "req-1"
    reply = next(g for g in got if g.topic == replies)
    assert reply.properties.CorrelationData == b"req-1"  # MQTT 5 request/response
    assert (again["outcome"], again["unchanged"], again["units"]) == ("unchanged", ["ERP-100"], 0)
    assert again["correlation"] == "req-2"
    (refused,) = outcomes(got, f"{ROOT}/orders/results")
    assert refused["outcome"] == "refused"
    assert refused["source"] == f"mqtt:{ROOT}/orders/in"
    assert [p["path"] for p in refused["problems"]] == [
        "order ERP-101, units[1]: options.width_mm",
        "order ERP-101, units[2]: options.material, options.width_mm",
        "order ERP-101, units[3]: family",
    ]
    assert "wider than 200 mm" in refused["problems"][1]["reason"]
    # Released once, with its units told on the namespace; the bad order not at all.
    assert sorted(states) == ["ERP-100.1", "ERP-100.2"]
    assert {g.topic for g in got} >= {
        f"{ROOT}/units/ERP-100.1/state",
        f"{ROOT}/units/ERP-100.2/state",
    }


async def test_order_files_in_the_folder_are_released_and_moved_with_the_reasons_beside(
    broker: Broker, tmp_path: Path
) -> None:
    watcher = Subscriber(broker, f"{ROOT}/orders/results", name="folder-watcher")
    inbox = tmp_path / "inbox"
    async with plant_taking_orders(broker, tmp_path) as store:
        for name, order in (("good.json", GOOD | {"id": "ERP-200"}), ("bad.json", BAD)):
            part = inbox / f".{name}.part"  # written aside, then renamed: never read half
            part.write_text(json.dumps(order))
            part.rename(inbox / name)
        got = await watcher.until(lambda got: len(got) == 2, 15)
        states = store.unit_states()
    watcher.close()
    assert sorted(p.name for p in inbox.iterdir()) == ["done", "failed"]
    assert [p.name for p in (inbox / "done").iterdir()] == ["good.json"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == [
        "bad.json",
        "bad.json.error.txt",
    ]
    reasons = (inbox / "failed" / "bad.json.error.txt").read_text().splitlines()
    assert len(reasons) == 3
    assert all(line.startswith(str(inbox / "bad.json")) for line in reasons)
    assert "width_mm" in reasons[0] and "teapot" in reasons[2]
    by_outcome = {g.json()["outcome"]: g.json() for g in got}
    assert by_outcome["released"]["source"] == str(inbox / "good.json")
    assert len(by_outcome["refused"]["problems"]) == 3
    assert sorted(states) == ["ERP-200.1", "ERP-200.2"]
