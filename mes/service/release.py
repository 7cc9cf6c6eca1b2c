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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from mes.domain import Event, Order, Program, Step, StepEvent, Unit
from mes.errors import OrderError, Problem
from mes.service.order_files import OrderSpec
from mes.store import Store
from routing.family import Family, OptionValue
from routing.planner import plan


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
        configured: list[tuple[Family, dict[str, OptionValue]]] = []
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
                configured.append((family, dict(family.configure(unit_spec.options))))
            except OrderError as exc:
                problems.extend(
                    Problem(p.reason, source, unit_spec.line, f"{where}: {p.path}")
                    for p in exc.problems
                )
        if problems:
            continue
        digest = _digest(spec, configured)
        orders.append(Order(order_id, now, spec.priority, spec.due, source, digest))
        for seq, (family, options) in enumerate(configured, start=1):
            unit = Unit(f"{order_id}.{seq}", order_id, seq, family.name, options, now)
            for planned in plan(family, options):
                programs[planned.program.id] = planned.program
                unit.steps.append(
                    Step(
                        f"{unit.id}/{planned.name}",
                        unit.id,
                        planned.seq,
                        planned.name,
                        planned.capability,
                        planned.program.id,
                        planned.expected_s,
                    )
                )
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
            for step in unit.next_ready():
                events.append(Event.of(step.handle(StepEvent.READY, now), actor))
            units.append(unit)
    if problems:
        raise OrderError(problems)
    return orders, units, list(programs.values()), events


def release(
    store: Store,
    specs: Sequence[OrderSpec],
    families: Mapping[str, Family],
    now: datetime,
    *,
    source: str = "",
    actor: str = "planner",
) -> Released:
    """Check, plan and store orders, all or nothing.

    Raises:
        OrderError: a problem in any order, or an order id already used for other content.
    """
    orders, units, programs, events = prepare(specs, families, now, source=source, actor=actor)
    same = store.release(orders, units, programs, events)
    return Released(
        released=[o.id for o in orders if o.id not in same],
        unchanged=[o.id for o in orders if o.id in same],
        units=sum(1 for u in units if u.order_id not in same),
    )


def _digest(spec: OrderSpec, configured: list[tuple[Family, dict[str, OptionValue]]]) -> str:
    content = {
        "priority": spec.priority,
        "due": spec.due.isoformat() if spec.due else None,
        "units": [{"family": f.name, "options": o} for f, o in configured],
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
