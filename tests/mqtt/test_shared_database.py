"""Several controllers on one PostgreSQL database: one publishes at a time (an advisory
lock on a connection of its own); when it dies, or its database connection does, another
takes over and goes on where it stopped."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from mes.mqtt.publisher import Publisher
from mes.mqtt.serve import publisher_settings
from mes.settings import load_plant
from mes.store import Changes, Message, Store
from mes.store.role import Role
from tests.mqtt.conftest import ROOT, Broker, Got, Subscriber, write_plant

pytestmark = pytest.mark.pg


def test_one_holder_at_a_time_and_a_dead_connection_lets_go(pg_url: str) -> None:
    first_store, second_store = Store.open(pg_url), Store.open(pg_url)
    first, second = Role(first_store, "publisher"), Role(second_store, "publisher")
    other = Role(second_store, "order-folder")
    try:
        assert first.try_take()
        assert first.try_take()  # held already: still ours
        assert not second.try_take()
        assert other.try_take()  # another role is another lock
        # The holder's connection dies (a crashed controller, a cut network).
        holder = first.backend_pid()
        with second_store.engine.connect() as conn:
            # Waits (up to 10 s) until that backend has ended (PostgreSQL 14+).
            query = text("SELECT pg_terminate_backend(:pid, 10000)")
            assert conn.execute(query, {"pid": holder}).scalar()
        assert second.try_take()
        assert not first.alive()
        assert second.try_take()
        second.give_up()
        assert first.try_take()
    finally:
        for role in (first, second, other):
            role.give_up()
        first_store.close()
        second_store.close()


def numbers(got: list[Got]) -> list[int]:
    return [g.json()["n"] for g in got if g.topic == f"{ROOT}/shared/x"]


async def test_two_publishers_on_one_database_publish_each_message_once(
    pg_url: str, broker: Broker, tmp_path: Path
) -> None:
    plant = load_plant(write_plant(tmp_path, broker))
    settings = replace(publisher_settings(plant), poll_s=0.1, standby_s=0.2)
    stores = [Store.open(pg_url), Store.open(pg_url)]
    publishers = [Publisher(store, settings) for store in stores]
    watcher = Subscriber(broker, f"{ROOT}/shared/#", name="shared-watcher")
    now = datetime.now(UTC)

    def write(start: int) -> None:
        batch = [
            Message(f"{ROOT}/shared/x", json.dumps({"n": n}), now) for n in range(start, start + 20)
        ]
        stores[0].apply(Changes(messages=batch))

    tasks = [asyncio.create_task(p.run()) for p in publishers]
    try:
        done, _ = await asyncio.wait(
            [asyncio.create_task(p.connected.wait()) for p in publishers],
            timeout=10,
            return_when=asyncio.FIRST_COMPLETED,
        )
        assert len(done) == 1
        active = next(i for i, p in enumerate(publishers) if p.connected.is_set())
        standby = 1 - active
        await asyncio.to_thread(write, 0)
        await watcher.until(lambda got: numbers(got) == list(range(20)), 10)
        assert not publishers[standby].connected.is_set()
        # The active one goes away (cancelled: its lock connection closes with it).
        assert await publishers[active].flush(5)
        tasks[active].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks[active]
        await asyncio.wait_for(publishers[standby].connected.wait(), 10)
        await asyncio.to_thread(write, 20)
        got = await watcher.until(lambda got: len(numbers(got)) >= 40, 10)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for store in stores:
            store.close()
        watcher.close()
    assert numbers(got) == list(range(40))  # each once, in order
