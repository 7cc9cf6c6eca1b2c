"""Reads for order tracking: one order whole, the open work for a forecast, and the lead
times of units done. Read-only; mixed into :class:`~mes.store.Store`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from mes.domain.stock import STOCK_SOURCE
from mes.store.tables import BLANKS, CELLS, EVENTS, JOBS, ORDERS, STEPS, UNITS
from mes.store.watching import _FINISHED

_STEP_COLUMNS = (
    STEPS.c.id,
    STEPS.c.unit_id,
    STEPS.c.seq,
    STEPS.c.name,
    STEPS.c.capability,
    STEPS.c.expected_s,
    STEPS.c.after,
    STEPS.c.attributes,
    STEPS.c.cells,
    STEPS.c.stage,
    STEPS.c.generic,
    STEPS.c.state,
    STEPS.c.cell,
    STEPS.c.attempts,
    STEPS.c.started_at,
)


class TrackingReads:
    """Order tracking's queries (see the module docstring)."""

    def _read(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def order_record(self, order_id: str) -> dict[str, Any] | None:
        """An order with its units, each with ``steps`` (seq, name, stage, generic,
        state, attempts...), ``jobs`` (step_id, generic, dispatched_at, started_at,
        finished_at, state) and ``blank`` (the blank it started from, or "")."""
        with self._read() as conn:
            order = conn.execute(select(ORDERS).where(ORDERS.c.id == order_id)).first()
            if order is None:
                return None
            units = [
                {**r._mapping, "steps": [], "jobs": [], "blank": ""}
                for r in conn.execute(
                    select(UNITS).where(UNITS.c.order_id == order_id).order_by(UNITS.c.seq)
                )
            ]
            by_id = {u["id"]: u for u in units}
            _attach(conn, by_id)
        return {**order._mapping, "units": units}

    def open_work(self) -> dict[str, Any]:
        """Everything a forecast needs: ``units`` not finished (with their order's
        ``priority``, ``due``, ``source`` and their ``steps``), ``cells`` (state, job,
        progress), and ``loaded``: cell -> the setup attributes of its latest job."""
        with self._read() as conn:
            rows = conn.execute(
                select(
                    UNITS.c.id,
                    UNITS.c.order_id,
                    UNITS.c.seq,
                    UNITS.c.state,
                    UNITS.c.released_at,
                    ORDERS.c.priority,
                    ORDERS.c.due,
                    ORDERS.c.source,
                )
                .join(ORDERS, ORDERS.c.id == UNITS.c.order_id)
                .where(UNITS.c.state.not_in(_FINISHED))
            )
            units = {r.id: {**r._mapping, "steps": []} for r in rows}
            steps = (
                select(*_STEP_COLUMNS)
                .join(UNITS, UNITS.c.id == STEPS.c.unit_id)
                .where(UNITS.c.state.not_in(_FINISHED))
                .order_by(STEPS.c.unit_id, STEPS.c.seq)
            )
            for r in conn.execute(steps):
                if r.unit_id in units:
                    units[r.unit_id]["steps"].append(dict(r._mapping))
            cells = [dict(r._mapping) for r in conn.execute(select(CELLS).order_by(CELLS.c.name))]
            latest = (
                select(JOBS.c.cell, func.max(JOBS.c.id).label("job")).group_by(JOBS.c.cell)
            ).subquery()
            loaded = {
                r.cell: dict(r.attributes or {})
                for r in conn.execute(
                    select(latest.c.cell, STEPS.c.attributes)
                    .join(JOBS, JOBS.c.id == latest.c.job)
                    .join(STEPS, STEPS.c.id == JOBS.c.step_id)
                )
            }
        return {"units": list(units.values()), "cells": cells, "loaded": loaded}

    def open_orders(self) -> list[str]:
        """Customer orders with a unit not finished (done or scrapped)."""
        query = (
            select(UNITS.c.order_id)
            .join(ORDERS, ORDERS.c.id == UNITS.c.order_id)
            .where(UNITS.c.state.not_in(_FINISHED), ORDERS.c.source != STOCK_SOURCE)
            .distinct()
        )
        with self._read() as conn:
            return sorted(conn.execute(query).scalars())

    def touched_orders(self, after_id: int, limit: int = 10_000) -> tuple[list[str], int]:
        """Customer orders whose units or steps have journal entries after ``after_id``,
        and the last entry id read (at most ``limit`` entries at a time)."""
        query = (
            select(EVENTS.c.id, EVENTS.c.subject)
            .where(EVENTS.c.id > after_id, EVENTS.c.kind.in_(("unit", "step")))
            .order_by(EVENTS.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return [], after_id
            units = sorted({str(r.subject).split("/", 1)[0] for r in rows})
            orders: set[str] = set()
            for start in range(0, len(units), 500):
                found = (
                    select(UNITS.c.order_id)
                    .join(ORDERS, ORDERS.c.id == UNITS.c.order_id)
                    .where(UNITS.c.id.in_(units[start : start + 500]))
                    .where(ORDERS.c.source != STOCK_SOURCE)
                )
                orders.update(conn.execute(found).scalars())
        return sorted(orders), int(rows[-1].id)

    def lead_times(self, since: datetime) -> list[dict[str, Any]]:
        """Customer units done at or after ``since`` (no stock units): id, family,
        released_at, finished_at, ``blank`` (the one it started from, or "") and
        ``jobs`` (generic, dispatched_at, started_at, finished_at)."""
        with self._read() as conn:
            rows = conn.execute(
                select(UNITS.c.id, UNITS.c.family, UNITS.c.released_at, UNITS.c.finished_at)
                .join(ORDERS, ORDERS.c.id == UNITS.c.order_id)
                .where(
                    UNITS.c.state == "done",
                    UNITS.c.finished_at >= since,
                    ORDERS.c.source != STOCK_SOURCE,
                )
            )
            units = {r.id: {**r._mapping, "jobs": [], "blank": "", "steps": []} for r in rows}
            _attach(conn, units, steps=False)
        return list(units.values())


def _attach(conn: Connection, units: dict[str, dict[str, Any]], steps: bool = True) -> None:
    """Each unit's steps (if asked), jobs and blank, read 500 units at a time."""
    ids = list(units)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        if steps:
            query = select(*_STEP_COLUMNS).where(STEPS.c.unit_id.in_(chunk))
            for r in conn.execute(query.order_by(STEPS.c.unit_id, STEPS.c.seq)):
                units[r.unit_id]["steps"].append(dict(r._mapping))
        jobs = (
            select(
                JOBS.c.unit_id,
                JOBS.c.step_id,
                JOBS.c.state,
                JOBS.c.dispatched_at,
                JOBS.c.started_at,
                JOBS.c.finished_at,
                STEPS.c.generic,
            )
            .join(STEPS, STEPS.c.id == JOBS.c.step_id)
            .where(JOBS.c.unit_id.in_(chunk))
            .order_by(JOBS.c.id)
        )
        for job in conn.execute(jobs):
            units[job.unit_id]["jobs"].append(dict(job._mapping))
        blanks = select(BLANKS.c.unit_id, BLANKS.c.consumed_by).where(
            BLANKS.c.consumed_by.in_(chunk)
        )
        for blank_id, unit_id in conn.execute(blanks):
            units[unit_id]["blank"] = blank_id
