"""Release from the dashboard: a family's options checked as a planner types, with the
family's own rules and messages, then planned exactly as a released file is.

Pure apart from :func:`release_form` and :func:`release_file`, which store (call them
from a thread).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mes.errors import OrderError
from mes.service.order_files import (
    OrderSpec,
    UnitSpec,
    check_due,
    check_order_id,
    check_priority,
    read_order_file,
)
from mes.service.release import Released, ReleaseMessages, prepare, release
from mes.store import Store
from routing.family import Family
from routing.fit import Station

MAX_QUANTITY = 1000


@dataclass(frozen=True, slots=True)
class FormCheck:
    """What is wrong with a release form: per field, and across fields (rules, plan)."""

    fields: Mapping[str, str] = field(default_factory=dict)
    """Field ("option NAME", "order", "quantity", "priority", "due") -> reason."""
    general: tuple[str, ...] = ()
    spec: OrderSpec | None = None
    """The order to release when nothing is wrong."""

    @property
    def ok(self) -> bool:
        return not self.fields and not self.general and self.spec is not None


def check_form(
    family: Family,
    options: Mapping[str, object],
    *,
    order_id: str = "",
    quantity: str = "1",
    priority: str = "0",
    due: str = "",
    stations: Sequence[Station] = (),
    now: datetime | None = None,
) -> FormCheck:
    """Check a form: its order fields, then the options with ``family.configure`` (the
    configurator's own messages), then the plan (each program fits some cell).

    ``options`` holds what the planner typed: text for numbers and text, a bool for a
    switch; an absent option takes its default.
    """
    fields: dict[str, str] = {}
    order: str | None = None
    if order_id.strip():
        try:
            order = check_order_id(order_id.strip())
        except ValueError as exc:
            fields["order"] = str(exc)
    count = 1
    try:
        count = int(quantity.strip() or "1")
        if not 1 <= count <= MAX_QUANTITY:
            raise ValueError
    except ValueError:
        fields["quantity"] = f"must be a whole number from 1 to {MAX_QUANTITY}"
    prio = 0
    try:
        prio = check_priority(int(priority.strip() or "0"))
    except ValueError as exc:
        fields["priority"] = str(exc) if "must" in str(exc) else "must be a whole number"
    when: datetime | None = None
    if due.strip():
        try:
            when = check_due(due.strip())
        except ValueError as exc:
            fields["due"] = str(exc)
    general: list[str] = []
    try:
        family.configure(options)
    except OrderError as exc:
        for problem in exc.problems:
            name = problem.path.removeprefix("options.")
            if problem.path.startswith("options.") and name in family.options:
                fields.setdefault(f"option {name}", problem.reason)
            else:
                general.append(
                    f"{problem.path}: {problem.reason}" if problem.path else problem.reason
                )
    if fields or general:
        return FormCheck(fields, tuple(general))
    unit = UnitSpec(family.name, dict(options), "unit 1", None)
    spec = OrderSpec(order, prio, when, (unit,) * count, "dashboard form", None)
    try:
        prepare(
            [OrderSpec(order, prio, when, (unit,), "form", None)],
            {family.name: family},
            now or datetime.now(UTC),
            stations=stations,
        )
    except OrderError as exc:
        general = [
            p.reason if not p.path else f"{p.path.split(': ', 1)[-1]}: {p.reason}"
            for p in exc.problems
        ]
        return FormCheck({}, tuple(general))
    return FormCheck({}, (), spec)


def release_form(
    store: Store,
    spec: OrderSpec,
    families: Mapping[str, Family],
    stations: Sequence[Station],
    operator: str,
    messages: ReleaseMessages | None = None,
) -> Released:
    """Release one checked form's order (blocking), telling MQTT through ``messages``.

    Raises:
        OrderError: refused whole (e.g. its order id was used for other content).
    """
    return release(
        store,
        [spec],
        families,
        datetime.now(UTC),
        source="dashboard",
        actor=operator,
        stations=stations,
        messages=messages,
    )


def release_file(
    store: Store,
    path: str,
    families: Mapping[str, Family],
    stations: Sequence[Station],
    operator: str,
    messages: ReleaseMessages | None = None,
) -> Released:
    """Read and release an order file, all or nothing (blocking), telling MQTT through
    ``messages``.

    Raises:
        OrderError: every problem in the file; nothing was released.
    """
    specs = read_order_file(Path(path).expanduser())
    return release(
        store,
        specs,
        families,
        datetime.now(UTC),
        source=str(path),
        actor=operator,
        stations=stations,
        messages=messages,
    )
