"""The publisher: drains the outbox to the broker, one controller at a time.

Theory of operation: the publisher waits until it holds the plant's publishing role
(:mod:`mes.mqtt.role`; always on SQLite), then connects with a retained last will
(``<root>/mes/status``: offline) and says it is online. For one broker session it runs a
:class:`~mes.mqtt.drain.Drain` over the outbox: it reads new rows as they commit (woken
by the recorder, else every ``poll_s``), pages through the backlog, publishes what the
drain says is due, and deletes a row only once the broker acknowledged it; the drain
then lets that topic's next row go. A row the broker refuses (or that cannot be sent)
has its attempts counted in the outbox; after ``max_attempts`` it is set aside (dead),
counted, and an alarm is raised once. A lost connection ends the session without
counting anything against a message: the next session starts from the outbox again,
after a capped, jittered backoff. Losing the role ends it too. Stopping says offline and
disconnects cleanly; a killed process leaves it to the will.

The outbox is read in worker threads; the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from mes.errors import MesError, StoreError
from mes.mqtt.drain import Drain, Row, Verdict
from mes.mqtt.link import BrokerRefused, BrokerUnavailable, Link, LinkSettings, MessageRefused, Will
from mes.mqtt.outbox import Outbox
from mes.mqtt.topics import Namespace, alarm_raised, dumps, status_payload, when
from mes.service.supervisor import Backoff
from mes.store import Changes, Message, Store
from mes.store.role import Role

log = logging.getLogger(__name__)

#: Code of the alarm raised when messages are set aside.
DEAD_ALARM = "mqtt-dead"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PublisherSettings:
    link: LinkSettings
    ns: Namespace
    backlog_rate: float = 100.0
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    expiry_s: int | None = None
    poll_s: float = 0.5
    """How often to look for rows committed by other processes (a local commit wakes
    the publisher at once)."""
    rescan_s: float = 5.0
    """How often to look again for rows committed late (PostgreSQL ids commit out of
    order across controllers)."""
    page: int = 500
    role_check_s: float = 1.0
    """How often the publisher checks it still holds the role."""
    standby_s: float = 2.0
    """How often a controller that does not publish tries to take the role over."""


class RoleLost(MesError):
    """Another controller may publish now: stop publishing."""


class Publisher:
    """Publishes the outbox (see the module doc). Run :meth:`run` as a task."""

    def __init__(
        self,
        store: Store,
        settings: PublisherSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        on_session: Callable[[Link], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.outbox = Outbox(store, expiry_s=settings.expiry_s)
        self.role = Role(store, "mqtt-publisher")
        self.identity = f"{socket.gethostname()}/{os.getpid()}"
        #: Awaited with each new link once it is up (order intake subscribes there).
        self.on_session = on_session
        self.connected = asyncio.Event()
        #: Set while connected with nothing left to publish.
        self.idle = asyncio.Event()
        self.dead = 0
        """Messages set aside by this process."""
        self._wake = asyncio.Event()
        self._fresh = True
        self._stopping = False

    def wake(self, *_: object) -> None:
        """New rows were committed (a recorder subscriber): look now."""
        self._fresh = True
        self.idle.clear()
        self._wake.set()

    async def flush(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until what is committed now has been published.

        Returns:
            Whether it was; False also when not connected.
        """
        if not self.connected.is_set():
            return False
        self.wake()
        try:
            async with asyncio.timeout(timeout_s):
                await self.idle.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Publish until cancelled."""
        rng = random.Random()
        failures = 0
        reported: str | None = None
        try:
            while True:
                try:
                    if not await asyncio.to_thread(self.role.try_take):
                        if reported != "standby":
                            log.info("MQTT: another controller publishes; standing by")
                            reported = "standby"
                        await asyncio.sleep(self.settings.standby_s)
                        continue
                    await self._session()
                    failures, reported = 0, None
                except BrokerUnavailable as exc:
                    # Said once, then quietly until it comes back.
                    level = logging.ERROR if isinstance(exc, BrokerRefused) else logging.WARNING
                    if reported != str(exc):
                        log.log(level, "MQTT: %s; retrying with backoff", exc)
                        reported = str(exc)
                except (RoleLost, StoreError) as exc:
                    log.warning("MQTT: stopped publishing: %s", exc)
                    await asyncio.to_thread(self.role.give_up)
                except Exception:  # a bug: say so loudly, start over from the outbox
                    log.exception("MQTT: the publisher failed; starting over")
                    await asyncio.to_thread(self.role.give_up)
                delays = self.settings.backoff.delays(rng)
                await asyncio.sleep(delays[min(failures, len(delays) - 1)])
                failures += 1
        finally:
            self._stopping = True
            await asyncio.to_thread(self.role.give_up)

    async def _session(self) -> None:
        s = self.settings
        since = self.clock()
        will = Will(
            s.ns.status,
            status_payload(
                "offline",
                since,
                reason="connection lost",
                controller=self.identity,
                online_since=when(since),
            ),
        )
        link = Link(replace(s.link, will=will))
        await link.connect()
        online = status_payload("online", since, controller=self.identity, client=s.link.client_id)
        stopped = status_payload("offline", since, reason="stopped", controller=self.identity)
        try:
            await link.publish(s.ns.status, online.encode(), retain=True)
            log.info("MQTT: publishing to %s:%d as %s", s.link.host, s.link.port, s.ns.root)
            self.connected.set()
            if self.on_session is not None:
                await self.on_session(link)
            await self._pump(link)
        finally:
            self.connected.clear()
            self.idle.clear()
            await link.aclose(last=(s.ns.status, stopped) if not link.closed.done() else None)

    async def _pump(self, link: Link) -> None:
        """Drain the outbox over ``link`` until it is lost (or the role is)."""
        s = self.settings
        watermark, backlog = await asyncio.to_thread(self.outbox.snapshot)
        if watermark:
            log.info("MQTT: %d topics with a backlog (messages up to #%d)", len(backlog), watermark)
        drain = Drain(
            watermark=watermark,
            backlog=backlog,
            now=time.monotonic(),
            rate=s.backlog_rate,
            window=link.window,
            max_attempts=s.max_attempts,
        )
        await self._clear_dead_alarm_if_none()
        live_after, old_after, old_read = watermark, 0, watermark == 0
        sent: dict[asyncio.Future[None], Row] = {}
        last_poll = last_rescan = last_role = time.monotonic()
        try:
            while not link.closed.done():
                self._wake.clear()  # whatever happens from here on wakes the wait below
                now = time.monotonic()
                if now - last_role >= s.role_check_s:
                    if not await asyncio.to_thread(self.role.alive):
                        raise RoleLost("the database connection holding the role was lost")
                    last_role = now
                if self._fresh or now - last_poll >= s.poll_s:
                    self._fresh, last_poll = False, now
                    rows = await asyncio.to_thread(self.outbox.read, live_after, None, s.page)
                    drain.offer(rows)
                    live_after = rows[-1].id if rows else live_after
                    self._fresh = len(rows) == s.page  # a full page: more behind it
                if not old_read and drain.queued_old < s.page // 2:
                    rows = await asyncio.to_thread(self.outbox.read, old_after, watermark, s.page)
                    drain.offer(rows)
                    old_after = rows[-1].id if rows else old_after
                    if not rows:
                        old_read = await self._sweep(drain, watermark)
                if now - last_rescan >= s.rescan_s:
                    last_rescan = now
                    await self._rescan(drain, watermark, old_read)
                for row in drain.due(time.monotonic()):
                    try:
                        future = link.publish(
                            row.topic,
                            row.payload,
                            qos=row.qos,
                            retain=row.retain,
                            expiry_s=row.expiry_s,
                            correlation=row.correlation,
                        )
                    except MessageRefused as exc:
                        await self._refused(drain, row, str(exc))
                        continue
                    except BrokerUnavailable:
                        break
                    sent[future] = row
                    future.add_done_callback(self._wake_on_done)
                if await self._settle(drain, sent):
                    continue
                if drain.idle and not self._fresh:
                    self.idle.set()
                await self._wait(drain)
        finally:
            await self._settle(drain, sent)
        link.closed.result()  # raises what ended the connection

    async def _settle(self, drain: Drain, sent: dict[asyncio.Future[None], Row]) -> bool:
        """Delete what the broker acknowledged; count what it refused.

        Returns:
            Whether any message was settled (its topic may have a next one due).
        """
        acked: list[int] = []
        finished = [f for f in sent if f.done()]
        for future in finished:
            row = sent.pop(future)
            error = future.exception() if not future.cancelled() else None
            if future.cancelled() or isinstance(error, BrokerUnavailable):
                continue  # never the message's fault; the next session sends it again
            if error is None:
                acked.append(row.id)
            else:
                await self._refused(drain, row, str(error))
        if acked:
            await asyncio.to_thread(self.outbox.delete, acked)
            drain.done(acked)
        return bool(finished)

    async def _refused(self, drain: Drain, row: Row, error: str) -> None:
        attempts = drain.attempts(row.id) + 1
        verdict = drain.refused(row.id, time.monotonic())
        dead = verdict is Verdict.DEAD
        await asyncio.to_thread(self.outbox.failed, row.id, attempts, error, dead=dead)
        if dead:
            self.dead += 1
            log.error(
                "MQTT: message #%d to %s set aside after %d attempts: %s",
                row.id,
                row.topic,
                attempts,
                error,
            )
            await self._raise_dead_alarm(row, attempts, error)
        else:
            log.warning("MQTT: message #%d to %s refused (%s); retrying", row.id, row.topic, error)

    async def _sweep(self, drain: Drain, watermark: int) -> bool:
        """Read the backlog once more from the start (rows that committed late)."""
        after = 0
        while True:
            rows = await asyncio.to_thread(self.outbox.read, after, watermark, self.settings.page)
            if not rows:
                break
            drain.offer(rows)
            after = rows[-1].id
        drain.backlog_read()
        return True

    async def _rescan(self, drain: Drain, watermark: int, old_read: bool) -> None:
        rows = await asyncio.to_thread(self.outbox.read, watermark, None, self.settings.page * 4)
        drain.offer(rows)
        if old_read:
            rows = await asyncio.to_thread(self.outbox.read, 0, watermark, self.settings.page)
            drain.offer(rows)

    async def _wait(self, drain: Drain) -> None:
        """Until something happens: a commit, an acknowledgement, a token, a retry, a poll."""
        timeout = self.settings.poll_s
        wake_at = drain.wake_at(time.monotonic())
        if wake_at is not None:
            timeout = min(timeout, max(0.0, wake_at - time.monotonic()))
        if timeout > 0 and not self._fresh:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and the publisher would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _wake_on_done(self, future: asyncio.Future[None]) -> None:
        self._wake.set()

    async def _raise_dead_alarm(self, row: Row, attempts: int, error: str) -> None:
        """One alarm while messages are set aside (``mes mqtt status`` counts them)."""
        alarms = await asyncio.to_thread(self.store.alarms, True)
        if any(a["code"] == DEAD_ALARM and a["active"] for a in alarms):
            return
        now = self.clock()
        changes = Changes()
        text = (
            f"MQTT message #{row.id} to {row.topic} set aside after {attempts} attempts: "
            f"{error} (mes mqtt status)"
        )
        changes.alarm("medium", text, now, subject="mqtt", code=DEAD_ALARM)
        raised = dict(changes.alarm_ops[0][1])
        changes.messages.append(Message(self.settings.ns.alarms, dumps(alarm_raised(raised)), now))
        await asyncio.to_thread(self.store.apply, changes)

    async def _clear_dead_alarm_if_none(self) -> None:
        counts = await asyncio.to_thread(self.outbox.counts)
        if counts.dead:
            return
        alarms = await asyncio.to_thread(self.store.alarms, True)
        if any(a["code"] == DEAD_ALARM and a["active"] for a in alarms):
            changes = Changes()
            changes.clear("", "mqtt", self.clock())
            await asyncio.to_thread(self.store.apply, changes)
