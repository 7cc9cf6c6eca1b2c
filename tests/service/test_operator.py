"""Operator requests against the running controller: each changes what it says, is
refused whole when it cannot, and leaves an audit row (who, from where, why, result)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.service.conftest import build, release_units, running
from tests.service.test_recovery import crash_while_running, step_of


def ask(plant, action: str, target: str, reason: str = "because") -> int:
    return plant.store.submit(datetime.now(UTC), "alice", "cli", action, target, reason)


async def answered(plant, request_id: int):
    event = await plant.wait_for(
        lambda e: e.kind == "request" and e.data.get("request") == request_id
    )
    row = plant.store.request(request_id)
    assert row["state"] == event.after and row["result"] == event.data["result"]
    assert (event.actor, event.data["source"], event.data["reason"]) == ("alice", "cli", "because")
    return row


def cell_states(store) -> dict[str, str]:
    return {c["name"]: c["state"] for c in store.cells()}


async def test_a_held_cell_gets_no_work_until_resumed(store):
    plant = build(store)
    async with running(plant):
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "connect")
        row = await answered(plant, ask(plant, "cell.hold", "a1"))
        assert (row["state"], row["result"]) == ("done", "held")
        assert cell_states(store)["a1"] == "held"
        (unit_id,) = release_units(store)
        job = await plant.started("a2")  # a1 is faster, but held
        assert job.unit_id == unit_id
        row = await answered(plant, ask(plant, "cell.resume", "a1"))
        assert row["result"] == "resumed" and cell_states(store)["a1"] == "idle"


async def test_holding_a_busy_cell_takes_effect_when_its_job_ends(store):
    release_units(store, count=2)
    plant = build(store)
    async with running(plant):
        job = await plant.started("a1")
        row = await answered(plant, ask(plant, "cell.hold", "a1"))
        assert row["result"] == "held after its current job (cell a1 cannot pause a job)"
        plant.fakes["a1"].complete(job.job_id)
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        assert cell_states(store)["a1"] == "held"
    assert len(plant.fakes["a1"].started) == 1


async def test_a_held_unit_waits_and_a_released_one_goes_on(store):
    (unit_id,) = release_units(store)
    plant = build(store)
    async with running(plant):
        cut = await plant.started("a1")
        row = await answered(plant, ask(plant, "unit.hold", unit_id))
        assert row["result"] == f"held; {unit_id}/cut runs on to its end"
        plant.fakes["a1"].complete(cut.job_id)
        await plant.wait_for(lambda e: e.subject == f"{unit_id}/check" and e.transition == "ready")
        assert plant.fakes["b1"].started == []
        assert store.unit_states()[unit_id] == "held"
        await answered(plant, ask(plant, "unit.release", unit_id))
        check = await plant.started("b1")
        assert check.step_id == f"{unit_id}/check"


async def test_scrap_is_refused_while_a_job_runs_and_changes_nothing(store):
    (unit_id,) = release_units(store)
    plant = build(store)
    async with running(plant):
        cut = await plant.started("a1")
        row = await answered(plant, ask(plant, "unit.scrap", unit_id))
        assert row["state"] == "refused" and "runs on a1: wait for it to end" in row["result"]
        assert store.unit_states()[unit_id] == "in_progress"
        plant.fakes["a1"].complete(cut.job_id)
        await plant.started("b1")
        # The check step runs now; scrap after it ends.
        plant.fakes["b1"].complete(plant.fakes["b1"].running)
        await plant.wait_for(lambda e: e.subject == unit_id and e.transition == "finish")
        row = await answered(plant, ask(plant, "unit.scrap", unit_id))
        assert row["state"] == "refused" and "no unfinished unit" in row["result"]


async def test_a_lost_job_raises_an_alarm_an_operator_retries_and_acknowledges(store):
    unit_id, job_id = await crash_while_running(store)
    plant = build(store)
    async with running(plant):
        await plant.wait_for(lambda e: e.transition == "interrupt")
        (alarm,) = store.alarms(open_only=True)
        assert (alarm["severity"], alarm["code"], alarm["cell"]) == ("high", "interrupted", "a1")
        assert f"mes step retry {unit_id}/cut" in alarm["text"]
        row = await answered(plant, ask(plant, "step.retry", f"{unit_id}/cut"))
        assert row["result"] == "will run again under a new job id"
        again = await plant.started("a1")
        assert again.job_id != job_id
        (alarm,) = store.alarms(open_only=True)  # cleared, not yet acknowledged
        assert not alarm["active"] and alarm["acked_at"] is None
        row = await answered(plant, ask(plant, "alarm.ack", str(alarm["id"])))
        assert row["result"] == "acknowledged"
        assert store.alarms(open_only=True) == []
        assert store.alarms()[0]["acked_by"] == "alice"
    assert step_of(store, unit_id, "cut")["state"] == "running"


async def test_a_failed_unit_alarms_and_a_retry_reworks_it(store):
    (unit_id,) = release_units(store)
    plant = build(store)  # max_attempts=2
    async with running(plant):
        for cell in ("a1", "a2"):
            job = await plant.started(cell)
            plant.fakes[cell].fault(job.job_id, "E9", "jam")
        await plant.wait_for(lambda e: e.subject == unit_id and e.after == "failed")
        codes = sorted(a["code"] for a in store.alarms(open_only=True))
        assert codes == ["E9", "E9", "unit-failed"]
        await answered(plant, ask(plant, "step.retry", f"{unit_id}/cut"))
        assert store.unit_states()[unit_id] == "in_progress"
        await plant.started("a1")


async def test_bad_requests_are_refused_with_the_reason(store):
    plant = build(store)
    async with running(plant):
        row = await answered(plant, ask(plant, "cell.hold", "nope"))
        assert row["state"] == "refused" and row["result"].startswith("no cell 'nope'")
        row = await answered(plant, ask(plant, "cell.resume", "a1"))
        assert row["result"] == "cell a1 is not held (it is idle)"
        row = await answered(plant, ask(plant, "alarm.ack", "x"))
        assert "alarm ids are numbers" in row["result"]
        row = await answered(plant, ask(plant, "cell.explode", "a1"))
        assert row["result"].startswith("unknown action 'cell.explode'")


async def test_rework_sends_a_unit_back_to_a_named_step_and_abort_stops_one(store):
    plant = build(store)
    async with running(plant):
        await plant.wait_for(lambda e: e.subject == "a2" and e.transition == "connect")
        await answered(plant, ask(plant, "cell.hold", "a2"))  # one cell for cap.a
        first, second = release_units(store, count=2)
        cut = await plant.started("a1")
        assert cut.unit_id == first
        row = await answered(plant, ask(plant, "step.abort", f"{second}/cut"))
        assert (
            row["result"]
            == f"aborted; unit {second} waits for an operator (retry, rework or scrap)"
        )
        assert store.unit_states()[second] == "failed"
        plant.fakes["a1"].complete(cut.job_id)
        check = await plant.started("b1")
        plant.fakes["b1"].complete(check.job_id)
        await plant.wait_for(lambda e: e.subject == first and e.transition == "finish")
        # The aborted unit goes back to its first step and runs again from there.
        plant.store.submit(
            datetime.now(UTC), "alice", "cli", "unit.rework", second, "because", {"step": "nope"}
        )
        refused = await plant.wait_for(lambda e: e.kind == "request" and e.after == "refused")
        assert "has no step 'nope' (steps: cut, check)" in refused.data["result"]
        request = plant.store.submit(
            datetime.now(UTC), "alice", "cli", "unit.rework", second, "because", {"step": "cut"}
        )
        row = await answered(plant, request)
        assert row["result"] == "back to cut"
        again = await plant.started("a1")
        assert again.step_id == f"{second}/cut"
        assert store.unit_states()[second] == "in_progress"


def sim_plant(store):
    from drivers.sim.cell import SimCell
    from mes.service.controller import Controller
    from tests.service.conftest import CELLS, FAST, Plant

    sims = {c.name: SimCell(c.name, speed=10, jitter=0.0) for c in CELLS}
    controller = Controller(store, CELLS, sims, options=FAST)
    plant = Plant(store, {}, controller)
    controller.recorder.subscribe(plant.on_events)
    return plant, sims


async def test_holding_a_cell_pauses_its_job_on_the_machine_and_resuming_goes_on(store):
    (unit_id,) = release_units(store)
    plant, sims = sim_plant(store)
    async with running(plant):
        accept = await plant.wait_for(lambda e: e.kind == "cell" and e.transition == "accept")
        cell = accept.subject
        row = await answered(plant, ask(plant, "cell.hold", cell))
        assert row["result"].startswith(f"paused job {accept.data['job_id']} on the machine")
        assert (await sims[cell].status()).state.value == "held"
        assert {c["name"]: c["state"] for c in store.cells()}[cell] == "held"
        row = await answered(plant, ask(plant, "cell.resume", cell))
        assert row["state"] == "done"
        assert (await sims[cell].status()).state.value == "execute"
        await plant.wait_for(lambda e: e.subject == unit_id and e.transition == "finish", 10)
    pause = next(e for e in plant.events if e.transition == "pause")
    resume = next(e for e in plant.events if e.transition == "resume")
    assert (pause.before, pause.after, resume.after) == ("execute", "held", "execute")
    assert store.unit_states()[unit_id] == "done"


async def test_aborting_a_running_step_stops_the_machine_and_waits_for_an_operator(store):
    (unit_id,) = release_units(store)
    plant, _ = sim_plant(store)
    async with running(plant):
        accept = await plant.wait_for(lambda e: e.kind == "step" and e.transition == "accept")
        row = await answered(plant, ask(plant, "step.abort", accept.subject))
        assert row["state"] == "done" and row["result"].startswith("abort sent to")
        failed = await plant.wait_for(lambda e: e.kind == "unit" and e.transition == "fail")
        assert failed.subject == unit_id
    step = next(s for s in store.unit_record(unit_id)["steps"] if s["id"] == accept.subject)
    assert step["state"] == "failed"
    (job,) = step["jobs"]  # not retried behind the operator's back
    assert job["result"]["code"] == "900"
    assert store.unit_states()[unit_id] == "failed"
