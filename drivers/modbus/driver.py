"""A cell driven through a PLC's registers: the job contract over Modbus.

Theory of operation (the PLC side is specified in ``docs/modbus.md``):

* **Poll.** While connected, a poll task reads the status block every ``poll_s`` in as
  few requests as the map allows and keeps the latest :class:`Snapshot`. A heartbeat
  that has not changed for ``heartbeat_timeout_s`` makes the PLC *stale*: the poll task
  ends with :class:`DeviceUnavailable`, which the supervisor sees through
  :meth:`ModbusCell.link_lost` (idle) or :meth:`ModbusCell.reports` (following a job).
* **Command.** A command is the command word plus a new sequence number; a start also
  carries the job id and the recipe, all in one FC16 write. The PLC acknowledges by
  echoing the sequence in ``ack``; what it made of the command (accepted job id, error
  code, state) is read after the echo. A start is idempotent by job id: before writing,
  the driver reads state, and a job the PLC already runs or has finished is not sent
  again. After a reconnect the sequence counter continues from the PLC's own register,
  and nothing is replayed blindly.
* **Safety.** Only points declared ``rw`` are written, after the codec's type and range
  checks (a refused value sends nothing). In read-only mode no write request is ever
  made: starting a job or any command raises before touching the wire.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from drivers.base import Driver
from drivers.modbus.codec import (
    Block,
    CodecError,
    Point,
    check_write,
    decode,
    plan_reads,
    plan_write,
)
from drivers.modbus.link import ModbusLink
from drivers.modbus.plcmap import PlcMap, Value
from mes.domain.job import (
    REFUSALS,
    CellStatus,
    Job,
    JobCompleted,
    JobFaulted,
    JobOutcome,
    JobProgress,
    JobReport,
    MachineState,
    ProgramKind,
)
from mes.errors import DeviceUnavailable, JobRejected, NotSupported

log = logging.getLogger(__name__)

#: How often the driver looks for the acknowledgement of a command it just wrote.
ACK_POLL_S = 0.005


@dataclass(frozen=True, slots=True)
class ModbusSettings:
    """How one cell is polled and commanded (from its driver config)."""

    device_id: int = 1
    poll_s: float = 0.1
    ack_timeout_s: float = 5.0
    heartbeat_timeout_s: float = 3.0
    max_registers: int = 125
    span_gaps: int = 0
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The status block as read at ``at`` (loop time)."""

    at: float
    state: MachineState
    code: int
    ack: int
    job_id: int
    last_job_id: int
    outcome: int
    error: int
    progress: float | None
    heartbeat: int | None
    #: Point name -> value as read (the results too, where they come with each poll).
    values: Mapping[str, Value]


