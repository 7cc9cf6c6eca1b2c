"""Rows to domain objects and back, and applying a batch of changes in one transaction.

Split from :mod:`mes.store.repository` (the Store's queries); both are the store package's
own: nothing outside ``mes.store`` imports this module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    insert,
    update,
)

from mes.domain import Step, StepState, Unit, UnitState
from mes.store.tables import (
    ALARMS,
    CELLS,
    EVENTS,
    JOBS,
    OUTBOX,
    PROGRAMS,
    REQUESTS,
    STEPS,
    UNITS,
)

DEFAULT_DB = "sqlite:///mes.db"


if TYPE_CHECKING:
    from mes.store.repository import Changes, Message


_STEP_UPDATE = update(STEPS).where(STEPS.c.id == bindparam("k"))
_UNIT_UPDATE = update(UNITS).where(UNITS.c.id == bindparam("k"))
_CELL_UPDATE = update(CELLS).where(CELLS.c.name == bindparam("k"))
_REQUEST_UPDATE = update(REQUESTS).where(REQUESTS.c.id == bindparam("k"))
_JOB_UPDATE = update(JOBS).where(JOBS.c.id == bindparam("k"))
_ALARM_CLEAR = (
    update(ALARMS)
    .where(
        ALARMS.c.active.is_(True),
        ALARMS.c.cell == bindparam("c"),
        ALARMS.c.subject == bindparam("s"),
    )
    .values(active=False, cleared_at=bindparam("at"))
)


def _apply(conn: Connection, changes: Changes) -> None:
    from mes.store.sharing import check_custody, check_fences, notify

    if changes.fences:
        check_fences(conn, changes.fences)
    if changes.writer:
        touched = changes.units.keys() | {s.unit_id for s in changes.steps.values()}
        check_custody(conn, changes.writer, touched)
    new_jobs = [j["new"] for j in changes.jobs.values() if "new" in j]
    if new_jobs:
        conn.execute(insert(JOBS), new_jobs)
    if changes.jobs:
        conn.execute(
            _JOB_UPDATE,
            [{k: v for k, v in j.items() if k != "new"} for j in changes.jobs.values()],
        )
    if changes.steps:
        conn.execute(_STEP_UPDATE, [{"k": s.id, **_step_state(s)} for s in changes.steps.values()])
    if changes.units:
        conn.execute(
            _UNIT_UPDATE,
            [
                {"k": u.id, "state": u.state.value, "finished_at": u.finished_at}
                for u in changes.units.values()
            ],
        )
    if changes.cells:
        at = max((e.at for e in changes.events), default=None)
        conn.execute(
            _CELL_UPDATE,
            [
                {
                    "k": c.name,
                    "state": c.state.value,
                    "job_id": c.job_id,
                    "hold": c.hold,
                    "waiting_for": c.waiting_for,
                    **({"updated_at": at} if at else {}),
                }
                for c in changes.cells.values()
            ],
        )
    if changes.events:
        conn.execute(insert(EVENTS), [_row(EVENTS, e) for e in changes.events])
    if changes.requests:
        conn.execute(_REQUEST_UPDATE, list(changes.requests.values()))
    _apply_alarms(conn, changes.alarm_ops)
    if changes.progress:
        conn.execute(
            _CELL_UPDATE, [{"k": name, "progress": p} for name, p in changes.progress.items()]
        )
    if changes.readings:
        conn.execute(
            _CELL_UPDATE, [{"k": name, "readings": r} for name, r in changes.readings.items()]
        )
    for alarm_id, (who, at) in changes.acks.items():
        conn.execute(
            update(ALARMS).where(ALARMS.c.id == alarm_id).values(acked_at=at, acked_by=who)
        )
    if changes.messages:
        _insert_messages(conn, changes.messages)
    if changes.custody:
        conn.execute(_UNIT_UPDATE, [{"k": u, "custodian": c} for u, c in changes.custody.items()])
        if "" in changes.custody.values():
            notify(conn)  # units let go: others may take them


def _insert_programs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert programs, skipping any another transaction inserted meanwhile: programs
    are content-addressed (same id, same body), so two releases of one program at the
    same time both succeed (PostgreSQL would otherwise refuse the second's key)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(PROGRAMS).on_conflict_do_nothing(index_elements=["id"]), rows)
    else:  # SQLite: one writer at a time, the caller's check suffices
        conn.execute(insert(PROGRAMS), rows)


def _insert_messages(conn: Connection, messages: Iterable[Message]) -> None:
    """Queue messages in the outbox, in order (ids grow with it)."""
    conn.execute(
        insert(OUTBOX),
        [
            {
                "created_at": m.at,
                "topic": m.topic,
                "payload": m.payload,
                "retain": m.retain,
                "qos": m.qos,
                "state": "pending",
                "attempts": 0,
                "error": "",
            }
            for m in messages
        ],
    )


def _apply_alarms(conn: Connection, ops: list[tuple[str, dict[str, Any]]]) -> None:
    """Raise and clear alarms in order, one statement per run of alike operations."""

    def kind(op: tuple[str, dict[str, Any]]) -> str:
        name, args = op
        return name if name == "raise" or (args["c"] and args["s"]) else f"loose:{id(op)}"

    for run_kind, run in itertools.groupby(ops, key=kind):
        rows = [args for _, args in run]
        if run_kind == "raise":
            conn.execute(insert(ALARMS), rows)
        elif run_kind == "clear":
            conn.execute(_ALARM_CLEAR, rows)
        else:  # a clear by cell only or subject only
            (args,) = rows
            query = update(ALARMS).where(ALARMS.c.active.is_(True))
            if args["c"]:
                query = query.where(ALARMS.c.cell == args["c"])
            if args["s"]:
                query = query.where(ALARMS.c.subject == args["s"])
            conn.execute(query.values(active=False, cleared_at=args["at"]))


def _row(table: Table, item: object, only: Iterable[str] | None = None) -> dict[str, Any]:
    """The row for ``item``: its attributes named like ``table``'s columns, enums as values."""
    names = only if only is not None else (c.name for c in table.c)
    row = {}
    for name in names:
        if hasattr(item, name):
            value = getattr(item, name)
            row[name] = value.value if isinstance(value, StrEnum) else value
    return row


