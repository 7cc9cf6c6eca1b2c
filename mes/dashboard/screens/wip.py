"""Work in progress: every unfinished unit with its step, cell, due date and lateness;
filter (``/``), sort, a detail view, and the unit and step actions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from mes.dashboard.data import Snapshot
from mes.dashboard.figures import Lateness, lateness, matches
from mes.dashboard.screens.base import DashboardScreen

#: Rows drawn at most; filtering and sorting always run over every unit.
MAX_ROWS = 1000

COLUMNS = (
    ("unit", "Unit"),
    ("family", "Family"),
    ("state", "State"),
    ("step", "Step"),
    ("cell", "Cell"),
    ("due", "Due / lateness"),
)

Row = Mapping[str, Any]

SORTS: tuple[tuple[str, Callable[[Row, Lateness], Any]], ...] = (
    ("lateness", lambda r, late: (late.sort_key, r["released_at"], r["order_id"], r["seq"])),
    ("state", lambda r, late: (r["state"], r["step_state"] or "", r["order_id"], r["seq"])),
    ("released", lambda r, late: (r["released_at"], r["order_id"], r["seq"])),
    ("unit", lambda r, late: (r["order_id"], r["seq"])),
    ("family", lambda r, late: (r["family"], r["order_id"], r["seq"])),
    ("cell", lambda r, late: (r["cell"] or "~", r["order_id"], r["seq"])),
)

BY_COLUMN = {
    "unit": "unit",
    "family": "family",
    "state": "state",
    "step": "state",
    "cell": "cell",
    "due": "lateness",
}

STATE_STYLE = {"held": "yellow", "failed": "bold red", "in_progress": "", "released": "dim"}
LATE_STYLE = {"late": "bold red", "risk": "yellow", "ok": "", "none": "dim"}


class WipScreen(DashboardScreen):
    MODE = "wip"
    AUTO_FOCUS = "#wip"
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse sort", show=False),
        Binding("enter", "detail", "Detail"),
        Binding("h", "op_hold", "Hold"),
        Binding("u", "op_release", "Unhold"),
        Binding("x", "op_scrap", "Scrap"),
        Binding("w", "op_rework", "Rework"),
        Binding("t", "op_retry", "Retry step"),
        Binding("a", "op_abort", "Abort step"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.needle = ""
        self.sort_index = 0
        self.reverse = False
        self._shown: list[str] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._rows: dict[str, Row] = {}

    def body(self) -> ComposeResult:
        yield Input(
            placeholder="filter: words to find in unit, family, state, step, cell",
            id="filter",
            classes="hidden",
        )
        yield Static("", id="wip-info")
        table: DataTable[Any] = DataTable(id="wip", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#wip", DataTable)

    @property
    def selected(self) -> Row | None:
        table = self.table
        if not self._shown or table.cursor_row < 0 or table.cursor_row >= len(self._shown):
            return None
        return self._rows.get(self._shown[table.cursor_row])

    def show(self, snapshot: Snapshot) -> None:
        now, speed = snapshot.at, self.dashboard.speed
        rows = snapshot.wip
        late = {
            uid: lateness(r["due"], float(r["left_s"]), now, speed)
            for uid, r in rows.items()
            if matches(r, self.needle)
        }
        name, key = SORTS[self.sort_index]
        order = sorted(late, key=lambda uid: key(rows[uid], late[uid]), reverse=self.reverse)
        visible = order[:MAX_ROWS]
        table = self.table
        cells = {uid: _cells(rows[uid], late[uid]) for uid in visible}
        if visible != self._shown:
            keep = self.selected["id"] if self.selected else None
            table.clear()
            for uid in visible:
                table.add_row(*cells[uid], key=uid)
            if keep in cells:
                table.move_cursor(row=visible.index(keep), scroll=False)
        else:
            for uid in visible:
                if cells[uid] != self._cells.get(uid):
                    for (column, _), value in zip(COLUMNS, cells[uid], strict=True):
                        table.update_cell(uid, column, value)
        self._shown, self._cells, self._rows = visible, cells, dict(rows)
        states: dict[str, int] = {}
        for r in rows.values():
            states[r["state"]] = states.get(r["state"], 0) + 1
        counts = ", ".join(f"{n:,} {s}" for s, n in sorted(states.items()))
        shown = f"showing {len(visible):,} of {len(order):,}" + (
            f" matching '{self.needle}'" if self.needle else ""
        )
        arrow = "v" if self.reverse else "^"
        self.query_one("#wip-info", Static).update(
            f" {len(rows):,} units in progress ({counts or 'none'}) | {shown} | "
            f"sort: {name} {arrow} (s)"
        )

    # -- keys ---------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.disabled = False
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.needle = event.value.strip()
            self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.add_class("hidden")
        box.disabled = True
        self.needle = ""
        self.table.focus()
        self._redraw()

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.reverse = False
        self._redraw()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._redraw()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        name = BY_COLUMN.get(str(event.column_key.value), "lateness")
        index = [n for n, _ in SORTS].index(name)
        self.reverse = not self.reverse if index == self.sort_index else False
        self.sort_index = index
        self._redraw()

    def _redraw(self) -> None:
        if self.dashboard.snapshot is not None:
            self._shown = []  # order may change: rebuild
            self.show(self.dashboard.snapshot)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        row = self.selected
        if row is not None:
            self.dashboard.open_unit(str(row["id"]))

    def _unit(self) -> Row | None:
        row = self.selected
        if row is None:
            self.notify("no unit selected", severity="warning")
        return row

    def action_op_hold(self) -> None:
        if (row := self._unit()) is not None:
            self.dashboard.ask("unit.hold", str(row["id"]))

    def action_op_release(self) -> None:
        if (row := self._unit()) is not None:
            self.dashboard.ask("unit.release", str(row["id"]))

    def action_op_scrap(self) -> None:
        if (row := self._unit()) is not None:
            self.dashboard.ask("unit.scrap", str(row["id"]))

    def action_op_rework(self) -> None:
        if (row := self._unit()) is not None:
            self.dashboard.ask_rework(str(row["id"]), str(row["step"] or ""))

    def action_op_retry(self) -> None:
        if (row := self._unit()) is not None:
            self.dashboard.ask("step.retry", f"{row['id']}/{row['step']}")

    def action_op_abort(self) -> None:
        if (row := self._unit()) is not None:
            self.dashboard.ask("step.abort", f"{row['id']}/{row['step']}")


def _cells(row: Row, late: Lateness) -> tuple[Any, ...]:
    step = ""
    if row["step"]:
        step = f"{row['settled'] + 1}/{row['steps']} {row['step']}"
        if row["step_state"] not in (None, "running", "dispatched", "ready", "pending"):
            step += f" ({row['step_state']})"
    due = row["due"]
    due_text = late.text or (due.strftime("%m-%d %H:%M") if isinstance(due, datetime) else "")
    return (
        str(row["id"]),
        str(row["family"]),
        Text(str(row["state"]), style=STATE_STYLE.get(str(row["state"]), "")),
        step,
        str(row["cell"] or ""),
        Text(due_text, style=LATE_STYLE[late.level]),
    )
