"""100 cells and 10,000 units in progress: every tile and the WIP render, at 80x24 and
on a large terminal, and a refresh shows a change. Speed figures are printed by
tests/benchmarks/bench_dashboard.py; here only a hang guard."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable

from mes.dashboard.screens.wip import MAX_ROWS
from mes.dashboard.widgets.tile import CellTile
from tests.dashboard.conftest import dashboard, register
from tests.service.conftest import release_units as release_widgets


@pytest.fixture
def big(store):
    register(store, [f"cell-{n:03d}" for n in range(100)], ("cap.a", "cap.b"))
    for order in range(10):
        release_widgets(store, 1000, f"O{order}")
    return store


@pytest.mark.parametrize("size", [(80, 24), (240, 70)])
async def test_a_hundred_cells_and_ten_thousand_units_render_and_refresh(big, size) -> None:
    app = dashboard(big)
    async with asyncio.timeout(60), app.run_test(size=size) as pilot:
        await app.refreshed()
        await pilot.pause()
        tiles = list(app.screen.query(CellTile))
        assert len(tiles) == 100
        assert all(t.border_subtitle == "OFFLINE" for t in tiles)  # no controller
        assert len(app.snapshot.wip) == 10_000
        await pilot.press("2")
        await app.refreshed()
        assert app.screen.query_one("#wip", DataTable).row_count == MAX_ROWS
        info = str(app.screen.query_one("#wip-info").render())
        assert "10,000 units in progress" in info
        release_widgets(big, 1, "LATE")
        await app.refreshed()  # only the touched unit is read again
        assert "10,001 units in progress" in str(app.screen.query_one("#wip-info").render())
        await pilot.press("slash", *"LATE", "enter")
        assert app.screen.query_one("#wip", DataTable).row_count == 1
