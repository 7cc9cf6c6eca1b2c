"""Release orders: check every unit against its family, plan its routing, store it whole.

All or nothing: every order and unit of a release is checked first and every problem is
reported (file, line, order, unit, option, reason); only a release with no problem is
stored, in one transaction. Idempotent by order id: releasing the same order again is a
no-op; the same id with other content is refused.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from mes.domain import Event, Order, Program, ProgramKind, Step, StepEvent, StepState, Unit
from mes.errors import OrderError, Problem
from mes.service.order_files import OrderSpec
from mes.store import Message, Store
from routing.family import Family, OptionValue
from routing.fit import Station, place
from routing.planner import PlannedStep, check_generator_call, plan

Placed = tuple[str, ...]
#: What a release tells the outside (MQTT): messages from the units and journal entries
#: actually stored, written to the outbox in the release's transaction.
ReleaseMessages = Callable[[list[Unit], list[Event]], list[Message]]
Planned = tuple[Family, dict[str, OptionValue], list[PlannedStep], list[Placed]]


@dataclass(frozen=True, slots=True)
class Released:
    """What a release did: orders stored now, and orders that were already in."""

    released: list[str]
    unchanged: list[str]
    units: int


def prepare(
    specs: Sequence[OrderSpec],
    families: Mapping[str, Family],
    now: datetime,
    *,
    source: str = "",
    actor: str = "planner",
    stations: Sequence[Station] = (),
) -> tuple[list[Order], list[Unit], list[Program], list[Event]]:
    """Check and expand orders into units, steps, programs and journal entries.

    Raises:
        OrderError: every problem found in any order; nothing is returned.
    """
    problems: list[Problem] = []
    orders: list[Order] = []
    units: list[Unit] = []
    programs: dict[str, Program] = {}
    events: list[Event] = []
    seen: set[str] = set()
    for spec in specs:
        order_id = spec.id or f"O-{uuid.uuid4().hex[:10]}"
        if order_id in seen:
            problems.append(
                Problem(
                    "order id given twice in this release", source, spec.line, f"order {order_id}"
                )
            )
        seen.add(order_id)
        planned: list[Planned] = []
        for unit_spec in spec.units:
            where = f"order {order_id}, {unit_spec.where}"
            family = families.get(unit_spec.family)
            if family is None:
                known = ", ".join(sorted(families)) or "none"
                problems.append(
                    Problem(
                        f"unknown product family {unit_spec.family!r} (known: {known})",
                        source,
                        unit_spec.line,
                        f"{where}: family",
                    )
                )
                continue
            try:
                options = family.configure(unit_spec.options)
                steps = plan(family, options)
            except OrderError as exc:
                problems.extend(
                    Problem(p.reason, source, unit_spec.line, f"{where}: {p.path}")
                    for p in exc.problems
                )
                continue
            if all(step.skipped for step in steps):
                problems.append(
                    Problem(
                        "no step of the process plan applies to these options",
                        source,
                        unit_spec.line,
                        where,
                    )
                )
                continue
            try:
                placed = [_place(step, stations) for step in steps]
            except ValueError as exc:
                problems.append(Problem(str(exc), source, unit_spec.line, where))
                continue
            planned.append((family, options, steps, placed))
        if problems:
            continue
        orders.append(Order(order_id, now, spec.priority, spec.due, source, _digest(spec, planned)))
        for seq, (family, options, steps, placed) in enumerate(planned, start=1):
            unit = _unit(order_id, seq, family, options, steps, placed, now)
            programs.update((p.program.id, p.program) for p in steps)
            events.append(
                Event(
                    now,
                    actor,
                    "unit",
                    unit.id,
                    "release",
                    "",
                    unit.state.value,
                    {"order": order_id, "family": family.name},
                )
            )
            for step in unit.steps:
                if step.state is StepState.SKIPPED:
                    events.append(
                        Event(
                            now,
                            actor,
                            "step",
                            step.id,
                            StepEvent.SKIP.value,
                            StepState.PENDING.value,
                            StepState.SKIPPED.value,
                            {"reason": "condition false for these options"},
                        )
                    )
            for step in unit.next_ready():
                events.append(Event.of(step.handle(StepEvent.READY, now), actor))
            units.append(unit)
    if problems:
        raise OrderError(problems)
    return orders, units, list(programs.values()), events


def _unit(
    order_id: str,
    seq: int,
    family: Family,
    options: dict[str, OptionValue],
    steps: list[PlannedStep],
    placed: list[Placed],
    now: datetime,
) -> Unit:
    unit = Unit(f"{order_id}.{seq}", order_id, seq, family.name, dict(options), now)
    if family.postponement is not None:
        unit.variant = family.postponement.key(options)
    for p, cells in zip(steps, placed, strict=True):
        unit.steps.append(
            Step(
                f"{unit.id}/{p.name}",
                unit.id,
                p.seq,
                p.name,
                p.capability,
                p.program.id,
                p.expected_s,
                state=StepState.SKIPPED if p.skipped else StepState.PENDING,
                after=p.after,
                attributes=dict(p.attributes),
                cells=cells,
                quality=dict(p.quality),
                stage=p.stage,
                generic=p.generic,
            )
        )
    return unit


def release(
    store: Store,
    specs: Sequence[OrderSpec],
    families: Mapping[str, Family],
    now: datetime,
    *,
    source: str = "",
    actor: str = "planner",
    stations: Sequence[Station] = (),
    messages: ReleaseMessages | None = None,
) -> Released:
    """Check, plan and store orders, all or nothing (with ``messages`` for the outbox).

    Raises:
        OrderError: a problem in any order, or an order id already used for other content.
    """
    orders, units, programs, events = prepare(
        specs, families, now, source=source, actor=actor, stations=stations
    )
    same = store.release(orders, units, programs, events, messages=messages)
    return Released(
        released=[o.id for o in orders if o.id not in same],
        unchanged=[o.id for o in orders if o.id in same],
        units=sum(1 for u in units if u.order_id not in same),
    )


def _place(step: PlannedStep, stations: Sequence[Station]) -> Placed:
    """The cells a step may run on (empty: any capable one).

    Raises:
        ValueError: its program fits no capable cell, or the generator refuses it.
    """
    if step.skipped or step.program.kind is not ProgramKind.GENERATOR:
        return ()
    try:
        check_generator_call(step.program)
        cells, reasons = place(step, stations)
    except ValueError as exc:
        raise ValueError(f"step {step.name}: {exc}") from None
    if reasons and not cells:
        raise ValueError(
            f"step {step.name}: the program fits no capable cell: " + " | ".join(reasons)
        )
    return cells


def _digest(spec: OrderSpec, planned: list[Planned]) -> str:
    content = {
        "priority": spec.priority,
        "due": spec.due.isoformat() if spec.due else None,
        "units": [{"family": f.name, "options": o} for f, o, _, _ in planned],
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
