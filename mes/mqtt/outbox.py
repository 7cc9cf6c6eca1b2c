"""The outbox as the publisher and ``mes mqtt status`` see it: pending rows made ready
to publish, with the journal and alarm ids their payloads name filled in (the messages
were made before their transaction committed, when those ids did not exist yet; see
:mod:`mes.mqtt.topics`). The SQL is the store's (:mod:`mes.store.outbox`). Every method
is blocking: call it in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mes.mqtt.drain import Row
from mes.mqtt.topics import Finishing, directives, finish, parse_when, when
from mes.store import Store
from mes.store.outbox import OutboxCounts as Counts


class Outbox:
    """Reads and writes of the outbox (see the module doc)."""

    def __init__(self, store: Store, *, expiry_s: int | None = None) -> None:
        self.store = store
        self.expiry_s = expiry_s or None

    # -- the publisher --------------------------------------------------------------

    def snapshot(self) -> tuple[int, dict[str, int]]:
        """The highest pending id, and per topic its highest pending id."""
        backlog = self.store.outbox_backlog()
        return max(backlog.values(), default=0), backlog

    def read(self, after: int, upto: int | None = None, limit: int = 500) -> list[Row]:
        """Pending rows with ``after < id <= upto``, in id order, ready to publish."""
        stored = self.store.outbox_page(after, upto, limit)
        parsed = [_parse(r.payload) for r in stored]
        found = [directives(p) if p is not None else Finishing() for p in parsed]
        events = self.store.journal_ids([f.journal for f in found if f.journal], when)
        keys = [f.alarm for f in found if f.alarm]
        alarms = self.store.alarm_ids(keys, [parse_when(k[0]) for k in keys], when)
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
        self.store.outbox_delete(ids)

    def failed(self, row_id: int, attempts: int, error: str, *, dead: bool) -> None:
        """Count a failed attempt of a row; ``dead`` sets it aside for good."""
        self.store.outbox_failed(row_id, attempts, error, dead=dead)

    # -- operators ------------------------------------------------------------------

    def counts(self) -> Counts:
        return self.store.outbox_counts()

    def dead(self, limit: int = 20) -> list[dict[str, Any]]:
        """The rows set aside, oldest first (without their payloads)."""
        return self.store.outbox_dead(limit)

    def requeue_dead(self) -> int:
        """Put every dead row back in line (after the cause was fixed); returns how many."""
        return self.store.outbox_requeue()

    def purge_dead(self) -> int:
        """Delete every dead row for good; returns how many."""
        return self.store.outbox_purge()


def _parse(payload: str) -> dict[str, Any] | None:
    """A stored payload as a JSON object, or None (published as it is)."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
