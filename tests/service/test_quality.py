"""Quality: a result out of its limits fails the step, and the family's policy decides:
retry (on another cell), rework from a named step, or scrap."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mes.domain.quality import out_of_limits
from mes.service.order_files import OrderSpec, UnitSpec
from mes.service.release import release
from routing.family import QualityPolicy
from tests.service.conftest import WIDGET, build, running


def release_widget(store, policy: QualityPolicy) -> str:
    steps = (WIDGET.steps[0], replace(WIDGET.steps[1], limits={"length_mm": (99.5, 100.5)}))
    family = replace(WIDGET, steps=steps, quality=policy)
    spec = OrderSpec("Q1", 0, None, (UnitSpec("widget", {}, "u", None),), "", None)
    release(store, [spec], {"widget": family}, datetime.now(UTC))
    return "Q1.1"


@pytest.mark.parametrize(
    ("limits", "measured", "expected"),
    [
        ({"a": [1, 2]}, {"a": 1.5}, None),
        ({"a": [1, 2]}, {"a": 2.5}, "a 2.5 outside 1..2"),
        ({"a": [1, 2], "b": [0, 0]}, {"a": 1}, "b not measured"),
    ],
)
def test_out_of_limits(limits, measured, expected):
    assert out_of_limits(limits, measured) == expected


async def test_in_limits_passes_and_the_measurement_is_kept(store):
    unit_id = release_widget(store, QualityPolicy())
    plant = build(store)
    async with running(plant):
        plant.fakes["a1"].complete((await plant.started("a1")).job_id)
        check = await plant.started("b1")
        plant.fakes["b1"].complete(check.job_id, length_mm=100.2)
        await plant.wait_for(lambda e: e.subject == unit_id and e.transition == "finish")
    step = store.unit_record(unit_id)["steps"][1]
    assert step["result"]["measurements"] == {"length_mm": 100.2}


async def test_out_of_limits_retries_then_fails_the_unit_with_alarms(store):
    unit_id = release_widget(store, QualityPolicy("retry", max_retries=1))
    plant = build(store)
    async with running(plant):
        plant.fakes["a1"].complete((await plant.started("a1")).job_id)
        for _ in range(2):
            check = await plant.started("b1")
            plant.fakes["b1"].complete(check.job_id, length_mm=101.0)
        await plant.wait_for(lambda e: e.subject == unit_id and e.after == "failed")
        assert {c["name"]: c["state"] for c in store.cells()}["b1"] == "idle"  # not faulted
    jobs = store.unit_record(unit_id)["steps"][1]["jobs"]
    assert [(j["state"], j["result"]["code"]) for j in jobs] == [
        ("failed", "quality"),
        ("failed", "quality"),
    ]
    assert "length_mm 101 outside 99.5..100.5" in jobs[0]["result"]["text"]
    assert [a["code"] for a in store.alarms(open_only=True)] == [
        "unit-failed",
        "quality",
        "quality",
    ]


async def test_out_of_limits_reworks_from_the_named_step(store):
    unit_id = release_widget(store, QualityPolicy("rework", max_retries=1, rework_from="cut"))
    plant = build(store)
    async with running(plant):
        first_cut = await plant.started("a1")
        plant.fakes["a1"].complete(first_cut.job_id)
        check = await plant.started("b1")
        plant.fakes["b1"].complete(check.job_id, length_mm=98.0)
        second_cut = await plant.started("a1")  # made again from the cut
        assert second_cut.step_id == f"{unit_id}/cut" and second_cut.job_id != first_cut.job_id
        plant.fakes["a1"].complete(second_cut.job_id)
        check = await plant.started("b1")
        plant.fakes["b1"].complete(check.job_id, length_mm=100.0)
        await plant.wait_for(lambda e: e.subject == unit_id and e.transition == "finish")
    reworked = [e for e in store.events(kind="step") if e["transition"] == "rework"]
    assert {e["subject"].split("/")[1] for e in reworked} == {"cut", "check"}


async def test_out_of_limits_scraps_when_the_family_says_so(store):
    unit_id = release_widget(store, QualityPolicy("scrap"))
    plant = build(store)
    async with running(plant):
        plant.fakes["a1"].complete((await plant.started("a1")).job_id)
        check = await plant.started("b1")
        plant.fakes["b1"].complete(check.job_id)  # nothing measured: not a good part
        await plant.wait_for(lambda e: e.subject == unit_id and e.after == "scrapped")
    assert store.unit_states()[unit_id] == "scrapped"
