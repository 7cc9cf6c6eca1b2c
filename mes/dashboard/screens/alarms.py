"""Alarms: active and unacknowledged first, with severity, cell, time and text;
acknowledge one (``a``) or every unacknowledged one (``A``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mes.dashboard.data import Snapshot
from mes.dashboard.figures import since
from mes.dashboard.screens.base import DashboardScreen

SEVERITY_STYLE = {"high": "bold white on red", "medium": "black on yellow", "low": "cyan"}


class AlarmsScreen(DashboardScreen):
    MODE = "alarms"
    BINDINGS = [
        Binding("a", "op_ack", "Acknowledge"),
        Binding("A", "op_ack_all", "Acknowledge all"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._ids: list[int] = []
        self._cells: dict[int, tuple[Any, ...]] = {}
        self._alarms: dict[int, Mapping[str, Any]] = {}

    def body(self) -> ComposeResult:
        yield Static("", id="alarm-info")
        table: DataTable[Any] = DataTable(id="alarms", cursor_type="row", zebra_stripes=True)
        for key in ("id", "severity", "state", "ack", "cell", "age", "text"):
            table.add_column(key, key=key)
        yield table

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#alarms", DataTable)

    @property
    def selected(self) -> Mapping[str, Any] | None:
        row = self.table.cursor_row
        return self._alarms.get(self._ids[row]) if 0 <= row < len(self._ids) else None

    def show(self, snapshot: Snapshot) -> None:
        alarms = {int(a["id"]): a for a in snapshot.alarms}
        ids = list(alarms)
        cells = {i: _cells(a, snapshot) for i, a in alarms.items()}
        table = self.table
        if ids != self._ids:
            keep = self._ids[table.cursor_row] if 0 <= table.cursor_row < len(self._ids) else None
            table.clear()
            for i in ids:
                table.add_row(*cells[i], key=str(i))
            if keep in alarms:
                table.move_cursor(row=ids.index(keep), scroll=False)
        else:
            for i in ids:
                if cells[i] != self._cells.get(i):
                    for column, value in zip(table.columns, cells[i], strict=True):
                        table.update_cell(str(i), column, value)
        self._ids, self._cells, self._alarms = ids, cells, alarms
        active = sum(1 for a in alarms.values() if a["active"])
        unacked = sum(1 for a in alarms.values() if a["acked_at"] is None)
        self.query_one("#alarm-info", Static).update(
            f" {active} active, {unacked} unacknowledged"
            + ("" if ids else ": nothing needs attention")
        )

    def action_op_ack(self) -> None:
        alarm = self.selected
        if alarm is None:
            self.notify("no alarm selected", severity="warning")
        elif alarm["acked_at"] is not None:
            self.notify(f"alarm {alarm['id']} is already acknowledged by {alarm['acked_by']}")
        else:
            self.dashboard.ask("alarm.ack", str(alarm["id"]))

    def action_op_ack_all(self) -> None:
        ids = [str(i) for i, a in self._alarms.items() if a["acked_at"] is None]
        if not ids:
            self.notify("no unacknowledged alarm")
            return
        self.dashboard.ask_many("alarm.ack", ids)


def _cells(alarm: Mapping[str, Any], snapshot: Snapshot) -> tuple[Any, ...]:
    severity = str(alarm["severity"])
    return (
        str(alarm["id"]),
        Text(severity.upper(), style=SEVERITY_STYLE.get(severity, "")),
        Text("ACTIVE", style="bold") if alarm["active"] else Text("cleared", style="dim"),
        Text("UNACKED", style="bold") if alarm["acked_at"] is None else f"by {alarm['acked_by']}",
        str(alarm["cell"] or "plant"),
        since(alarm["raised_at"], snapshot.at),
        str(alarm["text"]),
    )
