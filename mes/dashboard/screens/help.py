"""Help: every key of every screen, and what the colours mean."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from mes.dashboard.figures import LEGEND, SEVERITY_CLASS

#: Colours as the theme shows them, for the legend (kept beside app.tcss's classes).
SWATCH = {
    "run": "black on green",
    "idle": "black on grey70",
    "warn": "black on dark_orange",
    "help": "white on blue",
    "fault": "white on red",
    "offline": "grey50 on grey15",
}


def key_table(title: str, bindings: Iterable[BindingType]) -> list[str]:
    lines = [f"[b]{escape(title)}[/b]"]
    for binding in bindings:
        if not isinstance(binding, Binding):
            continue
        key = binding.key_display or binding.key
        key = {"slash": "/", "question_mark": "?", "escape": "Esc", "enter": "Enter"}.get(key, key)
        lines.append(f"  [b]{escape(key):>8}[/b]  {escape(binding.description or binding.action)}")
    return lines


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__(classes="detail")
        self.sections = sections

    def compose(self) -> ComposeResult:
        lines = ["[b]mes dashboard[/b]: every key. Ctrl+P finds any action by name.", ""]
        for title, bindings in self.sections:
            lines += [*key_table(title, bindings), ""]
        lines.append("[b]Cell colours (andon); the state is always written too[/b]")
        for level, (colour, meaning) in LEGEND.items():
            swatch = SWATCH[level.value]
            lines.append(f"  [{swatch}] {level.value.upper():^9} [/]  {colour}: {meaning}")
        lines += ["", "[b]Alarm severities[/b]"]
        for severity, css in SEVERITY_CLASS.items():
            lines.append(f"  [{SWATCH[css]}] {severity.upper():^9} [/]")
        lines += [
            "",
            "Actions that change production ask to confirm, with a reason; each is queued",
            "for the controller under your name and its answer shown. Holding a cell never",
            "needs a reason. Durations are plant time (x speed in a demo).",
        ]
        with VerticalScroll(id="help"):
            yield Static("\n".join(lines))
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
