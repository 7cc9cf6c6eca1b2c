"""Throughput, lead time and OEE (availability x performance x quality) over a window,
per cell and for the plant. Pure: the caller passes store rows and the window.

- Availability: executing time over planned time (all but held, which is planned
  downtime), from the cell journal (:func:`mes.domain.accounting.state_times`); idle
  time splits into starved (nothing it could do) and blocked (ready work it could take
  waited) with :func:`~mes.domain.accounting.waiting_intervals`.
- Performance: expected over actual time of the jobs that ended in the window (the
  step's expected seconds times the cell's duration factor), at most 100 %.
- Quality: jobs that ended done over all jobs that ended.

A cell's state when the window opens is the ``before`` of its first journal entry in
the window, or its state now if it has none: so only the window is read, never the
whole journal. The same holds for steps that were ready.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mes.domain.accounting import CATEGORIES, availability, state_times, waiting_intervals
from mes.domain.tracking import Interval, LeadSummary, LeadTime, lead_time, summarise

BUCKETS = 48


@dataclass(frozen=True, slots=True)
class Oee:
    """Availability, performance and quality of a cell (or the plant); None: no data."""

    name: str
    availability: float | None = None
    performance: float | None = None
    quality: float | None = None
    shares: Mapping[str, float] = field(default_factory=dict)
    """Category (executing, starved, blocked, held, faulted, offline) -> share of window."""
    jobs: int = 0

    @property
    def oee(self) -> float | None:
        parts = (self.availability, self.performance, self.quality)
        if any(p is None for p in parts):
            return None
        a, p, q = (float(x) for x in parts)  # type: ignore[arg-type]
        return a * p * q


@dataclass(frozen=True, slots=True)
class Performance:
    """The plant over a window of plant time."""

    window_s: float
    throughput_h: float
    """Units done per plant hour over the last hour (or since the plant started)."""
    target_h: float | None
    target_source: str
    behind: int
    """Units behind the target over that hour (negative: ahead)."""
    done: int
    scrapped: int
    lead_mean_s: float | None
    lead_median_s: float | None
    cells: tuple[Oee, ...]
    plant: Oee
    buckets: tuple[int, ...]
    """Units done per bucket, oldest first, ``BUCKETS`` buckets across the window."""
    lead: LeadSummary | None = None
    """Customer units done in the window: lead time and where it went (custom work,
    their own generic work, waiting), and how many started from a blank."""


def ideal_rate(
    units: int, work: Mapping[str, float], cells_by_capability: Mapping[str, int]
) -> float | None:
    """Units per hour the plant makes if each capability's cells only ever ran at their
    expected times: the bottleneck capability's work per unit decides."""
    if units <= 0:
        return None
    per_unit = [
        seconds / units / cells_by_capability[cap]
        for cap, seconds in work.items()
        if cells_by_capability.get(cap)
    ]
    bottleneck = max(per_unit, default=0.0)
    return 3600.0 / bottleneck if bottleneck > 0 else None


def compute(
    *,
    now: datetime,
    window_s: float,
    speed: float,
    cells: Sequence[Mapping[str, Any]],
    cell_events: Sequence[Mapping[str, Any]],
    step_events: Sequence[Mapping[str, Any]],
    ready_now: Mapping[str, tuple[str, Sequence[str]]],
    needs: Mapping[str, tuple[str, Sequence[str]]],
    jobs: Iterable[Mapping[str, Any]],
    units: Iterable[Mapping[str, Any]],
    factors: Mapping[str, Mapping[str, float]],
    target_h: float | None = None,
    ideal_h: float | None = None,
    active_since: datetime | None = None,
    lead_rows: Iterable[Mapping[str, Any]] = (),
) -> Performance:
    """Figures for the window of ``window_s`` plant seconds ending ``now``.

    Args:
        cells: ``Store.cells`` rows (name, state, capabilities).
        cell_events: cell journal entries in the window, oldest first.
        step_events: step journal entries in the window, oldest first.
        ready_now: steps ready now -> (capability, cells it is limited to).
        needs: step id -> (capability, cells it is limited to) for ``step_events``.
        jobs: ``Store.finished_jobs`` rows of the window.
        units: ``Store.finished_units`` rows of the window.
        factors: cell -> capability -> duration factor.
        target_h: the operator's target (units per hour), else ``ideal_h`` is used.
        active_since: when the plant first did something in the window.
        lead_rows: ``Store.lead_times`` rows of the window (customer units done, jobs).
    """
    wall = timedelta(seconds=window_s / speed)
    start = now - wall
    capabilities = {str(c["name"]): set(c.get("capabilities") or ()) for c in cells}
    times = state_times(
        _with_start(cell_events, {str(c["name"]): str(c["state"]) for c in cells}, start),
        start,
        now,
        _waiting(step_events, ready_now, needs, capabilities, start, now),
    )
    per_cell = _jobs_by_cell(jobs, factors, speed)
    out = []
    for name in sorted(capabilities):
        t = times.get(name, dict.fromkeys(CATEGORIES, 0.0))
        total = sum(t.values())
        expected, actual, good, count = per_cell.get(name, (0.0, 0.0, 0, 0))
        out.append(
            Oee(
                name,
                availability(t) if total else None,
                min(1.0, expected / actual) if actual > 0 else None,
                good / count if count else None,
                {k: (v / total if total else 0.0) for k, v in t.items()},
                count,
            )
        )
    plant = _plant(times, per_cell)
    finished = list(units)
    done = [u for u in finished if u["state"] == "done" and u["finished_at"] is not None]
    leads = [(u["finished_at"] - u["released_at"]).total_seconds() * speed for u in done]
    hour = timedelta(seconds=3600 / speed)
    since = max(now - hour, start, active_since or start)
    span_h = max((now - since).total_seconds() * speed / 3600, 1e-9)
    recent = sum(1 for u in done if u["finished_at"] >= since)
    throughput = recent / span_h if (now - since).total_seconds() > 0 else 0.0
    target, source = (target_h, "target") if target_h else (ideal_h, "ideal from planned times")
    behind = round(target * span_h - recent) if target else 0
    step = wall / BUCKETS
    buckets = [0] * BUCKETS
    for u in done:
        index = int((u["finished_at"] - start) / step)
        if 0 <= index < BUCKETS:
            buckets[index] += 1
    return Performance(
        window_s=window_s,
        throughput_h=throughput,
        target_h=target,
        target_source=source if target else "",
        behind=behind,
        done=len(done),
        scrapped=sum(1 for u in finished if u["state"] == "scrapped"),
        lead_mean_s=statistics.fmean(leads) if leads else None,
        lead_median_s=statistics.median(leads) if leads else None,
        cells=tuple(out),
        plant=plant,
        buckets=tuple(buckets),
        lead=summarise([(_lead(u, now, speed), bool(u["blank"])) for u in lead_rows]),
    )


