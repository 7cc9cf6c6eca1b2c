"""This controller among others on one database: which cells it drives (leases) and
which units it may change (custody). Decisions only; the controller acts on them.

Theory of operation (the store's side is :mod:`mes.store.sharing`):

* **Joining.** A run registers as a member with a fresh id (``<name>.<8 hex>``); the
  journal names the controller by ``name``.
* **Heartbeat.** Every ``heartbeat_s`` a thread of its own beats for the member, which
  keeps its leases: a busy event loop does not make a live controller look dead. It
  beats only while the event loop still answers (within half the lease time), so a
  controller whose loop is stuck lets its cells go. A lease the member no longer holds
  means another controller took the cell after this one stalled for longer than
  ``ttl_beats`` heartbeats: the fencing token already refuses this one's writes, and the
  controller stops rather than drive a cell that is not its own.
* **Survey.** As often, on the event loop, the member looks at who is alive and takes
  free cells: all it wants when cells are named (``--cells``), otherwise up to its fair
  share of the plant among the live members; it gives back idle cells above that share,
  so a controller that (re)joins gets work.
* **Custody.** Alone, a controller takes every free unit. With others alive it takes
  only units with a ready step its cells can do, ``claim_ahead`` per capable cell, and
  lets go of a unit whose ready step waited ``handoff_s`` for its cells, or that needs
  a capability it lacks: so work flows to whoever has a free cell for it.
* **Fencing.** Every batch the recorder commits is stamped with this member as writer
  and the tokens of the cells it touches (:meth:`Membership.stamp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from mes.domain import Unit
from mes.errors import Fenced, StoreError
from mes.store import Changes, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SharingOptions:
    """How a controller shares the plant with others (``mes run --name --cells``)."""

    name: str = "controller"
    #: The cells it may drive; None: any cell of the plant (up to a fair share).
    cells: frozenset[str] | None = None
    heartbeat_s: float = 2.0
    #: A lease runs out after this many heartbeats without renewal.
    ttl_beats: int = 3
    #: Units held ready per capable cell while other controllers are alive.
    claim_ahead: int = 4
    #: While others are alive, a unit whose ready step waited this long is let go.
    handoff_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat found."""

    gained: dict[str, int]
    """Cells newly leased, with their tokens: not in :attr:`Membership.leases` until the
    controller has taken them (:func:`mes.service.sharing.take_cells`), so no request is
    routed to a cell whose recorded hold is still being read."""
    excess: int
    """How many cells above its fair share this member holds (give back idle ones)."""


