"""Programs for the cells, made ready before they are needed.

A step names its program by content hash. Recipes are handed over as stored; a
generator call (``ProgramKind.GENERATOR``) is made into G-code in a worker thread, so
the event loop never waits on toolpaths, and the G-code is stored content-addressed too,
so the job (the as-built record) names the exact program the cell ran. Making starts
when a step becomes ready (:meth:`ProgramCache.prefetch`), so by the time a cell frees
up the G-code is usually there and dispatch does not stall.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from mes.domain import Program, ProgramKind
from mes.store import Store
from routing.planner import materialize


class ProgramCache:
    """Program id -> the program a cell gets, made at most once, kept for the recent ones."""

    def __init__(self, store: Store, size: int = 2048) -> None:
        self.store = store
        self.size = size
        self._made: OrderedDict[str, asyncio.Future[Program]] = OrderedDict()
        #: Programs of the units in progress as stored (recipes, generator calls): read
        #: in bulk when units are adopted, dropped when they finish. Small, unlike G-code.
        self._stored: dict[str, Program] = {}

    def preload(self, programs: dict[str, Program]) -> None:
        """Keep these stored programs: their steps need no read of their own."""
        self._stored.update(programs)

    def drop(self, program_ids: list[str]) -> None:
        for program_id in program_ids:
            self._stored.pop(program_id, None)

    def prefetch(self, program_id: str) -> asyncio.Future[Program]:
        """Start making ``program_id`` now, without waiting for it; the future tells when
        it is made (or why it cannot be)."""
        return self._future(program_id)

    async def get(self, program_id: str) -> Program:
        """The program to hand to a cell for ``program_id``.

        Raises:
            ValueError: the generator refused the parameters (the reason says why).
            StoreError: the store failed.
        """
        return await asyncio.shield(self._future(program_id))

    def _future(self, program_id: str) -> asyncio.Future[Program]:
        stored = self._stored.get(program_id)
        if stored is not None and stored.kind is not ProgramKind.GENERATOR:
            ready: asyncio.Future[Program] = asyncio.get_running_loop().create_future()
            ready.set_result(stored)
            return ready
        future = self._made.get(program_id)
        if future is None or (future.done() and future.exception() is not None):
            future = asyncio.ensure_future(self._make(program_id))
            self._made[program_id] = future
            while len(self._made) > self.size:
                self._made.popitem(last=False)
        else:
            self._made.move_to_end(program_id)
        return future

    async def _make(self, program_id: str) -> Program:
        stored = self._stored.get(program_id)
        if stored is None:
            stored = await asyncio.to_thread(self.store.program, program_id)
        if stored.kind is not ProgramKind.GENERATOR:
            return stored
        made = await asyncio.to_thread(materialize, stored)
        await asyncio.to_thread(self.store.add_programs, [made])
        return made
