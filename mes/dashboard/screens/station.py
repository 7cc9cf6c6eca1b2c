"""Station: one cell for the operator who attends it (``--station CELL``, or Enter on a
tile): the current unit's work instruction with its options filled in, and the
confirmations: bed cleared / done, failed (the step runs again), hold, resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from mes.dashboard.data import Snapshot, StationView
from mes.dashboard.figures import andon, duration, readings
from mes.dashboard.screens.base import DashboardScreen
from mes.dashboard.widgets.tile import CellTile


class StationScreen(DashboardScreen):
    MODE = "station"
    BINDINGS = [
        Binding("c", "op_confirm", "Bed cleared / done"),
        Binding("f", "op_failed", "Failed: redo step"),
        Binding("h", "op_hold", "Hold"),
        Binding("r", "op_resume", "Resume"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: StationView | None = None
        self._text = ""

    def body(self) -> ComposeResult:
        with VerticalScroll(id="station"):
            yield Static("", id="station-tile-box")
            yield Static("", id="instruction")
            yield Static("", id="answers")

    def show(self, snapshot: Snapshot) -> None:
        cell = self.dashboard.station_cell
        box = self.query_one("#station-tile-box", Static)
        if not cell:
            self.query_one("#instruction", Static).update(
                "no station chosen: start with --station CELL, or press Enter on a cell tile"
            )
            return
        row = next((c for c in snapshot.cells if c["name"] == cell), None)
        tiles = list(self.query(CellTile))
        if not tiles or tiles[0].cell_name != cell:
            for tile in tiles:
                tile.remove()
            box.mount(CellTile(cell))
            return  # mounted on the next refresh
        if row is not None:
            tiles[0].update_row(
                row,
                snapshot.cell_alarms.get(cell, []),
                snapshot.at,
                self.dashboard.speed,
                cell in snapshot.links_down,
            )
        self.view = snapshot.station
        text = instruction(
            cell,
            row,
            snapshot.station,
            snapshot.cell_alarms.get(cell, []),
            cell in snapshot.links_down,
        )
        if text != self._text:
            self._text = text
            self.query_one("#instruction", Static).update(text)
        answers = [a.text for a in self.dashboard.answers if a.target.startswith(cell)][-3:]
        self.query_one("#answers", Static).update(
            "\n".join(escape(a) for a in answers) if answers else ""
        )

    # -- keys -------------------------------------------------------------------------

    def _cell(self) -> str | None:
        cell = self.dashboard.station_cell
        if not cell:
            self.notify("no station chosen", severity="warning")
        return cell or None

    def action_op_confirm(self) -> None:
        if (cell := self._cell()) is None:
            return
        waiting = _waiting(self.dashboard.snapshot, cell)
        if not waiting:
            self.notify(f"{cell} waits for no confirmation", severity="warning")
            return
        self.dashboard.ask("cell.confirm", cell, detail=f"you did: {waiting}")

    def action_op_failed(self) -> None:
        view = self.view
        if self._cell() is None or view is None or view.unit is None or view.step is None:
            self.notify("no unit at this station", severity="warning")
            return
        unit, step = str(view.unit["id"]), str(view.step["name"])
        if view.running:
            self.dashboard.ask(
                "step.abort",
                f"{unit}/{step}",
                detail=f"stop {step} of {unit} now: the machine stops, the unit waits",
            )
            return
        follow = []
        if _waiting(self.dashboard.snapshot, view.cell):
            follow.append(("cell.confirm", view.cell, None))
        self.dashboard.ask(
            "unit.rework",
            unit,
            args={"step": step},
            detail=f"{step} of {unit} failed: it runs again (and every later step)",
            then=follow,
        )

    def action_op_hold(self) -> None:
        if (cell := self._cell()) is not None:
            self.dashboard.ask("cell.hold", cell)

    def action_op_resume(self) -> None:
        if (cell := self._cell()) is not None:
            self.dashboard.ask("cell.resume", cell)


def _waiting(snapshot: Snapshot | None, cell: str) -> str:
    if snapshot is None:
        return ""
    row = next((c for c in snapshot.cells if c["name"] == cell), None)
    return str(row.get("waiting_for") or "") if row else ""


def instruction(
    cell: str,
    row: Mapping[str, Any] | None,
    view: StationView | None,
    alarms: list[str],
    link_down: bool = False,
) -> str:
    """The work instruction for the operator of ``cell``, as Rich markup."""
    if row is None:
        return f"no cell {escape(cell)} recorded yet: is the controller running?"
    state = andon(row, alarms, link_down)
    lines = [
        f"[b]{escape(cell)}[/b]: {state.label}"
        + (f" - {escape(state.detail)}" if state.detail else "")
    ]
    if sensed := readings(row.get("readings")):
        lines.append(escape(sensed))
    waiting = str(row.get("waiting_for") or "")
    if waiting:
        lines.append(f"[reverse b] TO DO: {escape(waiting)}, then press c [/reverse b]")
    if view is None or view.unit is None or view.step is None:
        lines.append("no unit at this station yet")
        return "\n".join(lines)
    unit, step = view.unit, view.step
    steps = [s for s in unit["steps"] if s["state"] != "skipped"]
    number = next((i for i, s in enumerate(steps, 1) if s["id"] == step["id"]), 0)
    verb = "NOW" if view.running else "LAST"
    lines += [
        "",
        f"[b]{verb}: step {number} of {len(steps)}: {escape(str(step['name']))}[/b] "
        f"({escape(str(step['capability']))}), expected {duration(float(step['expected_s']))}",
        f"unit [b]{escape(str(unit['id']))}[/b] ({escape(str(unit['family']))}), "
        f"order {escape(str(unit['order_id']))}, state {unit['state']}",
        "",
        "[b]options[/b]",
    ]
    lines += [f"  {escape(str(k))} = [b]{escape(repr(v))}[/b]" for k, v in unit["options"].items()]
    program = view.program
    if program:
        lines += [
            "",
            f"[b]program[/b] {escape(str(program.get('id', ''))[:16])} ({program.get('kind')})",
        ]
        body = program.get("body")
        if isinstance(body, Mapping):
            params = body.get("parameters", body)
            if "generator" in body:
                lines.append(f"  generator {escape(str(body['generator']))}")
            if isinstance(params, Mapping):
                lines += [f"  {escape(str(k))} = {escape(repr(v))}" for k, v in params.items()]
        if "lines" in program:
            lines.append(f"  {program['lines']} lines of G-code")
            lines += [f"  ; {escape(str(n))}" for n in program.get("notes", [])]
    if view.running:
        lines.append("")
        lines.append(f"progress {float(row.get('progress') or 0):.0%}; f stops it as failed")
    else:
        lines.append("")
        lines.append("when the part is good: c (bed cleared / done); when it is bad: f (redo)")
    return "\n".join(lines)
