"""Plant: every cell as a tile in andon colours; hold, resume and confirm a cell."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from mes.dashboard.data import Snapshot
from mes.dashboard.screens.base import DashboardScreen
from mes.dashboard.widgets.tile import TILE_WIDTH, CellTile


class PlantScreen(DashboardScreen):
    MODE = "plant"
    BINDINGS = [
        Binding("h", "op_hold", "Hold cell"),
        Binding("r", "op_resume", "Resume"),
        Binding("c", "op_confirm", "Confirm (bed cleared)"),
        Binding("enter", "station", "Station view"),
        Binding("left", "move(-1, 0)", "Previous", show=False),
        Binding("right", "move(1, 0)", "Next", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
    ]

    def body(self) -> ComposeResult:
        yield Static("", id="plant-summary")
        yield VerticalScroll(id="tiles", can_focus=False)

    @property
    def tiles(self) -> list[CellTile]:
        return list(self.query(CellTile))

    @property
    def selected(self) -> CellTile | None:
        focused = self.focused
        return focused if isinstance(focused, CellTile) else None

    def on_resize(self, event: events.Resize) -> None:
        self._columns()

    def _columns(self) -> int:
        columns = max(1, self.size.width // TILE_WIDTH)
        grid = self.query_one("#tiles")
        if grid.styles.grid_size_columns != columns:
            grid.styles.grid_size_columns = columns
        return columns

    def show(self, snapshot: Snapshot) -> None:
        grid = self.query_one("#tiles", VerticalScroll)
        known = {t.cell_name: t for t in self.tiles}
        names = [str(c["name"]) for c in snapshot.cells]
        new = [CellTile(n) for n in names if n not in known]
        if new:
            grid.mount_all(new)
            known.update((t.cell_name, t) for t in new)
        for name in set(known) - set(names):
            known.pop(name).remove()
        dashboard = self.dashboard
        for row in snapshot.cells:
            name = str(row["name"])
            known[name].update_row(
                row,
                snapshot.cell_alarms.get(name, []),
                snapshot.at,
                dashboard.speed,
                name in snapshot.links_down,
            )
        if not isinstance(self.focused, CellTile) and known:
            known[names[0]].focus(scroll_visible=False)
        counts: dict[str, int] = {}
        for tile in known.values():
            counts[tile.andon.level.value] = counts.get(tile.andon.level.value, 0) + 1
        order = ("fault", "help", "warn", "run", "idle", "offline")
        summary = "  ".join(f"{counts[k]} {k}" for k in order if counts.get(k))
        plant_alarms = snapshot.cell_alarms.get("", [])
        if plant_alarms:
            summary += f"  | plant: {plant_alarms[0]}"
        if not names:
            summary = "no cells recorded yet: start the controller (mes run or mes demo)"
        self.query_one("#plant-summary", Static).update(f" {len(names)} cells: {summary}")

    # -- keys -------------------------------------------------------------------------

    def action_move(self, dx: int, dy: int) -> None:
        tiles = self.tiles
        if not tiles:
            return
        current = self.selected
        index = tiles.index(current) if current in tiles else 0
        step = dx + dy * self._columns()
        tiles[max(0, min(len(tiles) - 1, index + step))].focus()

    def _target(self) -> str | None:
        tile = self.selected
        if tile is None:
            self.notify("select a cell first (arrow keys)", severity="warning")
            return None
        return tile.cell_name

    def action_op_hold(self) -> None:
        if (name := self._target()) is not None:
            self.dashboard.ask("cell.hold", name)

    def action_op_resume(self) -> None:
        if (name := self._target()) is not None:
            self.dashboard.ask("cell.resume", name)

    def action_op_confirm(self) -> None:
        tile = self.selected
        if tile is None:
            self._target()
            return
        waiting = str(tile.row.get("waiting_for") or "")
        detail = f"it waits for an operator to {waiting}" if waiting else ""
        self.dashboard.ask("cell.confirm", tile.cell_name, detail=detail)

    def action_station(self) -> None:
        if (name := self._target()) is not None:
            self.dashboard.open_station(name)
