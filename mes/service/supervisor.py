"""One supervisor task per cell: the only code that awaits that cell's driver.

Theory of operation: connect (retrying with capped exponential backoff and jitter),
ask the cell for its status and let the controller reconcile, then take actions from
the inbox one at a time: ``start`` hands a job over and follows it, ``follow`` only
follows a job the cell already runs (after a restart). Every outcome goes back to the
controller, which decides and records; the supervisor itself keeps no plant state.
Losing the link ends whatever it was doing; the controller marks the cell offline and
reconciles again on reconnect, so a job is never handed over twice blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from drivers.base import Driver
from mes.domain.job import Job, JobFaulted, JobProgress
from mes.errors import DeviceFault, DeviceUnavailable, JobRejected
from mes.service.crashpoints import crash_point

if TYPE_CHECKING:
    from mes.service.controller import Controller

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Action:
    """What the controller asks a supervisor to do with a job."""

    kind: Literal["start", "follow"]
    job: Job


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: doubling from ``first_s`` up to ``cap_s``, with +-``jitter``."""

    first_s: float = 0.5
    cap_s: float = 30.0
    jitter: float = 0.2

    def delays(self, rng: random.Random) -> list[float]:
        out, delay = [], self.first_s
        while delay < self.cap_s:
            out.append(delay)
            delay *= 2
        out.append(self.cap_s)
        return [d * (1 + rng.uniform(-self.jitter, self.jitter)) for d in out]


class CellSupervisor:
    """Drives one cell through its driver on behalf of the controller."""

    def __init__(self, controller: Controller, name: str, driver: Driver, backoff: Backoff) -> None:
        self.controller = controller
        self.name = name
        self.driver = driver
        self.backoff = backoff
        self.inbox: asyncio.Queue[Action] = asyncio.Queue()
        self.connected = False
        self.busy = False
        self._rng = random.Random(name)

    async def run(self) -> None:
        """Supervise until cancelled."""
        attempt = 0
        delays = self.backoff.delays(self._rng)
        while True:
            try:
                await self.driver.connect()
                status = await self.driver.status()
                self.connected = True
                attempt = 0
                action = await self.controller.cell_connected(self.name, status)
                if action is not None:
                    await self._do(action)
                while True:
                    await self._do(await self._next_action())
            except DeviceUnavailable as exc:
                if self.connected or attempt == 0:
                    log.warning("cell %s: link lost: %s", self.name, exc)
                self.connected = False
                self.busy = False
                await self.controller.cell_lost(self.name, str(exc))
                await self.driver.aclose()
                await asyncio.sleep(delays[min(attempt, len(delays) - 1)])
                attempt += 1

    async def control(self, command: Literal["hold", "resume", "abort"]) -> None:
        """Pause, resume or abort the job the cell runs, while it is being followed.

        This is the one call into the driver that may run beside :meth:`run` (drivers
        serialize their own requests); the job's end still arrives through ``reports``.

        Raises:
            NotSupported: the cell cannot do that remotely.
            JobRejected: the cell refused (not running, already held...).
            DeviceUnavailable: the cell cannot be reached now.
        """
        if not self.connected:
            raise DeviceUnavailable(f"cell {self.name} is not connected")
        await getattr(self.driver, command)()

    async def _next_action(self) -> Action:
        """The next action, or DeviceUnavailable if the driver finds the link lost first."""
        if not self.inbox.empty():
            return self.inbox.get_nowait()
        get = asyncio.ensure_future(self.inbox.get())
        lost = asyncio.ensure_future(self.driver.link_lost())
        try:
            await asyncio.wait({get, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        with contextlib.suppress(asyncio.CancelledError):
            await lost
        raise DeviceUnavailable(f"cell {self.name}: link lost")

    async def _do(self, action: Action) -> None:
        job = action.job
        self.busy = True
        try:
            if action.kind == "start":
                try:
                    crash_point("handoff.before-write")
                    await self.driver.start_job(job)
                    crash_point("handoff.after-write")
                except JobRejected as exc:
                    await self.controller.job_rejected(self.name, job, str(exc))
                    return
                except DeviceFault as exc:
                    await self.controller.job_finished(
                        self.name, job, JobFaulted(job.job_id, exc.code, str(exc))
                    )
                    return
                await self.controller.job_accepted(self.name, job)
            async for report in self.driver.reports(job.job_id):
                if isinstance(report, JobProgress):
                    self.controller.job_progress(self.name, report)
                else:
                    await self.controller.job_finished(self.name, job, report)
        except JobRejected as exc:
            # The cell no longer knows a job it was running: its fate is unknown.
            await self.controller.job_lost(self.name, job, str(exc))
        finally:
            self.busy = False
