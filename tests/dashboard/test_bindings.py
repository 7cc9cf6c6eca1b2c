"""Every key of the dashboard pressed once (the others are in test_plant, test_screens and
test_release): what the operator relies on is a request row under their name with the
reason and the source, and the controller's answer, or the screen that opens."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from mes.dashboard.app import DashboardApp
from mes.dashboard.screens.dialogs import ConfirmDialog, ReworkDialog
from mes.dashboard.screens.performance import PerformanceScreen
from mes.dashboard.screens.plant import PlantScreen
from mes.dashboard.screens.release import ReleaseScreen
from mes.dashboard.screens.station import StationScreen
from mes.dashboard.screens.unit import UnitScreen
from mes.dashboard.screens.wip import WipScreen
from mes.dashboard.widgets.tile import CellTile
from mes.service.controller import CellSetup
from mes.store import Store
from tests.dashboard.conftest import answered, dashboard, enter_reason, register, requests, wip_rows
from tests.dashboard.scenes import NOW, shift, snapshot_plant
from tests.service.conftest import Plant, build, running
from tests.service.conftest import release_units as release_widgets

CELLS = [
    CellSetup("a1", frozenset({"cap.a"}), "fake", confirm_after_job="clear the bed"),
    CellSetup("b1", frozenset({"cap.b"}), "fake"),
]


async def ask(
    app: DashboardApp, pilot: Pilot[Any], key: str, reason: str, dialog: type = ConfirmDialog
) -> dict[str, Any]:
    """Press ``key``, give ``reason`` in the dialog it opens, wait for the controller's
    answer; return the request row it queued."""
    count = len(app.answers)
    await pilot.press(key)
    assert isinstance(app.screen, dialog), (key, app.screen)
    await enter_reason(app, pilot, reason)
    await answered(app, pilot, count + 1)
    (row,) = [r for r in requests(app.store) if r["id"] == app.answers[-1].request_id]
    assert (row["actor"], row["source"], row["reason"]) == ("alice", "dashboard", reason)
    assert app.answers[-1].state == "done", app.answers[-1]
    return row


def pick(app: DashboardApp, unit_id: str) -> None:
    app.screen.query_one("#wip", DataTable).move_cursor(row=wip_rows(app).index(unit_id))


def tile(app: DashboardApp, name: str) -> CellTile:
    return app.screen.query_one(f"#tile-{name}", CellTile)


async def idle(plant: Plant, cell: str) -> None:
    await plant.wait_for(lambda e: e.subject == cell and e.after == "idle")


# -- app ------------------------------------------------------------------------------


async def test_p_freezes_the_screen_and_p_again_shows_what_came_meanwhile(store) -> None:
    release_widgets(store, 2, "O1")
    app = dashboard(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await app.refreshed()
        info = app.screen.query_one("#wip-info", Static)
        assert "2 units in progress" in str(info.render())
        await pilot.press("p")
        assert app.paused
        release_widgets(store, 3, "O2")
        await app.refreshed()
        assert len(app.snapshot.wip) == 5  # read, but not shown
        assert "2 units in progress" in str(info.render())
        assert "PAUSED (p)" in str(app.screen.query_one("#status").render())
        await pilot.press("p")
        assert not app.paused
        await app.refreshed()
        assert "5 units in progress" in str(info.render())
        assert "PAUSED" not in str(app.screen.query_one("#status").render())


async def test_q_quits_and_asks_first_when_quitting_stops_a_demo(store) -> None:
    app = dashboard(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0
    demo = dashboard(store, quit_warning="this stops the demo's controller")
    async with demo.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        assert isinstance(demo.screen, ConfirmDialog)
        assert "stops the demo" in str(demo.screen.query_one("#dialog-help", Static).render())
        await pilot.press("escape")
        assert demo.return_code is None and isinstance(demo.screen, PlantScreen)
        await pilot.press("q", "enter")
        await pilot.pause()
        assert demo.return_code == 0


# -- plant ----------------------------------------------------------------------------


async def test_arrow_keys_move_between_tiles_and_enter_opens_the_station(store) -> None:
    register(store, [f"c{n}" for n in range(1, 7)])
    app = dashboard(store)
    async with app.run_test(size=(80, 24)) as pilot:  # 3 tiles a row at 80 columns
        await app.refreshed()
        assert app.focused is tile(app, "c1")
        await pilot.press("right")
        assert app.focused is tile(app, "c2")
        await pilot.press("down")
        assert app.focused is tile(app, "c5")
        await pilot.press("left")
        assert app.focused is tile(app, "c4")
        await pilot.press("up")
        assert app.focused is tile(app, "c1")
        await pilot.press("left", "up")  # at the edge: stays
        assert app.focused is tile(app, "c1")
        await pilot.press("right", "right", "right", "right", "right", "right")
        assert app.focused is tile(app, "c6")
        await pilot.press("enter")
        async with asyncio.timeout(5):
            while not isinstance(app.screen, StationScreen):
                await pilot.pause()
        await app.refreshed()
        assert app.station_cell == "c6" and app.reader.station == "c6"
        text = str(app.screen.query_one("#instruction", Static).render())
        assert text.startswith("c6: OFFLINE")


async def test_c_confirms_what_a_cell_waits_for(store) -> None:
    release_widgets(store, 2, "O1")
    plant = build(store, CELLS)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(80, 24)) as pilot:
        job = await plant.started("a1")
        plant.fakes["a1"].complete(job.job_id)
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        await app.refreshed()
        assert tile(app, "a1").border_subtitle == "NEEDS OPERATOR"
        tile(app, "a1").focus()
        await pilot.press("c")
        detail = str(app.screen.query_one("#dialog-help", Static).render())
        assert detail == "it waits for an operator to clear the bed"
        await pilot.press("escape")
        row = await ask(app, pilot, "c", "bed is clear")
        assert (row["action"], row["target"]) == ("cell.confirm", "a1")
        assert app.answers[-1].result == "confirmed (clear the bed); it takes the next job"
        await plant.started("a1")  # the next unit's cut
        await app.refreshed()
        assert tile(app, "a1").border_subtitle == "RUN"


# -- WIP and the unit detail ----------------------------------------------------------


async def test_wip_keys_abort_rework_retry_hold_and_unhold_a_unit(store) -> None:
    release_widgets(store, 2, "O1")
    plant = build(store, CELLS)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(100, 30)) as pilot:
        await plant.started("a1")  # O1.1 keeps a1 busy: O1.2 stays off the cells
        await pilot.press("2")
        await app.refreshed()
        assert isinstance(app.screen, WipScreen)

        async def state() -> tuple[str, str]:
            row = (await app.refreshed()).wip["O1.2"]
            return row["state"], row["step_state"]

        pick(app, "O1.2")
        row = await ask(app, pilot, "a", "wrong material")
        assert (row["action"], row["target"]) == ("step.abort", "O1.2/cut")
        assert await state() == ("failed", "aborted")
        row = await ask(app, pilot, "w", "cut it again", dialog=ReworkDialog)
        assert (row["action"], row["target"], row["args"]) == (
            "unit.rework",
            "O1.2",
            {"step": "cut"},
        )
        assert await state() == ("in_progress", "ready")
        await ask(app, pilot, "a", "stop it once more")
        assert await state() == ("failed", "aborted")
        row = await ask(app, pilot, "t", "material found")
        assert (row["action"], row["target"]) == ("step.retry", "O1.2/cut")
        assert app.answers[-1].result == "will run again under a new job id"
        assert await state() == ("in_progress", "ready")
        row = await ask(app, pilot, "h", "check the drawing")
        assert (row["action"], row["target"]) == ("unit.hold", "O1.2")
        assert (await state())[0] == "held"
        row = await ask(app, pilot, "u", "drawing checked")
        assert (row["action"], row["target"]) == ("unit.release", "O1.2")
        assert app.answers[-1].result == "released from hold"
        assert (await state())[0] == "in_progress"


async def test_unit_detail_keys_act_on_its_unit_and_r_reads_it_again(store) -> None:
    release_widgets(store, 2, "O1")
    plant = build(store, CELLS)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(100, 30)) as pilot:
        await plant.started("a1")
        await pilot.press("2")
        await app.refreshed()
        pick(app, "O1.2")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, UnitScreen) and screen.unit_id == "O1.2"

        async def reloaded() -> tuple[str, str]:
            """Press r; the unit's state and its first step's, as the screen shows them."""
            before = screen.record
            await pilot.press("r")
            async with asyncio.timeout(5):
                while screen.record is before:
                    await pilot.pause()
            await pilot.pause()
            head = str(screen.query_one("#unit-head", Static).render())
            unit_state = head.split("state ")[1].split()[0]
            return unit_state, str(screen.query_one("#unit-steps", DataTable).get_row("cut")[3])

        assert await reloaded() == ("released", "ready")
        row = await ask(app, pilot, "a", "wrong material")
        assert (row["action"], row["target"]) == ("step.abort", "O1.2/cut")
        assert app.screen is screen  # the detail stays open after each answer
        assert await reloaded() == ("failed", "aborted")
        row = await ask(app, pilot, "t", "material found")
        assert (row["action"], row["target"]) == ("step.retry", "O1.2/cut")
        assert await reloaded() == ("in_progress", "ready")
        row = await ask(app, pilot, "w", "start over", dialog=ReworkDialog)
        assert (row["action"], row["args"], app.answers[-1].result) == (
            "unit.rework",
            {"step": "cut"},
            "back to cut",
        )
        row = await ask(app, pilot, "h", "check the drawing")
        assert (row["action"], row["target"]) == ("unit.hold", "O1.2")
        assert (await reloaded())[0] == "held"
        row = await ask(app, pilot, "u", "drawing checked")
        assert (row["action"], row["target"]) == ("unit.release", "O1.2")
        assert (await reloaded())[0] == "in_progress"
        row = await ask(app, pilot, "x", "customer cancelled")
        assert (row["action"], row["target"]) == ("unit.scrap", "O1.2")
        assert (await reloaded())[0] == "scrapped"
        journal = str(screen.query_one("#unit-journal", Static).render())
        assert "alice: O1.2 scrap -> scrapped (customer cancelled)" in journal
        await pilot.press("escape")
        assert isinstance(app.screen, WipScreen)


# -- station, performance, release ----------------------------------------------------


async def test_station_h_holds_and_r_resumes_its_cell(store) -> None:
    plant = build(store, CELLS)
    app = dashboard(store, station="b1")
    async with running(plant), app.run_test(size=(80, 24)) as pilot:
        await idle(plant, "b1")
        await app.refreshed()
        assert isinstance(app.screen, StationScreen)
        row = await ask(app, pilot, "h", "cleaning")
        assert (row["action"], row["target"], app.answers[-1].result) == ("cell.hold", "b1", "held")
        await app.refreshed()
        await app.refreshed()  # the tile mounts, then fills
        assert "b1: HELD - cleaning" in str(app.screen.query_one("#instruction").render())
        row = await ask(app, pilot, "r", "clean")
        assert (row["action"], row["target"], app.answers[-1].result) == (
            "cell.resume",
            "b1",
            "resumed",
        )
        await app.refreshed()
        assert "b1: IDLE" in str(app.screen.query_one("#instruction").render())
        assert "Resume cell b1: resumed" in str(app.screen.query_one("#answers").render())


def perf_text(app: DashboardApp) -> str:
    return str(app.screen.query_one("#perf-summary", Static).render())


async def test_performance_shows_throughput_oee_lead_time_and_the_sparkline(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'scene.db'}")
    plant = snapshot_plant()
    shift(store, plant, "alarm")
    app = dashboard(store, plant=plant, clock=lambda: NOW, target_h=4.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await app.refreshed()
        assert isinstance(app.screen, PerformanceScreen)
        text = perf_text(app)
        assert "Throughput 3.0 units/h vs target 4.0/h: behind by 1" in text
        assert "last 8 h: 19 done, 0 scrapped" in text
        assert "lead time mean 1h19m, median 1h14m" in text
        assert "Plant OEE 34% = availability 34% x performance 100% x quality 98%" in text
        label = str(app.screen.query_one("#spark-label", Static).render())
        assert label == " units done per 10m, last 8 h (peak 2):"
        assert sum(app.screen.query_one("#spark").data) == 19
        table = app.screen.query_one("#oee", DataTable)
        assert table.row_count == 7  # six cells and the plant
        assert table.get_row("press-2")[:6] == ["press-2", "39%", "43%", "100%", "90%", "10"]
        assert table.get_row("plant")[:5] == ["plant", "34%", "34%", "100%", "98%"]
    store.close()


async def test_performance_r_recomputes_the_figures_now(store) -> None:
    release_widgets(store, 1, "O1")
    plant = build(store, [*CELLS[1:], CellSetup("a2", frozenset({"cap.a"}), "fake")])
    app = dashboard(store)
    async with running(plant), app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await app.refreshed()
        assert "0 done" in perf_text(app)
        for cell in ("a2", "b1"):
            job = await plant.started(cell)
            plant.fakes[cell].complete(job.job_id)
        await plant.wait_for(lambda e: e.subject == "O1.1" and e.after == "done")
        await pilot.press("r")
        await app.refreshed()
        assert "last 8 h: 1 done, 0 scrapped" in perf_text(app)


async def test_release_escape_leaves_the_field_so_keys_act_again(store, demo_plant) -> None:
    app = dashboard(store, plant=demo_plant)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        assert isinstance(app.screen, ReleaseScreen)
        order = app.screen.query_one("#order", Input)
        order.focus()
        await pilot.press("S", "O", "1")  # typed into the field, not a screen key
        assert order.value == "SO1" and isinstance(app.screen, ReleaseScreen)
        await pilot.press("escape")
        assert app.focused is None
        await pilot.press("1")
        assert isinstance(app.screen, PlantScreen) and order.value == "SO1"
