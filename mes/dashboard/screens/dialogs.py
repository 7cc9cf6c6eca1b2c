"""Modal dialogs: confirm an action with a reason, pick a step to rework from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from mes.dashboard.actions import ActionSpec

T = TypeVar("T")


class _Dialog(ModalScreen[T | None]):
    """Enter or the ok button confirms (:meth:`_confirm`), Esc or cancel answers None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._confirm()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _confirm(self) -> None:
        raise NotImplementedError


class ConfirmDialog(_Dialog[str]):
    """Asks to confirm ``spec`` on ``target``; answers the reason, or None if cancelled.

    Enter confirms, Esc cancels. A required reason must not be blank.
    """

    def __init__(self, spec: ActionSpec, target: str, detail: str = "") -> None:
        super().__init__(classes="dialog")
        self.spec = spec
        self.target = target
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"{self.spec.title} {self.target}?", id="dialog-title")
            yield Static(self.detail or self.spec.help, id="dialog-help")
            if self.spec.reason != "none":
                label = "reason (required)" if self.spec.reason == "required" else "reason"
                yield Input(placeholder=label, id="reason")
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(self.spec.title, variant="warning", id="ok")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        if self.spec.reason != "none":
            self.query_one("#reason", Input).focus()
        else:
            self.query_one("#ok", Button).focus()

    def _confirm(self) -> None:
        reason = ""
        if self.spec.reason != "none":
            reason = self.query_one("#reason", Input).value.strip()
        if self.spec.reason == "required" and not reason:
            self.query_one("#dialog-error", Static).update("a reason is required")
            return
        self.dismiss(reason)


class ReworkDialog(_Dialog[tuple[str, str]]):
    """Pick the step to go back to and give a reason; answers (step, reason) or None."""

    def __init__(self, unit_id: str, steps: Sequence[str], default: str = "") -> None:
        super().__init__(classes="dialog")
        self.unit_id = unit_id
        self.steps = list(steps)
        self.default = default if default in steps else (steps[0] if steps else "")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Rework unit {self.unit_id} from step:", id="dialog-title")
            yield Select(
                [(s, s) for s in self.steps], value=self.default, allow_blank=False, id="step"
            )
            yield Input(placeholder="reason (required)", id="reason")
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Rework", variant="warning", id="ok")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def _confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        step = self.query_one("#step", Select).value
        if not reason:
            self.query_one("#dialog-error", Static).update("a reason is required")
            return
        if not isinstance(step, str):
            self.query_one("#dialog-error", Static).update("pick a step")
            return
        self.dismiss((step, reason))
