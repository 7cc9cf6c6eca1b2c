"""Several controllers on one database: members, cell leases with fencing tokens, and
custody of units. Mixed into :class:`~mes.store.Store`.

Theory of operation:

* **Members.** Each controller process registers a ``controller`` row at start (a new id
  per run) and beats its heart into it. A member is *gone* when it stopped, when its
  heartbeat is older than the lease time, or, on the same host, when its process no
  longer exists (a restart after ``kill -9`` need not wait for the lease to run out).
* **Leases.** A cell is driven by the controller holding its ``lease`` row, for as long
  as that controller is alive (its heartbeat renews all its leases at once, and locks
  none of them). Claiming a lease that is free or held by a gone member takes a new
  *fencing token* from the ``fence`` counter, so tokens only grow. Every batch a
  controller commits names the tokens of the cells it touches (:attr:`Changes.fences`);
  the transaction refuses the whole batch if one no longer matches
  (:class:`~mes.errors.Fenced`): a controller that lost a cell cannot write as its owner
  any more, however late its write arrives. The
  check holds its lease rows ``FOR SHARE`` until the batch commits, so a takeover
  waits for it rather than slipping in between.
* **Custody.** Only the unit's *custodian* may change a unit and its steps; a batch
  names its writer (:attr:`Changes.writer`) and is refused if it touches a unit in
  another's custody. Custody of free units (no custodian, or a gone one) is claimed in
  one short transaction with ``FOR UPDATE SKIP LOCKED`` (two claimers never wait for
  each other and never get the same unit), which also reads the units fresh: the
  custodian's copy in memory is the truth until it lets go.
* **Wake-ups.** Letting units go and releasing orders ``NOTIFY mes_work`` (sent at
  commit); :meth:`SharingStore.listen` wakes a controller on it, polling is the fallback.

Times are the database's on PostgreSQL (one clock for every controller) and this
process's on SQLite (one machine).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, exists, func, insert, select, text, update

from mes.domain import StepState, Unit
from mes.errors import Fenced
from mes.store.rows import _step, _unit
from mes.store.tables import CONTROLLERS, COUNTER, LEASES, STEPS, UNITS
from mes.store.watching import _FINISHED

_ON_CELL = (StepState.DISPATCHED.value, StepState.RUNNING.value)


@dataclass(frozen=True, slots=True)
class Member:
    """A controller as the database knows it."""

    id: str
    name: str
    host: str
    pid: int
    cells: list[str]
    heartbeat_at: datetime
    alive: bool


class SharingStore:
    """Members, leases and custody (see the module docstring)."""

    engine: Engine  # provided by Store

    @property
    def is_sqlite(self) -> bool:  # provided by Store
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    # -- members ------------------------------------------------------------------------

    def join(
        self, me: str, name: str, host: str, cells: Iterable[str], plant: Iterable[str]
    ) -> None:
        """Register controller ``me`` (wanting ``cells``; empty: any), and a lease row
        for every cell of the plant that has none yet."""
        with self._write() as conn:
            now = self._now(conn)
            old = now - timedelta(days=1)
            stale = (CONTROLLERS.c.stopped_at < old) | (CONTROLLERS.c.heartbeat_at < old)
            forgotten = select(CONTROLLERS.c.id).where(stale)
            conn.execute(update(UNITS).where(UNITS.c.custodian.in_(forgotten)).values(custodian=""))
            conn.execute(delete(CONTROLLERS).where(stale))
            conn.execute(
                insert(CONTROLLERS),
                [
                    {
                        "id": me,
                        "name": name,
                        "host": host,
                        "pid": os.getpid(),
                        "cells": sorted(cells),
                        "started_at": now,
                        "heartbeat_at": now,
                    }
                ],
            )
            known = set(conn.execute(select(LEASES.c.cell)).scalars())
            missing = sorted(set(plant) - known)
            if missing:
                conn.execute(
                    insert(LEASES),
                    [{"cell": c, "owner": "", "token": 0} for c in missing],
                )

    def leave(self, me: str) -> None:
        """Controller ``me`` stops: its leases and the custody of its units not on a cell
        are free at once (a job on a cell stays with whoever takes the cell)."""
        with self._write() as conn:
            now = self._now(conn)
            conn.execute(update(CONTROLLERS).where(CONTROLLERS.c.id == me).values(stopped_at=now))
            conn.execute(update(LEASES).where(LEASES.c.owner == me).values(owner=""))
            conn.execute(
                update(UNITS).where(UNITS.c.custodian == me, ~_on_a_cell()).values(custodian="")
            )

    def members(self, ttl_s: float, host: str) -> list[Member]:
        """Every controller that has not stopped, with whether it is alive."""
        with self._read() as conn:
            return list(self._members(conn, ttl_s, host))

    def _members(self, conn: Connection, ttl_s: float, host: str) -> Iterator[Member]:
        now = self._now(conn)
        rows = conn.execute(select(CONTROLLERS).where(CONTROLLERS.c.stopped_at.is_(None)))
        for r in rows:
            alive = r.heartbeat_at > now - timedelta(seconds=ttl_s) and (
                r.host != host or _process_exists(r.pid)
            )
            yield Member(r.id, r.name, r.host, r.pid, list(r.cells), r.heartbeat_at, alive)

    def _live(self, conn: Connection, me: str, ttl_s: float, host: str) -> set[str]:
        """Ids of the members alive now, ``me`` among them: nothing is taken from them."""
        return {m.id for m in self._members(conn, ttl_s, host) if m.alive} | {me}

    def _gone(self, conn: Connection, me: str, ttl_s: float, host: str) -> set[str]:
        """Ids of the controllers that are not alive (stopped, silent, or their process
        gone): their leases and units may be taken. A controller's row is kept a day
        after it ends, and its units let go when the row goes (:meth:`join`)."""
        live = self._live(conn, me, ttl_s, host)
        return set(conn.execute(select(CONTROLLERS.c.id)).scalars()) - live

    # -- leases -------------------------------------------------------------------------

    def heartbeat(self, me: str, leases: Mapping[str, int]) -> set[str]:
        """Beat ``me``'s heart (its leases live as long as it does).

        Returns:
            The cells whose lease ``me`` no longer holds (taken by another, token moved).
        """
        with self._write() as conn:
            now = self._now(conn)
            conn.execute(update(CONTROLLERS).where(CONTROLLERS.c.id == me).values(heartbeat_at=now))
            rows = conn.execute(
                select(LEASES.c.cell, LEASES.c.owner, LEASES.c.token).where(
                    LEASES.c.cell.in_(sorted(leases))
                )
            )
            return {r.cell for r in rows if r.owner != me or r.token != leases[r.cell]}

    def acquire(
        self, me: str, cells: Sequence[str], ttl_s: float, host: str, limit: int
    ) -> dict[str, int]:
        """Take up to ``limit`` of ``cells`` whose lease is free or held by a gone member,
        in the order given; each with a new fencing token.

        Returns:
            Cell -> token, for the cells taken.
        """
        if limit <= 0 or not cells:
            return {}
        with self._write() as conn:
            now = self._now(conn)
            live = self._live(conn, me, ttl_s, host)
            query = (
                select(LEASES.c.cell, LEASES.c.owner)
                .where(LEASES.c.cell.in_(sorted(cells)))
                .order_by(LEASES.c.cell)
                .with_for_update(skip_locked=True)
            )
            takeable = {r.cell for r in conn.execute(query) if r.owner not in live}
            free = [c for c in cells if c in takeable][:limit]
            taken = {}
            for cell in free:
                token = _next_fence(conn)
                conn.execute(
                    update(LEASES)
                    .where(LEASES.c.cell == cell)
                    .values(owner=me, token=token, acquired_at=now)
                )
                taken[cell] = token
        return taken

    def give_up(self, me: str, cells: Iterable[str]) -> None:
        """Free ``me``'s leases of ``cells`` (handing them to whoever wants them)."""
        with self._write() as conn:
            conn.execute(
                update(LEASES)
                .where(LEASES.c.owner == me, LEASES.c.cell.in_(sorted(cells)))
                .values(owner="")
            )

    def leases(self) -> dict[str, dict[str, Any]]:
        """Every lease row, by cell."""
        with self._read() as conn:
            return {r.cell: dict(r._mapping) for r in conn.execute(select(LEASES))}

    # -- custody ------------------------------------------------------------------------

    def claim_units(
        self,
        me: str,
        ttl_s: float,
        host: str,
        *,
        capabilities: Collection[str] | None = None,
        ids: Collection[str] | None = None,
        on_cells: Collection[str] | None = None,
        exclude: Collection[str] = (),
        limit: int | None = None,
    ) -> list[Unit]:
        """Take custody of unfinished units that are free (no custodian, or a gone one),
        locked with ``SKIP LOCKED`` so concurrent claimers never share one, and
        read them fresh.

        Args:
            capabilities: only units with a ready step needing one of these.
            ids: only these units.
            on_cells: only units with a job on one of these cells (a cell taken over);
                without it, only units with no job on any cell.
            exclude: not these (already in hand).
            limit: at most this many, oldest release first.
        """

        def candidates(conn: Connection) -> Any:
            gone = self._gone(conn, me, ttl_s, host)
            free = UNITS.c.custodian == ""
            if gone:  # two index lookups, not a scan of every unit's custodian
                free = free | UNITS.c.custodian.in_(sorted(gone))
            query = select(UNITS.c.id).where(free, UNITS.c.state.not_in(_FINISHED))
            if capabilities is not None:
                query = query.where(
                    exists().where(
                        STEPS.c.unit_id == UNITS.c.id,
                        STEPS.c.state == StepState.READY.value,
                        STEPS.c.capability.in_(sorted(capabilities)),
                    )
                )
            if ids is not None:
                query = query.where(UNITS.c.id.in_(sorted(ids)))
            if on_cells is not None:
                query = query.where(_on_a_cell(on_cells))
            else:  # a unit with a job on a cell comes only with the cell
                query = query.where(~_on_a_cell())
            if exclude:
                query = query.where(UNITS.c.id.not_in(sorted(exclude)))
            return query.order_by(UNITS.c.released_at, UNITS.c.id).limit(limit)

        # Look first without a lock (SQLite's write lock would stall the recorder once a
        # second for nothing); take only when there is something to take.
        with self._read() as conn:
            if conn.execute(candidates(conn).limit(1)).first() is None:
                return []
        with self._write() as conn:
            query = candidates(conn).with_for_update(skip_locked=True)
            taken = list(conn.execute(query).scalars())
            if not taken:
                return []
            conn.execute(update(UNITS).where(UNITS.c.id.in_(taken)).values(custodian=me))
            return _load(conn, taken)

    def custody(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Unit id -> (its custodian, "" : none; its state), for the units that exist."""
        with self._read() as conn:
            query = select(UNITS.c.id, UNITS.c.custodian, UNITS.c.state).where(
                UNITS.c.id.in_(sorted(ids))
            )
            return {r.id: (r.custodian, r.state) for r in conn.execute(query)}

    # -- wake-ups -------------------------------------------------------------------------

    def listen(self, wake: Callable[[str], object]) -> Callable[[], None]:
        """Call ``wake`` with what happened, ``work`` or ``request`` (see :func:`notify`),
        from a thread of its own (PostgreSQL ``LISTEN``; reconnects on its own). Returns
        the function that stops listening. On SQLite nothing ever calls ``wake``: the
        controller polls."""
        if self.is_sqlite:
            return lambda: None
        import psycopg

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                try:
                    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                        conn.execute("LISTEN mes_work")
                        while not stop.is_set():
                            for note in conn.notifies(timeout=0.5, stop_after=1):
                                if not stop.is_set():
                                    wake(note.payload)
                except psycopg.Error:
                    stop.wait(1.0)  # the database is away: the controller polls meanwhile

        threading.Thread(target=run, name="mes-listen", daemon=True).start()
        return stop.set

    # -- time -----------------------------------------------------------------------------

    def _now(self, conn: Connection) -> datetime:
        if self.is_sqlite:
            return datetime.now(UTC)
        value = conn.execute(select(func.now())).scalar_one()
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def _on_a_cell(cells: Collection[str] | None = None) -> Any:
    """A unit with a step dispatched to or running on a cell (one of ``cells``)."""
    where = [STEPS.c.unit_id == UNITS.c.id, STEPS.c.state.in_(_ON_CELL)]
    if cells is not None:
        where.append(STEPS.c.cell.in_(sorted(cells)))
    return exists().where(*where)


def _next_fence(conn: Connection) -> int:
    conn.execute(update(COUNTER).where(COUNTER.c.name == "fence").values(value=COUNTER.c.value + 1))
    return int(conn.execute(select(COUNTER.c.value).where(COUNTER.c.name == "fence")).scalar_one())


def _load(conn: Connection, ids: list[str]) -> list[Unit]:
    units = {
        r.id: _unit(r)
        for r in conn.execute(
            select(UNITS).where(UNITS.c.id.in_(ids)).order_by(UNITS.c.released_at, UNITS.c.id)
        )
    }
    steps = select(STEPS).where(STEPS.c.unit_id.in_(ids)).order_by(STEPS.c.unit_id, STEPS.c.seq)
    for r in conn.execute(steps):
        units[r.unit_id].steps.append(_step(r))
    return list(units.values())


def check_fences(conn: Connection, fences: Mapping[str, int]) -> None:
    """Refuse a batch that names a lease token no longer current.

    Raises:
        Fenced: a cell's lease moved on (its owner and token now).
    """
    rows = conn.execute(
        select(LEASES.c.cell, LEASES.c.owner, LEASES.c.token)
        .where(LEASES.c.cell.in_(sorted(fences)))
        .with_for_update(read=True)
    )
    stale = [r for r in rows if r.token != fences[r.cell]]
    if stale:
        raise Fenced(
            "lost the lease of "
            + ", ".join(f"{r.cell} (now {r.owner or 'free'}, token {r.token})" for r in stale)
        )


def check_custody(conn: Connection, writer: str, unit_ids: Collection[str]) -> None:
    """Refuse a batch from ``writer`` that touches a unit in another's custody.

    Raises:
        Fenced: a unit's custodian is another controller.
    """
    if not unit_ids:
        return
    rows = conn.execute(
        select(UNITS.c.id, UNITS.c.custodian)
        .where(UNITS.c.id.in_(sorted(unit_ids)), UNITS.c.custodian != writer)
        .with_for_update()
    ).all()
    if rows:
        raise Fenced(
            "lost custody of "
            + ", ".join(f"{r.id} (now {r.custodian or 'nobody'})" for r in rows[:5])
            + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        )


def notify(conn: Connection, what: str = "work") -> None:
    """Wake the controllers (PostgreSQL ``NOTIFY``, sent at commit): ``work`` when units
    became free to take, ``request`` when an operator asked for something."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify('mes_work', :what)"), {"what": what})


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
