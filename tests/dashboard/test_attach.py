"""Dashboards attach to a running controller through the store only: two of them see a
hold made from the CLI within two seconds, on their own refresh timers; one stays
attached while the controller stops and another starts."""

from __future__ import annotations

import asyncio
import time

from mes.dashboard.widgets.tile import CellTile
from mes.store import Store
from tests.dashboard.conftest import answered, dashboard, requests
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


async def test_a_dashboard_stays_attached_across_a_controller_restart(store, sqlite_url) -> None:
    """The dashboard reads on its own timer through its own connection while the
    controller stops and another starts on the same store: it shows the cells go
    offline, a request queued meanwhile waits, and the new controller's work and answer."""
    app = dashboard(Store.open(sqlite_url), refresh_s=0.2, answer_wait_s=0.5)

    async def shows(pilot, cell: str, label: str, text: str = "") -> CellTile:
        async with asyncio.timeout(10):
            while True:
                tiles = list(app.screen.query(f"#tile-{cell}").results(CellTile))
                if tiles and tiles[0].border_subtitle == label and text in tiles[0].render().plain:
                    return tiles[0]
                await pilot.pause(0.05)

    release_units(store, count=1, order_id="O1")
    first = build(store)
    async with app.run_test(size=(80, 24)) as pilot:
        async with running(first):
            job = await first.started("a1")
            first.fakes["a1"].progress(job.job_id, 0.5)
            await shows(pilot, "a1", "RUN", "O1.1 cut")
            first.fakes["a1"].complete(job.job_id)
            job = await first.started("b1")
            first.fakes["b1"].complete(job.job_id)
            await first.wait_for(lambda e: e.subject == "O1.1" and e.after == "done")
            await shows(pilot, "b1", "IDLE")
        # Stopped: every cell offline, its last values marked stale; still refreshing.
        await shows(pilot, "a1", "OFFLINE")
        assert app.snapshot.error == "" and app.snapshot.wip == {}
        tile = app.screen.query_one("#tile-b1", CellTile)
        tile.focus()
        await pilot.press("h", *"between controllers", "enter")
        await answered(app, pilot, 1)
        assert app.answers[-1].state == "pending"  # no controller takes it yet
        assert "no controller has taken it yet" in app.answers[-1].text
        release_units(store, count=1, order_id="O2")  # released while it was down
        async with asyncio.timeout(5):
            while "O2.1" not in app.snapshot.wip:  # its own timer goes on reading
                await pilot.pause(0.05)

        second = build(store)
        async with running(second):
            job = await second.started("a1")
            assert job.unit_id == "O2.1"
            await shows(pilot, "a1", "RUN", "O2.1 cut")
            await shows(pilot, "b1", "HELD", "between controllers")  # the queued hold
            (row,) = requests(store)
            assert (row["state"], row["actor"], row["source"]) == ("done", "alice", "dashboard")
            assert app.snapshot.error == ""
    app.store.close()
