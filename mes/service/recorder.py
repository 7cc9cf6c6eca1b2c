"""Group commit: every state change is durable before anyone acts on it, at full speed.

Callers ``await recorder.commit(changes)``; the recorder merges whatever has queued up
meanwhile into one transaction, runs it in a worker thread (the event loop never blocks
on disk), and wakes each caller only after that transaction has committed. Batches
commit in the order they were queued, so causality holds: a step's completion is
durable no later than the dispatch of the step after it. After commit, the journal
entries go to subscribers (progress lines). Messages for the outbox (MQTT) are made from
each merged batch by :attr:`Recorder.messages` and written in its transaction.

If a commit fails the recorder stops: every waiting and later caller gets the
:class:`~mes.errors.StoreError`, and the controller shuts down rather than act on state
it could not record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mes.domain import Event
from mes.errors import StoreError
from mes.store import Changes, Message, Store

log = logging.getLogger(__name__)

Subscriber = Callable[[list[Event]], None]
#: What a batch of changes tells the outside (outbox messages), made before it commits.
Messenger = Callable[[Changes], list[Message]]
#: Names the batch's writer and the lease tokens it writes under (shared plants).
Stamp = Callable[[Changes], None]


class Recorder:
    """Queue of pending batches and the one task that commits them."""

    def __init__(self, store: Store, max_batch: int = 2000) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: list[tuple[Changes, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._failed: StoreError | None = None
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.messages: Messenger | None = None
        self.stamp: Stamp | None = None
        #: Told once when a commit fails (the owner stops rather than act unrecorded).
        self.on_failure: Callable[[StoreError], None] | None = None

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback`` with the journal entries of every committed batch."""
        self._subscribers.append(callback)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def commit(self, changes: Changes) -> None:
        """Return once ``changes`` are durable.

        Raises:
            StoreError: the store failed; nothing more will be recorded.
        """
        await self.submit(changes)

    def submit(self, changes: Changes) -> asyncio.Future[None]:
        """Queue ``changes``; the future is done once they are durable.

        Everything queued later commits in the same transaction or after it, so a caller
        may decide its next move while this commits, as long as it acts only after a
        later commit (or this one) is done.

        Raises:
            StoreError: the store failed; nothing more will be recorded.
        """
        if self._failed is not None:
            raise self._failed
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((changes, future))
        self._wake.set()
        return future

    async def aclose(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._flush()
            if self._closing:
                return

    async def _flush(self) -> None:
        taken, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        batch = Changes()
        for changes, _ in taken:
            batch.merge(changes)
        try:
            if self.stamp is not None:
                self.stamp(batch)
            if self.messages is not None:
                batch.messages.extend(self.messages(batch))
            await asyncio.to_thread(self.store.apply, batch)
        except Exception as failure:  # anything: a recorder that dies silently hangs commits
            if isinstance(failure, StoreError):
                exc = failure
                log.error("store failed, stopping: %s", exc)
            else:
                exc = StoreError(f"recording failed: {failure!r}")
                log.exception("recording failed unexpectedly, stopping")
            self._failed = exc
            if self.on_failure is not None:
                self.on_failure(exc)
            for _, future in taken + self._pending:
                if not future.done():
                    future.set_exception(exc)
            self._pending = []
            return
        self.commits += 1
        for _, future in taken:
            if not future.done():
                future.set_result(None)
        if batch.events:
            for callback in self._subscribers:
                callback(batch.events)
