"""A cell tile: name, andon state in colour and words, unit and step, progress bar,
time in state, and what needs attention. Updated in place from a store row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widget import Widget

from mes.dashboard.figures import Andon, Level, andon, bar, since

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
        self._lines: tuple[str, ...] = ()
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
        width = max(8, self.content_region.width or TILE_WIDTH - 4)
        unit = row.get("unit_id") or ""
        step = row.get("step_name") or ""
        what = _fit(str(unit), str(step), width) or ("no job" if not state.stale else "")
        progress = float(row.get("progress") or 0.0) if unit else 0.0
        in_state = since(row.get("updated_at"), now, speed)
        if state.stale:
            wall = since(row.get("updated_at"), now)
            timing = f"offline {wall} (wall)" if wall else "offline"
        else:
            timing = f"{row.get('state', '')} {in_state}".strip()
        lines = tuple(
            line[:width]
            for line in (
                what,
                f"{bar(progress, width - 5)} {progress:>3.0%}" if unit else "",
                timing,
                state.detail,
            )
        )
        if state != self.andon:
            self.remove_class(f"-{self.andon.level.value}")
            self.add_class(f"-{state.level.value}")
            self.set_class(state.stale, "-stale")
            self.andon = state
            self.border_subtitle = state.label
        if lines != self._lines:
            self._lines = lines
            self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for n, line in enumerate(self._lines):
            if n:
                text.append("\n")
            style = "italic" if self.andon.stale else ""
            if n == 3 and line:
                style = "bold"
            text.append(line, style=style)
        return text


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
