"""Release from the dashboard: the form checks options as the planner types, with the
family's own messages; a good form and a good file release, a bad file is refused whole."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, Select, Static

from mes.dashboard.planning import check_form
from tests.dashboard.conftest import dashboard


def problems(app) -> str:
    return str(app.screen.query_one("#form-problems", Static).render())


async def released(app, pilot) -> str:
    box = app.screen.query_one("#release-result", Static)
    async with asyncio.timeout(10):
        while not str(box.render()):
            await pilot.pause()
    return str(box.render())


async def test_the_form_refuses_a_bad_option_with_the_familys_message_and_releases_a_good_one(
    store, demo_plant
) -> None:
    app = dashboard(store, plant=demo_plant)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        app.screen.query_one("#family", Select).value = "nameplate"
        await pilot.pause()
        width = app.screen.query_one("#opt-width_mm", Input)
        width.focus()
        await pilot.press("end", *["backspace"] * 3, "2", "5", "0")  # checked per key
        assert "must be at most 240mm (got 250)" in problems(app)
        assert "option width_mm" in problems(app)
        app.screen.query_one("#opt-material", Select).value = "wood-pla"
        await pilot.press("backspace", "backspace", "2", "0")  # 220: in range, but a rule
        await pilot.pause()
        assert "wood-filled PLA warps on plates wider than 200 mm" in problems(app)
        await pilot.press("ctrl+r")
        assert store.orders() == []  # refused: nothing released, nothing asked
        await pilot.press(*["backspace"] * 3, "1", "6", "0")
        await pilot.pause()
        assert "ready to release" in problems(app)
        order = app.screen.query_one("#order", Input)
        order.value = "SO-7"
        await pilot.pause()
        await pilot.press("ctrl+r", "enter")
        assert "released order SO-7" in await released(app, pilot)
        (row,) = store.orders()
        assert (
            row["id"] == "SO-7" and row["source"] == "dashboard" and row["units"] == {"released": 1}
        )
        (unit,) = store.order_units("SO-7")
        assert unit["options"]["width_mm"] == 160 and unit["options"]["material"] == "wood-pla"
        journal = store.unit_record("SO-7.1")["journal"]
        assert journal[0]["actor"] == "alice"


async def test_a_file_releases_all_or_nothing(store, demo_plant, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[orders]]\nid = "SO-8"\n[[orders.units]]\nfamily = "nameplate"\n'
        "[orders.units.options]\nwidth_mm = 999\n"
    )
    good = tmp_path / "good.csv"
    good.write_text("order_id,family,text\nSO-9,nameplate,ADA\nSO-9,nameplate,GRACE\n")
    app = dashboard(store, plant=demo_plant)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        app.screen.query_one("#file", Input).value = str(bad)
        await pilot.press("ctrl+o", "enter")
        text = await released(app, pilot)
        assert "refused" in text and "bad.toml:3" in text and "must be at most 240mm" in text
        assert store.orders() == []
        app.screen.query_one("#file", Input).value = str(good)
        await pilot.press("ctrl+o", "enter")
        async with asyncio.timeout(10):
            while "SO-9" not in str(app.screen.query_one("#release-result").render()):
                await pilot.pause()
        assert [o["id"] for o in store.orders()] == ["SO-9"]


def test_check_form_reports_fields_rules_and_plan(demo_plant) -> None:
    family = demo_plant.families["nameplate"]
    check = check_form(family, {"text": "ÄÖ"}, quantity="0", priority="x", due="soon")
    assert set(check.fields) == {"quantity", "priority", "due", "option text"}
    assert "not allowed" in check.fields["option text"]
    ok = check_form(family, {"text": "ADA"}, quantity="3", due="2026-12-01")
    assert ok.ok and ok.spec is not None and len(ok.spec.units) == 3
