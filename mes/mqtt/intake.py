"""Orders from upstream systems: published on ``<root>/orders/in``, or dropped as files into
a watched folder. Each goes through exactly what ``mes order release`` does (the order
file reader, then :func:`mes.service.release.release`: every unit checked, all or
nothing, idempotent by order id), and what became of it is published on
``<root>/orders/results`` (or an MQTT 5 request's response topic, with its correlation
data).

Theory of operation: the outcome of a release is written to the outbox in the release's
own transaction; a refusal (nothing released) in a transaction of its own. Only then is
an MQTT order acknowledged to the broker (its session keeps unacknowledged ones, so an
order taken by a controller that died meanwhile comes again: released already, it is
answered ``unchanged``), and only then is a file moved to ``done/`` or ``failed/`` (with
``<name>.error.txt`` beside it). A store that cannot be reached leaves the order where it
is, to be taken again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mes.domain import Event, Unit
from mes.errors import OrderError, Problem, StoreError
from mes.mqtt.link import BrokerUnavailable, Incoming, Link
from mes.mqtt.topics import Namespace, dumps, outcome_payload
from mes.service.order_files import (
    FORMATS,
    MAX_FILE_BYTES,
    OrderSpec,
    parse_orders,
    read_order_file,
)
from mes.service.release import ReleaseMessages, release
from mes.settings import Plant
from mes.settings.stations import stations
from mes.store import Changes, Message, Store
from mes.store.role import Role

log = logging.getLogger(__name__)

#: MQTT 5 content types an order may declare (JSON when it declares none).
CONTENT_TYPES = {
    "application/json": "json",
    "application/toml": "toml",
    "text/csv": "csv",
    "json": "json",
    "toml": "toml",
    "csv": "csv",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one intake."""

    source: str
    released: list[str]
    unchanged: list[str]
    units: int
    problems: list[Problem]

    @property
    def refused(self) -> bool:
        return bool(self.problems)


class OrderIntake:
    """Releases orders taken in from a topic or a folder (see the module doc)."""

    def __init__(
        self,
        store: Store,
        plant: Plant,
        *,
        ns: Namespace | None = None,
        messages: ReleaseMessages | None = None,
        clock: Callable[[], datetime] = utc_now,
        actor: str = "intake",
    ) -> None:
        self.store = store
        self.plant = plant
        self.ns = ns
        self.messages = messages
        self.clock = clock
        self.actor = actor
        self._stations = stations(plant)

    def take(
        self,
        read: Callable[[], list[OrderSpec]],
        source: str,
        *,
        reply_to: str | None = None,
        correlation: bytes | None = None,
    ) -> Outcome:
        """Read orders with ``read`` and release them, all or nothing (blocking).

        Raises:
            StoreError: the store cannot be reached; nothing was released.
        """
        now = self.clock()
        specs: list[OrderSpec] = []
        try:
            specs = read()
            result = release(
                self.store,
                specs,
                self.plant.families,
                now,
                source=source,
                actor=self.actor,
                stations=self._stations,
                messages=self._telling(specs, source, now, reply_to, correlation),
            )
        except OrderError as exc:
            outcome = Outcome(source, [], [], 0, exc.problems)
            if self.ns is not None:
                message = self._outcome_message(outcome, now, reply_to, correlation)
                self.store.apply(Changes(messages=[message]))
            return outcome
        return Outcome(source, result.released, result.unchanged, result.units, [])

    def _telling(
        self,
        specs: Sequence[OrderSpec],
        source: str,
        now: datetime,
        reply_to: str | None,
        correlation: bytes | None,
    ) -> ReleaseMessages | None:
        """The release's messages: its units and journal entries, then its outcome."""
        if self.ns is None:
            return None
        told = self.messages

        def messages(units: list[Unit], events: list[Event]) -> list[Message]:
            released = list(dict.fromkeys(u.order_id for u in units))
            unchanged = [s.id for s in specs if s.id and s.id not in released]
            outcome = Outcome(source, released, unchanged, len(units), [])
            out = told(units, events) if told is not None else []
            return [*out, self._outcome_message(outcome, now, reply_to, correlation)]

        return messages

    def _outcome_message(
        self, outcome: Outcome, at: datetime, reply_to: str | None, correlation: bytes | None
    ) -> Message:
        assert self.ns is not None
        payload = outcome_payload(
            outcome.source,
            at,
            released=outcome.released,
            unchanged=outcome.unchanged,
            units=outcome.units,
            problems=[_problem(p) for p in outcome.problems],
            correlation=correlation,
        )
        return Message(reply_to or self.ns.orders_results, dumps(payload), at)

    # -- MQTT -------------------------------------------------------------------------

    async def attach(self, link: Link) -> None:
        """Subscribe ``link`` to the order topic and take what arrives while it lasts."""
        assert self.ns is not None
        try:
            await link.subscribe(self.ns.orders_in, qos=1)
        except BrokerUnavailable as exc:
            log.error("MQTT: order intake off for this connection: %s", exc)
            return
        task = asyncio.create_task(self._serve(link), name="mqtt-intake")
        link.closed.add_done_callback(lambda _: task.cancel())

    async def _serve(self, link: Link) -> None:
        while not link.closed.done():
            message = await link.incoming.get()
            try:
                outcome = await asyncio.to_thread(self.take_message, message)
            except StoreError as exc:
                log.error("order intake: %s; the order comes again", exc)
                return  # unacknowledged: the broker sends it again on the next connection
            _log(outcome)
            link.ack(message)

    def take_message(self, message: Incoming) -> Outcome:
        """Release the orders of one MQTT message (blocking)."""
        source = f"mqtt:{message.topic}"
        fmt = CONTENT_TYPES.get((message.content_type or "json").lower())

        def read() -> list[OrderSpec]:
            if fmt is None:
                known = ", ".join(k for k in CONTENT_TYPES if "/" in k)
                raise OrderError(
                    Problem(f"content type {message.content_type!r} (known: {known})", source)
                )
            if len(message.payload) > MAX_FILE_BYTES:
                raise OrderError(
                    Problem(f"{len(message.payload)} bytes; at most {MAX_FILE_BYTES}", source)
                )
            try:
                text = message.payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise OrderError(Problem(f"not UTF-8 text ({exc.reason})", source)) from exc
            return parse_orders(text, fmt, source)

        return self.take(
            read, source, reply_to=message.response_topic, correlation=message.correlation
        )

    # -- the folder ---------------------------------------------------------------------

    def take_file(self, path: Path) -> Outcome:
        """Release the orders of one file, then move it to ``done/`` or ``failed/``."""
        outcome = self.take(lambda: read_order_file(path), str(path))
        folder = path.parent / ("failed" if outcome.refused else "done")
        folder.mkdir(exist_ok=True)
        target = _free_name(folder / path.name)
        os.replace(path, target)
        if outcome.refused:
            text = "".join(f"{p}\n" for p in outcome.problems)
            target.with_name(target.name + ".error.txt").write_text(text)
        return outcome


