"""Blanks made ahead, in the store: releasing stock units, stock levels, a release taking
blanks, scrapping one. Mixed into :class:`~mes.store.Store`.

Theory of operation (the domain side is :mod:`mes.domain.stock`):

* **A blank row per stock unit**, written with it. Whether it is in stock or still being
  made is its unit's state (done or not), so finishing a stock unit needs no write of
  its own; a scrapped stock unit's blank is simply never in stock.
* **Taking blanks** happens inside a customer release's transaction
  (:func:`take_blanks`): the oldest blanks of the variant are locked ``FOR UPDATE OF
  blank SKIP LOCKED`` (PostgreSQL; SQLite writers are serialised anyway), marked
  consumed by the unit, and the unit's routing amended before it is inserted. Two
  releases, in any processes, never take the same blank, and neither waits for the
  other.
* **Replenishing** (:meth:`StockStore.replenish`) locks the ``stock`` counter row
  ``FOR UPDATE``, reads the levels and inserts what the caller decides in the same
  transaction: controllers filling the same targets take turns, so none overshoots.
  The counter numbers the stock orders (``STOCK-000012``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, update

from mes.domain import Event, Order, Program, StepState, Unit, UnitState
from mes.domain.stock import CONSUMED, IN_STOCK, SCRAPPED, Blank, take_blank, wants_blank
from mes.errors import DomainError, NotFound
from mes.store.rows import _insert_messages, _insert_programs, _row
from mes.store.sharing import notify
from mes.store.tables import BLANKS, COUNTER, EVENTS, ORDERS, PROGRAMS, STEPS, UNITS

if TYPE_CHECKING:
    from mes.store.repository import Message

#: What a replenisher stores: orders, their stock units, programs, journal entries.
StockRelease = tuple[list[Order], list[Unit], list[Program], list[Event]]
_DONE = UnitState.DONE.value
_LOST = (UnitState.SCRAPPED.value,)


@dataclass(frozen=True, slots=True)
class Level:
    """Blanks of one variant: in stock (made, not taken) and being made."""

    family: str
    variant: str
    in_stock: int = 0
    making: int = 0

    @property
    def total(self) -> int:
        """What a target is compared with: what is there and what is on its way."""
        return self.in_stock + self.making


Levels = dict[tuple[str, str], Level]
#: Given the levels and a source of new stock order ids, what to release (may be empty).
Decide = Callable[[Levels, Callable[[], str]], StockRelease]
#: What a release of stock units tells the outbox.
Told = Callable[[list[Unit], list[Event]], list["Message"]]


class StockStore:
    """Blanks (see the module docstring)."""

    def _write(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def replenish(self, decide: Decide, messages: Told | None = None) -> list[str]:
        """Release stock units as ``decide`` says, given the levels read under the stock
        lock (one replenisher at a time across processes); ``messages`` tells the outbox
        (MQTT) in the same transaction, as for a release.

        Returns:
            The ids of the stock units released.
        """
        with self._write() as conn:
            number = conn.execute(
                select(COUNTER.c.value).where(COUNTER.c.name == "stock").with_for_update()
            ).scalar_one()
            counter = [int(number)]

            def next_id() -> str:
                counter[0] += 1
                return f"STOCK-{counter[0]:06d}"

            orders, units, programs, events = decide(_levels(conn), next_id)
            if not units:
                return []
            _insert(conn, orders, units, programs, events)
            if messages is not None and (told := messages(list(units), list(events))):
                _insert_messages(conn, told)
            conn.execute(
                insert(BLANKS),
                [
                    {"unit_id": u.id, "family": u.family, "variant": u.variant, "state": IN_STOCK}
                    for u in units
                ],
            )
            conn.execute(update(COUNTER).where(COUNTER.c.name == "stock").values(value=counter[0]))
            notify(conn)
        return [u.id for u in units]

    def stock_levels(self) -> Levels:
        """Every variant with blanks in stock or being made."""
        with self._read() as conn:
            return _levels(conn)

    def blanks(
        self, *, states: Collection[str] = (IN_STOCK,), limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Blank rows in these states, newest first, with their unit's state, release and
        finish (``made_at``)."""
        query = (
            select(
                BLANKS,
                UNITS.c.state.label("unit_state"),
                UNITS.c.released_at,
                UNITS.c.finished_at.label("made_at"),
            )
            .join(UNITS, UNITS.c.id == BLANKS.c.unit_id)
            .where(BLANKS.c.state.in_(sorted(states)))
            .order_by(UNITS.c.released_at.desc(), BLANKS.c.unit_id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def blank_of(self, unit_id: str) -> dict[str, Any] | None:
        """The blank ``unit_id`` started from: id, variant, made_at, cells (or None)."""
        with self._read() as conn:
            row = conn.execute(
                select(BLANKS.c.unit_id, BLANKS.c.variant, BLANKS.c.changed_at).where(
                    BLANKS.c.consumed_by == unit_id
                )
            ).first()
            if row is None:
                return None
            made = _made(conn, [row.unit_id])[row.unit_id]
        return {
            "id": row.unit_id,
            "variant": row.variant,
            "made_at": made.made_at,
            "cells": list(made.cells),
            "taken_at": row.changed_at,
        }

    def scrap_blank(self, blank_id: str, at: datetime, actor: str, reason: str) -> None:
        """Take a blank in stock out of it for good (damaged, lost), with a journal entry.

        Raises:
            NotFound: no blank with that id.
            DomainError: it is not in stock (taken, scrapped, or still being made).
        """
        with self._write() as conn:
            row = conn.execute(
                select(BLANKS.c.state, BLANKS.c.consumed_by, UNITS.c.state.label("unit_state"))
                .join(UNITS, UNITS.c.id == BLANKS.c.unit_id)
                .where(BLANKS.c.unit_id == blank_id)
                .with_for_update(of=BLANKS)
            ).first()
            if row is None:
                raise NotFound(f"no blank {blank_id!r} (mes stock list)")
            if row.state == CONSUMED:
                raise DomainError(f"blank {blank_id} was taken by unit {row.consumed_by}")
            if row.state == SCRAPPED:
                raise DomainError(f"blank {blank_id} was scrapped already")
            if row.unit_state != _DONE:
                raise DomainError(
                    f"blank {blank_id} is not made ({row.unit_state}): scrap its unit instead "
                    f"(mes unit scrap {blank_id})"
                )
            conn.execute(
                update(BLANKS)
                .where(BLANKS.c.unit_id == blank_id)
                .values(state=SCRAPPED, changed_at=at)
            )
            event = Event(
                at, actor, "blank", blank_id, "scrap", IN_STOCK, SCRAPPED, {"reason": reason}
            )
            conn.execute(insert(EVENTS), [_row(EVENTS, event)])


def take_blanks(conn: Connection, units: Sequence[Unit], events: list[Event]) -> list[Event]:
    """In a release's transaction: give each unit that can start from a blank the oldest
    one of its variant in stock, locked so no other release takes it; amend the units
    (:func:`mes.domain.stock.take_blank`) and return the release's journal entries.

    Units take blanks in release order; those left without one run their generic steps.
    """
    wanting: dict[tuple[str, str], list[Unit]] = {}
    for unit in units:
        if wants_blank(unit):
            wanting.setdefault((unit.family, unit.variant), []).append(unit)
    actor = events[0].actor if events else "planner"
    for (family, variant), group in wanting.items():
        query = (
            select(BLANKS.c.unit_id)
            .join(UNITS, UNITS.c.id == BLANKS.c.unit_id)
            .where(
                BLANKS.c.family == family,
                BLANKS.c.variant == variant,
                BLANKS.c.state == IN_STOCK,
                UNITS.c.state == _DONE,
            )
            .order_by(UNITS.c.finished_at, BLANKS.c.unit_id)
            .limit(len(group))
            .with_for_update(of=BLANKS, skip_locked=True)
        )
        ids = list(conn.execute(query).scalars())
        if not ids:
            continue
        made = _made(conn, ids)
        for unit, blank_id in zip(group, ids, strict=False):
            events = take_blank(unit, made[blank_id], events, actor)
            conn.execute(
                update(BLANKS)
                .where(BLANKS.c.unit_id == blank_id)
                .values(state=CONSUMED, consumed_by=unit.id, changed_at=unit.released_at)
            )
    return events


def _made(conn: Connection, ids: Sequence[str]) -> Mapping[str, Blank]:
    """The blanks with these ids: when their stock unit finished, which cells made them."""
    rows = conn.execute(
        select(UNITS.c.id, UNITS.c.family, UNITS.c.variant, UNITS.c.finished_at).where(
            UNITS.c.id.in_(list(ids))
        )
    ).all()
    cells: dict[str, list[str]] = {}
    for unit_id, cell in conn.execute(
        select(STEPS.c.unit_id, STEPS.c.cell)
        .where(STEPS.c.unit_id.in_(list(ids)), STEPS.c.state == StepState.DONE.value)
        .order_by(STEPS.c.unit_id, STEPS.c.seq)
    ):
        if cell:
            cells.setdefault(unit_id, []).append(cell)
    return {
        r.id: Blank(r.id, r.family, r.variant, r.finished_at, tuple(cells.get(r.id, ())))
        for r in rows
    }


def _levels(conn: Connection) -> Levels:
    query = (
        select(BLANKS.c.family, BLANKS.c.variant, UNITS.c.state, func.count())
        .join(UNITS, UNITS.c.id == BLANKS.c.unit_id)
        .where(BLANKS.c.state == IN_STOCK, UNITS.c.state.not_in(_LOST))
        .group_by(BLANKS.c.family, BLANKS.c.variant, UNITS.c.state)
    )
    levels: Levels = {}
    for family, variant, state, count in conn.execute(query):
        level = levels.get((family, variant), Level(family, variant))
        if state == _DONE:
            level = Level(family, variant, level.in_stock + int(count), level.making)
        else:
            level = Level(family, variant, level.in_stock, level.making + int(count))
        levels[(family, variant)] = level
    return levels


def _insert(
    conn: Connection,
    orders: Sequence[Order],
    units: Sequence[Unit],
    programs: Sequence[Program],
    events: Sequence[Event],
) -> None:
    """Orders, units, steps, new programs and journal entries (as a release stores them)."""
    by_id = {p.id: p for p in programs}
    known = set(conn.execute(select(PROGRAMS.c.id).where(PROGRAMS.c.id.in_(list(by_id)))).scalars())
    fresh = [
        {"id": pid, "kind": p.kind.value, "body": p.body}
        for pid, p in by_id.items()
        if pid not in known
    ]
    conn.execute(insert(ORDERS), [_row(ORDERS, o) for o in orders])
    _insert_programs(conn, fresh)
    conn.execute(insert(UNITS), [_row(UNITS, u) for u in units])
    conn.execute(insert(STEPS), [_row(STEPS, s) for u in units for s in u.steps])
    if events:
        conn.execute(insert(EVENTS), [_row(EVENTS, e) for e in events])
