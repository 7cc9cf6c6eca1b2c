"""Dashboards against a real SQLite store, filled by the real controller with scripted
cells (tests/service/conftest.py) or by store writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from mes.dashboard.app import DashboardApp, DashboardOptions
from mes.domain import Cell
from mes.settings import load_plant
from mes.store import Store
from tests.conftest import REPO

DEMO_PLANT = REPO / "config" / "plant.toml"


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    yield store
    store.close()


@pytest.fixture(scope="session")
def demo_plant():
    return load_plant(DEMO_PLANT)


def dashboard(store: Store, **options: Any) -> DashboardApp:
    """A dashboard of ``store`` for operator alice; reads only when a test asks
    (``await app.refreshed()``): its own timer is slowed to a minute."""
    options.setdefault("refresh_s", 60.0)
    return DashboardApp(store, DashboardOptions("alice", **options))


def register(store: Store, names: list[str], capabilities=("cap.a",)) -> None:
    store.register_cells(
        [Cell(n, frozenset(capabilities), "fake") for n in names], datetime.now(UTC)
    )


def requests(store: Store) -> list[dict[str, Any]]:
    """Every request row, oldest first."""
    rows, request_id = [], 1
    while (row := store.request(request_id)) is not None:
        rows.append(row)
        request_id += 1
    return rows


async def enter_reason(app: DashboardApp, pilot: Pilot[Any], reason: str) -> None:
    """Give ``reason`` in the open dialog and press enter: its first letter typed, the
    rest pasted (a key at a time costs a tenth of a second in the pilot)."""
    await pilot.press(reason[0])
    app.screen.query_one(Input).post_message(events.Paste(reason[1:]))
    await pilot.pause()
    await pilot.press("enter")


async def answered(app: DashboardApp, pilot: Pilot[Any], count: int) -> None:
    """Wait (10 s at most) until the dashboard has shown ``count`` answers."""
    async with asyncio.timeout(10):
        while len(app.answers) < count:
            await pilot.pause()


def wip_rows(app: DashboardApp) -> list[str]:
    """The unit ids of the WIP table, top to bottom."""
    table = app.screen.query_one("#wip", DataTable)
    return [str(table.coordinate_to_cell_key((r, 0)).row_key.value) for r in range(table.row_count)]
