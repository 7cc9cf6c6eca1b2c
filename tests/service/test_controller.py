"""The controller against scripted cells: dispatch, hand-off, faults, stop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from drivers.fake import FakeDriver
from mes.domain import Reading, StepState
from mes.service.controller import Controller
from routing.scheduling.optimizer import available as optimizer_available
from tests.service.conftest import CELLS, FAST, build, release_units, running


def unit_done(unit_id: str):
    return lambda e: e.kind == "unit" and e.subject == unit_id and e.after in ("done", "failed")


async def test_a_unit_runs_its_routing_to_done_and_every_step_is_recorded(store):
    (unit_id,) = release_units(store)
    plant = build(store)
    async with running(plant):
        cut = await plant.started("a1")  # a1 is faster than a2 for cap.a
        assert (cut.step_id, cut.expected_s) == (f"{unit_id}/cut", 10.0)
        plant.fakes["a1"].progress(cut.job_id, 0.5)
        plant.fakes["a1"].complete(cut.job_id, length_mm=120.2)
        check = await plant.started("b1")
        assert check.job_id != cut.job_id
        plant.fakes["b1"].complete(check.job_id)
        await plant.wait_for(unit_done(unit_id))
        assert {c["name"]: c["state"] for c in store.cells()} == dict.fromkeys(
            ("a1", "a2", "b1"), "idle"
        )

    record = store.unit_record(unit_id)
    assert record["state"] == "done" and record["finished_at"] is not None
    steps = record["steps"]
    assert [(s["name"], s["state"], s["cell"], s["job_id"]) for s in steps] == [
        ("cut", "done", "a1", cut.job_id),
        ("check", "done", "b1", check.job_id),
    ]
    job = steps[0]["jobs"][0]
    assert job["state"] == "done"
    assert job["result"] == {"outcome": "successful", "measurements": {"length_mm": 120.2}}
    assert job["started_at"] <= job["finished_at"]
    journal = [(e["subject"].split("/")[-1], e["transition"]) for e in record["journal"]]
    assert journal == [
        (unit_id, "release"),
        ("cut", "ready"),
        ("cut", "dispatch"),
        (unit_id, "start"),
        ("cut", "accept"),
        ("cut", "complete"),
        ("check", "ready"),
        ("check", "dispatch"),
        ("check", "accept"),
        ("check", "complete"),
        (unit_id, "finish"),
    ]
    # Stopped: the controller no longer drives any cell.
    assert {c["state"] for c in store.cells()} == {"offline"}


async def test_a_faulted_step_is_retried_on_another_cell_then_fails_the_unit(store):
    (unit_id,) = release_units(store)
    plant = build(store)  # max_attempts=2
    async with running(plant):
        first = await plant.started("a1")
        plant.fakes["a1"].fault(first.job_id, "E101", "material runout")
        second = await plant.started("a2")  # avoids the cell it failed on
        assert second.job_id > first.job_id
        plant.fakes["a2"].fault(second.job_id, "E204", "spindle overload")
        await plant.wait_for(unit_done(unit_id))
        # The cells recovered from the job fault and are ready for other work.
        assert {c["name"]: c["state"] for c in store.cells()}["a1"] == "idle"

    record = store.unit_record(unit_id)
    assert record["state"] == "failed"
    jobs = record["steps"][0]["jobs"]
    assert [(j["cell"], j["state"], j["result"]["code"]) for j in jobs] == [
        ("a1", "failed", "E101"),
        ("a2", "failed", "E204"),
    ]
    assert record["steps"][0]["attempts"] == 2


async def test_several_units_share_the_cells_one_job_per_cell_at_a_time(store):
    units = release_units(store, count=4)
    plant = build(store)
    async with running(plant):
        handed = [await plant.started("a1"), await plant.started("a2")]
        for _ in range(4):
            job = handed.pop(0)
            cell = "a1" if job in plant.fakes["a1"].started else "a2"
            assert plant.fakes[cell].running == job.job_id
            plant.fakes[cell].complete(job.job_id)
            if len(plant.fakes["a1"].started) + len(plant.fakes["a2"].started) < 4:
                handed.append(await plant.started(cell))
            check = await plant.started("b1")
            plant.fakes["b1"].complete(check.job_id)
        for unit_id in units:
            await plant.wait_for(unit_done(unit_id))
    assert set(store.unit_states().values()) == {"done"}
    job_ids = [j.job_id for f in plant.fakes.values() for j in f.started]
    assert len(job_ids) == len(set(job_ids)) == 8


async def test_graceful_stop_hands_out_nothing_new_and_follows_the_running_job(store):
    (unit_id,) = release_units(store)
    plant = build(store)
    task = asyncio.create_task(plant.controller.run())
    cut = await plant.started("a1")
    plant.controller.stop()
    plant.fakes["a1"].complete(cut.job_id)
    async with asyncio.timeout(5):
        await task
    steps = {s["name"]: s for s in store.unit_record(unit_id)["steps"]}
    assert steps["cut"]["state"] == StepState.DONE.value
    assert steps["check"]["state"] == StepState.READY.value  # left for the next run
    assert plant.fakes["b1"].started == []


async def test_a_second_stop_returns_at_once_leaving_the_job_recoverable(store):
    (unit_id,) = release_units(store)
    plant = build(store)
    task = asyncio.create_task(plant.controller.run())
    await plant.started("a1")
    plant.controller.stop()
    plant.controller.stop()
    async with asyncio.timeout(5):
        await task
    steps = {s["name"]: s for s in store.unit_record(unit_id)["steps"]}
    assert steps["cut"]["state"] == StepState.RUNNING.value


async def test_released_while_running_is_picked_up(store):
    plant = build(store)
    async with running(plant):
        (unit_id,) = release_units(store, order_id="LATE")
        job = await plant.started("a1")
        assert job.unit_id == unit_id


async def test_with_the_optimizer_planning_ahead_every_unit_still_finishes(store):
    if not optimizer_available():
        pytest.skip("OR-Tools is not installed (pip install -e '.[opt]')")
    units = release_units(store, count=6)
    plant = build(store, options=replace(FAST, optimize_s=0.5, replan_s=0.5))

    async def finish_everything(name: str) -> None:
        while True:
            job = await plant.fakes[name].next_started()
            plant.fakes[name].complete(job.job_id)

    async with running(plant):
        replanner = plant.controller.replanner
        assert replanner is not None
        async with asyncio.timeout(60):
            await replanner.planned.wait()  # a plan arrived while the units were open
        workers = [asyncio.create_task(finish_everything(n)) for n in plant.fakes]
        try:
            for unit_id in units:
                await plant.wait_for(unit_done(unit_id), seconds=30)
        finally:
            for worker in workers:
                worker.cancel()
    assert set(store.unit_states().values()) == {"done"}
    assert replanner.plans >= 1


async def test_a_job_running_far_past_its_expected_time_raises_one_alarm(store):
    now = [datetime(2026, 11, 23, 8, 0, tzinfo=UTC)]
    options = replace(FAST, overdue_factor=2.0, overdue_grace_s=5.0)
    plant = build(store, options=options)
    plant.controller.clock = lambda: now[0]
    (unit_id,) = release_units(store)
    async with running(plant):
        job = await plant.started("a1")  # "cut": 10 s expected, so overdue after 25 s
        await plant.wait_for(lambda e: e.transition == "accept" and e.kind == "step")
        now[0] += timedelta(seconds=26)
        overdue = await plant.wait_for(lambda e: e.transition == "overdue")
        assert overdue.subject == str(job.job_id) and overdue.data["cell"] == "a1"
        (alarm,) = store.alarms(open_only=True)
        assert (alarm["code"], alarm["cell"], alarm["severity"]) == ("overdue", "a1", "medium")
        assert "expected 10 s" in alarm["text"]
        plant.fakes["a1"].complete(job.job_id)
        await plant.wait_for(lambda e: e.transition == "complete" and e.subject.endswith("/cut"))
    (alarm,) = store.alarms()
    assert not alarm["active"]  # the job ended: cleared (still to be acknowledged)
    assert sum(e.transition == "overdue" for e in plant.events) == 1
    assert unit_id


async def test_a_cells_sensor_readings_reach_the_store_for_watchers(store) -> None:
    """What a driver last heard from its sensors (a printer's temperatures) is recorded
    with the cell about once a second, where the dashboard reads it."""

    class Printer(FakeDriver):
        def readings(self) -> dict[str, Reading]:
            return {"hotend": Reading(209.84, 210.0), "bed": Reading(60.0, 60.0)}

    options = replace(FAST, progress_s=0.05)
    controller = Controller(store, CELLS[:1], {"a1": Printer("a1")}, options=options)
    task = asyncio.create_task(controller.run())
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while not (recorded := store.cells()[0]["readings"] if store.cells() else {}):
            assert asyncio.get_running_loop().time() < deadline, "no readings recorded"
            await asyncio.sleep(0.05)  # polling the store, bounded by the deadline
        assert recorded == {"hotend": [209.8, 210.0], "bed": [60.0, 60.0]}
    finally:
        controller.stop()
        controller.stop()
        await task