class ModbusCell(Driver):
    """One PLC behind a (possibly shared) Modbus link."""

    kind = "modbus"

    def __init__(
        self, name: str, link: ModbusLink, plc: PlcMap, settings: ModbusSettings | None = None
    ) -> None:
        super().__init__(name)
        self.link = link
        self.plc = plc
        self.settings = settings or ModbusSettings()
        s = self.settings
        self._status_blocks = plc.status_reads(max_registers=s.max_registers, span_gaps=s.span_gaps)
        self._result_blocks = plc.result_reads(max_registers=s.max_registers, span_gaps=s.span_gaps)
        # Results that fit in the status requests come with every poll: read in the same
        # request as the outcome (the PLC writes them in one scan), no extra round trip.
        both = plan_reads(
            plc.status_points() + list(plc.results.values()),
            max_registers=s.max_registers,
            span_gaps=s.span_gaps,
        )
        self._results_polled = len(both) <= len(self._status_blocks)
        if self._results_polled:
            self._status_blocks = both
        self._acquired = False
        self._poller: asyncio.Task[None] | None = None
        self._snapshot: Snapshot | None = None
        self._changed = asyncio.Condition()
        self._failure: DeviceUnavailable | None = None
        self._seq = 0
        self._beat: tuple[int | None, float] = (None, 0.0)

    # -- link -------------------------------------------------------------------------

    async def connect(self) -> None:
        if not self._acquired:
            await self.link.acquire()
            self._acquired = True
        else:
            await self.link.open()
        self._failure = None
        self._snapshot = None
        first = await self._read_status()
        self._beat = (first.heartbeat, first.at)
        if not self.settings.read_only:
            sequence = await self._read_point(self.plc.point("sequence"))
            self._seq = int(sequence)
        self._snapshot = first
        self._poller = asyncio.create_task(self._poll(), name=f"modbus-poll:{self.name}")

    async def aclose(self) -> None:
        if self._poller is not None:
            # Not ``await poller``: that could swallow a cancellation of our caller.
            poller, self._poller = self._poller, None
            while not poller.done():
                poller.cancel()
                await asyncio.wait({poller}, timeout=1.0)
        if self._acquired:
            self._acquired = False
            await self.link.release()

    async def link_lost(self) -> None:
        """Return (raising DeviceUnavailable) when polling finds the PLC gone or stale."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._failure is not None)
        assert self._failure is not None
        raise self._failure

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.settings.poll_s
        due = loop.time()
        try:
            while True:
                # Fixed rate: a poll every ``poll_s`` whatever the round trip took.
                due = max(due + period, loop.time())
                await asyncio.sleep(due - loop.time())
                snapshot = await self._read_status()
                self._check_heartbeat(snapshot, loop.time())
                async with self._changed:
                    self._snapshot = snapshot
                    self._changed.notify_all()
        except DeviceUnavailable as exc:
            log.debug("cell %s: poll stopped: %s", self.name, exc)
            async with self._changed:
                self._failure = exc
                self._changed.notify_all()

    def _check_heartbeat(self, snapshot: Snapshot, now: float) -> None:
        if snapshot.heartbeat is None:
            return
        beat, since = self._beat
        if snapshot.heartbeat != beat:
            self._beat = (snapshot.heartbeat, now)
        elif now - since > self.settings.heartbeat_timeout_s:
            point = self.plc.point("heartbeat")
            raise DeviceUnavailable(
                f"PLC is stale: heartbeat {point.table} {point.address} stuck at {beat} "
                f"for {now - since:.1f} s"
            )

    # -- reading ----------------------------------------------------------------------

    async def _read_blocks(self, blocks: list[Block]) -> dict[str, Value]:
        values: dict[str, Value] = {}
        for block in blocks:
            raw = await self.link.read(
                block.table, block.start, block.count, self.settings.device_id
            )
            try:
                values.update(block.decode(raw))
            except CodecError as exc:
                raise DeviceUnavailable(f"PLC sent a value the map cannot read: {exc}") from exc
        return values

    async def _read_point(self, point: Point) -> Value:
        raw = await self.link.read(point.table, point.address, point.count, self.settings.device_id)
        try:
            return decode(point, raw)
        except CodecError as exc:
            raise DeviceUnavailable(f"PLC sent a value the map cannot read: {exc}") from exc

    async def _read_status(self) -> Snapshot:
        at = asyncio.get_running_loop().time()
        v = await self._read_blocks(self._status_blocks)
        code = int(v["state"])
        progress = v.get("progress")
        heartbeat = v.get("heartbeat")
        return Snapshot(
            at=at,
            state=self.plc.state_of(code),
            code=code,
            ack=int(v["ack"]),
            job_id=int(v["current_job_id"]),
            last_job_id=int(v["last_job_id"]),
            outcome=int(v["outcome"]),
            error=int(v.get("error", 0)),
            progress=float(progress) if progress is not None else None,
            heartbeat=int(heartbeat) if heartbeat is not None else None,
            values=v,
        )

    async def _fresh(self, after: float) -> Snapshot:
        """The first polled snapshot read at or after ``after``."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: (
                    self._failure is not None
                    or (self._snapshot is not None and self._snapshot.at >= after)
                )
            )
            if self._failure is not None:
                raise self._failure
            assert self._snapshot is not None
            return self._snapshot

    async def _last_report(self, snapshot: Snapshot) -> JobCompleted | JobFaulted:
        job_id = snapshot.last_job_id
        if snapshot.outcome == self.plc.successful:
            values = (
                snapshot.values
                if self._results_polled
                else await self._read_blocks(self._result_blocks)
            )
            measurements = {
                name: float(values[point.name])
                for name, point in self.plc.results.items()
                if isinstance(values.get(point.name), int | float)
            }
            return JobCompleted(job_id, measurements)
        if snapshot.outcome == self.plc.unsuccessful or snapshot.error:
            return JobFaulted(job_id, str(snapshot.error), self.plc.fault_text(snapshot.error))
        return JobCompleted(job_id, {}, JobOutcome.UNSUCCESSFUL)

    async def status(self) -> CellStatus:
        snapshot = await self._read_status()
        last = await self._last_report(snapshot) if snapshot.last_job_id else None
        return CellStatus(
            state=snapshot.state,
            job_id=snapshot.job_id or None,
            last_job_id=snapshot.last_job_id or None,
            last_report=last,
        )

    # -- commanding -------------------------------------------------------------------

    def _refuse_writes(self, what: str) -> None:
        if self.settings.read_only:
            raise JobRejected(f"cell {self.name} is read-only: will not {what}")

    async def _command(self, name: str, extra: Mapping[Point, object] | None = None) -> Snapshot:
        """Write ``name`` with a new sequence number (and ``extra`` points) in one request,
        and return the status once the PLC has echoed it."""
        self._refuse_writes(name)
        code = self.plc.commands.get(name)
        if code is None:
            raise NotSupported(f"the register map of {self.name} has no {name!r} command")
        seq = self._seq % 65535 + 1
        if self._snapshot is not None and seq == self._snapshot.ack:
            seq = seq % 65535 + 1  # an ack equal to the new sequence would look like an echo
        values: dict[Point, object] = dict(extra or {})
        values[self.plc.point("command")] = code
        values[self.plc.point("sequence")] = seq
        try:
            start, registers = plan_write(values, max_registers=123)
        except CodecError as exc:
            raise JobRejected(f"cell {self.name}: nothing sent: {exc}") from exc
        await self.link.write_registers(start, registers, self.settings.device_id)
        self._seq = seq
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ack_timeout_s
        while True:
            snapshot = await self._read_status()
            if snapshot.ack == seq:
                return snapshot
            if loop.time() > deadline:
                raise DeviceUnavailable(
                    f"PLC did not acknowledge {name} (sequence {seq}) within "
                    f"{self.settings.ack_timeout_s:g} s"
                )
            await asyncio.sleep(ACK_POLL_S)

    async def _to_idle(self, snapshot: Snapshot) -> Snapshot:
        """Reset a PLC that has ended a job (and clear one that faulted) so it can start."""
        for _ in range(3):
            if snapshot.state is MachineState.ABORTED:
                snapshot = await self._command("clear")
            elif snapshot.state in (MachineState.COMPLETE, MachineState.STOPPED):
                snapshot = await self._command("reset")
            else:
                break
            snapshot = await self._settle(snapshot)
        return snapshot

    async def _settle(self, snapshot: Snapshot) -> Snapshot:
        """Wait (up to the ack timeout) until the PLC leaves an acting state (clearing...)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ack_timeout_s
        while snapshot.state.acting and loop.time() < deadline:
            await asyncio.sleep(ACK_POLL_S)
            snapshot = await self._read_status()
        return snapshot

    def _recipe_values(self, job: Job) -> dict[Point, object]:
        parameters: dict[str, object] = {}
        if job.program.kind is ProgramKind.RECIPE:
            parameters = json.loads(job.program.body)
        implicit: dict[str, object] = {"expected_s": job.expected_s, "unit": job.unit_id}
        values: dict[Point, object] = {}
        for name, point in self.plc.recipe.items():
            if name in parameters:
                values[point] = parameters[name]
            elif name in implicit:
                values[point] = implicit[name]
            elif name in self.plc.defaults:
                values[point] = self.plc.defaults[name]
            else:
                raise JobRejected(
                    f"cell {self.name}: the recipe of {job.step_id} has no {name!r} and its "
                    f"point {point} has no default; nothing sent"
                )
        for point, value in values.items():
            try:
                check_write(point, value)
            except CodecError as exc:
                raise JobRejected(f"cell {self.name}: nothing sent: {exc}") from exc
        return values

    async def start_job(self, job: Job) -> None:
        self._refuse_writes(f"start job {job.job_id}")
        values = self._recipe_values(job)
        snapshot = await self._read_status()
        if job.job_id in (snapshot.job_id, snapshot.last_job_id):
            return  # it arrived before: never hand a job over twice
        snapshot = await self._settle(snapshot)
        if snapshot.job_id:
            raise JobRejected(f"PLC {self.name} is busy with job {snapshot.job_id}")
        try:
            snapshot = await self._to_idle(snapshot)
        except NotSupported as exc:
            raise JobRejected(f"PLC {self.name} is {snapshot.state.value}: {exc}") from exc
        values[self.plc.point("job_id")] = job.job_id
        snapshot = await self._command("start", values)
        if snapshot.job_id != job.job_id:
            raise JobRejected(
                f"PLC {self.name} refused job {job.job_id}: error {snapshot.error} "
                f"({self.plc.fault_text(snapshot.error)}), state {snapshot.state.value}"
            )

    async def reports(self, job_id: int) -> AsyncIterator[JobReport]:
        after = asyncio.get_running_loop().time()
        last_progress: float | None = None
        while True:
            snapshot = await self._fresh(after)
            after = snapshot.at + 1e-9
            if snapshot.last_job_id == job_id and snapshot.job_id != job_id:
                yield await self._last_report(snapshot)
                return
            if snapshot.job_id != job_id:
                raise JobRejected(f"PLC {self.name} does not know job {job_id}")
            if snapshot.progress is not None and snapshot.progress != last_progress:
                last_progress = snapshot.progress
                yield JobProgress(job_id, min(max(snapshot.progress / 100.0, 0.0), 1.0))

    async def hold(self) -> None:
        await self._accepted("hold")

    async def resume(self) -> None:
        await self._accepted("unhold")

    async def abort(self) -> None:
        await self._accepted("abort")

    async def _accepted(self, command: str) -> None:
        self._refuse_writes(command)
        await self._settle(await self._read_status())  # a job just started is "starting"
        snapshot = await self._command(command)
        if snapshot.error in REFUSALS:
            raise JobRejected(
                f"PLC {self.name} refused {command}: error {snapshot.error} "
                f"({self.plc.fault_text(snapshot.error)}), state {snapshot.state.value}"
            )
