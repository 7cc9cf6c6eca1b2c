"""Dashboards attach to a running controller through the store only: two of them see a
hold made from the CLI within two seconds, on their own refresh timers."""

from __future__ import annotations

import asyncio
import time

from mes.dashboard.widgets.tile import CellTile
from mes.store import Store
from tests.dashboard.conftest import dashboard
from tests.e2e.conftest import mes_command
from tests.service.conftest import build, release_units, running


async def test_two_dashboards_see_a_cli_hold_within_two_seconds(store, sqlite_url) -> None:
    release_units(store, count=1)
    plant = build(store)
    first = dashboard(Store.open(sqlite_url), refresh_s=1.0)
    second = dashboard(Store.open(sqlite_url), refresh_s=1.0)
    async with (
        running(plant),
        first.run_test(size=(80, 24)) as one,
        second.run_test(size=(120, 40)) as two,
    ):
        await plant.wait_for(lambda e: e.subject == "b1" and e.after == "idle")
        cli = await asyncio.create_subprocess_exec(
            *mes_command("cell", "hold", "b1", "--db", sqlite_url, "--reason", "from the CLI"),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await cli.communicate()
        assert cli.returncode == 0 and b"b1: held" in out
        held_at = time.monotonic()
        seen: dict[str, float] = {}
        async with asyncio.timeout(2.0):
            while len(seen) < 2:
                for name, app, pilot in (("first", first, one), ("second", second, two)):
                    tile = app.screen.query_one("#tile-b1", CellTile)
                    if name not in seen and tile.border_subtitle == "HELD":
                        seen[name] = time.monotonic() - held_at
                    await pilot.pause()
        assert max(seen.values()) < 2.0
        assert "from the CLI" in first.screen.query_one("#tile-b1", CellTile).render().plain
    first.store.close()
    second.store.close()