_STEP_STATE = ("state", "cell", "job_id", "attempts", "started_at", "finished_at", "result")


def _job_row(step: Step, at: datetime, program_id: str | None) -> dict[str, Any]:
    return {
        **_row(JOBS, step),
        "id": step.job_id,
        "step_id": step.id,
        "cell": step.cell or "",
        "program_id": program_id or step.program_id,
        "dispatched_at": at,
    }


def _step_state(step: Step) -> dict[str, Any]:
    return _row(STEPS, step, _STEP_STATE)


def _unit(r: Any) -> Unit:
    return Unit(
        id=r.id,
        order_id=r.order_id,
        seq=r.seq,
        family=r.family,
        options=dict(r.options),
        released_at=r.released_at,
        state=UnitState(r.state),
        finished_at=r.finished_at,
        variant=r.variant,
    )


def _step(r: Any) -> Step:
    return Step(
        id=r.id,
        unit_id=r.unit_id,
        seq=r.seq,
        name=r.name,
        capability=r.capability,
        program_id=r.program_id,
        expected_s=r.expected_s,
        after=tuple(r.after or ()),
        attributes=dict(r.attributes or {}),
        cells=tuple(r.cells or ()),
        quality=dict(r.quality or {}),
        stage=r.stage,
        generic=bool(r.generic),
        state=StepState(r.state),
        cell=r.cell,
        job_id=r.job_id,
        attempts=r.attempts,
        started_at=r.started_at,
        finished_at=r.finished_at,
        result=dict(r.result or {}),
    )
