"""Blanks: the result of a family's generic steps, made ahead to stock, and a unit
starting from one. Pure: no I/O, time passed in.

Theory of operation: a family may mark its leading steps *generic* (they depend on the
variant options alone, see :class:`routing.family.Postponement`). A *stock unit* is a
unit of such a family made of the generic steps only, released under a stock order
(``source = "stock"``, a priority below any customer's, so cells take it only when they
have nothing else to do); the controller runs it like any unit. Its blank is in stock
once it is done, and leaves stock when a unit takes it, when the stock unit is scrapped
(it never becomes a blank), or when an operator scraps the blank.

A customer's unit takes a blank of its variant in its release (the store locks one,
``SKIP LOCKED``, in the release's transaction, so two releases never take the same
one): :func:`take_blank` skips its generic steps, says which blank stands in for them,
and makes its first custom steps ready. With none in stock it runs its generic steps
itself.

Blank states: ``stock -consume-> consumed``, ``stock -scrap-> scrapped`` (a blank
whose stock unit is not done yet is being made; one whose stock unit was scrapped is
not in stock either).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mes.domain.events import Event
from mes.domain.step import StepEvent, StepState
from mes.domain.unit import Unit

#: ``Order.source`` of the orders that make blanks.
STOCK_SOURCE = "stock"
#: Their priority: below the lowest an order file may give (-100), so a cell takes stock
#: work only when no customer's work is there for it.
STOCK_PRIORITY = -1000
#: Blank states.
IN_STOCK, CONSUMED, SCRAPPED = "stock", "consumed", "scrapped"


@dataclass(frozen=True, slots=True)
class Blank:
    """A blank in stock as a release finds it: which, of what, made when and where."""

    id: str
    """The stock unit that made it (its as-built record is the blank's)."""
    family: str
    variant: str
    made_at: datetime | None = None
    cells: tuple[str, ...] = ()
    """The cells its generic steps ran on, in step order."""


def wants_blank(unit: Unit) -> bool:
    """Whether ``unit`` could start from a blank: it has a variant and generic steps to
    do (not skipped by their condition), none of which has begun."""
    generic = [s for s in unit.steps if s.generic and s.state is not StepState.SKIPPED]
    return bool(unit.variant and generic) and all(
        s.state in (StepState.PENDING, StepState.READY) for s in generic
    )


def take_blank(unit: Unit, blank: Blank, events: list[Event], actor: str) -> list[Event]:
    """Let ``blank`` stand in for ``unit``'s generic steps, in its release (before any of
    it is durable).

    The generic steps are skipped (their journal entries say which blank), the steps
    after them become ready, and the release's ``ready`` entries for generic steps are
    dropped: they were never durable, so the unit's journal reads released, generic
    steps skipped for the blank, first custom steps ready.

    Args:
        unit: a unit just planned by a release (:func:`wants_blank` holds).
        blank: the blank locked for it.
        events: the release's journal entries so far.
        actor: who releases.

    Returns:
        ``events`` with the unit's entries amended.
    """
    generic = {s.id for s in unit.steps if s.generic}
    kept = [
        e
        for e in events
        if not (e.kind == "step" and e.subject in generic and e.transition == "ready")
    ]
    at = unit.released_at
    for step in unit.steps:
        if not step.generic or step.state is StepState.SKIPPED:
            continue
        step.state = StepState.PENDING  # its "ready" was never recorded
        kept.append(
            Event.of(
                step.handle(StepEvent.SKIP, at),
                actor,
                reason="made ahead: a blank from stock stands in",
                blank=blank.id,
            )
        )
        step.result = {"outcome": "from-stock", "blank": blank.id}
    for step in unit.next_ready():
        kept.append(Event.of(step.handle(StepEvent.READY, at), actor))
    kept.append(
        Event(
            at,
            actor,
            "blank",
            blank.id,
            "consume",
            IN_STOCK,
            CONSUMED,
            {"unit": unit.id, "variant": blank.variant},
        )
    )
    return kept
