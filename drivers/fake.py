"""An in-memory cell driven by the test: it does what the test says, when the test says.

``FakeDriver`` accepts jobs and then waits; the test ends them with :meth:`complete` or
:meth:`fault`, drops the link with :meth:`disconnect`, and awaits :meth:`next_started`
to learn that a job was handed over, so service tests need no sleeps. Its memory can
be preset (``running``, ``last``) to play a cell that a restarted controller finds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from drivers.base import Driver
from mes.domain.job import (
    CellStatus,
    Job,
    JobCompleted,
    JobFaulted,
    JobProgress,
    JobReport,
    MachineState,
)
from mes.errors import DeviceUnavailable, JobRejected


class FakeDriver(Driver):
    """A scripted cell for service tests."""

    kind = "fake"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.reachable = True
        self.connected = False
        self.running: int | None = None
        self.last: JobCompleted | JobFaulted | None = None
        self.started: list[Job] = []
        self._started_q: asyncio.Queue[Job] = asyncio.Queue()
        self._reports: dict[int, asyncio.Queue[JobReport | None]] = {}
        self.connects = 0
        #: When set, every job is refused with this reason (a program the cell won't take).
        self.refuse: str | None = None
        self.refused: list[Job] = []

    # -- what the test does ------------------------------------------------------------

    async def next_started(self) -> Job:
        """The next job handed to this cell (wrap in ``asyncio.timeout`` in tests)."""
        return await self._started_q.get()

    def progress(self, job_id: int, fraction: float) -> None:
        self._queue(job_id).put_nowait(JobProgress(job_id, fraction))

    def complete(self, job_id: int, **measurements: float) -> None:
        self._end(JobCompleted(job_id, dict(measurements)))

    def fault(self, job_id: int, code: str = "E1", text: str = "fault") -> None:
        self._end(JobFaulted(job_id, code, text))

    def disconnect(self) -> None:
        """Drop the link: followers see DeviceUnavailable; connect fails until reconnect."""
        self.reachable = False
        self.connected = False
        for queue in self._reports.values():
            queue.put_nowait(None)

    def reconnect(self) -> None:
        self.reachable = True

    def _end(self, report: JobCompleted | JobFaulted) -> None:
        self.running = None
        self.last = report
        self._queue(report.job_id).put_nowait(report)

    def _queue(self, job_id: int) -> asyncio.Queue[JobReport | None]:
        return self._reports.setdefault(job_id, asyncio.Queue())

    # -- the driver interface ------------------------------------------------------------

    async def connect(self) -> None:
        if not self.reachable:
            raise DeviceUnavailable(f"fake cell {self.name} unreachable")
        self.connected = True
        self.connects += 1

    async def aclose(self) -> None:
        self.connected = False

    def _check(self) -> None:
        if not self.connected:
            raise DeviceUnavailable(f"fake cell {self.name} not connected")

    async def status(self) -> CellStatus:
        self._check()
        return CellStatus(
            MachineState.EXECUTE if self.running is not None else MachineState.IDLE,
            job_id=self.running,
            last_job_id=self.last.job_id if self.last else None,
            last_report=self.last,
        )

    async def start_job(self, job: Job) -> None:
        self._check()
        if self.refuse is not None:
            self.refused.append(job)
            raise JobRejected(self.refuse)
        if self.running is not None:
            raise JobRejected(f"busy with job {self.running}")
        if any(j.job_id == job.job_id for j in self.started):
            raise JobRejected(f"job {job.job_id} already ran here")
        self.running = job.job_id
        self.started.append(job)
        self._started_q.put_nowait(job)

    async def reports(self, job_id: int) -> AsyncIterator[JobReport]:
        self._check()
        known = self.running == job_id or (self.last and self.last.job_id == job_id)
        if not known and job_id not in self._reports:
            raise JobRejected(f"fake cell {self.name} does not know job {job_id}")
        queue = self._queue(job_id)
        while True:
            report = await queue.get()
            if report is None:
                raise DeviceUnavailable(f"fake cell {self.name} link lost")
            yield report
            if not isinstance(report, JobProgress):
                return
