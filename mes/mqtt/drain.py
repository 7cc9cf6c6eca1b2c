"""Which outbox messages to publish next. Pure: no I/O; time is passed in.

Theory of operation: one :class:`Drain` lives for one broker session. It starts from a
snapshot of the outbox (:meth:`Drain.__init__`): the highest id pending then (the
*watermark*) and, per topic, the highest id pending then. Every row at or below the
watermark is *backlog*: it queued while no one published (broker away, controller
down). Rows above it are *live*.

- **Order per topic.** Rows of a topic leave strictly in id order, one at a time: the
  next is sent only after the broker acknowledged the previous one and the shell
  deleted it from the outbox (:meth:`Drain.done`). So after a lost connection or a crash
  a subscriber sees at most the last message of a topic again, never an older one after
  a newer one.
- **Live first.** A topic with backlog (one that had rows pending at the snapshot) sends
  its live rows only after its backlog. A topic without backlog sends at once,
  unthrottled, in id order across topics; the whole window is open to it.
- **Backlog at a bounded rate.** Backlog rows take a token each from a bucket refilled
  at ``rate`` per second (a second's worth at most), and at most half the window, so
  draining an hour's backlog neither floods the broker nor holds up live state.
- **A message that keeps failing** (refused by the broker, too large, an invalid topic)
  waits a doubling delay before it is tried again, the rest of its topic behind it;
  after ``max_attempts`` it is set aside (dead) and its topic goes on. The shell never
  reports a lost connection here: it ends the session, and the next one starts from
  the outbox again.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Row:
    """One outbox message, as the broker is to get it."""

    id: int
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1
    attempts: int = 0
    expiry_s: int | None = None
    """MQTT 5 message expiry (a finished unit's retained state)."""
    correlation: bytes | None = None
    """MQTT 5 correlation data (an answer to a request that gave one)."""


class Verdict(StrEnum):
    """What becomes of a refused message."""

    RETRY = "retry"
    DEAD = "dead"


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def ready_at(self, now: float) -> float:
        """When the next token is there."""
        self._refill(now)
        return now if self.tokens >= 1.0 else now + (1.0 - self.tokens) / self.rate


@dataclass(slots=True)
class _Topic:
    rows: deque[Row] = field(default_factory=deque)
    busy: Row | None = None
    """Sent and not yet done (acknowledged and deleted) or refused."""
    waiting: bool = False
    """Its head was refused and waits for its retry time."""


class Drain:
    """The publishing order of one broker session (see the module doc)."""

    def __init__(
        self,
        *,
        watermark: int,
        backlog: Mapping[str, int],
        now: float,
        rate: float = 100.0,
        window: int = 64,
        max_attempts: int = 5,
        retry_first_s: float = 1.0,
        retry_cap_s: float = 60.0,
    ) -> None:
        self.watermark = watermark
        self.window = window
        self.backlog_window = max(1, window // 2)
        self.max_attempts = max_attempts
        self.retry_first_s = retry_first_s
        self.retry_cap_s = retry_cap_s
        self._bucket = TokenBucket(rate, max(1.0, rate), now)
        self._backlog = dict(backlog)
        self._topics: dict[str, _Topic] = {}
        self._where: dict[int, str] = {}
        self._live: list[tuple[int, str]] = []
        self._old: list[tuple[int, str]] = []
        self._retries: list[tuple[float, str]] = []
        self.in_flight = 0
        self.in_flight_old = 0
        self.queued_old = 0
        """Backlog rows known and not yet sent (the shell reads more below a low mark)."""
        self.sent_live = 0
        self.sent_old = 0

    # -- rows in ------------------------------------------------------------------------

    def knows(self, row_id: int) -> bool:
        return row_id in self._where

    def offer(self, rows: Iterable[Row]) -> int:
        """Take rows read from the outbox (any order; ids already known are ignored).

        Returns:
            How many were new.
        """
        new = 0
        for row in rows:
            if row.id in self._where:
                continue
            new += 1
            self._where[row.id] = row.topic
            topic = self._topics.setdefault(row.topic, _Topic())
            if not topic.rows or row.id > topic.rows[-1].id:
                topic.rows.append(row)
            else:  # a row committed late (PostgreSQL): put it in its place
                ids = [r.id for r in topic.rows]
                topic.rows.insert(bisect.bisect(ids, row.id), row)
            if row.id <= self.watermark:
                self.queued_old += 1
            self._schedule(row.topic)
        return new

    def backlog_read(self) -> None:
        """Every backlog row has been offered: a topic still waiting for one (it went
        away meanwhile) waits no longer."""
        for name in list(self._backlog):
            topic = self._topics.get(name)
            if topic is None or not any(
                r.id <= self.watermark for r in (*topic.rows, *filter(None, [topic.busy]))
            ):
                del self._backlog[name]
                self._schedule(name)

    # -- rows out -----------------------------------------------------------------------

    def due(self, now: float) -> list[Row]:
        """The rows to publish now; each is busy until :meth:`done` or :meth:`refused`."""
        while self._retries and self._retries[0][0] <= now:
            _, name = heapq.heappop(self._retries)
            if (topic := self._topics.get(name)) is not None:
                topic.waiting = False
                self._schedule(name)
        out: list[Row] = []
        while self._live and self.in_flight < self.window:
            head_id, name = heapq.heappop(self._live)
            if self._is_head(name, head_id):
                out.append(self._send(name, old=False))
        while (
            self._old
            and self.in_flight < self.window
            and (self.in_flight_old < self.backlog_window)
        ):
            head_id, name = self._old[0]
            if not self._is_head(name, head_id):
                heapq.heappop(self._old)
                continue
            if not self._bucket.take(now):
                break
            heapq.heappop(self._old)
            out.append(self._send(name, old=True))
        return out

    def wake_at(self, now: float) -> float | None:
        """When :meth:`due` may have something new without anything else happening."""
        times = [self._retries[0][0]] if self._retries else []
        if self._old and self.in_flight_old < self.backlog_window:
            times.append(self._bucket.ready_at(now))
        return min(times) if times else None

    def done(self, row_ids: Iterable[int]) -> None:
        """The broker acknowledged these rows and they are gone from the outbox."""
        for row_id in row_ids:
            self._finish(row_id)

    def refused(self, row_id: int, now: float) -> Verdict:
        """The message cannot be published (the broker refused it, or it cannot be sent
        at all). Its topic waits; after ``max_attempts`` it is set aside (dead)."""
        name = self._where[row_id]
        topic = self._topics[name]
        row = topic.busy
        assert row is not None and row.id == row_id, (row, row_id)
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            self._finish(row_id)
            return Verdict.DEAD
        self._unbusy(row)
        topic.busy = None
        topic.rows.appendleft(replace(row, attempts=attempts))
        if row.id <= self.watermark:
            self.queued_old += 1
        delay = min(self.retry_cap_s, self.retry_first_s * 2 ** (attempts - 1))
        topic.waiting = True
        heapq.heappush(self._retries, (now + delay, name))
        return Verdict.RETRY

    def attempts(self, row_id: int) -> int:
        """Attempts a busy row had before this one."""
        topic = self._topics[self._where[row_id]]
        assert topic.busy is not None and topic.busy.id == row_id
        return topic.busy.attempts

    # -- state --------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return not self._where

    @property
    def backlog_topics(self) -> int:
        """Topics still draining backlog."""
        return len(self._backlog)

    def _schedule(self, name: str) -> None:
        topic = self._topics.get(name)
        if topic is None or topic.busy is not None or topic.waiting or not topic.rows:
            return
        head = topic.rows[0]
        if head.id <= self.watermark:
            heapq.heappush(self._old, (head.id, name))
        elif name not in self._backlog:
            heapq.heappush(self._live, (head.id, name))
        # else: a live row behind backlog not read yet; scheduled when that is done

    def _is_head(self, name: str, head_id: int) -> bool:
        topic = self._topics.get(name)
        return (
            topic is not None
            and topic.busy is None
            and not topic.waiting
            and bool(topic.rows)
            and topic.rows[0].id == head_id
        )

    def _send(self, name: str, *, old: bool) -> Row:
        topic = self._topics[name]
        row = topic.rows.popleft()
        topic.busy = row
        self.in_flight += 1
        if old:
            self.in_flight_old += 1
            self.queued_old -= 1
            self.sent_old += 1
        else:
            self.sent_live += 1
        return row

    def _unbusy(self, row: Row) -> None:
        self.in_flight -= 1
        if row.id <= self.watermark:
            self.in_flight_old -= 1

    def _finish(self, row_id: int) -> None:
        name = self._where.pop(row_id, None)
        if name is None:
            return
        topic = self._topics[name]
        row = topic.busy
        assert row is not None and row.id == row_id, (row, row_id)
        self._unbusy(row)
        topic.busy = None
        if name in self._backlog and row_id >= self._backlog[name]:
            del self._backlog[name]
        if topic.rows:
            self._schedule(name)
        else:
            del self._topics[name]
