"""Each order as its customer sees it, retained on ``<enterprise>/<site>/orders/<order>/status``
for a shop front: the stage of each unit in the family's words, an estimated completion,
and lead times (what ``mes order status`` prints, :mod:`mes.service.tracking`).

Theory of operation: an order's status spans units that several controllers may hold
and releases made by other processes, so no one controller's batch of changes can tell
it (the messenger sees only its own). The :class:`OrderTracker` follows the journal
instead: once per ``poll_s`` it reads which customer orders had unit or step entries,
reads those orders whole and writes the status of each one whose stage changed (or
whose estimate moved by more than a tenth of what remains, and at least a minute) to
the outbox, to go out like any message. Estimates come from a forecast of the open work
made at most every ``forecast_s``. On a shared plant only the leader tracks, so one
writer orders each topic; when it starts (or takes over) it tells every open order
once. A finished order's retained status expires like a finished unit's (MQTT 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from mes.errors import StoreError
from mes.mqtt.topics import DIRECTIVES, Namespace, dumps
from mes.service.tracking import CellLike, estimates, order_status
from mes.store import Changes, Message, Store

log = logging.getLogger(__name__)

_FINAL = ("ready",)


def order_payload(status: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The retained payload of an order's status (``order_status``'s, with ``at``)."""
    payload: dict[str, Any] = {**status, "at": at}
    if status["status"] in _FINAL:
        payload[DIRECTIVES] = {"expire": True}
    return payload


@contextlib.asynccontextmanager
async def tracking(tracker: OrderTracker) -> AsyncIterator[OrderTracker]:
    """Run ``tracker`` for the duration of the block."""
    task = asyncio.create_task(tracker.run(), name="order-tracking")
    try:
        yield tracker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class OrderTracker:
    """Writes each customer order's status to the outbox when it changes."""

    def __init__(
        self,
        store: Store,
        ns: Namespace,
        cells: Sequence[CellLike],
        rule: str,
        *,
        clock: Callable[[], datetime],
        leader: Callable[[], bool] = lambda: True,
        wake: Callable[[], None] = lambda: None,
        speed: float = 1.0,
        poll_s: float = 1.0,
        forecast_s: float = 10.0,
    ) -> None:
        self.store = store
        self.ns = ns
        self.cells = cells
        self.rule = rule
        self.clock = clock
        self.leader = leader
        self.wake = wake
        self.speed = speed
        self.poll_s = poll_s
        self.forecast_s = forecast_s
        self._cursor: int | None = None
        self._etas: dict[str, datetime] = {}
        self._etas_at: datetime | None = None
        #: Order -> (what its customer reads, its estimate) as last told.
        self._told: dict[str, tuple[tuple[Any, ...], datetime | None]] = {}

    async def run(self) -> None:
        """Until cancelled; a store that fails is retried at the next poll."""
        while True:
            try:
                if self.leader():
                    await asyncio.to_thread(self.track)
                else:
                    self._cursor = None  # a leader again later tells every order once
            except StoreError as exc:
                log.warning("order tracking: %s", exc)
            await asyncio.sleep(self.poll_s)

    def track(self) -> int:
        """One round: tell what changed. Returns how many statuses were written."""
        now = self.clock()
        if self._cursor is None:
            self._cursor = self.store.last_event_id()
            orders = self.store.open_orders()
        else:
            orders, self._cursor = self.store.touched_orders(self._cursor)
        drift = self._etas_at is None or (now - self._etas_at).total_seconds() >= self.forecast_s
        if drift:
            self._etas = estimates(self.store.open_work(), self.cells, self.rule, now, self.speed)
            self._etas_at = now
            # Estimates moved for everyone: look again at every order told and still open.
            open_now = {unit.rsplit(".", 1)[0] for unit in self._etas}
            orders = sorted(set(orders) | (self._told.keys() & open_now))
        messages = []
        for order_id in orders:
            record = self.store.order_record(order_id)
            if record is None:
                continue
            status = order_status(record, self._etas, now, self.speed)
            if self._changed(order_id, status, now):
                payload = order_payload(status, now)
                topic = self.ns.order(order_id, "status")
                messages.append(Message(topic, dumps(payload), now, retain=True))
        if messages:
            self.store.apply(Changes(messages=messages))
            self.wake()
        return len(messages)

    def _changed(self, order_id: str, status: Mapping[str, Any], now: datetime) -> bool:
        words = tuple((u["unit"], u["status"], u["stage"]) for u in status["units"])
        eta = status["eta"]
        told = self._told.get(order_id)
        self._told[order_id] = (words, eta)
        if status["status"] in _FINAL:
            self._told.pop(order_id)
        if told is None or told[0] != words:
            return True
        before = told[1]
        if before is None or eta is None:
            return bool(before != eta)
        remaining = max(0.0, (eta - now).total_seconds())
        moved = abs((eta - before).total_seconds())
        if moved >= max(60.0 / self.speed, 0.1 * remaining):
            return True
        self._told[order_id] = told  # keep the estimate the customer has
        return False
