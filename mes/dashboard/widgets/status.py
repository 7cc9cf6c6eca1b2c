"""The top line of every screen: plant, screens with their keys, counts, who, data age."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SCREENS = (
    ("1", "plant", "Plant"),
    ("2", "wip", "WIP"),
    ("3", "alarms", "Alarms"),
    ("4", "performance", "Perf"),
    ("5", "release", "Release"),
    ("6", "station", "Station"),
)


class StatusBar(Static):
    """Rendered from plain values by :meth:`show`; never reads the store."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    def show(
        self,
        *,
        plant: str,
        mode: str,
        wip: int,
        unacked: int,
        operator: str,
        age_s: float | None,
        paused: bool,
        error: str,
        note: str = "",
        read_only: bool = False,
    ) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, name, label in SCREENS:
            style = "reverse bold" if name == mode else ""
            count = f"({unacked})" if name == "alarms" and unacked else ""
            text.append(f" {key}", style="dim")
            text.append(f"{label}{count}", style=style or ("bold red" if count else ""))
        text.append(" ?", style="dim")
        text.append("Help ")
        if error:
            text.append(f" STORE: {error[:60]} ", style="reverse red")
        elif paused:
            text.append(" PAUSED (p) ", style="reverse yellow")
        elif age_s is not None:
            text.append(f" {age_s:.0f}s old " if age_s >= 2 else " live ", style="dim")
        if read_only:
            text.append(" READ-ONLY ", style="reverse")
        text.append(f" WIP {wip:,} ")
        if note:
            text.append(f" {note} ", style="italic")
        text.append(f" {operator} ", style="dim")
        text.append(f" {plant} ", style="bold")
        self.update(text)
