"""A unit as its customer sees it, and where its lead time went. Pure: no I/O, no clock.

**Customer status.** Four states a shop front can show, with the family's word for the
step the unit is at (``StepSpec.stage``). Nothing internal leaks: no cell, no program,
no fault text, no journal; a fault, an operator's hold or a unit waiting for an
operator all read "delayed".

=============== ====================================================================
received        released, none of its own work begun (a blank from stock may stand in)
in_production   a job of its own has begun; ``stage`` is the current or next step's
delayed         held, failed, interrupted or scrapped: it waits for people
ready           done
=============== ====================================================================

**Lead time** runs from release to done (or to now, while open) and splits into the
cell time of its custom steps, the cell time of its own generic steps (none when a
blank stood in for them) and waiting (queues, hand-offs, holds: the rest). Every
attempt counts: a job that failed took cell time for the unit too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

RECEIVED, IN_PRODUCTION, DELAYED, READY = "received", "in_production", "delayed", "ready"
#: Step states that wait for a person.
_STUCK = frozenset({"failed", "interrupted", "aborted"})
_SETTLED = frozenset({"done", "skipped"})
_ON_CELL = frozenset({"dispatched", "running"})


@dataclass(frozen=True, slots=True)
class StepView:
    """What the customer view needs of a step."""

    seq: int
    state: str
    stage: str = ""
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class CustomerStatus:
    """A unit in its customer's words."""

    status: str
    """received, in_production, delayed or ready."""
    stage: str = ""
    """The family's word for the step it is at ("" : none given, or not in production)."""

    @property
    def text(self) -> str:
        """What a person reads: ``in production: engraving``."""
        if self.status == IN_PRODUCTION:
            return f"in production: {self.stage}" if self.stage else "in production"
        return self.status


def customer_status(unit_state: str, steps: Sequence[StepView]) -> CustomerStatus:
    """The customer's view of a unit in ``unit_state`` with these steps."""
    if unit_state == "done":
        return CustomerStatus(READY)
    if unit_state in ("held", "failed", "scrapped") or any(s.state in _STUCK for s in steps):
        return CustomerStatus(DELAYED)
    if not any(s.attempts > 0 for s in steps):
        return CustomerStatus(RECEIVED)
    ordered = sorted(steps, key=lambda s: s.seq)
    current = next((s for s in ordered if s.state in _ON_CELL), None) or next(
        (s for s in ordered if s.state not in _SETTLED), None
    )
    return CustomerStatus(IN_PRODUCTION, current.stage if current is not None else "")


@dataclass(frozen=True, slots=True)
class Interval:
    """A job of the unit on a cell: from its start (or dispatch) to its end."""

    generic: bool
    start: datetime
    end: datetime | None
    """None while it runs."""


@dataclass(frozen=True, slots=True)
class LeadTime:
    """Release to done (or to now), in seconds, and where it went."""

    total_s: float
    custom_s: float
    generic_s: float
    waiting_s: float
    done: bool = False


def lead_time(
    released_at: datetime,
    finished_at: datetime | None,
    jobs: Iterable[Interval],
    now: datetime,
    speed: float = 1.0,
) -> LeadTime:
    """A unit's lead time and its split; ``speed`` turns wall time into plant time (a
    simulated plant running faster than the clock)."""
    end = finished_at or now
    custom = generic = 0.0
    for job in jobs:
        start = max(job.start, released_at)
        stop = min(job.end or end, end)
        seconds = max(0.0, (stop - start).total_seconds()) * speed
        if job.generic:
            generic += seconds
        else:
            custom += seconds
    total = max(0.0, (end - released_at).total_seconds()) * speed
    return LeadTime(
        total, custom, generic, max(0.0, total - custom - generic), finished_at is not None
    )


@dataclass(frozen=True, slots=True)
class LeadSummary:
    """Lead times of units done: means of the whole and of each part, and the 95th
    percentile of the whole."""

    units: int
    from_stock: int
    mean_s: float
    p95_s: float
    custom_s: float
    generic_s: float
    waiting_s: float


def summarise(leads: Sequence[tuple[LeadTime, bool]]) -> LeadSummary | None:
    """The summary of ``(lead time, started from a blank)`` pairs; None for none."""
    if not leads:
        return None
    n = len(leads)
    totals = sorted(lead.total_s for lead, _ in leads)
    return LeadSummary(
        units=n,
        from_stock=sum(1 for _, blank in leads if blank),
        mean_s=sum(totals) / n,
        p95_s=percentile(totals, 0.95),
        custom_s=sum(lead.custom_s for lead, _ in leads) / n,
        generic_s=sum(lead.generic_s for lead, _ in leads) / n,
        waiting_s=sum(lead.waiting_s for lead, _ in leads) / n,
    )


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted ``values`` (``share`` in 0..1)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(share * len(values)))
    return values[rank - 1]
