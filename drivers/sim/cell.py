"""An in-process simulated cell behind the real driver interface.

Theory of operation: a job runs for its expected duration divided by ``speed`` (so
``speed=100`` runs a 10-minute print in 6 s), with a little seeded jitter; with
probability ``fault_rate`` it faults part-way with a code and text, as a machine would.
Progress is reported about ten times per job. The cell runs one job at a time and
refuses a second; it remembers its last finished job, so ``status()`` can reconcile a
controller that reconnects. Everything is in memory: when the process dies, so does
the cell and the job it ran, which is exactly what recovery must cope with.
"""

from __future__ import annotations

import asyncio
import random
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

_FAULTS = (
    ("E101", "material runout"),
    ("E204", "spindle overload"),
    ("E310", "door opened during cycle"),
    ("E412", "part not detected"),
)


class SimCell(Driver):
    """A simulated cell with durations from the job, a speed factor and a fault rate."""

    kind = "sim"

    def __init__(
        self,
        name: str,
        *,
        speed: float = 1.0,
        fault_rate: float = 0.0,
        seed: int | str = 0,
        jitter: float = 0.1,
    ) -> None:
        super().__init__(name)
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self.fault_rate = fault_rate
        self.jitter = jitter
        self._rng = random.Random(f"{seed}:{name}")
        self._connected = False
        self._job: Job | None = None
        self._queue: asyncio.Queue[JobReport] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last: JobCompleted | JobFaulted | None = None
        #: Every job id this cell started, in order (what a test checks for repeats).
        self.executed: list[int] = []
        self._fault_now: tuple[str, str] | None = None
        self._running = asyncio.Event()  # cleared while held
        self._running.set()

    async def connect(self) -> None:
        self._connected = True

    async def aclose(self) -> None:
        self._connected = False

    def _check_link(self) -> None:
        if not self._connected:
            raise DeviceUnavailable(f"sim cell {self.name} is not connected")

    async def status(self) -> CellStatus:
        self._check_link()
        running = self._job is not None
        state = MachineState.EXECUTE if self._running.is_set() else MachineState.HELD
        return CellStatus(
            state=state if running else MachineState.IDLE,
            job_id=self._job.job_id if self._job else None,
            last_job_id=self._last.job_id if self._last else None,
            last_report=self._last,
        )

    async def start_job(self, job: Job) -> None:
        self._check_link()
        if self._job is not None:
            raise JobRejected(f"sim cell {self.name} is busy with job {self._job.job_id}")
        if job.job_id in self.executed:
            raise JobRejected(f"sim cell {self.name} already ran job {job.job_id}")
        self._job = job
        self._queue = asyncio.Queue()
        self.executed.append(job.job_id)
        self._task = asyncio.create_task(self._run(job, self._queue), name=f"sim:{self.name}")

    async def _run(self, job: Job, queue: asyncio.Queue[JobReport]) -> None:
        duration = job.expected_s / self.speed
        duration *= 1 + self._rng.uniform(-self.jitter, self.jitter)
        fault_at = self._rng.uniform(0.1, 0.9) if self._rng.random() < self.fault_rate else None
        ticks = 10 if duration > 0 else 0
        end: JobCompleted | JobFaulted = JobCompleted(
            job.job_id, {"cycle_s": round(job.expected_s, 3)}
        )
        for tick in range(1, ticks + 1):
            await asyncio.sleep(duration / ticks)
            await self._running.wait()
            fraction = tick / ticks
            if self._fault_now is not None or (fault_at is not None and fraction >= fault_at):
                code, text = self._fault_now or self._rng.choice(_FAULTS)
                self._fault_now = None
                end = JobFaulted(job.job_id, code, text)
                break
            if tick < ticks:
                queue.put_nowait(JobProgress(job.job_id, fraction))
        self._last = end
        self._job = None
        queue.put_nowait(end)

    async def hold(self) -> None:
        self._check_link()
        if self._job is None or not self._running.is_set():
            raise JobRejected(f"sim cell {self.name} has no running job to hold")
        self._running.clear()

    async def resume(self) -> None:
        self._check_link()
        if self._job is None or self._running.is_set():
            raise JobRejected(f"sim cell {self.name} is not held")
        self._running.set()

    async def abort(self) -> None:
        self._check_link()
        if self._job is None:
            raise JobRejected(f"sim cell {self.name} has no job to abort")
        self._fault_now = ("900", "job aborted")
        self._running.set()

    def inject_fault(self, code: str = "E999", text: str = "fault injected by a test") -> None:
        """Fault the running job at its next progress tick."""
        self._fault_now = (code, text)

    async def reports(self, job_id: int) -> AsyncIterator[JobReport]:
        self._check_link()
        if self._last is not None and self._last.job_id == job_id and self._job is None:
            yield self._last
            return
        if self._job is None or self._job.job_id != job_id or self._queue is None:
            raise JobRejected(f"sim cell {self.name} does not know job {job_id}")
        queue = self._queue
        while True:
            report = await queue.get()
            yield report
            if not isinstance(report, JobProgress):
                return
