"""Cells that need an operator between jobs (a printer's bed cleared, a CNC's stock
changed), and holds that outlive a lost link or a controller restart."""

from __future__ import annotations

import asyncio

from mes.service.controller import CellSetup
from tests.service.conftest import build, release_units, running
from tests.service.test_operator import answered, ask, cell_states

ATTENDED = [
    CellSetup("a1", frozenset({"cap.a"}), "fake", confirm_after_job="clear the bed"),
    CellSetup("b1", frozenset({"cap.b"}), "fake"),
]


def attend_alarms(store) -> list[dict]:
    return [a for a in store.alarms(open_only=True) if a["code"] == "attend" and a["active"]]


async def test_an_attended_cell_waits_for_a_confirmation_after_each_job(store) -> None:
    release_units(store, count=2)
    plant = build(store, ATTENDED)
    async with running(plant):
        first = await plant.started("a1")
        plant.fakes["a1"].complete(first.job_id)
        held = await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        assert held.data["waiting_for"] == "clear the bed"
        assert cell_states(store)["a1"] == "held"
        (alarm,) = attend_alarms(store)
        assert "clear the bed" in alarm["text"] and "mes cell confirm a1" in alarm["text"]
        # Resume is not the way out: the operator must say the bed is clear.
        row = await answered(plant, ask(plant, "cell.resume", "a1"))
        assert row["state"] == "refused" and "mes cell confirm a1" in row["result"]
        assert len(plant.fakes["a1"].started) == 1  # the second unit waits
        row = await answered(plant, ask(plant, "cell.confirm", "a1"))
        assert row["result"] == "confirmed (clear the bed); it takes the next job"
        second = await plant.started("a1")
        assert second.unit_id != first.unit_id
        assert attend_alarms(store) == []
        row = await answered(plant, ask(plant, "cell.confirm", "a1"))
        assert row["state"] == "refused" and "waits for no confirmation" in row["result"]
        plant.fakes["a1"].fault(second.job_id, "E7", "nozzle clogged")  # a failed print too
        await plant.wait_for(
            lambda e: e.subject == "a1" and e.transition == "hold" and e.at > held.at
        )
        assert store.cells()[0]["waiting_for"] == "clear the bed"


async def test_a_waiting_cell_still_waits_after_a_restart_with_one_alarm(store) -> None:
    release_units(store, count=2)
    plant = build(store, ATTENDED)
    async with running(plant):
        job = await plant.started("a1")
        plant.fakes["a1"].complete(job.job_id)
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
    again = build(store, ATTENDED)
    async with running(again):
        await again.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        assert again.controller.cells["a1"].waiting_for == "clear the bed"
        assert len(attend_alarms(store)) == 1
        assert again.fakes["a1"].started == []
        await answered(again, ask(again, "cell.confirm", "a1"))
        job = await again.started("a1")
        assert job.unit_id != ""


async def test_an_operators_hold_outlives_a_lost_link(store) -> None:
    release_units(store)
    plant = build(store)
    async with running(plant):
        job = await plant.started("a1")
        row = await answered(plant, ask(plant, "cell.hold", "a1"))
        assert row["result"].startswith("held after its current job")
        plant.fakes["a1"].disconnect()  # the job's follower loses the link
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "disconnect")
        plant.fakes["a1"].reconnect()
        await plant.wait_for(lambda e: e.subject == "a1" and e.data.get("recovered"))
        plant.fakes["a1"].complete(job.job_id)  # followed after the reconnect, then held
        held = await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        assert held.data["reason"] == "an operator held it during its job: because"
        release_units(store, order_id="O2")
        assert (await plant.started("a2")).unit_id in ("O1.1", "O2.1")
        assert len(plant.fakes["a1"].started) == 1


async def test_an_operators_hold_outlives_a_restart(store) -> None:
    plant = build(store)
    async with running(plant):
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "connect")
        await answered(plant, ask(plant, "cell.hold", "a1"))
    again = build(store)
    async with running(again):
        held = await again.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        assert held.data["reason"] == "still held by an operator: because"
        release_units(store)
        assert (await again.started("a2")).unit_id == "O1.1"
        assert again.fakes["a1"].started == []
        row = await answered(again, ask(again, "cell.resume", "a1"))
        assert row["result"] == "resumed"


async def test_job_progress_reaches_the_store_for_other_processes(store) -> None:
    from dataclasses import replace

    from tests.service.conftest import CELLS, FAST

    async def recorded(cell: str, value: float) -> None:
        async with asyncio.timeout(5):
            while {c["name"]: c["progress"] for c in store.cells()}[cell] != value:  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # another process would poll like this

    release_units(store)
    plant = build(store, CELLS, replace(FAST, progress_s=0.02))
    async with running(plant):
        job = await plant.started("a1")
        plant.fakes["a1"].progress(job.job_id, 0.5)
        await recorded("a1", 0.5)
        plant.fakes["a1"].complete(job.job_id)
        await recorded("a1", 0.0)
