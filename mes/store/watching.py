"""Reads for watchers in other processes (the dashboard): the plant as it stands, work in
progress, and what finished in a window. Read-only; mixed into :class:`Store`, whose
``_read`` transaction they use."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from mes.domain import StepState, UnitState
from mes.domain.stock import STOCK_SOURCE
from mes.store.tables import CELLS, EVENTS, JOBS, ORDERS, STEPS, UNITS

_FINISHED = (UnitState.DONE.value, UnitState.SCRAPPED.value)


class WatcherReads:
    """The dashboard's queries (see the module docstring)."""

    def _read(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def cell_board(self) -> list[dict[str, Any]]:
        """Every cell row with what it runs now: the job's unit, step (name, seq, expected
        seconds), program and start, or None in each where it runs nothing. One query."""
        query = (
            select(
                CELLS,
                JOBS.c.unit_id,
                JOBS.c.step_id,
                JOBS.c.program_id,
                JOBS.c.started_at.label("job_started_at"),
                STEPS.c.name.label("step_name"),
                STEPS.c.seq.label("step_seq"),
                STEPS.c.expected_s,
            )
            .select_from(
                CELLS.outerjoin(JOBS, JOBS.c.id == CELLS.c.job_id).outerjoin(
                    STEPS, STEPS.c.id == JOBS.c.step_id
                )
            )
            .order_by(CELLS.c.name)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def wip(self, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Every unit not done or scrapped (or only those among ``ids``), with its order's
        due date and priority, its step counts (total, settled), the seconds of work left
        (expected, unsettled steps) and its current step: the one on a cell, else the
        first unsettled.

        One query (grouped and ranked in SQL: no row per step reaches Python) per 500 ids.
        """
        if ids is None:
            return self._wip(UNITS.c.state.not_in(_FINISHED))
        wanted, rows = list(ids), []
        for start in range(0, len(wanted), 500):
            chunk = UNITS.c.id.in_(wanted[start : start + 500])
            rows += self._wip(UNITS.c.state.not_in(_FINISHED) & chunk)
        return rows

    def touched_units(self, after_id: int) -> tuple[set[str], int]:
        """Ids of units whose unit or step entries in the journal come after entry
        ``after_id``, and the last entry id seen (a watcher reads again only those)."""
        query = select(EVENTS.c.id, EVENTS.c.subject).where(
            EVENTS.c.id > after_id, EVENTS.c.kind.in_(("unit", "step"))
        )
        touched, last = set(), after_id
        with self._read() as conn:
            for event_id, subject in conn.execute(query):
                touched.add(subject.split("/", 1)[0])
                last = max(last, event_id)
        return touched, last

    def _wip(self, open_units: Any) -> list[dict[str, Any]]:
        settled = (StepState.DONE.value, StepState.SKIPPED.value)
        on_cell = (StepState.DISPATCHED.value, StepState.RUNNING.value)
        ranked = (
            select(
                STEPS.c.unit_id,
                STEPS.c.name,
                STEPS.c.state,
                STEPS.c.cell,
                STEPS.c.started_at,
                func.row_number()
                .over(
                    partition_by=STEPS.c.unit_id,
                    order_by=(case((STEPS.c.state.in_(on_cell), 0), else_=1), STEPS.c.seq),
                )
                .label("rank"),
            )
            .join(UNITS, UNITS.c.id == STEPS.c.unit_id)
            .where(open_units, STEPS.c.state.not_in(settled))
            .subquery()
        )
        counts = (
            select(
                STEPS.c.unit_id,
                func.count().label("steps"),
                func.sum(case((STEPS.c.state.in_(settled), 1), else_=0)).label("settled"),
                func.sum(case((STEPS.c.state.in_(settled), 0.0), else_=STEPS.c.expected_s)).label(
                    "left_s"
                ),
            )
            .join(UNITS, UNITS.c.id == STEPS.c.unit_id)
            .where(open_units)
            .group_by(STEPS.c.unit_id)
            .subquery()
        )
        query = (
            select(
                UNITS.c.id,
                UNITS.c.order_id,
                UNITS.c.seq,
                UNITS.c.family,
                UNITS.c.state,
                UNITS.c.released_at,
                ORDERS.c.due,
                ORDERS.c.priority,
                counts.c.steps,
                counts.c.settled,
                counts.c.left_s,
                ranked.c.name.label("step"),
                ranked.c.state.label("step_state"),
                ranked.c.cell,
                ranked.c.started_at.label("step_started_at"),
            )
            .select_from(
                UNITS.join(ORDERS, ORDERS.c.id == UNITS.c.order_id)
                .outerjoin(counts, counts.c.unit_id == UNITS.c.id)
                .outerjoin(ranked, (ranked.c.unit_id == UNITS.c.id) & (ranked.c.rank == 1))
            )
            .where(open_units)
            .order_by(UNITS.c.released_at, UNITS.c.order_id, UNITS.c.seq)
        )
        with self._read() as conn:
            rows = []
            for r in conn.execute(query):
                row = dict(r._mapping)
                row["steps"] = int(row["steps"] or 0)
                row["settled"] = int(row["settled"] or 0)
                row["left_s"] = float(row["left_s"] or 0.0)
                # The window's column comes back raw on some dialects: make it a time.
                started = row["step_started_at"]
                if started is not None and not isinstance(started, datetime):
                    row["step_started_at"] = datetime.fromisoformat(str(started)).replace(
                        tzinfo=UTC
                    )
                rows.append(row)
            return rows

    def events_since(
        self, kinds: Iterable[str], since: datetime, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """Journal entries of these kinds after entry ``after_id`` and at or after
        ``since``, oldest first (a watcher's window, read again from its last id)."""
        query = (
            select(EVENTS)
            .where(EVENTS.c.id > after_id, EVENTS.c.at >= since, EVENTS.c.kind.in_(list(kinds)))
            .order_by(EVENTS.c.id)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def finished_units(self, since: datetime) -> list[dict[str, Any]]:
        """Customer units done or scrapped at or after ``since`` (blanks made ahead are
        not the plant's output): id, family, state, released_at, finished_at (lead
        times, throughput, quality)."""
        query = (
            select(
                UNITS.c.id, UNITS.c.family, UNITS.c.state, UNITS.c.released_at, UNITS.c.finished_at
            )
            .join(ORDERS, ORDERS.c.id == UNITS.c.order_id)
            .where(UNITS.c.finished_at >= since, ORDERS.c.source != STOCK_SOURCE)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def finished_jobs(self, since: datetime) -> list[dict[str, Any]]:
        """Jobs that ended at or after ``since``, with their step's capability and
        expected seconds: id, cell, state, started_at, finished_at, capability,
        expected_s (performance and quality per cell)."""
        query = (
            select(
                JOBS.c.id,
                JOBS.c.cell,
                JOBS.c.state,
                JOBS.c.started_at,
                JOBS.c.finished_at,
                STEPS.c.capability,
                STEPS.c.expected_s,
            )
            .join(STEPS, STEPS.c.id == JOBS.c.step_id)
            .where(JOBS.c.finished_at >= since)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def work_content(self, since: datetime) -> tuple[int, dict[str, float]]:
        """Units released at or after ``since`` (or still open) and the expected seconds
        of their steps (not skipped) by capability: the plant's ideal rate follows."""
        recent = (UNITS.c.released_at >= since) | UNITS.c.state.not_in(_FINISHED)
        units = select(func.count()).select_from(UNITS).where(recent)
        work = (
            select(STEPS.c.capability, func.sum(STEPS.c.expected_s))
            .join(UNITS, UNITS.c.id == STEPS.c.unit_id)
            .where(recent, STEPS.c.state != StepState.SKIPPED.value)
            .group_by(STEPS.c.capability)
        )
        with self._read() as conn:
            count = int(conn.execute(units).scalar() or 0)
            return count, {cap: float(s or 0.0) for cap, s in conn.execute(work)}

    def last_job(self, cell: str) -> dict[str, Any] | None:
        """The newest job handed to ``cell`` (a station's last unit), or None."""
        query = select(JOBS).where(JOBS.c.cell == cell).order_by(JOBS.c.id.desc()).limit(1)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def ready_steps(self) -> dict[str, tuple[str, list[str]]]:
        """Steps ready now (of units not held): id -> (capability, the cells it is
        limited to; empty: any capable cell)."""
        query = (
            select(STEPS.c.id, STEPS.c.capability, STEPS.c.cells)
            .join(UNITS, UNITS.c.id == STEPS.c.unit_id)
            .where(STEPS.c.state == StepState.READY.value, UNITS.c.state.not_in(_FINISHED))
        )
        with self._read() as conn:
            return {r.id: (r.capability, list(r.cells or [])) for r in conn.execute(query)}
