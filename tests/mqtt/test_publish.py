"""The publisher against a real broker: messages that cannot be published are set aside and
counted while the rest flows; a backlog drains at its rate behind live topics; retained
state and the last will are what a subscriber arriving later sees."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mes.cli_mqtt import status as mqtt_status
from mes.mqtt.outbox import Outbox
from mes.mqtt.publisher import DEAD_ALARM, Publisher
from mes.mqtt.serve import publisher_settings
from mes.settings import load_plant
from mes.store import Changes, Message, Store
from tests.e2e.test_run import Running
from tests.mqtt.conftest import ROOT, Broker, Got, Subscriber, write_plant


def messages(topic: str, count: int, start: int = 0) -> list[Message]:
    now = datetime.now(UTC)
    return [Message(topic, json.dumps({"n": n}), now) for n in range(start, start + count)]


def numbers(got: list[Got], topic: str) -> list[int]:
    return [g.json()["n"] for g in got if g.topic == topic]


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)  # polling the store, bounded by the deadline


@asynccontextmanager
async def publishing(
    broker: Broker, tmp_path: Path, mqtt_extra: str = ""
) -> AsyncIterator[tuple[Store, Publisher]]:
    plant = load_plant(write_plant(tmp_path, broker, mqtt_extra=mqtt_extra))
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    publisher = Publisher(store, replace(publisher_settings(plant), poll_s=0.1))
    yield store, publisher
    store.close()


async def run(publisher: Publisher) -> asyncio.Task[None]:
    task = asyncio.create_task(publisher.run())
    await asyncio.wait_for(publisher.connected.wait(), 10)
    return task


async def stop(task: asyncio.Task[None], publisher: Publisher) -> None:
    assert await publisher.flush(5.0), "the outbox was not drained"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_messages_that_cannot_be_published_are_set_aside_and_counted_while_the_rest_flows(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sub = Subscriber(broker, f"{ROOT}/#", name="poison-watcher")
    fine = messages(f"{ROOT}/test/fine", 6)
    refused = Message(f"{ROOT}/forbidden/x", '{"n": -1}', fine[0].at)  # the broker's ACL
    too_large = Message(f"{ROOT}/test/large", "x" * 70_000, fine[0].at)  # max_packet_size
    invalid = Message(f"{ROOT}/test/#", '{"n": -2}', fine[0].at)  # a wildcard
    async with publishing(broker, tmp_path, "max_attempts = 2\n") as (store, publisher):
        await asyncio.to_thread(
            store.apply,
            Changes(messages=[fine[0], refused, fine[1], too_large, fine[2], invalid, fine[3]]),
        )
        task = await run(publisher)
        try:
            # The rest flows at once, in order, while the poisoned ones wait to be retried.
            await sub.until(lambda got: numbers(got, f"{ROOT}/test/fine") == [0, 1, 2, 3], 10)
            outbox = Outbox(store)
            await until(lambda: outbox.counts().dead == 3, 15, "three dead messages")
            # And keeps flowing after them.
            await asyncio.to_thread(store.apply, Changes(messages=fine[4:]))
            publisher.wake()
            await sub.until(lambda got: numbers(got, f"{ROOT}/test/fine") == [0, 1, 2, 3, 4, 5], 10)
            # One alarm says so, published too, with its id.
            raised = await sub.until(lambda got: any(g.topic == f"{ROOT}/alarms" for g in got), 10)
        finally:
            await stop(task, publisher)
        counts = outbox.counts()
        assert (counts.pending, counts.dead) == (0, 3)
        errors = {row["topic"]: (row["attempts"], row["error"]) for row in outbox.dead()}
        assert errors[f"{ROOT}/forbidden/x"] == (2, "refused by the broker: Not authorized")
        assert "maximum packet size 65536" in errors[f"{ROOT}/test/large"][1]
        assert "wildcard" in errors[f"{ROOT}/test/#"][1]
        alarms = [a for a in store.alarms(open_only=True) if a["code"] == DEAD_ALARM]
        assert len(alarms) == 1
        (told,) = [g.json() for g in raised if g.topic == f"{ROOT}/alarms"]
        assert (told["change"], told["alarm"], told["code"]) == (
            "raised",
            alarms[0]["id"],
            DEAD_ALARM,
        )
        assert publisher.dead == 3
        # The operator's view.
        mqtt_status(db=str(store.engine.url), as_json=False)
        shown = capsys.readouterr().out
        assert shown.startswith("pending 0, dead 3")
        assert f"{ROOT}/forbidden/x" in shown and "Not authorized" in shown
    sub.close()


async def test_a_backlog_drains_at_its_rate_behind_live_topics(
    broker: Broker, tmp_path: Path
) -> None:
    sub = Subscriber(broker, f"{ROOT}/rate/#", name="rate-watcher")
    backlog = [m for t in range(4) for m in messages(f"{ROOT}/rate/old{t}", 50)]
    async with publishing(broker, tmp_path, "backlog_rate = 50\n") as (store, publisher):
        await asyncio.to_thread(store.apply, Changes(messages=backlog))
        task = await run(publisher)
        try:
            await sub.until(lambda got: len(got) >= 10, 10)
            started = time.monotonic()
            live = messages(f"{ROOT}/rate/fresh", 1) + messages(f"{ROOT}/rate/old0", 1, 50)
            await asyncio.to_thread(store.apply, Changes(messages=live))
            publisher.wake()
            got = await sub.until(lambda got: len(got) == 202, 15)
            took = time.monotonic() - started
        finally:
            await stop(task, publisher)
    topics = [g.topic for g in got]
    # The fresh topic went first, long before the backlog was through (the first
    # second's worth, 50, goes at once; then 50 a second) ...
    assert topics.index(f"{ROOT}/rate/fresh") < 150
    # ... which took its time: 150 more at 50/s.
    assert took > 2.0, took
    # Each topic in order; old0's new message after its backlog.
    for t in range(4):
        assert numbers(got, f"{ROOT}/rate/old{t}") == list(range(51 if t == 0 else 50))
    sub.close()


@pytest.mark.slow
def test_retained_state_and_the_last_will_are_what_a_late_subscriber_sees(
    broker: Broker, tmp_path: Path
) -> None:
    plant = write_plant(tmp_path, broker)
    db = f"sqlite:///{tmp_path / 'mes.db'}"
    status, cell = f"{ROOT}/mes/status", f"{ROOT}/hall-1/print/printer-1/state"

    def told(topic: str, state: str, *, retained: bool = True) -> Callable[[list[Got]], bool]:
        return lambda got: any(
            g.topic == topic and g.retain >= retained and g.json()["state"] == state for g in got
        )

    watcher = Subscriber(broker, name="watcher")
    run = Running(plant, db)
    try:
        run.expect("controller running")
        watcher.wait_for(told(cell, "idle", retained=False), 10)
        # Someone arriving now gets what is current, retained.
        first = Subscriber(broker, name="late-1")
        first.wait_for(told(status, "online"), 10)
        first.wait_for(told(cell, "idle"), 10)
        first.close()
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(timeout=10)
    finally:
        run.proc.kill()
    # Killed: the broker says it for us (the will), retained; the cells' last states stay.
    second = Subscriber(broker, name="late-2")
    got = second.wait_for(told(status, "offline"), 10)
    will = [g.json() for g in got if g.topic == status][-1]
    assert will["reason"] == "connection lost"
    second.wait_for(told(cell, "idle"), 10)
    second.close()
    # Stopped: it says so itself, and its cells go offline.
    run = Running(plant, db)
    try:
        run.expect("controller running")
        watcher.wait_for(lambda got: told(status, "online", retained=False)(got[-3:]), 10)
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=20) == 0
    finally:
        run.proc.kill()
    watcher.close()
    third = Subscriber(broker, name="late-3")
    got = third.wait_for(told(cell, "offline"), 10)
    assert [g.json() for g in got if g.topic == status][-1]["reason"] == "stopped"
    third.close()
