"""A cell tile: name, andon state in colour and words, unit and step, progress bar,
time in state, and what needs attention. Updated in place from a store row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widget import Widget

from mes.dashboard.figures import Andon, Level, andon, bar, readings, since

TILE_WIDTH = 26


class CellTile(Widget, can_focus=True):
    """One cell. ``update_row`` re-renders only when what it shows changed."""

    DEFAULT_CSS = """
    CellTile {
        width: 1fr;
        height: 6;
        border: round $panel-lighten-2;
        border-title-align: left;
        border-subtitle-align: right;
        padding: 0 1;
    }
    """

    def __init__(self, name: str) -> None:
        super().__init__(id=f"tile-{_css_id(name)}", classes="tile")
        self.cell_name = name
        self.border_title = name
        self.andon: Andon = Andon(Level.OFFLINE, "OFFLINE")
        self._shown: _Shown | None = None
        self._row: Mapping[str, Any] = {}

    @property
    def row(self) -> Mapping[str, Any]:
        return self._row

    def update_row(
        self,
        row: Mapping[str, Any],
        alarms: Sequence[str],
        now: datetime,
        speed: float,
        link_down: bool = False,
    ) -> None:
        """Show ``row`` (``Store.cell_board``) with its cell's active alarm texts."""
        self._row = row
        state = andon(row, alarms, link_down)
        unit = str(row.get("unit_id") or "")
        progress = float(row.get("progress") or 0.0) if unit else 0.0
        if state.stale:
            wall = since(row.get("updated_at"), now)
            timing = f"offline {wall} (wall)" if wall else "offline"
        else:
            timing = f"{row.get('state', '')} {since(row.get('updated_at'), now, speed)}".strip()
        shown = _Shown(
            unit,
            str(row.get("step_name") or ""),
            progress,
            timing,
            state.detail or readings(row.get("readings")),
        )
        if state != self.andon:
            self.remove_class(f"-{self.andon.level.value}")
            self.add_class(f"-{state.level.value}")
            self.set_class(state.stale, "-stale")
            self.andon = state
            self.border_subtitle = state.label
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def lines(self, width: int) -> tuple[str, ...]:
        """What the tile shows in ``width`` columns: unit and step, progress, time in
        state, what needs attention."""
        shown = self._shown
        if shown is None:
            return ()
        what = _fit(shown.unit, shown.step, width) or ("" if self.andon.stale else "no job")
        bar_line = f"{bar(shown.progress, width - 5)} {shown.progress:>3.0%}" if shown.unit else ""
        return tuple(line[:width] for line in (what, bar_line, shown.timing, shown.detail))

    def render(self) -> Text:
        # Laid out at the tile's width now: a tile that grows or shrinks with the
        # terminal draws its bar to fit without waiting for the next read.
        width = max(8, self.content_size.width or TILE_WIDTH - 4)
        text = Text(no_wrap=True, overflow="ellipsis")
        for n, line in enumerate(self.lines(width)):
            if n:
                text.append("\n")
            style = "italic" if self.andon.stale else ""
            if n == 3 and line:
                style = "bold"
            text.append(line, style=style)
        return text


@dataclass(frozen=True, slots=True)
class _Shown:
    unit: str
    step: str
    progress: float
    timing: str
    detail: str


def _fit(unit: str, step: str, width: int) -> str:
    """``unit step`` in ``width`` characters: a long unit id loses its head, not its
    number (``...7c7c.12 inspect``)."""
    text = f"{unit} {step}".strip()
    if len(text) <= width:
        return text
    room = max(4, width - len(step) - 1)
    return f"…{unit[-(room - 1) :]} {step}"[:width]


def _css_id(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def tile_id(name: str) -> str:
    return f"tile-{_css_id(name)}"
