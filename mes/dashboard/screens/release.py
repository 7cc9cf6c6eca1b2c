"""Release: pick a family, fill its options in a form checked as you type (the
configurator's own rules and messages), release; or release an order file."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from mes.dashboard.data import Snapshot
from mes.dashboard.planning import FormCheck, check_form, release_file, release_form
from mes.dashboard.screens.base import DashboardScreen
from mes.errors import MesError, OrderError
from routing.family import Family, OptionKind, OptionSpec


class ReleaseScreen(DashboardScreen):
    MODE = "release"
    BINDINGS = [
        Binding("ctrl+r", "op_release", "Release order", priority=True),
        Binding("ctrl+o", "op_release_file", "Release file", priority=True),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.family: Family | None = None
        self.check = FormCheck()

    def body(self) -> ComposeResult:
        families = self.dashboard.families
        with VerticalScroll(id="release-form"):
            if not families:
                yield Static(
                    "no product families: start the dashboard with --plant PATH", id="no-plant"
                )
            yield Select(
                [
                    (f"{f.name}: {f.description}" if f.description else f.name, f.name)
                    for f in families.values()
                ],
                prompt="product family",
                id="family",
            )
            yield Vertical(id="options")
            with Horizontal(classes="order-fields"):
                yield _field("order id", Input(placeholder="blank: new", id="order"))
                yield _field("quantity", Input("1", id="quantity"))
                yield _field("priority", Input("0", id="priority"))
                yield _field("due (ISO date)", Input(placeholder="2026-12-01T17:00", id="due"))
            yield Static("", id="form-problems")
            yield Label("release an order file (.toml, .json, .csv), then ctrl+o:")
            yield Input(placeholder="path/to/orders.toml", id="file")
            yield Static("", id="release-result")

    def show(self, snapshot: Snapshot) -> None:
        pass  # the form does not follow the plant

    def action_leave_field(self) -> None:
        self.set_focus(None)

    # -- the form -----------------------------------------------------------------------

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "family":
            self._validate()
            return
        families = self.dashboard.families
        self.family = families.get(event.value) if isinstance(event.value, str) else None
        box = self.query_one("#options", Vertical)
        await box.remove_children()
        if self.family is not None:
            await box.mount_all(_option_row(spec) for spec in self.family.options.values())
        self._validate()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "file":
            self._validate()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self._validate()

    def _values(self) -> dict[str, object]:
        values: dict[str, object] = {}
        if self.family is None:
            return values
        for name, spec in self.family.options.items():
            widget = self.query_one(f"#opt-{name}")
            if isinstance(widget, Switch):
                values[name] = widget.value
            elif isinstance(widget, Select):
                if isinstance(widget.value, str):
                    values[name] = widget.value
            elif isinstance(widget, Input) and (
                spec.kind is OptionKind.TEXT or widget.value.strip()
            ):
                values[name] = widget.value
        return values

    def _validate(self) -> FormCheck:
        problems = self.query_one("#form-problems", Static)
        if self.family is None:
            self.check = FormCheck()
            problems.update("pick a product family")
            return self.check
        self.check = check = check_form(
            self.family,
            self._values(),
            order_id=self.query_one("#order", Input).value,
            quantity=self.query_one("#quantity", Input).value,
            priority=self.query_one("#priority", Input).value,
            due=self.query_one("#due", Input).value,
            stations=self.dashboard.stations,
        )
        for message in self.query(".field-error").results(Static):
            field = str(message.name)
            text = check.fields.get(field, "")
            message.update(f"[red]{escape(text)}[/red]" if text else "")
            message.set_class(bool(text), "-shown")
        if check.ok:
            problems.update("[green]ready to release (ctrl+r)[/green]")
        else:
            lines = [f"{f}: {r}" for f, r in check.fields.items()] + list(check.general)
            problems.update("[red]" + escape("\n".join(lines)) + "[/red]")
        return check

    # -- releasing ----------------------------------------------------------------------

    def action_op_release(self) -> None:
        check = self._validate()
        if not check.ok or check.spec is None or self.family is None:
            self.notify("the form has problems: see the red lines", severity="error")
            return
        spec = check.spec
        options = ", ".join(f"{k}={v!r}" for k, v in spec.units[0].options.items())
        self.dashboard.confirm(
            "Release order",
            spec.id or "(new id)",
            f"{len(spec.units)} x {self.family.name} ({options})",
            lambda: self._release(spec),
        )

    @work(group="release")
    async def _release(self, spec: Any) -> None:
        app = self.dashboard
        try:
            done = await asyncio.to_thread(
                release_form,
                app.store,
                spec,
                app.families,
                app.stations,
                app.operator,
                app.release_messages,
            )
        except MesError as exc:
            self._result(False, exc)
            return
        self._result(True, done)

    def action_op_release_file(self) -> None:
        path = self.query_one("#file", Input).value.strip()
        if not path:
            self.query_one("#file", Input).focus()
            self.notify("type the order file's path, then ctrl+o", severity="warning")
            return
        self.dashboard.confirm(
            "Release file", path, "every order in it, all or nothing", lambda: self._file(path)
        )

    @work(group="release")
    async def _file(self, path: str) -> None:
        app = self.dashboard
        try:
            done = await asyncio.to_thread(
                release_file,
                app.store,
                path,
                app.families,
                app.stations,
                app.operator,
                app.release_messages,
            )
        except MesError as exc:
            self._result(False, exc)
            return
        self._result(True, done)

    def _result(self, ok: bool, outcome: Any) -> None:
        box = self.query_one("#release-result", Static)
        if not ok:
            problems = outcome.problems if isinstance(outcome, OrderError) else [outcome]
            text = "\n".join(str(p) for p in problems)
            box.update("[red]refused, nothing released:\n" + escape(text) + "[/red]")
            self.notify(f"refused: {problems[0]}", severity="error", timeout=8)
            return
        lines = [f"released order {o}" for o in outcome.released]
        lines += [
            f"order {o} was already released with the same content" for o in outcome.unchanged
        ]
        lines.append(f"{len(outcome.released)} orders, {outcome.units} units released")
        box.update("[green]" + escape("\n".join(lines)) + "[/green]")
        self.notify(lines[-1])


def _field(label: str, widget: Widget) -> Vertical:
    return Vertical(Label(label), widget, classes="field")


def _option_row(spec: OptionSpec) -> Horizontal:
    limits = []
    if spec.min is not None or spec.max is not None:
        limits.append(f"{_num(spec.min)}..{_num(spec.max)}{spec.unit}")
    if spec.step:
        limits.append(f"step {_num(spec.step)}")
    if spec.max_length:
        limits.append(f"max {spec.max_length} chars")
    hint = f"{spec.kind.value}" + (f" ({', '.join(limits)})" if limits else "")
    widget: Widget
    if spec.kind is OptionKind.CHOICE:
        widget = Select(
            [(c, c) for c in spec.choices],
            value=spec.default if spec.default in spec.choices else Select.BLANK,
            id=f"opt-{spec.name}",
        )
    elif spec.kind is OptionKind.BOOLEAN:
        widget = Switch(bool(spec.default), id=f"opt-{spec.name}")
    else:
        default = "" if spec.default is None else str(spec.default)
        widget = Input(default, placeholder=hint, id=f"opt-{spec.name}")
    return Horizontal(
        Vertical(Label(f"[b]{spec.name}[/b]"), Label(f"[dim]{hint}[/dim]"), classes="opt-label"),
        Vertical(
            widget,
            Static("", name=f"option {spec.name}", classes="field-error"),
            classes="opt-input",
        ),
        classes="option",
    )


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)
