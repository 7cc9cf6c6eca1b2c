"""What every dashboard screen shares: the status line, the footer, the latest snapshot,
and operator actions that are off in read-only mode (and say why)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from mes.dashboard.data import Snapshot
from mes.dashboard.widgets.status import StatusBar

if TYPE_CHECKING:
    from mes.dashboard.app import DashboardApp


class DashboardScreen(Screen[None]):
    """A screen of the dashboard; subclasses fill :meth:`body` and :meth:`show`."""

    #: Its mode name (``plant``, ``wip``...), for the status line.
    MODE = ""

    @property
    def dashboard(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self.refresh_from(self.dashboard.snapshot)

    def refresh_from(self, snapshot: Snapshot | None) -> None:
        """Show ``snapshot`` (None: nothing read yet) and update the status line."""
        app = self.dashboard
        if snapshot is not None and not app.paused:
            self.show(snapshot)
        self.query_one(StatusBar).show(
            plant=app.plant_name,
            mode=self.MODE,
            wip=len(snapshot.wip) if snapshot else 0,
            unacked=sum(1 for a in snapshot.alarms if a["acked_at"] is None) if snapshot else 0,
            operator=app.operator,
            age_s=app.data_age(),
            paused=app.paused,
            error=snapshot.error if snapshot else "",
            note=app.note(),
            read_only=app.read_only,
        )

    def show(self, snapshot: Snapshot) -> None:
        """Update the widgets in place from ``snapshot``."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action.startswith("op_") and self.dashboard.read_only:
            return None  # shown disabled: read-only mode
        return True