def files_ready(folder: Path, settle_s: float, now: float | None = None) -> list[Path]:
    """Order files in ``folder`` unchanged for ``settle_s``, oldest first. Hidden files
    and ``*.tmp``/``*.part`` (still being written) are left alone."""
    now = time.time() if now is None else now
    found: list[tuple[float, Path]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if name.startswith(".") or Path(name).suffix.lower() not in FORMATS:
            continue
        try:
            if not entry.is_file():
                continue
            mtime = entry.stat().st_mtime
        except OSError:
            continue
        if now - mtime >= settle_s:
            found.append((mtime, Path(entry.path)))
    return [p for _, p in sorted(found)]


async def watch_folder(
    intake: OrderIntake, folder: Path, *, poll_s: float, settle_s: float, wake: Callable[[], Any]
) -> None:
    """Take order files dropped into ``folder`` until cancelled (one controller at a time
    on a shared database)."""
    role = Role(intake.store, "order-folder")
    reported = False
    try:
        while True:
            try:
                if await asyncio.to_thread(role.try_take):
                    for path in await asyncio.to_thread(files_ready, folder, settle_s):
                        _log(await asyncio.to_thread(intake.take_file, path))
                        wake()
                reported = False
            except (StoreError, OSError) as exc:
                if not reported:
                    log.error("order folder %s: %s; trying again", folder, exc)
                    reported = True
            await asyncio.sleep(poll_s)
    finally:
        await asyncio.to_thread(role.give_up)


def _free_name(path: Path) -> Path:
    """``path``, or ``name-2.ext``... if taken."""
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "path": problem.path,
        "reason": problem.reason,
        "text": str(problem),
    }


def _log(outcome: Outcome) -> None:
    if outcome.refused:
        log.warning("order intake %s refused: %d problems", outcome.source, len(outcome.problems))
    else:
        log.info(
            "order intake %s: released %s, unchanged %s",
            outcome.source,
            outcome.released,
            outcome.unchanged,
        )