class Membership:
    """This controller's membership (see the module docstring)."""

    def __init__(
        self, store: Store, options: SharingOptions, plant: Mapping[str, frozenset[str]]
    ) -> None:
        self.store = store
        self.options = options
        self.capabilities = dict(plant)
        self.plant = sorted(plant)
        self.id = f"{options.name}.{uuid.uuid4().hex[:8]}"
        self.host = socket.gethostname()
        self.leases: dict[str, int] = {}
        #: Live members besides this one, as of the last heartbeat.
        self.others = 0
        #: This member answers requests nobody else is bound to (alarms, unknown units).
        self.leader = True
        #: Cells above its fair share: no new job; handed over once idle.
        self.draining: set[str] = set()
        #: The last claim found fewer free units than it wanted.
        self.dry = False
        self._tick = time.monotonic()  # the event loop's last sign of life
        self._stop_beating = threading.Event()

    @property
    def ttl_s(self) -> float:
        return self.options.heartbeat_s * self.options.ttl_beats

    @property
    def wanted(self) -> list[str]:
        if self.options.cells is None:
            return self.plant
        return [c for c in self.plant if c in self.options.cells]

    async def join(self, lost: Callable[[Exception], None]) -> None:
        """Register, and start beating; ``lost`` is called on the event loop with the
        reason when the member lost a lease or could not beat for the lease time."""
        await asyncio.to_thread(
            self.store.join,
            self.id,
            self.options.name,
            self.host,
            self.options.cells or (),
            self.plant,
        )
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self._tick = time.monotonic()
            if not self._stop_beating.is_set():
                loop.call_later(self.options.heartbeat_s / 2, tick)

        tick()

        def tell(exc: Exception) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody to tell
                loop.call_soon_threadsafe(lost, exc)

        threading.Thread(
            target=self._beat_forever,
            args=(tell,),
            name=f"heartbeat:{self.id}",
            daemon=True,
        ).start()

    def _beat_forever(self, lost: Callable[[Exception], object]) -> None:
        last_ok = time.monotonic()
        stalled = False
        while not self._stop_beating.wait(self.options.heartbeat_s):
            now = time.monotonic()
            if now - self._tick > self.ttl_s / 2:
                if not stalled:
                    log.warning("controller %s: event loop stalled; not beating", self.options.name)
                stalled = True
                continue
            stalled = False
            try:
                gone = self.store.heartbeat(self.id, self.leases.copy())
            except StoreError as exc:
                if now - last_ok > self.ttl_s:
                    lost(exc)
                    return
                continue
            last_ok = now
            if self._stop_beating.is_set():
                return  # left while beating: its leases are gone because it gave them up
            if gone:
                lost(
                    Fenced(
                        f"controller {self.options.name} lost the lease of "
                        f"{', '.join(sorted(gone))} to another controller (it stalled longer "
                        "than the lease); stopping"
                    )
                )
                return

    async def survey(self) -> Beat:
        """See who is alive and take free cells (all it wants, or a fair share)."""
        members = await asyncio.to_thread(self.store.members, self.ttl_s, self.host)
        alive = sorted(m.id for m in members if m.alive and m.id != self.id)
        self.others = len(alive)
        self.leader = not alive or self.id < alive[0]
        share = len(self.wanted)
        if self.options.cells is None:
            share = math.ceil(len(self.plant) / (1 + self.others))
        gained: dict[str, int] = {}
        if len(self.leases) < share:  # all it may hold already: nothing to look for
            wanted = self._preferred([c for c in self.wanted if c not in self.leases])
            gained = await asyncio.to_thread(
                self.store.acquire, self.id, wanted, self.ttl_s, self.host, share - len(self.leases)
            )
        return Beat(gained, max(0, len(self.leases) + len(gained) - share))

    def running_low(self, ready: int) -> bool:
        """Claiming in batches (others alive, or cells named): half the ready work a
        batch brings is gone, so claim more now rather than at the next poll (as
        :func:`mes.service.sharing.claim_work` does); unless the last claim found too few
        free units (then the next release or hand-off, or the next poll, says when)."""
        batched = bool(self.others) or self.options.cells is not None
        return (
            batched and not self.dry and ready <= self.options.claim_ahead * len(self.leases) // 2
        )

    def _preferred(self, cells: list[str]) -> list[str]:
        """``cells`` in the order to take them: a cell of each kind in turn, the kinds this
        member holds fewest of first, so that each controller can make whole units and
        units need not travel between controllers for each step."""
        held = Counter(self.capabilities[c] for c in self.leases)
        kinds: dict[frozenset[str], list[str]] = {}
        for cell in sorted(cells):
            kinds.setdefault(self.capabilities[cell], []).append(cell)
        order = sorted(kinds, key=lambda k: (held[k], sorted(k)))
        return [
            cell
            for turn in itertools.zip_longest(*(kinds[k] for k in order))
            for cell in turn
            if cell is not None
        ]

    async def give_up(self, cells: Collection[str]) -> None:
        for cell in cells:
            self.leases.pop(cell, None)
            self.draining.discard(cell)
        await asyncio.to_thread(self.store.give_up, self.id, cells)

    async def leave(self) -> None:
        """Stop beating; free the leases and the units not on a cell."""
        self._stop_beating.set()
        self.leases.clear()
        with contextlib.suppress(StoreError):
            await asyncio.to_thread(self.store.leave, self.id)

    async def claim(
        self,
        *,
        capabilities: Collection[str] | None = None,
        ids: Collection[str] | None = None,
        on_cells: Collection[str] | None = None,
        exclude: Collection[str] = (),
        limit: int | None = None,
    ) -> list[Unit]:
        """Take custody of free units (see :meth:`Store.claim_units`)."""
        return await asyncio.to_thread(
            lambda: self.store.claim_units(
                self.id,
                self.ttl_s,
                self.host,
                capabilities=capabilities,
                ids=ids,
                on_cells=on_cells,
                exclude=exclude,
                limit=limit,
            )
        )

    def stamp(self, changes: Changes) -> None:
        """Name this member as the batch's writer, with the tokens of its cells touched."""
        changes.writer = self.id
        touched = set(changes.cells) | {s.cell for s in changes.steps.values() if s.cell}
        changes.fences = {c: self.leases[c] for c in touched if c in self.leases}
