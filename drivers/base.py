"""The one driver interface every cell speaks, whatever the wire underneath.

Theory of operation: the supervisor of a cell ``connect()``s, asks ``status()`` (to
reconcile after a restart), hands over a job with ``start_job()`` (which returns once
the cell has accepted it and echoed its job id) and follows it with ``reports()`` until
the job completes or faults. Drivers return domain values (:mod:`mes.domain.job`),
never library types; they translate library exceptions into :mod:`mes.errors` at this
boundary (``raise ... from exc``); they do not retry (the supervisor does, with
backoff) and never touch the store or the UI.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from mes.domain.job import CellStatus, Job, JobReport, Reading
from mes.errors import NotSupported


class Driver(ABC):
    """A connection to one cell."""

    #: The ``kind`` that selects this driver in the plant config.
    kind: ClassVar[str]
    #: Whether the cell itself knows the job ids it was given, across the controller's
    #: restarts (a PLC's registers, a machine object): then a hand-off recorded but
    #: perhaps never delivered is safely handed over again under the same id. A streamed
    #: serial machine forgets with its host: such a hand-off may have started, so it is
    #: treated as interrupted instead, never sent twice.
    remembers_jobs: ClassVar[bool] = True

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def connect(self) -> None:
        """Open the link to the cell.

        Raises:
            DeviceUnavailable: the cell cannot be reached now.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close the link. Never raises; a job running on the cell keeps running."""

    @abstractmethod
    async def status(self) -> CellStatus:
        """The cell's state, its current job and the last job it finished.

        Raises:
            DeviceUnavailable: the cell cannot be reached now.
        """

    @abstractmethod
    async def start_job(self, job: Job) -> None:
        """Hand ``job`` to the cell; return once the cell has accepted it (echoed its id).

        Raises:
            JobRejected: the cell refused the job (busy, bad program, wrong id echoed).
            DeviceFault: the cell is faulted.
            DeviceUnavailable: the cell cannot be reached now; the job may or may not
                have arrived, so ask ``status()`` before handing it over again.
        """

    @abstractmethod
    def reports(self, job_id: int) -> AsyncIterator[JobReport]:
        """Follow job ``job_id`` to its end: progress, then one completion or fault.

        Also follows a job that was started before a restart, if the cell still has it.

        Raises:
            JobRejected: the cell does not know this job.
            DeviceUnavailable: the link was lost; the job's fate is unknown.
        """

    def readings(self) -> Mapping[str, Reading]:
        """The cell's latest sensor readings by name ("hotend", "bed"...), as last heard
        from it; empty for a cell that reports none. Never raises, never waits."""
        return {}

    async def link_lost(self) -> None:
        """Wait until the link is found lost while no job is being followed.

        Drivers that watch their cell between jobs (polling a PLC's heartbeat) return by
        raising; the default never returns, and a lost link shows at the next call.

        Raises:
            DeviceUnavailable: the link was lost or the cell went stale.
        """
        await asyncio.Event().wait()

    async def hold(self) -> None:
        """Pause the running job at a safe point.

        Raises:
            NotSupported: the cell cannot pause.
        """
        raise NotSupported(f"{self.kind} cell {self.name} cannot hold")

    async def resume(self) -> None:
        """Resume a held job.

        Raises:
            NotSupported: the cell cannot pause.
        """
        raise NotSupported(f"{self.kind} cell {self.name} cannot resume")

    async def abort(self) -> None:
        """Stop the running job; it ends with a fault report.

        Raises:
            NotSupported: the cell cannot be aborted remotely.
        """
        raise NotSupported(f"{self.kind} cell {self.name} cannot abort")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
