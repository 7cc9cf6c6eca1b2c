"""The outbox table as the publisher and ``mes mqtt status`` see it: the SQL they need.

This belongs in :mod:`mes.store` (a mixin like ``watching.py``); it lives here while the
store is being changed for shared plants, and uses only the store's engine and the
``outbox``, ``event`` and ``alarm`` tables. Every method is blocking: call it in a
worker thread.

Rows are read in id order; ids only grow (see :func:`_forget`). A payload's journal and
alarm ids are looked up here, when a page of rows is read (:meth:`Outbox.read`): the
messages were made before their transaction committed, when those ids did not exist yet
(see :mod:`mes.mqtt.topics`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select, update
from sqlalchemy.exc import OperationalError

from mes.errors import StoreError
from mes.mqtt.drain import Row
from mes.mqtt.topics import Finishing, directives, finish, parse_when, when
from mes.store import Store
from mes.store.tables import ALARMS, EVENTS, OUTBOX


@dataclass(frozen=True, slots=True)
class Counts:
    """How the outbox stands (``mes mqtt status``)."""

    pending: int
    dead: int
    oldest_pending: datetime | None
    oldest_dead: datetime | None


class Outbox:
    """Reads and writes of the outbox (see the module doc)."""

    def __init__(self, store: Store, *, expiry_s: int | None = None) -> None:
        self.store = store
        self.expiry_s = expiry_s or None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            connection = self.store.engine.connect().execution_options(mes_read=True)
            with connection as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.store.url}: {exc.orig}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.store.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.store.url}: {exc.orig}") from exc

    # -- the publisher --------------------------------------------------------------

    def snapshot(self) -> tuple[int, dict[str, int]]:
        """The highest pending id, and per topic its highest pending id."""
        query = (
            select(OUTBOX.c.topic, func.max(OUTBOX.c.id))
            .where(OUTBOX.c.state == "pending")
            .group_by(OUTBOX.c.topic)
        )
        with self._read() as conn:
            backlog = {topic: int(top) for topic, top in conn.execute(query)}
        return max(backlog.values(), default=0), backlog

    def read(self, after: int, upto: int | None = None, limit: int = 500) -> list[Row]:
        """Pending rows with ``after < id <= upto``, in id order, ready to publish."""
        query = select(OUTBOX).where(OUTBOX.c.state == "pending", OUTBOX.c.id > after)
        if upto is not None:
            query = query.where(OUTBOX.c.id <= upto)
        with self._read() as conn:
            stored = conn.execute(query.order_by(OUTBOX.c.id).limit(limit)).all()
            parsed = [_parse(r.payload) for r in stored]
            found = [directives(p) if p is not None else Finishing() for p in parsed]
            events = _journal_ids(conn, [f.journal for f in found if f.journal])
            alarms = _alarm_ids(conn, [f.alarm for f in found if f.alarm])
        rows = []
        for r, payload, how in zip(stored, parsed, found, strict=True):
            body = (
                r.payload.encode("utf-8")
                if payload is None
                else finish(
                    payload,
                    events.get(how.journal) if how.journal else None,
                    alarms.get(how.alarm) if how.alarm else None,
                )
            )
            rows.append(
                Row(
                    id=r.id,
                    topic=r.topic,
                    payload=body,
                    retain=r.retain,
                    qos=r.qos,
                    attempts=r.attempts,
                    expiry_s=self.expiry_s if how.expire else None,
                    correlation=how.correlation,
                )
            )
        return rows

    def delete(self, ids: Sequence[int]) -> None:
        """Forget rows the broker acknowledged."""
        if ids:
            with self._write() as conn:
                _forget(conn, OUTBOX.c.id.in_(list(ids)))

    def failed(self, row_id: int, attempts: int, error: str, *, dead: bool) -> None:
        """Count a failed attempt of a row; ``dead`` sets it aside for good."""
        values: dict[str, Any] = {"attempts": attempts, "error": error[:500]}
        if dead:
            values["state"] = "dead"
        with self._write() as conn:
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(**values))

    # -- operators ------------------------------------------------------------------

    def counts(self) -> Counts:
        query = select(OUTBOX.c.state, func.count(), func.min(OUTBOX.c.created_at)).group_by(
            OUTBOX.c.state
        )
        with self._read() as conn:
            by_state = {state: (int(n), oldest) for state, n, oldest in conn.execute(query)}
        pending, oldest_pending = by_state.get("pending", (0, None))
        dead, oldest_dead = by_state.get("dead", (0, None))
        return Counts(pending, dead, _aware(oldest_pending), _aware(oldest_dead))

    def dead(self, limit: int = 20) -> list[dict[str, Any]]:
        """The rows set aside, oldest first (without their payloads)."""
        columns = [OUTBOX.c[n] for n in ("id", "created_at", "topic", "attempts", "error")]
        query = select(*columns, func.length(OUTBOX.c.payload).label("bytes")).where(
            OUTBOX.c.state == "dead"
        )
        with self._read() as conn:
            rows = conn.execute(query.order_by(OUTBOX.c.id).limit(limit))
            return [dict(r._mapping) for r in rows]

    def requeue_dead(self) -> int:
        """Put every dead row back in line (after the cause was fixed); returns how many."""
        with self._write() as conn:
            result = conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.state == "dead")
                .values(state="pending", attempts=0, error="")
            )
        return int(result.rowcount or 0)

    def purge_dead(self) -> int:
        """Delete every dead row for good; returns how many."""
        with self._write() as conn:
            return _forget(conn, OUTBOX.c.state == "dead")


def _forget(conn: Connection, which: ColumnElement[bool]) -> int:
    """Delete the rows ``which`` selects, but keep the table's highest id as a ``sent``
    tombstone: SQLite gives a new row the highest id plus one (the table is not
    AUTOINCREMENT), so deleting the newest rows would hand their ids out again, below
    what the publisher has read. Tombstones below the top go as soon as there is a newer
    row. Returns how many rows were forgotten."""
    top = conn.execute(select(func.max(OUTBOX.c.id))).scalar()
    if top is None:
        return 0
    forgotten = conn.execute(delete(OUTBOX).where(which, OUTBOX.c.id < top)).rowcount or 0
    kept = conn.execute(
        update(OUTBOX).where(which, OUTBOX.c.id == top).values(state="sent", payload="")
    ).rowcount
    conn.execute(delete(OUTBOX).where(OUTBOX.c.state == "sent", OUTBOX.c.id < top))
    return int(forgotten) + int(kept or 0)


def _parse(payload: str) -> dict[str, Any] | None:
    """A stored payload as a JSON object, or None (published as it is)."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _journal_ids(
    conn: Connection, keys: Iterable[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], int]:
    """Journal ids by (kind, subject, transition, at); the first when several match."""
    subjects: dict[str, set[str]] = {}
    for kind, subject, _, _ in keys:
        subjects.setdefault(kind, set()).add(subject)
    found: dict[tuple[str, str, str, str], int] = {}
    for kind, names in subjects.items():
        names_list = sorted(names)
        for start in range(0, len(names_list), 500):
            query = (
                select(EVENTS.c.id, EVENTS.c.subject, EVENTS.c.transition, EVENTS.c.at)
                .where(EVENTS.c.kind == kind, EVENTS.c.subject.in_(names_list[start : start + 500]))
                .order_by(EVENTS.c.id)
            )
            for r in conn.execute(query):
                found.setdefault((kind, r.subject, r.transition, when(r.at) or ""), r.id)
    return found


def _alarm_ids(
    conn: Connection, keys: Sequence[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], int]:
    """Alarm ids by (raised_at, cell, subject, code); the first when several match."""
    if not keys:
        return {}
    times = [parse_when(k[0]) for k in keys]
    query = (
        select(ALARMS.c.id, ALARMS.c.raised_at, ALARMS.c.cell, ALARMS.c.subject, ALARMS.c.code)
        .where(ALARMS.c.raised_at >= min(times), ALARMS.c.raised_at <= max(times))
        .order_by(ALARMS.c.id)
    )
    found: dict[tuple[str, str, str, str], int] = {}
    for r in conn.execute(query):
        found.setdefault((when(r.raised_at) or "", r.cell, r.subject, r.code), r.id)
    return found


def _aware(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC one (the store's column type does it; an aggregate
    on a driver that drops the type may not)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
