"""The store: the only place that talks SQL. SQLite by default, PostgreSQL by URL.

Every write is one transaction: a batch of state changes together with their journal
entries (:meth:`Store.apply`), or a whole order (:meth:`Store.release`). The controller
acts on a change only after ``apply`` returns, i.e. after the commit is durable (SQLite
runs in WAL mode with ``synchronous=FULL``). Writers on SQLite take the write lock at
``BEGIN IMMEDIATE`` so two processes never deadlock upgrading a read lock.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from mes.domain import (
    Cell,
    Event,
    Order,
    Program,
    ProgramKind,
    Step,
    Unit,
)
from mes.errors import OrderError, Problem, StoreError
from mes.store import schema
from mes.store.outbox import OutboxStore
from mes.store.rows import (
    _apply,
    _insert_messages,
    _insert_programs,
    _job_row,
    _row,
    _step,
    _unit,
)
from mes.store.sharing import SharingStore, notify
from mes.store.stock import StockStore, take_blanks
from mes.store.tables import (
    ALARMS,
    CELLS,
    CONTROLLERS,
    COUNTER,
    EVENTS,
    JOBS,
    LEASES,
    ORDERS,
    PROGRAMS,
    REQUESTS,
    STEPS,
    UNITS,
)
from mes.store.tracking import TrackingReads
from mes.store.watching import _FINISHED, WatcherReads

DEFAULT_DB = "sqlite:///mes.db"


def resolve_url(url: str | None = None) -> str:
    """The database URL to use: the argument, else ``$MES_DB``, else ``./mes.db``.

    A bare path means a SQLite file; ``postgresql://`` means PostgreSQL through psycopg 3.
    """
    url = url or os.environ.get("MES_DB") or DEFAULT_DB
    if "://" not in url:
        url = f"sqlite:///{url}"
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass(frozen=True, slots=True)
class Message:
    """One message for the outbox: published after the transaction that wrote it."""

    topic: str
    payload: str
    at: datetime
    retain: bool = False
    qos: int = 1


@dataclass(slots=True)
class Changes:
    """One batch of state changes to commit together, with their journal entries.

    Entities are kept by id, so an entity changed twice in a batch is written once,
    with its latest state.
    """

    units: dict[str, Unit] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    cells: dict[str, Cell] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Requests carried out (id -> state, result, done_at).
    requests: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Alarms raised ("raise", row) and cleared ("clear", cell/subject/at), in the order
    #: they happened: a raise and its clear in one batch must end cleared, a clear and a
    #: new raise must end raised. Acknowledgements: id -> (who, at).
    alarm_ops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    acks: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    progress: dict[str, float] = field(default_factory=dict)
    """Cell -> progress (0..1) of its running job, for watchers (not journaled)."""
    readings: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    """Cell -> its sensors as last heard (name -> [value, target]), for watchers."""
    messages: list[Message] = field(default_factory=list)
    """Outbox messages telling this batch's changes (MQTT), written with them."""
    custody: dict[str, str] = field(default_factory=dict)
    """Unit -> its new custodian ("" : let go)."""
    writer: str = ""
    """The controller committing this batch: it must be the custodian of every unit the
    batch touches ("" : not checked; a lone controller's tests)."""
    fences: dict[str, int] = field(default_factory=dict)
    """Cell -> the lease token the writer holds for it: the batch is refused if one moved
    on (see :mod:`mes.store.sharing`)."""

    def answer(self, request_id: int, state: str, result: str, at: datetime) -> None:
        """Record what became of a request, with the change it made."""
        self.requests[request_id] = {
            "k": request_id,
            "state": state,
            "result": result,
            "done_at": at,
        }

    def alarm(
        self,
        severity: str,
        text: str,
        at: datetime,
        *,
        cell: str = "",
        subject: str = "",
        code: str = "",
    ) -> None:
        """Raise an alarm (active and unacknowledged)."""
        self.alarm_ops.append(
            (
                "raise",
                {
                    "raised_at": at,
                    "severity": severity,
                    "cell": cell,
                    "subject": subject,
                    "code": code,
                    "text": text,
                },
            )
        )

    def clear(self, cell: str, subject: str, at: datetime) -> None:
        """Clear the active alarms of ``cell`` about ``subject`` ("" matches any)."""
        self.alarm_ops.append(("clear", {"c": cell, "s": subject, "at": at}))

    def job(
        self,
        step: Step,
        at: datetime | None = None,
        state: str | None = None,
        program_id: str | None = None,
    ) -> None:
        """Snapshot the job a step holds now (its state as of this moment, or ``state``).

        ``at`` marks a new hand-off: the job row is created, dispatched at ``at``, naming
        ``program_id``, the program the cell gets (the step's own by default).
        """
        assert step.job_id is not None
        previous = self.jobs.get(step.job_id, {})
        self.jobs[step.job_id] = {
            **previous,
            "k": step.job_id,
            "state": state or step.state.value,
            "started_at": step.started_at,
            "finished_at": step.finished_at,
            "result": dict(step.result),
            **({"new": _job_row(step, at, program_id)} if at is not None else {}),
        }

    def add(self, *items: Unit | Step | Cell | Event) -> None:
        for item in items:
            if isinstance(item, Unit):
                self.units[item.id] = item
            elif isinstance(item, Step):
                self.steps[item.id] = item
            elif isinstance(item, Cell):
                self.cells[item.name] = item
            else:
                self.events.append(item)

    def merge(self, other: Changes) -> None:
        self.units.update(other.units)
        self.steps.update(other.steps)
        self.cells.update(other.cells)
        self.events.extend(other.events)
        self.requests.update(other.requests)
        self.alarm_ops.extend(other.alarm_ops)
        self.acks.update(other.acks)
        self.progress.update(other.progress)
        self.readings.update(other.readings)
        self.messages.extend(other.messages)
        self.custody.update(other.custody)
        self.writer = self.writer or other.writer
        self.fences.update(other.fences)
        for job_id, snapshot in other.jobs.items():
            self.jobs[job_id] = {**self.jobs.get(job_id, {}), **snapshot}

    def __bool__(self) -> bool:
        return bool(
            self.units
            or self.steps
            or self.cells
            or self.events
            or self.jobs
            or self.requests
            or self.alarm_ops
            or self.acks
            or self.progress
            or self.readings
            or self.messages
            or self.custody
        )


