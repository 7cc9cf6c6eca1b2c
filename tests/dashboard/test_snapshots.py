"""SVG snapshots of every screen in the states an operator sees on a shift (normal, alarm,
held, link down), at 80x24 and 120x40.

Each is drawn from a fixed scene (tests/dashboard/scenes.py) at a fixed clock, with the
data's age pinned, so the same screen is drawn on every run. After a deliberate change of
the look, write them again and look at every changed picture before committing it:

    .venv/bin/python -m pytest -p no:cacheprovider tests/dashboard/test_snapshots.py \\
        --snapshot-update

Snapshot tests are plain functions: the plugin runs the app in its own event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from mes.dashboard.app import DashboardApp
from mes.dashboard.screens.unit import UnitScreen
from mes.settings import Plant
from mes.store import Store
from tests.dashboard.conftest import dashboard
from tests.dashboard.scenes import NOW, SCENES, shift, snapshot_plant

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}

Before = Callable[[Pilot[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Shot:
    """One screen in one scene: how to get there from a fresh dashboard."""

    screen: str
    scene: str
    key: str = ""
    """The screen's key (1-5, ?) pressed after the first read; "" stays on the first."""
    station: str | None = None
    unit: str = ""
    form: bool = False

    @property
    def id(self) -> str:
        name = self.screen + (f"-{self.station}" if self.station else "")
        return f"{name}-{self.scene}"


SHOTS = [
    *(Shot("plant", scene) for scene in SCENES),
    *(Shot("wip", scene, key="2") for scene in ("normal", "alarm", "held")),
    *(Shot("alarms", scene, key="3") for scene in SCENES),
    *(Shot("performance", scene, key="4") for scene in ("normal", "alarm")),
    Shot("release", "normal", key="5"),
    Shot("release-form", "normal", key="5", form=True),
    Shot("station", "normal", station="press-1"),
    Shot("station", "alarm", station="press-2"),
    Shot("station", "held", station="mill-1"),
    Shot("station", "link_down", station="test-2"),
    Shot("unit", "held", unit="SO-1003.7"),
    Shot("help", "normal", key="question_mark"),
]


@pytest.fixture(scope="session")
def plant() -> Plant:
    return snapshot_plant()


@pytest.fixture(scope="session")
def scene_urls(tmp_path_factory: pytest.TempPathFactory, plant: Plant) -> dict[str, str]:
    """Scene -> the URL of a store holding it, written once per session on first use.
    Snapshot tests only read, so they share it."""
    urls: dict[str, str] = {}
    root: Path = tmp_path_factory.mktemp("scenes")
    for scene in SCENES:
        url = f"sqlite:///{root / scene}.db"
        store = Store.open(url)
        shift(store, plant, scene)
        store.close()
        urls[scene] = url
    return urls


@pytest.fixture
def open_scene(scene_urls: dict[str, str], plant: Plant) -> Iterator[Callable[..., DashboardApp]]:
    stores: list[Store] = []

    def make(scene: str, **options: Any) -> DashboardApp:
        store = Store.open(scene_urls[scene])
        stores.append(store)
        return dashboard(store, plant=plant, clock=lambda: NOW, ticks=lambda: 0.0, **options)

    yield make
    for store in stores:
        store.close()


def before(shot: Shot) -> Before:
    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        await app.refreshed()
        await app.refreshed()  # tiles mount on the first, fill on the second
        if shot.key:
            await pilot.press(shot.key)
            await app.refreshed()
        if shot.unit:
            await pilot.press("2")
            app.open_unit(shot.unit)
            await pilot.wait_for_scheduled_animations()
            await _until(pilot, lambda: isinstance(app.screen, UnitScreen) and app.screen.record)
        if shot.form:
            app.screen.query_one("#family", Select).value = "bracket"
            await pilot.pause()
            app.screen.query_one("#opt-finish", Select).value = "powder"
            app.screen.query_one("#opt-length_mm", Input).value = "350"
            app.screen.query_one("#order", Input).value = "SO-2001"
            app.screen.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    return run


async def _until(pilot: Pilot[Any], done: Callable[[], object]) -> None:
    async with asyncio.timeout(10):
        while not done():
            await pilot.pause(0.01)


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
@pytest.mark.parametrize("shot", SHOTS, ids=[s.id for s in SHOTS])
def test_screen(snap_compare: Any, open_scene: Callable[..., DashboardApp], shot: Shot, size: str):
    app = open_scene(shot.scene, station=shot.station)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=before(shot))
