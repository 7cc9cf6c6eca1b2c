"""The outbox as its publisher and ``mes mqtt status`` read and change it. Mixed into
:class:`~mes.store.Store`; the rows themselves are written with the changes they tell
(:func:`mes.store.rows._insert_messages`).

Ids only grow (the table is ``AUTOINCREMENT`` on SQLite, a sequence on PostgreSQL), so a
publisher that read up to an id never misses a row committed later. Journal and alarm
ids are looked up for the publisher when it reads a page: messages are made before their
transaction commits, when those ids do not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from mes.store.tables import ALARMS, EVENTS, OUTBOX

#: A journal entry as a message names it before it has an id: (kind, subject,
#: transition, time as ISO text); an alarm: (raised_at as ISO text, cell, subject, code).
Key = tuple[str, str, str, str]
#: How a message writes a time (ISO text; None for none).
Stamp = Callable[[datetime], str | None]


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How the outbox stands (``mes mqtt status``)."""

    pending: int
    dead: int
    oldest_pending: datetime | None
    oldest_dead: datetime | None


class OutboxStore:
    """The outbox's reads and writes (see the module docstring)."""

    def _read(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def outbox_backlog(self) -> dict[str, int]:
        """Per topic, the highest id pending."""
        query = (
            select(OUTBOX.c.topic, func.max(OUTBOX.c.id))
            .where(OUTBOX.c.state == "pending")
            .group_by(OUTBOX.c.topic)
        )
        with self._read() as conn:
            return {topic: int(top) for topic, top in conn.execute(query)}

    def outbox_page(self, after: int, upto: int | None = None, limit: int = 500) -> list[Any]:
        """Pending rows with ``after < id <= upto``, in id order."""
        query = select(OUTBOX).where(OUTBOX.c.state == "pending", OUTBOX.c.id > after)
        if upto is not None:
            query = query.where(OUTBOX.c.id <= upto)
        with self._read() as conn:
            return list(conn.execute(query.order_by(OUTBOX.c.id).limit(limit)).all())

    def outbox_delete(self, ids: Sequence[int]) -> None:
        """Forget rows the broker acknowledged."""
        if ids:
            with self._write() as conn:
                conn.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(list(ids))))

    def outbox_failed(self, row_id: int, attempts: int, error: str, *, dead: bool) -> None:
        """Count a failed attempt of a row; ``dead`` sets it aside for good."""
        values: dict[str, Any] = {"attempts": attempts, "error": error[:500]}
        if dead:
            values["state"] = "dead"
        with self._write() as conn:
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(**values))

    def outbox_counts(self) -> OutboxCounts:
        query = select(OUTBOX.c.state, func.count(), func.min(OUTBOX.c.created_at)).group_by(
            OUTBOX.c.state
        )
        with self._read() as conn:
            by_state = {state: (int(n), oldest) for state, n, oldest in conn.execute(query)}
        pending, oldest_pending = by_state.get("pending", (0, None))
        dead, oldest_dead = by_state.get("dead", (0, None))
        return OutboxCounts(pending, dead, _aware(oldest_pending), _aware(oldest_dead))

    def outbox_dead(self, limit: int = 20) -> list[dict[str, Any]]:
        """The rows set aside, oldest first (without their payloads)."""
        columns = [OUTBOX.c[n] for n in ("id", "created_at", "topic", "attempts", "error")]
        query = select(*columns, func.length(OUTBOX.c.payload).label("bytes")).where(
            OUTBOX.c.state == "dead"
        )
        with self._read() as conn:
            rows = conn.execute(query.order_by(OUTBOX.c.id).limit(limit))
            return [dict(r._mapping) for r in rows]

    def outbox_requeue(self) -> int:
        """Put every dead row back in line (after the cause was fixed); returns how many."""
        with self._write() as conn:
            result = conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.state == "dead")
                .values(state="pending", attempts=0, error="")
            )
        return int(result.rowcount or 0)

    def outbox_purge(self) -> int:
        """Delete every dead row for good; returns how many."""
        with self._write() as conn:
            result = conn.execute(delete(OUTBOX).where(OUTBOX.c.state == "dead"))
        return int(result.rowcount or 0)

    def journal_ids(self, keys: Iterable[Key], when: Stamp) -> dict[Key, int]:
        """Journal ids by (kind, subject, transition, ``when(at)``); the first when several
        match."""
        subjects: dict[str, set[str]] = {}
        for kind, subject, _, _ in keys:
            subjects.setdefault(kind, set()).add(subject)
        found: dict[Key, int] = {}
        with self._read() as conn:
            for kind, names in subjects.items():
                ordered = sorted(names)
                for start in range(0, len(ordered), 500):
                    query = (
                        select(EVENTS.c.id, EVENTS.c.subject, EVENTS.c.transition, EVENTS.c.at)
                        .where(
                            EVENTS.c.kind == kind,
                            EVENTS.c.subject.in_(ordered[start : start + 500]),
                        )
                        .order_by(EVENTS.c.id)
                    )
                    for r in conn.execute(query):
                        found.setdefault((kind, r.subject, r.transition, when(r.at) or ""), r.id)
        return found

    def alarm_ids(
        self, keys: Sequence[Key], times: Sequence[datetime], when: Any
    ) -> dict[Key, int]:
        """Alarm ids by (``when(raised_at)``, cell, subject, code), among alarms raised
        between the earliest and the latest of ``times``; the first when several match."""
        if not keys:
            return {}
        query = (
            select(ALARMS.c.id, ALARMS.c.raised_at, ALARMS.c.cell, ALARMS.c.subject, ALARMS.c.code)
            .where(ALARMS.c.raised_at >= min(times), ALARMS.c.raised_at <= max(times))
            .order_by(ALARMS.c.id)
        )
        found: dict[Key, int] = {}
        with self._read() as conn:
            for r in conn.execute(query):
                found.setdefault((when(r.raised_at) or "", r.cell, r.subject, r.code), r.id)
        return found


def _aware(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC one (an aggregate on a driver that drops the
    column's type may come back naive)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