@dataclass(slots=True)
class PlantCounts:
    """Grouped counts for a plant view (see :meth:`Store.plant_counts`)."""

    units: dict[str, int] = field(default_factory=dict)
    """Unit state -> units."""
    jobs: dict[str, dict[str, int]] = field(default_factory=dict)
    """Cell -> job state -> jobs."""
    alarms: dict[str, list[str]] = field(default_factory=dict)
    """Cell ("" for the plant) -> texts of its active alarms, newest first."""


class Store(WatcherReads, SharingStore, OutboxStore, StockStore, TrackingReads):
    """Durable record of orders, units, steps, jobs, cells and the journal."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._checkpoints_taken = False

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Connect to the database at ``url`` (see :func:`resolve_url`). A database with no
        tables is created; any other must be at the schema revision this version knows.

        Raises:
            StoreError: the URL is malformed, the driver is missing, the server is down,
                or the database is at another schema revision (``mes db upgrade``).
        """
        store = cls(_engine(resolve_url(url)))
        store._create_schema()
        return store

    @staticmethod
    def upgrade(url: str | None = None) -> tuple[str | None, str]:
        """Upgrade the database at ``url`` to the newest schema revision (``mes db upgrade``).

        Returns:
            The revision before (None: a new database) and after.

        Raises:
            StoreError: as :meth:`open`, or the database is newer than this version.
        """
        engine = _engine(resolve_url(url))
        try:
            return schema.upgrade(engine)
        except OperationalError as exc:
            raise StoreError(
                f"cannot open database {_redact(str(engine.url))}: {exc.orig}"
            ) from exc
        finally:
            engine.dispose()

    @staticmethod
    def redact(url: str) -> str:
        """``url`` with its password hidden."""
        return _redact(url)

    def revision(self) -> str | None:
        """The database's schema revision."""
        with self._read() as conn:
            return schema.current(conn).revision

    def close(self) -> None:
        self.engine.dispose()

    def take_over_checkpoints(self) -> None:
        """SQLite: stop checkpointing the WAL inside commits (a commit that happens to
        checkpoint waits for the copy and its fsyncs); the owner calls :meth:`checkpoint`
        from aside instead. Durability is unchanged: every commit is fsynced in the WAL.
        Once per store: a second owner (two controllers on one store, in tests) must not
        add a listener while the first one's threads connect."""
        if not self.is_sqlite or self._checkpoints_taken:
            return
        self._checkpoints_taken = True

        @event.listens_for(self.engine, "connect")
        def _manual(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

        self.engine.dispose()  # pooled connections reconnect with it

    def checkpoint(self) -> None:
        """SQLite: copy committed WAL frames into the database without blocking writers
        (a passive checkpoint, outside any transaction); elsewhere nothing."""
        if not self.is_sqlite:
            return
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.url}: checkpoint failed: {exc}") from exc
        finally:
            raw.close()

    @property
    def url(self) -> str:
        return _redact(str(self.engine.url))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _create_schema(self) -> None:
        try:
            schema.prepare(self.engine, self.url)
        except OperationalError as exc:
            raise StoreError(f"cannot open database {self.url}: {exc.orig}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite); commits on exit."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.url}: {exc.orig}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(mes_read=True) as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database {self.url}: {exc.orig}") from exc

    # -- writes -------------------------------------------------------------------------

    def release(
        self,
        orders: list[Order],
        units: list[Unit],
        programs: Iterable[Program],
        events: list[Event],
        messages: Callable[[list[Unit], list[Event]], list[Message]] | None = None,
    ) -> set[str]:
        """Store orders, their units, steps, programs and journal entries in one transaction.

        Idempotent by order id: an order already stored with the same digest is skipped
        (with its units and events). A unit whose variant is in stock takes a blank for
        its generic steps (:func:`~mes.store.stock.take_blanks`). ``messages`` tells the
        outbox what was stored (the units and events actually new), in the same
        transaction.

        Returns:
            The ids of orders that were already there, unchanged.

        Raises:
            OrderError: an order with one of these ids but other content exists; then
                nothing at all is stored.
        """
        with self._write() as conn:
            ids = [o.id for o in orders]
            stored = dict(
                conn.execute(select(ORDERS.c.id, ORDERS.c.digest).where(ORDERS.c.id.in_(ids))).all()
            )
            clashes = [o for o in orders if o.id in stored and stored[o.id] != o.digest]
            if clashes:
                raise OrderError(
                    [
                        Problem(
                            "an order with this id was already released with other content; "
                            "release it under a new id",
                            path=f"order {o.id}",
                        )
                        for o in clashes
                    ]
                )
            same = set(stored)
            units = [u for u in units if u.order_id not in same]
            unit_ids = {u.id for u in units}
            events = [e for e in events if e.subject.split("/")[0] in unit_ids]
            events = take_blanks(conn, units, events)  # blanks made ahead, where in stock
            by_id = {p.id: p for p in programs}
            known = set(
                conn.execute(select(PROGRAMS.c.id).where(PROGRAMS.c.id.in_(list(by_id)))).scalars()
            )
            new_programs = [
                {"id": pid, "kind": p.kind.value, "body": p.body}
                for pid, p in by_id.items()
                if pid not in known
            ]
            new_orders = [_row(ORDERS, o) for o in orders if o.id not in same]
            if new_orders:
                conn.execute(insert(ORDERS), new_orders)
            _insert_programs(conn, new_programs)
            if units:
                conn.execute(insert(UNITS), [_row(UNITS, u) for u in units])
                conn.execute(insert(STEPS), [_row(STEPS, s) for u in units for s in u.steps])
                notify(conn)
            if events:
                conn.execute(insert(EVENTS), [_row(EVENTS, e) for e in events])
            if messages is not None and (told := messages(units, events)):
                _insert_messages(conn, told)
        return same

    def apply(self, changes: Changes) -> None:
        """Commit a batch of state changes and their journal entries in one transaction."""
        if not changes:
            return
        with self._write() as conn:
            _apply(conn, changes)

    def register_cells(self, cells: Iterable[Cell], at: datetime) -> dict[str, dict[str, Any]]:
        """Record the plant's cells: insert new ones, refresh the capabilities and driver
        of known ones (their state is written by the controller that holds each).

        Returns:
            The rows as they were before this call, by name (their last known state).
        """
        with self._write() as conn:
            before = {r.name: dict(r._mapping) for r in conn.execute(select(CELLS))}
            for cell in sorted(cells, key=lambda c: c.name):  # one lock order for all
                values = {
                    "capabilities": sorted(cell.capabilities),
                    "driver_kind": cell.driver_kind,
                }
                if cell.name in before:
                    known = before[cell.name]
                    if any(known[k] != v for k, v in values.items()):
                        conn.execute(
                            update(CELLS).where(CELLS.c.name == cell.name).values(**values)
                        )
                else:
                    row = {"state": cell.state.value, "job_id": cell.job_id, "updated_at": at}
                    conn.execute(insert(CELLS), [{"name": cell.name, **values, **row}])
        return before

    def reserve_job_ids(self, count: int) -> range:
        """Reserve ``count`` fresh job ids. Ids never repeat, even if unused ones are lost."""
        with self._write() as conn:
            conn.execute(
                update(COUNTER)
                .where(COUNTER.c.name == "job_id")
                .values(value=COUNTER.c.value + count)
            )
            top = conn.execute(
                select(COUNTER.c.value).where(COUNTER.c.name == "job_id")
            ).scalar_one()
        return range(top - count + 1, top + 1)

    # -- reads --------------------------------------------------------------------------

    def load_units(self, ids: Iterable[str] | None = None) -> list[Unit]:
        """Units with their whole routing: the given ids, or every unfinished unit."""
        units_q = select(UNITS)
        steps_q = select(STEPS).join(UNITS, UNITS.c.id == STEPS.c.unit_id)
        if ids is None:
            units_q = units_q.where(UNITS.c.state.not_in(_FINISHED))
            steps_q = steps_q.where(UNITS.c.state.not_in(_FINISHED))
        else:
            wanted = list(ids)
            units_q = units_q.where(UNITS.c.id.in_(wanted))
            steps_q = steps_q.where(UNITS.c.id.in_(wanted))
        with self._read() as conn:
            units = {
                r.id: _unit(r)
                for r in conn.execute(
                    units_q.order_by(UNITS.c.released_at, UNITS.c.order_id, UNITS.c.seq)
                )
            }
            for r in conn.execute(steps_q.order_by(STEPS.c.unit_id, STEPS.c.seq)):
                units[r.unit_id].steps.append(_step(r))
        return list(units.values())

    def load_orders(self, ids: Iterable[str]) -> dict[str, Order]:
        with self._read() as conn:
            rows = conn.execute(select(ORDERS).where(ORDERS.c.id.in_(list(ids))))
            return {r.id: Order(**r._mapping) for r in rows}

    def program(self, program_id: str) -> Program:
        with self._read() as conn:
            row = conn.execute(select(PROGRAMS).where(PROGRAMS.c.id == program_id)).one()
        return Program(ProgramKind(row.kind), row.body)

    def programs(self, ids: Iterable[str]) -> dict[str, Program]:
        """The stored programs with these ids, read in one query per 10,000 ids."""
        wanted, found = sorted(set(ids)), dict[str, Program]()
        with self._read() as conn:
            for start in range(0, len(wanted), 10_000):
                chunk = wanted[start : start + 10_000]
                for r in conn.execute(select(PROGRAMS).where(PROGRAMS.c.id.in_(chunk))):
                    found[r.id] = Program(ProgramKind(r.kind), r.body)
        return found

    def add_programs(self, programs: Iterable[Program]) -> None:
        """Store programs that are not stored yet (content-addressed: same id, same body)."""
        by_id = {p.id: p for p in programs}
        with self._write() as conn:
            known = set(
                conn.execute(select(PROGRAMS.c.id).where(PROGRAMS.c.id.in_(list(by_id)))).scalars()
            )
            rows = [
                {"id": i, "kind": p.kind.value, "body": p.body}
                for i, p in by_id.items()
                if i not in known
            ]
            if rows:
                conn.execute(insert(PROGRAMS), rows)

    def submit(
        self,
        at: datetime,
        actor: str,
        source: str,
        action: str,
        target: str,
        reason: str = "",
        args: dict[str, Any] | None = None,
    ) -> int:
        """Queue a request for the controller; return its id."""
        row = {
            "at": at,
            "actor": actor,
            "source": source,
            "action": action,
            "target": target,
            "reason": reason,
            "args": args or {},
            "state": "pending",
        }
        with self._write() as conn:
            notify(conn, "request")
            return int(conn.execute(insert(REQUESTS).returning(REQUESTS.c.id), [row]).scalar_one())

    def request(self, request_id: int) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(select(REQUESTS).where(REQUESTS.c.id == request_id)).first()
        return None if row is None else dict(row._mapping)

    def pending_requests(self) -> list[dict[str, Any]]:
        """Requests not carried out yet, oldest first."""
        query = select(REQUESTS).where(REQUESTS.c.state == "pending").order_by(REQUESTS.c.id)
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def alarm(self, alarm_id: int) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(select(ALARMS).where(ALARMS.c.id == alarm_id)).first()
        return None if row is None else dict(row._mapping)

    def alarms(self, open_only: bool = False) -> list[dict[str, Any]]:
        """Alarms, active and unacknowledged first, newest first within each."""
        query = select(ALARMS)
        if open_only:
            query = query.where((ALARMS.c.active.is_(True)) | (ALARMS.c.acked_at.is_(None)))
        query = query.order_by(
            ALARMS.c.active.desc(), ALARMS.c.acked_at.is_not(None), ALARMS.c.id.desc()
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def last_event_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.max(EVENTS.c.id))).scalar() or 0)

    def released_since(self, after_event_id: int) -> tuple[list[str], int]:
        """Ids of units released after journal entry ``after_event_id``, and the last id seen."""
        query = (
            select(EVENTS.c.id, EVENTS.c.subject)
            .where(
                EVENTS.c.id > after_event_id,
                EVENTS.c.kind == "unit",
                EVENTS.c.transition == "release",
            )
            .order_by(EVENTS.c.id)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [r.subject for r in rows], (rows[-1].id if rows else after_event_id)

    def orders(self) -> list[dict[str, Any]]:
        """Every order with its unit counts by state, newest first."""
        with self._read() as conn:
            orders = [
                dict(r._mapping)
                for r in conn.execute(
                    select(ORDERS).order_by(ORDERS.c.released_at.desc(), ORDERS.c.id)
                )
            ]
            counts: dict[str, dict[str, int]] = {}
            for order_id, state in conn.execute(select(UNITS.c.order_id, UNITS.c.state)):
                per = counts.setdefault(order_id, {})
                per[state] = per.get(state, 0) + 1
        for order in orders:
            order["units"] = counts.get(order["id"], {})
        return orders

    def order_units(self, order_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(UNITS).where(UNITS.c.order_id == order_id).order_by(UNITS.c.seq)
                )
            ]

    def unit_record(self, unit_id: str) -> dict[str, Any] | None:
        """The as-built record of a unit: every step with its jobs (cell, program, times,
        result), the unit's journal, and the blank it started from (``blank``: id,
        variant, made_at, cells; None if it made its own). None if there is no such
        unit."""
        with self._read() as conn:
            unit = conn.execute(select(UNITS).where(UNITS.c.id == unit_id)).first()
            if unit is None:
                return None
            record = dict(unit._mapping)
            steps = [
                dict(r._mapping)
                for r in conn.execute(
                    select(STEPS).where(STEPS.c.unit_id == unit_id).order_by(STEPS.c.seq)
                )
            ]
            jobs: dict[str, list[dict[str, Any]]] = {}
            for r in conn.execute(
                select(JOBS).where(JOBS.c.unit_id == unit_id).order_by(JOBS.c.id)
            ):
                jobs.setdefault(r.step_id, []).append(dict(r._mapping))
            for step in steps:
                step["jobs"] = jobs.get(step["id"], [])
            record["steps"] = steps
            subjects = [unit_id, *(s["id"] for s in steps)]
            record["journal"] = [
                dict(r._mapping)
                for r in conn.execute(
                    select(EVENTS).where(EVENTS.c.subject.in_(subjects)).order_by(EVENTS.c.id)
                )
            ]
        record["blank"] = self.blank_of(unit_id)
        return record

    def order_jobs(self, order_id: str) -> list[dict[str, Any]]:
        """Every job of every unit of an order, oldest first."""
        query = (
            select(JOBS)
            .join(UNITS, UNITS.c.id == JOBS.c.unit_id)
            .where(UNITS.c.order_id == order_id)
            .order_by(JOBS.c.id)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def step_needs(self, ids: Iterable[str]) -> dict[str, tuple[str, list[str]]]:
        """Step id -> (capability, the cells it is limited to; empty: any capable cell)."""
        ids = list(ids)
        out: dict[str, tuple[str, list[str]]] = {}
        with self._read() as conn:
            for chunk in range(0, len(ids), 500):
                query = select(STEPS.c.id, STEPS.c.capability, STEPS.c.cells).where(
                    STEPS.c.id.in_(ids[chunk : chunk + 500])
                )
                for row in conn.execute(query):
                    out[row.id] = (row.capability, list(row.cells or []))
        return out

    def cells(self) -> list[dict[str, Any]]:
        """Every cell row, with the controller that holds its lease (``controller``: its
        name, "" when none; ``heard_at``: that controller's last heartbeat)."""
        query = (
            select(
                CELLS,
                CONTROLLERS.c.name.label("controller"),
                CONTROLLERS.c.heartbeat_at.label("heard_at"),
            )
            .select_from(
                CELLS.outerjoin(LEASES, LEASES.c.cell == CELLS.c.name).outerjoin(
                    CONTROLLERS,
                    (CONTROLLERS.c.id == LEASES.c.owner) & CONTROLLERS.c.stopped_at.is_(None),
                )
            )
            .order_by(CELLS.c.name)
        )
        with self._read() as conn:
            return [{**r._mapping, "controller": r.controller or ""} for r in conn.execute(query)]

    def plant_counts(self) -> PlantCounts:
        """Units by state, finished jobs by cell and state, open alarms by cell: the
        totals a plant view shows (three grouped counts, one read transaction)."""
        counts = PlantCounts()
        jobs = select(JOBS.c.cell, JOBS.c.state, func.count()).group_by(JOBS.c.cell, JOBS.c.state)
        units = select(UNITS.c.state, func.count()).group_by(UNITS.c.state)
        alarms = (
            select(ALARMS.c.cell, ALARMS.c.text)
            .where(ALARMS.c.active.is_(True))
            .order_by(ALARMS.c.id.desc())
        )
        with self._read() as conn:
            counts.units = {state: int(n) for state, n in conn.execute(units)}
            for cell, state, n in conn.execute(jobs):
                counts.jobs.setdefault(cell, {})[state] = int(n)
            for cell, text in conn.execute(alarms):
                counts.alarms.setdefault(cell, []).append(text)
        return counts

    def unit_states(self, order_ids: Iterable[str] | None = None) -> dict[str, str]:
        """Unit id -> state, optionally only for the given orders."""
        query = select(UNITS.c.id, UNITS.c.state)
        if order_ids is not None:
            query = query.where(UNITS.c.order_id.in_(list(order_ids)))
        with self._read() as conn:
            return {uid: state for uid, state in conn.execute(query)}

    def events(self, kind: str | None = None, after_id: int = 0) -> list[dict[str, Any]]:
        query = select(EVENTS).where(EVENTS.c.id > after_id).order_by(EVENTS.c.id)
        if kind is not None:
            query = query.where(EVENTS.c.kind == kind)
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` on SQLite; "ok" elsewhere."""
        if not self.is_sqlite:
            return "ok"
        with self._read() as conn:
            return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=None, connect_args={"timeout": 30} if sqlite else {})
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot use database URL {_redact(url)}: {exc}") from exc
    if sqlite:
        _tune_sqlite(engine)
    return engine


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def _tune_sqlite(engine: Engine) -> None:
    """WAL, synchronous=FULL, foreign keys, and IMMEDIATE write transactions."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so BEGIN is ours to issue.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("mes_read") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


__all__ = ["DEFAULT_DB", "Changes", "Message", "Store", "resolve_url"]
