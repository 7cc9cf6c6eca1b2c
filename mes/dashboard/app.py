"""The dashboard app: screens as modes, a refresh loop that reads the store in a worker
thread, and operator requests with confirmation, reason and the controller's answer.

Theory of operation: a timer calls :meth:`DashboardApp.tick` every ``refresh_s``; if no
read is under way, a thread worker takes a :class:`~mes.dashboard.data.Snapshot` and
hands it to the visible screen, which updates its widgets in place (no flicker, no
rebuilt screen). Nothing on the event loop touches the store. Actions never change
production directly: :meth:`ask` confirms, then queues a request under the operator's
name and shows the controller's answer when it comes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import Hit, Hits, Provider
from textual.screen import Screen

from mes.dashboard.actions import ACTIONS, ActionSpec, Answer, Requests
from mes.dashboard.data import Reader, Snapshot
from mes.dashboard.screens.alarms import AlarmsScreen
from mes.dashboard.screens.base import DashboardScreen
from mes.dashboard.screens.dialogs import ConfirmDialog, ReworkDialog
from mes.dashboard.screens.help import HelpScreen
from mes.dashboard.screens.performance import PerformanceScreen
from mes.dashboard.screens.plant import PlantScreen
from mes.dashboard.screens.release import ReleaseScreen
from mes.dashboard.screens.station import StationScreen
from mes.dashboard.screens.unit import UnitScreen
from mes.dashboard.screens.wip import WipScreen
from mes.dashboard.widgets.status import SCREENS
from mes.mqtt.serve import release_messages
from mes.settings import Plant
from mes.settings.stations import stations as plant_stations
from mes.store import Store
from routing.family import Family
from routing.fit import Station

Follow = tuple[str, str, Mapping[str, Any] | None]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """How a dashboard runs (``mes dashboard`` options)."""

    operator: str
    plant: Plant | None = None
    station: str | None = None
    refresh_s: float = 1.0
    speed: float = 1.0
    """Time scale of simulated cells (``mes demo --speed``): figures are in plant time."""
    target_h: float | None = None
    read_only: bool = False
    window_h: float = 8.0
    note: Callable[[], str] | None = None
    """A word for the status line (``mes demo``: whether its controller still runs)."""
    quit_warning: str = ""
    """When set, quitting asks first and says this (``mes demo``: it stops the demo)."""
    answer_wait_s: float = 15.0
    clock: Callable[[], datetime] = utc_now
    """The plant's "now" for what is read (times in state, lateness, the performance
    window); tests pass a fixed one so that what is drawn is the same every run."""
    ticks: Callable[[], float] = time.monotonic
    """Seconds for the data's age in the status line (``time.monotonic``)."""
    extra: Mapping[str, Any] = field(default_factory=dict)


class UnitCommands(Provider):
    """Palette: "Show unit ID" for units in progress matching what is typed."""

    async def search(self, query: str) -> Hits:
        app = self.app
        if not isinstance(app, DashboardApp) or app.snapshot is None or len(query) < 2:
            return
        matcher = self.matcher(query)
        found = 0
        for unit_id in app.snapshot.wip:
            if query.lower() in unit_id.lower():
                title = f"Show unit {unit_id}"
                yield Hit(
                    matcher.match(title) or 0.5,
                    matcher.highlight(title),
                    partial(app.open_unit, unit_id),
                    help="its routing, steps, jobs, options and journal",
                )
                found += 1
                if found >= 20:
                    return


