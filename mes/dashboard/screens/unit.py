"""A unit's detail: its routing with each step's state, cell, job, program and times,
its options and its latest journal entries; the unit and step actions apply to it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

if TYPE_CHECKING:
    from mes.dashboard.app import DashboardApp

STEP_COLUMNS = ("#", "step", "capability", "state", "cell", "job", "program", "start", "end")


def _when(value: datetime | None) -> str:
    return value.strftime("%m-%d %H:%M:%S") if value else ""


class UnitScreen(ModalScreen[None]):
    """Loads the unit's as-built record in a thread; ``r`` reads it again."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("r", "reload", "Reload"),
        Binding("h", "op_hold", "Hold"),
        Binding("u", "op_release", "Unhold"),
        Binding("x", "op_scrap", "Scrap"),
        Binding("w", "op_rework", "Rework"),
        Binding("t", "op_retry", "Retry step"),
        Binding("a", "op_abort", "Abort step"),
    ]

    def __init__(self, unit_id: str) -> None:
        super().__init__(classes="detail")
        self.unit_id = unit_id
        self.record: Mapping[str, Any] | None = None

    @property
    def dashboard(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="unit-detail"):
            yield Static(f"unit {self.unit_id}: reading...", id="unit-head")
            table: DataTable[Any] = DataTable(id="unit-steps", cursor_type="row")
            table.add_columns(*STEP_COLUMNS)
            yield table
            yield Static("", id="unit-journal")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_close(self) -> None:
        self.dismiss(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action.startswith("op_") and self.dashboard.read_only:
            return None
        return True

    @work(exclusive=True, group="unit")
    async def action_reload(self) -> None:
        record = await asyncio.to_thread(self.dashboard.store.unit_record, self.unit_id)
        self.record = record
        head = self.query_one("#unit-head", Static)
        if record is None:
            head.update(f"no unit {escape(self.unit_id)}")
            return
        options = ", ".join(f"{k} = {v!r}" for k, v in record["options"].items())
        head.update(
            f"[b]unit {escape(record['id'])}[/b]  order {escape(record['order_id'])}  "
            f"family {escape(record['family'])}  state [b]{record['state']}[/b]  "
            f"released {_when(record['released_at'])}"
            + (f"  finished {_when(record['finished_at'])}" if record["finished_at"] else "")
            + f"\noptions: {escape(options)}"
        )
        table = self.query_one("#unit-steps", DataTable)
        table.clear()
        for step in record["steps"]:
            job = step["jobs"][-1] if step["jobs"] else None
            table.add_row(
                str(step["seq"]),
                step["name"],
                step["capability"],
                step["state"],
                step["cell"] or "",
                str(job["id"]) if job else "",
                (job["program_id"] if job else step["program_id"])[:12],
                _when(step["started_at"]),
                _when(step["finished_at"]),
                key=step["name"],
            )
        lines = [
            f"{_when(e['at'])}  {e['actor']}: {e['subject']} {e['transition']} -> {e['after']}"
            + (f" ({e['data'].get('reason')})" if e["data"].get("reason") else "")
            for e in record["journal"][-12:]
        ]
        self.query_one("#unit-journal", Static).update(
            "[b]journal (latest)[/b]\n" + escape("\n".join(lines))
        )

    def _step(self) -> str:
        table = self.query_one("#unit-steps", DataTable)
        if self.record is None or not self.record["steps"]:
            return ""
        index = max(0, min(table.cursor_row, len(self.record["steps"]) - 1))
        return str(self.record["steps"][index]["name"])

    def action_op_hold(self) -> None:
        self.dashboard.ask("unit.hold", self.unit_id)

    def action_op_release(self) -> None:
        self.dashboard.ask("unit.release", self.unit_id)

    def action_op_scrap(self) -> None:
        self.dashboard.ask("unit.scrap", self.unit_id)

    def action_op_rework(self) -> None:
        self.dashboard.ask_rework(self.unit_id, self._step())

    def action_op_retry(self) -> None:
        self.dashboard.ask("step.retry", f"{self.unit_id}/{self._step()}")

    def action_op_abort(self) -> None:
        self.dashboard.ask("step.abort", f"{self.unit_id}/{self._step()}")
