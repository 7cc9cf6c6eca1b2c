"""The plant screen against a real controller with scripted cells: tiles, colours,
actions queued under the operator's name with a reason, and the controller's answer."""

from __future__ import annotations

import asyncio

from mes.dashboard.screens.plant import PlantScreen
from mes.dashboard.widgets.tile import CellTile
from mes.service.controller import CellSetup
from tests.dashboard.conftest import dashboard, enter_reason, requests
from tests.service.conftest import build, release_units, running

CELLS = [
    CellSetup("a1", frozenset({"cap.a"}), "fake", confirm_after_job="clear the bed"),
    CellSetup("a2", frozenset({"cap.a"}), "fake"),
    CellSetup("b1", frozenset({"cap.b"}), "fake"),
]


def tile(app, name: str) -> CellTile:
    return app.screen.query_one(f"#tile-{name}", CellTile)


async def test_tiles_show_each_cell_state_in_its_andon_colour(store) -> None:
    release_units(store, count=3)
    plant = build(store, CELLS)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(80, 24)) as pilot:
        first = await plant.started("a1")
        await plant.started("a2")
        plant.fakes["a1"].progress(first.job_id, 0.5)
        await plant.wait_for(lambda e: e.subject == "b1" and e.after == "idle")
        async with asyncio.timeout(5):
            while (await app.refreshed()).cells[0]["progress"] < 0.5:
                await pilot.pause()
        assert isinstance(app.screen, PlantScreen)
        a1 = tile(app, "a1")
        assert a1.has_class("-run") and a1.border_subtitle == "RUN"
        assert first.unit_id in a1.render().plain and "cut" in a1.render().plain
        assert "50%" in a1.render().plain and "█" in a1.render().plain
        assert tile(app, "b1").has_class("-idle") and tile(app, "b1").border_subtitle == "IDLE"

        plant.fakes["a1"].complete(first.job_id)  # a1 then waits for its bed to be cleared
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        await app.refreshed()
        assert tile(app, "a1").has_class("-help")
        assert tile(app, "a1").border_subtitle == "NEEDS OPERATOR"
        assert "clear the bed" in tile(app, "a1").render().plain

        plant.fakes["b1"].disconnect()  # the link drops: red, marked stale
        await plant.wait_for(lambda e: e.subject == "b1" and e.after == "offline")
        await app.refreshed()
        assert tile(app, "b1").has_class("-fault") and tile(app, "b1").has_class("-stale")
        assert tile(app, "b1").border_subtitle == "LINK DOWN"
        assert "offline" in tile(app, "b1").render().plain
        summary = str(app.screen.query_one("#plant-summary").render())
        assert "1 fault" in summary and "1 help" in summary and "1 run" in summary
    # The controller stopped: every cell is offline, calm grey, values marked stale.
    app = dashboard(store)
    async with app.run_test(size=(80, 24)):
        await app.refreshed()
        assert tile(app, "a2").has_class("-offline") and tile(app, "a2").border_subtitle == (
            "OFFLINE"
        )


async def test_hold_and_resume_keys_queue_requests_with_reason_and_operator(store) -> None:
    release_units(store, count=1)
    plant = build(store, CELLS)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(80, 24)) as pilot:
        await plant.wait_for(lambda e: e.subject == "b1" and e.after == "idle")
        await app.refreshed()
        tile(app, "b1").focus()
        await pilot.press("h")
        await enter_reason(app, pilot, "maintenance")
        async with asyncio.timeout(10):
            while not app.answers:
                await pilot.pause()
        (row,) = requests(store)
        assert (row["action"], row["target"], row["actor"], row["source"], row["reason"]) == (
            "cell.hold",
            "b1",
            "alice",
            "dashboard",
            "maintenance",
        )
        assert app.answers[-1].state == "done" and app.answers[-1].result == "held"
        await app.refreshed()
        assert tile(app, "b1").has_class("-warn") and tile(app, "b1").border_subtitle == "HELD"
        assert "maintenance" in tile(app, "b1").render().plain

        await pilot.press("r", "escape")  # cancelled: nothing queued
        assert len(requests(store)) == 1
        await pilot.press("r", "enter")  # a reason is optional to resume
        async with asyncio.timeout(10):
            while len(app.answers) < 2:
                await pilot.pause()
        assert requests(store)[-1]["action"] == "cell.resume"
        assert app.answers[-1].result == "resumed"


async def test_read_only_dashboard_queues_nothing(store) -> None:
    release_units(store, count=1)
    plant = build(store, CELLS)
    app = dashboard(store, read_only=True)
    async with running(plant), app.run_test(size=(80, 24)) as pilot:
        await plant.wait_for(lambda e: e.subject == "b1" and e.after == "idle")
        await app.refreshed()
        tile(app, "b1").focus()
        await pilot.press("h", "enter")
        assert requests(store) == []
        assert app.screen.check_action("op_hold", ()) is None  # shown disabled
        assert "READ-ONLY" in str(app.screen.query_one("#status").render())