class DashboardApp(App[None]):
    """Watch and steer the plant through the store (see the module docstring)."""

    CSS_PATH = "app.tcss"
    TITLE = "mes dashboard"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "plant": PlantScreen,
        "wip": WipScreen,
        "alarms": AlarmsScreen,
        "performance": PerformanceScreen,
        "release": ReleaseScreen,
        "station": StationScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(key, f"mode('{name}')", f"{label} screen", show=False)
            for key, name, label in SCREENS
        ),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("p", "pause", "Pause display", show=False),
        Binding("q", "quit", "Quit"),
    ]
    COMMANDS = App.COMMANDS | {UnitCommands}

    def __init__(self, store: Store, options: DashboardOptions) -> None:
        super().__init__()
        self.store = store
        self.options = options
        plant = options.plant
        self.families: dict[str, Family] = dict(plant.families) if plant else {}
        self.stations: list[Station] = plant_stations(plant) if plant else []
        #: What a release tells MQTT when the plant publishes there (see docs/mqtt.md).
        self.release_messages = release_messages(plant) if plant else None
        self.plant_name = plant.config.plant.name if plant else "plant"
        factors = {c.name: dict(c.duration_factors) for c in plant.cells} if plant else {}
        self.station_cell = options.station or ""
        self.reader = Reader(
            store,
            speed=options.speed,
            window_s=options.window_h * 3600,
            factors=factors,
            target_h=options.target_h,
            station=options.station,
        )
        self.requests = Requests(store, options.operator)
        self.snapshot: Snapshot | None = None
        self.answers: list[Answer] = []
        self.paused = False
        self._reading = False
        self._read_at = 0.0
        self._shown = 0
        self._fresh = asyncio.Event()

    @property
    def operator(self) -> str:
        return self.options.operator

    @property
    def read_only(self) -> bool:
        return self.options.read_only

    @property
    def speed(self) -> float:
        return self.options.speed

    def note(self) -> str:
        return self.options.note() if self.options.note else ""

    def data_age(self) -> float | None:
        return self.options.ticks() - self._read_at if self.snapshot is not None else None

    # -- refresh ------------------------------------------------------------------------

    async def on_mount(self) -> None:
        await self.switch_mode("station" if self.station_cell else "plant")
        self.set_interval(self.options.refresh_s, self.tick)
        self.tick()

    def tick(self) -> None:
        """Read the store now unless a read is under way; refresh the status line."""
        if not self._reading:
            self._reading = True
            self._read(self.current_mode == "performance")
        elif (screen := self._base_screen()) is not None:
            screen.refresh_from(self.snapshot)

    @work(thread=True, group="read")
    def _read(self, performance: bool) -> None:
        try:
            snapshot = self.reader.read(self.options.clock(), performance=performance)
        except BaseException:
            self._reading = False
            raise
        self.call_from_thread(self._show, snapshot)

    def _show(self, snapshot: Snapshot) -> None:
        self._reading = False
        self.snapshot = snapshot
        if not snapshot.error:
            self._read_at = self.options.ticks()
        if (screen := self._base_screen()) is not None:
            screen.refresh_from(snapshot)
        self._shown += 1
        self._fresh.set()

    async def refreshed(self) -> Snapshot:
        """Read the store from now on and wait until the screen shows what it read."""
        target = self._shown + (2 if self._reading else 1)
        self.tick()
        while self._shown < target:
            self._fresh.clear()
            if not self._reading:
                self.tick()
            await self._fresh.wait()
        assert self.snapshot is not None
        return self.snapshot

    def _base_screen(self) -> DashboardScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DashboardScreen):
                return screen
        return None

    async def action_mode(self, name: str) -> None:
        await self.switch_mode(name)
        self.tick()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.notify("display paused: p resumes" if self.paused else "display live")
        self.tick()

    def action_help(self) -> None:
        sections: list[tuple[str, Iterable[Any]]] = [("Everywhere", self.BINDINGS)]
        for key, name, label in SCREENS:
            screen_class = self.MODES[name]
            bindings = getattr(screen_class, "BINDINGS", [])
            sections.append((f"{label} ({key})", bindings))
        sections.append(("Unit detail (Enter on a unit)", UnitScreen.BINDINGS))
        self.push_screen(HelpScreen(sections))

    async def action_quit(self) -> None:
        if not self.options.quit_warning:
            self.exit()
            return
        spec = ActionSpec("quit", "Quit", "none", True, self.options.quit_warning)

        def answered(ok: str | None) -> None:
            if ok is not None:
                self.exit()

        self.push_screen(ConfirmDialog(spec, "the dashboard"), answered)

    # -- navigation ---------------------------------------------------------------------

    def open_unit(self, unit_id: str) -> None:
        self.push_screen(UnitScreen(unit_id))

    def open_station(self, cell: str) -> None:
        self.station_cell = cell
        self.reader.station = cell
        self.run_worker(self.action_mode("station"))

    # -- operator requests --------------------------------------------------------------

    def ask(
        self,
        action: str,
        target: str,
        *,
        args: Mapping[str, Any] | None = None,
        detail: str = "",
        then: Sequence[Follow] = (),
    ) -> None:
        """Confirm ``action`` on ``target`` (with a reason where it changes production),
        then queue it and the ``then`` requests, in order, and show each answer."""
        if self.read_only:
            self.notify("read-only dashboard: no action (started with --read-only)")
            return
        spec = ACTIONS[action]
        requests: list[Follow] = [(action, target, args), *then]
        if not spec.confirm:
            self._send(requests, "")
            return

        def answered(reason: str | None) -> None:
            if reason is not None:
                self._send(requests, reason)

        self.push_screen(ConfirmDialog(spec, target, detail), answered)

    def ask_many(self, action: str, targets: Sequence[str]) -> None:
        """Confirm once, then queue ``action`` for each target."""
        if self.read_only:
            self.notify("read-only dashboard: no action (started with --read-only)")
            return
        spec = ACTIONS[action]
        plural = ActionSpec(action, spec.title, spec.reason, True, f"{len(targets)} of them")

        def answered(reason: str | None) -> None:
            if reason is not None:
                self._send([(action, t, None) for t in targets], reason)

        listed = ", ".join(targets[:8]) + ("..." if len(targets) > 8 else "")
        self.push_screen(ConfirmDialog(plural, listed), answered)

    @work(group="ask")
    async def ask_rework(self, unit_id: str, current: str) -> None:
        """Ask which step the unit goes back to (its own steps), then for a reason."""
        if self.read_only:
            self.notify("read-only dashboard: no action (started with --read-only)")
            return
        record = await asyncio.to_thread(self.store.unit_record, unit_id)
        if record is None:
            self.notify(f"no unit {unit_id}", severity="error")
            return
        steps = [s["name"] for s in record["steps"] if s["state"] != "skipped"]

        def picked(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self._send([("unit.rework", unit_id, {"step": choice[0]})], choice[1])

        self.push_screen(ReworkDialog(unit_id, steps, current), picked)

    def confirm(self, title: str, target: str, detail: str, then: Callable[[], object]) -> None:
        """Ask to confirm something that is not a request (a release); run ``then``."""
        if self.read_only:
            self.notify("read-only dashboard: no action (started with --read-only)")
            return
        spec = ActionSpec("confirm", title, "none", True, detail)

        def answered(ok: str | None) -> None:
            if ok is not None:
                then()

        self.push_screen(ConfirmDialog(spec, target, detail), answered)

    @work(group="requests")
    async def _send(self, requests: Sequence[Follow], reason: str) -> None:
        for action, target, args in requests:
            request_id = await asyncio.to_thread(self.requests.submit, action, target, reason, args)
            self.notify(f"{ACTIONS[action].title} {target}: queued (request {request_id})")
            answer = await self.requests.answer(
                request_id, action, target, self.options.answer_wait_s
            )
            self.answers = [*self.answers[-19:], answer]
            severity = {"done": "information", "refused": "error"}.get(answer.state, "warning")
            self.notify(answer.text, severity=severity, timeout=8)  # type: ignore[arg-type]
            self.tick()
            if answer.state != "done":
                return

    # -- command palette ----------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, name, label in SCREENS:
            yield SystemCommand(
                f"Go to {label}", f"the {label} screen (key {key})", partial(self._go, name)
            )
        yield SystemCommand(
            "Help: keys and colours", "every key, the colour legend", self.action_help
        )
        yield SystemCommand(
            "Pause display", "freeze the screen; data keeps coming", self.action_pause
        )
        base = self._base_screen()
        if base is not None:
            for binding in base.BINDINGS:
                if isinstance(binding, Binding) and binding.action.startswith("op_"):
                    if self.read_only:
                        continue
                    yield SystemCommand(
                        f"{binding.description} (selected, key {binding.key})",
                        f"on the {base.MODE} screen's selection",
                        partial(base.run_action, binding.action),
                    )
        cells = [str(c["name"]) for c in self.snapshot.cells] if self.snapshot else []
        for cell in cells:
            yield SystemCommand(
                f"Jump to cell {cell}", "its station view", partial(self.open_station, cell)
            )
            if self.read_only:
                continue
            for action in ("cell.hold", "cell.resume", "cell.confirm"):
                spec = ACTIONS[action]
                yield SystemCommand(
                    f"{spec.title.split(' (')[0]} {cell}",
                    spec.help,
                    partial(self.ask, action, cell),
                    discover=False,
                )

    def _go(self, name: str) -> None:
        self.run_worker(self.action_mode(name))
