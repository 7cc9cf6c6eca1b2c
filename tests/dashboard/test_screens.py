"""WIP (filter, sort, detail, unit actions), alarms (acknowledge), station (confirm,
failed), help and the command palette, against a real controller and store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from textual.widgets import DataTable

from mes.dashboard.screens.alarms import AlarmsScreen
from mes.dashboard.screens.help import HelpScreen
from mes.dashboard.screens.unit import UnitScreen
from mes.dashboard.screens.wip import WipScreen
from mes.service.controller import CellSetup
from mes.store import Changes
from tests.dashboard.conftest import answered, dashboard, enter_reason, requests, wip_rows
from tests.service.conftest import build, running
from tests.service.conftest import release_units as release_widgets

CELLS = [
    CellSetup("a1", frozenset({"cap.a"}), "fake", confirm_after_job="clear the bed"),
    CellSetup("b1", frozenset({"cap.b"}), "fake"),
]


async def test_wip_lists_filters_sorts_and_opens_a_unit(store) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    release_widgets(store, 3, "O1", due=datetime.now(UTC) - timedelta(hours=2))
    release_widgets(store, 12, "O2", due=soon)
    app = dashboard(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await app.refreshed()
        assert isinstance(app.screen, WipScreen)
        assert len(wip_rows(app)) == 15
        assert wip_rows(app)[:3] == ["O1.1", "O1.2", "O1.3"]  # late first
        info = str(app.screen.query_one("#wip-info").render())
        assert "15 units in progress" in info and "15 released" in info
        table = app.screen.query_one("#wip", DataTable)
        assert "late 2h" in str(table.get_row("O1.1")[-1])
        assert "due in 59m" in str(table.get_row("O2.1")[-1])

        await pilot.press("slash", *"O2.1", "enter")  # filter: every word must match
        assert wip_rows(app) == ["O2.1", "O2.10", "O2.11", "O2.12"]
        await pilot.press("escape")
        assert len(wip_rows(app)) == 15

        await pilot.press("s", "s", "s")  # lateness -> state -> released -> unit
        assert "sort: unit" in str(app.screen.query_one("#wip-info").render())
        await pilot.press("S")
        assert wip_rows(app)[0] == "O2.12"

        await pilot.press("enter")
        assert isinstance(app.screen, UnitScreen)
        async with asyncio.timeout(5):
            while app.screen.record is None:
                await pilot.pause()
        head = str(app.screen.query_one("#unit-head").render())
        assert "O2.12" in head and "size = 3" in head
        steps = app.screen.query_one("#unit-steps", DataTable)
        assert steps.row_count == 2 and steps.get_row("cut")[3] == "ready"
        await pilot.press("escape")
        assert isinstance(app.screen, WipScreen)


async def test_unit_actions_from_wip_reach_the_controller(store) -> None:
    release_widgets(store, 2, "O1")
    plant = build(store, CELLS)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(100, 30)) as pilot:
        await plant.started("a1")
        await pilot.press("2")
        await app.refreshed()
        app.screen.query_one("#wip", DataTable).move_cursor(row=wip_rows(app).index("O1.2"))
        await pilot.press("h", "enter")  # a reason is required to hold a unit
        assert requests(store) == []
        assert "required" in str(app.screen.query_one("#dialog-error").render())
        await enter_reason(app, pilot, "wrong colour")
        await answered(app, pilot, 1)
        assert requests(store)[-1]["action"] == "unit.hold"
        assert app.answers[-1].state == "done"
        await app.refreshed()
        assert app.snapshot.wip["O1.2"]["state"] == "held"

        await pilot.press("x", *"customer cancelled", "enter")
        await answered(app, pilot, 2)
        row = requests(store)[-1]
        assert (row["action"], row["target"], row["reason"], row["actor"]) == (
            "unit.scrap",
            "O1.2",
            "customer cancelled",
            "alice",
        )
        await app.refreshed()
        assert "O1.2" not in app.snapshot.wip and "O1.2" not in wip_rows(app)


async def test_alarms_are_acknowledged_one_or_all(store) -> None:
    plant = build(store, CELLS)
    now = datetime.now(UTC)
    changes = Changes()
    changes.alarm("high", "spindle overload", now, cell="a1", code="E1")
    changes.alarm("low", "filament low", now, cell="b1", code="E2")
    changes.alarm("medium", "door open", now, cell="b1", code="E3")
    store.apply(changes)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await app.refreshed()
        assert isinstance(app.screen, AlarmsScreen)
        table = app.screen.query_one("#alarms", DataTable)
        assert table.row_count == 3
        assert "Alarms(3)" in str(app.screen.query_one("#status").render())
        await pilot.press("a")  # the newest first: no confirmation needed to acknowledge
        await answered(app, pilot, 1)
        assert requests(store)[-1]["action"] == "alarm.ack"
        assert app.answers[-1].result == "acknowledged"
        await app.refreshed()
        assert sum(1 for a in app.snapshot.alarms if a["acked_at"] is None) == 2
        await pilot.press("A", "enter")
        await answered(app, pilot, 3)
        await app.refreshed()
        assert all(a["acked_by"] == "alice" for a in store.alarms())


async def test_station_shows_the_work_instruction_and_confirms_the_bed(store) -> None:
    release_widgets(store, 2, "O1")
    plant = build(store, CELLS)
    app = dashboard(store, station="a1")
    async with running(plant), app.run_test(size=(80, 24)) as pilot:
        job = await plant.started("a1")
        await app.refreshed()
        await app.refreshed()  # the tile mounts, then fills
        text = str(app.screen.query_one("#instruction").render())
        assert f"unit {job.unit_id}" in text and "NOW: step 1 of 2: cut" in text
        assert "size = " in text and "program" in text
        plant.fakes["a1"].complete(job.job_id)
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        await app.refreshed()
        text = str(app.screen.query_one("#instruction").render())
        assert "TO DO: clear the bed, then press c" in text and "LAST: step 1 of 2" in text
        await pilot.press("c", "enter")
        await answered(app, pilot, 1)
        row = requests(store)[-1]
        assert (row["action"], row["target"], row["actor"]) == ("cell.confirm", "a1", "alice")
        assert app.answers[-1].result == "confirmed (clear the bed); it takes the next job"
        second = await plant.started("a1")
        plant.fakes["a1"].complete(second.job_id)
        await plant.wait_for(
            lambda e: e.subject == "a1" and e.transition == "hold" and e.at > row["done_at"]
        )
        await app.refreshed()
        await pilot.press("f", *"warped", "enter")  # failed: the step runs again, bed cleared
        await answered(app, pilot, 3)
        actions = [r["action"] for r in requests(store)[-2:]]
        assert actions == ["unit.rework", "cell.confirm"]
        assert requests(store)[-2]["args"] == {"step": "cut"}
        assert [a.state for a in app.answers[-2:]] == ["done", "done"]
        again = await plant.started("a1")
        assert again.unit_id == second.unit_id  # the failed unit's cut runs again


async def test_help_lists_every_key_and_the_colour_legend(store) -> None:
    app = dashboard(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help").query_one("Static").render())
        for mode in app.MODES.values():
            for binding in mode.BINDINGS:  # type: ignore[union-attr]
                assert binding.description in text
        for word in ("RUN", "IDLE", "WARN", "HELP", "FAULT", "OFFLINE", "amber", "blue"):
            assert word in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_every_action_key_is_in_the_footer_and_the_palette(store) -> None:
    release_widgets(store, 1, "O1")
    plant = build(store, CELLS)
    app = dashboard(store)
    async with running(plant), app.run_test(size=(160, 40)) as pilot:
        await plant.wait_for(lambda e: e.subject == "b1" and e.after == "idle")
        await app.refreshed()
        for key in "123456":
            await pilot.press(key)
            await pilot.pause()
            screen = app.screen
            shown = {b.binding.action for b in screen.active_bindings.values() if b.binding.show}
            titles = {c.title for c in app.get_system_commands(screen)}
            for binding in type(screen).BINDINGS:
                if binding.action.startswith("op_"):
                    assert binding.action in shown, (key, binding.action)
                    assert any(t.startswith(binding.description) for t in titles)
        assert {"Hold cell b1", "Resume cell b1", "Confirm cell b1", "Jump to cell b1"} <= titles
        await pilot.press("1", "ctrl+p", *"Hold cell b1")
        async with asyncio.timeout(5):
            while True:  # the palette searches in the background
                await pilot.pause()
                await pilot.press("enter")
                if app.screen.__class__.__name__ == "ConfirmDialog":
                    break
        await enter_reason(app, pilot, "from the palette")
        await answered(app, pilot, 1)
        assert requests(store)[-1]["reason"] == "from the palette"
        assert requests(store)[-1]["action"] == "cell.hold"