def _lead(unit: Mapping[str, Any], now: datetime, speed: float) -> LeadTime:
    jobs = [
        Interval(bool(j["generic"]), j["started_at"] or j["dispatched_at"], j["finished_at"])
        for j in unit["jobs"]
    ]
    return lead_time(unit["released_at"], unit["finished_at"], jobs, now, speed)


def _with_start(
    events: Sequence[Mapping[str, Any]], now_states: Mapping[str, str], start: datetime
) -> list[tuple[datetime, str, str]]:
    """Cell changes, with each cell's state at ``start`` as a change at ``start``."""
    first: dict[str, str] = {}
    for e in events:
        first.setdefault(str(e["subject"]), str(e["before"] or "offline"))
    changes = [(start, name, first.get(name, state)) for name, state in now_states.items()]
    changes += [(e["at"], str(e["subject"]), str(e["after"])) for e in events]
    return changes


def _waiting(
    events: Sequence[Mapping[str, Any]],
    ready_now: Mapping[str, tuple[str, Sequence[str]]],
    needs: Mapping[str, tuple[str, Sequence[str]]],
    capabilities: Mapping[str, set[str]],
    start: datetime,
    end: datetime,
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per cell, when ready work it could take waited (steps ready at ``start`` too)."""
    first: dict[str, str] = {}
    for e in events:
        first.setdefault(str(e["subject"]), str(e["before"]))
    changes = [(start, step, before) for step, before in first.items()]
    changes += [(start, step, "ready") for step in ready_now if step not in first]
    changes += [(e["at"], str(e["subject"]), str(e["after"])) for e in events]
    eligible = {}
    for step, (need, only) in {**needs, **ready_now}.items():
        eligible[step] = [
            c for c, caps in capabilities.items() if need in caps and (not only or c in only)
        ]
    return waiting_intervals(changes, eligible, end)


def _jobs_by_cell(
    jobs: Iterable[Mapping[str, Any]], factors: Mapping[str, Mapping[str, float]], speed: float
) -> dict[str, tuple[float, float, int, int]]:
    """Cell -> (expected s, actual s, good jobs, jobs) of the jobs that ended."""
    out: dict[str, tuple[float, float, int, int]] = {}
    for job in jobs:
        cell = str(job["cell"])
        expected, actual, good, count = out.get(cell, (0.0, 0.0, 0, 0))
        if job["started_at"] is not None and job["finished_at"] is not None:
            factor = factors.get(cell, {}).get(str(job["capability"]), 1.0)
            expected += float(job["expected_s"]) * factor
            actual += (job["finished_at"] - job["started_at"]).total_seconds() * speed
        good += job["state"] == "done"
        out[cell] = (expected, actual, good, count + 1)
    return out


def _plant(
    times: Mapping[str, Mapping[str, float]], per_cell: Mapping[str, tuple[float, float, int, int]]
) -> Oee:
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for t in times.values():
        for k, v in t.items():
            totals[k] += v
    planned = sum(totals.values())
    expected = sum(v[0] for v in per_cell.values())
    actual = sum(v[1] for v in per_cell.values())
    good = sum(v[2] for v in per_cell.values())
    count = sum(v[3] for v in per_cell.values())
    return Oee(
        "plant",
        availability(totals) if planned else None,
        min(1.0, expected / actual) if actual > 0 else None,
        good / count if count else None,
        {k: (v / planned if planned else 0.0) for k, v in totals.items()},
        count,
    )
