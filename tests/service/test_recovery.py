"""After a crash the controller reconciles with each cell by job id: nothing lost, nothing
run twice, nothing lost silently re-run."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from mes.domain import Event, JobCompleted
from mes.store import Changes
from tests.service.conftest import CELLS, build, release_units, running


async def crash_while_running(store) -> tuple[str, int]:
    """Run until a1 has accepted the first job, then kill the controller."""
    (unit_id,) = release_units(store)
    plant = build(store)
    task = asyncio.create_task(plant.controller.run())
    job = await plant.started("a1")
    await plant.wait_for(lambda e: e.transition == "accept" and e.kind == "step")
    task.cancel()
    try:
        async with asyncio.timeout(5):
            await task
    except asyncio.CancelledError:
        pass
    assert store.unit_record(unit_id)["steps"][0]["state"] == "running"
    return unit_id, job.job_id


def step_of(store, unit_id: str, name: str) -> dict:
    return next(s for s in store.unit_record(unit_id)["steps"] if s["name"] == name)


async def test_a_job_the_cell_finished_while_we_were_down_is_recorded_not_rerun(store):
    unit_id, job_id = await crash_while_running(store)
    plant = build(store)
    plant.fakes["a1"].last = JobCompleted(job_id, {"length_mm": 99.0})
    async with running(plant):
        check = await plant.started("b1")
        assert check.step_id == f"{unit_id}/check"
    assert plant.fakes["a1"].started == [] and plant.fakes["a2"].started == []
    cut = step_of(store, unit_id, "cut")
    assert (cut["state"], cut["job_id"]) == ("done", job_id)
    assert cut["jobs"][0]["result"]["measurements"] == {"length_mm": 99.0}


async def test_a_job_still_running_is_followed_to_its_end(store):
    unit_id, job_id = await crash_while_running(store)
    plant = build(store)
    plant.fakes["a1"].running = job_id
    async with running(plant):
        await plant.wait_for(lambda e: e.transition == "accept" and e.data.get("recovered"))
        plant.fakes["a1"].complete(job_id)
        await plant.started("b1")
    assert plant.fakes["a1"].started == []
    assert step_of(store, unit_id, "cut")["state"] == "done"


async def test_a_lost_job_is_interrupted_and_left_for_an_operator(store):
    unit_id, job_id = await crash_while_running(store)
    plant = build(store)  # the cells remember nothing: the job was lost with them
    async with running(plant):
        interrupt = await plant.wait_for(lambda e: e.transition == "interrupt")
    assert interrupt.data["job_id"] == job_id
    assert all(f.started == [] for f in plant.fakes.values())
    cut = step_of(store, unit_id, "cut")
    assert cut["state"] == "interrupted"
    assert cut["jobs"][0]["state"] == "interrupted"


async def test_a_lost_job_on_a_cell_that_allows_it_is_rerun_under_a_new_id(store):
    unit_id, job_id = await crash_while_running(store)
    cells = [replace(c, rerun_interrupted=True) for c in CELLS]
    plant = build(store, cells)
    async with running(plant):
        again = await plant.started("a1")
    assert again.step_id == f"{unit_id}/cut"
    assert again.job_id != job_id
    assert [j["state"] for j in step_of(store, unit_id, "cut")["jobs"]] == [
        "interrupted",
        "running",
    ]


async def test_a_job_recorded_but_never_handed_over_is_handed_over_under_the_same_id(store):
    (unit_id,) = release_units(store)
    unit = store.load_units([unit_id])[0]
    step, now = unit.steps[0], datetime.now(UTC)
    job_id = store.reserve_job_ids(1)[0]
    changes = Changes()
    changes.add(Event.of(step.dispatch("a2", job_id, now), "crashed"), step)
    changes.job(step, at=now)
    store.apply(changes)  # ... and the controller died before calling start_job

    plant = build(store)
    async with running(plant):
        job = await plant.started("a2")
    assert job.job_id == job_id
    assert plant.fakes["a1"].started == []


async def test_a_hand_off_to_a_cell_that_forgets_jobs_is_interrupted_never_resent(store):
    (unit_id,) = release_units(store)
    unit = store.load_units([unit_id])[0]
    step, now = unit.steps[0], datetime.now(UTC)
    job_id = store.reserve_job_ids(1)[0]
    changes = Changes()
    changes.add(Event.of(step.dispatch("a2", job_id, now), "crashed"), step)
    changes.job(step, at=now)
    store.apply(changes)  # ... and the controller died while streaming it, or before

    plant = build(store)
    plant.fakes["a2"].remembers_jobs = False  # a printer: it cannot say which it was
    async with running(plant):
        event = await plant.wait_for(lambda e: e.subject == step.id and e.after == "interrupted")
        assert "cannot say" in event.data["reason"]
    assert all(j.job_id != job_id for f in plant.fakes.values() for j in f.started)


async def test_a_lost_link_marks_the_cell_offline_and_the_job_is_followed_on_reconnect(store):
    (unit_id,) = release_units(store)
    plant = build(store)
    async with running(plant):
        job = await plant.started("a1")
        await plant.wait_for(lambda e: e.transition == "accept" and e.kind == "cell")
        plant.fakes["a1"].disconnect()
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "disconnect")
        assert {c["name"]: c["state"] for c in store.cells()}["a1"] == "offline"
        plant.fakes["a1"].reconnect()
        await plant.wait_for(lambda e: e.transition == "accept" and e.data.get("recovered"))
        plant.fakes["a1"].complete(job.job_id)
        await plant.started("b1")
    assert len(plant.fakes["a1"].started) == 1
    assert step_of(store, unit_id, "cut")["state"] == "done"


async def test_a_step_refused_again_and_again_fails_with_an_alarm_not_a_loop(store):
    from mes.service.controller import CellSetup

    cells = [
        CellSetup("a1", frozenset({"cap.a"}), "fake"),
        CellSetup("b1", frozenset({"cap.b"}), "fake"),
    ]
    release_units(store)
    plant = build(store, cells)
    plant.fakes["a1"].refuse = "line 14: '!' would reach GRBL as a real-time command"
    async with running(plant):
        failed = await plant.wait_for(lambda e: e.kind == "step" and e.after == "failed")
        assert failed.data["code"] == "rejected" and "refused 3 times" in failed.data["text"]
    assert len(plant.fakes["a1"].refused) <= 3 * plant.controller.options.max_attempts
    (alarm,) = [a for a in store.alarms() if a["code"] == "rejected"][:1]
    assert "'!'" in alarm["text"]
