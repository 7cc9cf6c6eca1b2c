"""A Marlin-style 3D printer streamed G-code over a serial line (docs/serial.md).

Theory of operation:

* **One pump.** While connected, one task (the pump) owns the link: it takes the
  printer's lines from the reader (:class:`SerialTransport`), classifies them
  (:func:`marlin_codec.parse`), feeds :class:`LineFlow` (numbering, send window, resends)
  and the running :class:`JobRun` (phases, progress), and writes whatever may go out
  next. The public methods only change state and wake it, then wait for the state they
  need; so writes never interleave and every decision is made in one place.
* **Connect.** Open the port (stale input dropped), optionally wait for ``start``, send
  the hello ``N0 M110 N0`` (again when the printer boots meanwhile, up to ``hellos``
  times, each given ``connect_timeout_s``), then ``M115``: firmware line and ``Cap:``
  lines. The firmware line is the handshake's barrier: the ``ok`` after the ``Cap:``
  block answers ``M115``, so answers to a hello sent twice or to a line still on the wire
  from before cannot shift the count of ``ok``s. With ``Cap:AUTOREPORT_TEMP:1`` the
  printer is asked for ``M155 S<n>``; otherwise the driver polls ``M105`` every
  ``temperature_s``.
* **Jobs.** A job is idempotent by id: the driver remembers every id it started (across
  reconnects) and never streams one twice. ``start_job`` returns once the printer has
  confirmed the job's begin marker; the job completes when the end marker after ``M400``
  is confirmed. Hold parks at a line boundary, resume unparks, abort sends the end code.
* **Faults.** A kill (thermal runaway, MINTEMP/MAXTEMP, ``kill() called``) ends the job
  with the printer's own words and leaves the cell ``aborted`` until the printer is reset
  (its ``start`` line). Another ``Error:`` line, or ``//action:cancel``, stops the job
  and sends the end code. ``start`` during a job means the printer rebooted and lost it.
  A streamed print cannot survive its host: if the link is lost or closed mid-job, the
  job ends ``interrupted`` and is never streamed again; the end code goes out after the
  next connect, in case the printer is still hot.
* **Timeouts** (OctoPrint's): no line for ``timeout_s``, or no ``ok`` for ``timeout_s``
  while lines are in flight, is a timeout. ``busy:`` extends it; while ``M109``/``M190``
  wait, temperature lines keep the link alive and no ``ok`` is expected. After a timeout
  the driver assumes the ``ok`` was lost, frees its credit and sends ``M105`` to wake the
  printer (not while a long-running command such as ``G28`` is in flight). After
  ``max_timeouts`` consecutive ones (``max_idle_timeouts`` with no job) the printer is
  considered dead: the job faults and the link is reported lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from drivers.base import Driver
from drivers.serial import marlin_codec as codec
from drivers.serial.marlin_flow import LineFlow, LinkBroken, NoHistory
from drivers.serial.marlin_job import JobRun, Phase, Tag
from drivers.serial.marlin_settings import MarlinSettings
from drivers.serial.transport import SerialTransport
from mes.domain.job import (
    REFUSALS,
    STOP_CODES,
    CellStatus,
    Job,
    JobCompleted,
    JobFaulted,
    JobProgress,
    JobReport,
    MachineState,
    ProgramKind,
    Reading,
)
from mes.errors import DeviceFault, DeviceUnavailable, InvalidTransition, JobRejected

__all__ = ["MarlinCell", "MarlinSettings"]

log = logging.getLogger(__name__)

#: Marlin's sensor letters, in words.
_SENSORS = {"T": "hotend", "B": "bed", "C": "chamber", "P": "probe", "L": "cooler"}
#: How long a kill's cause line waits for the ``kill() called`` line that follows it.
FATAL_JOIN_S = 0.5
#: Smallest progress step reported (a share of the program's bytes).
PROGRESS_STEP = 0.01
_HANDSHAKE = ("connecting", "identifying", "configuring")


def _sensor(letter: str) -> str:
    """``T`` hotend, ``T1`` hotend 1, ``B`` bed...: the name an operator reads."""
    if letter[1:].isdigit():
        return f"{_SENSORS.get(letter[0], letter[0])} {letter[1:]}"
    return _SENSORS.get(letter, letter)


class MarlinCell(Driver):
    """One printer on one serial port (see the module docstring).

    Attributes:
        temperatures: The latest reading per sensor (``T``, ``T0``, ``B``...).
        firmware: The M115 firmware line, key by key.
        capabilities: The M115 ``Cap:`` flags.
    """

    kind = "marlin"
    remembers_jobs = False  # a print streams from its host; the printer keeps no job ids

    def __init__(self, name: str, settings: MarlinSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self.temperatures: dict[str, codec.Reading] = {}
        self.firmware: dict[str, str] = {}
        self.capabilities: dict[str, bool] = {}
        self._transport: SerialTransport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[bytes | DeviceUnavailable | None] = asyncio.Queue()
        self._flow: LineFlow[Tag] = self._new_flow()
        self._control: deque[tuple[str, Tag]] = deque()
        self._changed = asyncio.Event()
        self._link = "closed"  # closed, connecting, identifying, configuring, online
        self._firmware_seen = False
        self._failure: DeviceUnavailable | None = None
        self._halted: str | None = None
        self._run: JobRun | None = None
        self._started = (0.0, 0)  # loop time and resend count at the job's start
        self._peaks: dict[str, float] = {}  # highest reading per sensor during the job
        self._seen: set[int] = set()
        self._last: JobCompleted | JobFaulted | None = None
        self._cleanup_due = False
        self._autoreport = False
        self._fatal: list[str] = []
        self._fatal_at: float | None = None
        self._joined = ""  # first half of a split error line
        self._ok_owed = False  # a Resend came; its ok should be next
        self._hello_due = False
        self._hellos = 0
        self._hello_at = self._heard_at = self._ok_at = self._poll_at = 0.0
        self._timeouts = 0
        self._wakes_given_up = 0  # M105 wakes released after a timeout: oks may come

    def readings(self) -> dict[str, Reading]:
        """The latest temperatures by sensor, in words (hotend, bed, chamber...)."""
        return {
            _sensor(sensor): Reading(r.actual, r.target) for sensor, r in self.temperatures.items()
        }

    def _new_flow(self) -> LineFlow[Tag]:
        s = self.settings
        return LineFlow(window=s.window, history=s.history, max_resends=s.max_resends)

    # -- link ---------------------------------------------------------------------------

    async def connect(self) -> None:
        s = self.settings
        if self._transport is not None:
            if self._failure is None:
                return
            await self.aclose()
        transport = SerialTransport(s.port, baudrate=s.baudrate, write_timeout_s=s.write_timeout_s)
        await transport.open(discard_input=True)  # an earlier session's output: not ours
        now = asyncio.get_running_loop().time()
        self._transport, self._failure, self._link = transport, None, "connecting"
        self._inbox = asyncio.Queue()
        self._flow, self._control = self._new_flow(), deque()
        self._halted, self._fatal, self._fatal_at, self._joined = None, [], None, ""
        self._hello_due, self._hellos, self._hello_at = not s.wait_for_start, 0, now
        self._tasks = [
            asyncio.create_task(self._read(transport), name=f"marlin-read:{self.name}"),
            asyncio.create_task(self._pump(), name=f"marlin-pump:{self.name}"),
        ]
        self._notify()
        try:
            await self._until(lambda: self._link == "online")
        except BaseException:
            failure = self._failure
            await self.aclose()
            self._failure = failure
            raise
        log.info("printer %s: %s on %s", self.name, self.firmware.get("FIRMWARE_NAME", "?"), s.port)

    async def aclose(self) -> None:
        if self._run is not None:
            self._interrupt("the controller closed the link")
        if self._failure is None:
            self._failure = DeviceUnavailable(
                f"printer {self.name} on {self.settings.port} is closed"
            )
        self._notify()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()
        self._link = "closed"

    async def link_lost(self) -> None:
        await self._until(lambda: False)

    async def _read(self, transport: SerialTransport) -> None:
        try:
            while True:
                self._inbox.put_nowait(await transport.read_line())
        except DeviceUnavailable as exc:
            self._inbox.put_nowait(exc)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _wake(self) -> None:
        self._inbox.put_nowait(None)

    async def _until(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()``; raises the link's failure first if there is one."""
        while True:
            changed = self._changed
            if self._failure is not None:
                raise self._failure
            if done():
                return
            await changed.wait()

    def _check_link(self) -> None:
        if self._transport is None or self._failure is not None:
            raise self._failure or DeviceUnavailable(
                f"printer {self.name} on {self.settings.port} is not connected"
            )

    # -- the pump -----------------------------------------------------------------------

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        self._heard_at = self._ok_at = loop.time()
        try:
            while True:
                await self._send()
                try:
                    async with asyncio.timeout_at(self._deadline()):
                        item = await self._inbox.get()
                except TimeoutError:
                    self._tick(loop.time())
                    continue
                if isinstance(item, DeviceUnavailable):
                    raise item
                if item is not None:
                    self._received(item.decode("utf-8", "replace"), loop.time())
        except DeviceUnavailable as exc:
            self._lost(exc)
        except Exception as exc:  # a bug here must not leave callers waiting forever
            log.exception("printer %s: driver failed", self.name)
            self._lost(DeviceUnavailable(f"printer {self.name}: driver failed: {exc!r}"))

    async def _send(self) -> None:
        assert self._transport is not None
        while (data := self._next_frame()) is not None:
            await self._transport.write(data)

    def _next_frame(self) -> bytes | None:
        flow, run = self._flow, self._run
        if self._hello_due:
            self._hello_due, self._hellos = False, self._hellos + 1
            self._hello_at = asyncio.get_running_loop().time()
            self._ok_owed = self._firmware_seen = False
            self._control.clear()
            self._wakes_given_up = 0
            return flow.restart(("hello", 0))
        if self._link == "connecting" or self._halted or not flow.can_send:
            return None
        if run is not None and run.wants_renumber:
            run.wants_renumber = False
            return flow.renumber(("reset", 0))
        if flow.replaying:
            return flow.resend_next()
        if self._control:
            return flow.send(*self._control.popleft())
        if run is not None and self._link == "online" and (item := run.next_command()):
            return flow.send(*item)
        return None

    def _deadline(self) -> float | None:
        s, flow = self.settings, self._flow
        if self._link in _HANDSHAKE:
            return self._hello_at + s.connect_timeout_s
        times = [] if self._fatal_at is None else [self._fatal_at]
        if self._halted is None:
            times.append(self._heard_at + s.timeout_s)
            if flow.outstanding and not self._heating():
                times.append(self._ok_at + s.timeout_s)
            if not self._autoreport:
                times.append(self._poll_at)
        return min(times) if times else None

    def _heating(self) -> bool:
        return any(codec.word(c) in codec.HEATING for c in self._flow.in_flight_commands())

    def _tick(self, now: float) -> None:
        s = self.settings
        if self._fatal_at is not None and now >= self._fatal_at:
            self._conclude_fatal()
        if self._link in _HANDSHAKE:
            if now >= self._hello_at + s.connect_timeout_s:
                if self._hellos >= s.hellos:
                    raise DeviceUnavailable(self._no_answer())
                self._hello_due = True
            return
        if self._halted is not None:
            return
        if not self._autoreport and now >= self._poll_at:
            self._poll_at = now + s.temperature_s
            if not any(tag[0] in ("poll", "wake") for _, tag in self._control):
                self._control.append(("M105", ("poll", 0)))
        silent = now >= self._heard_at + s.timeout_s
        late = self._flow.outstanding and not self._heating() and now >= self._ok_at + s.timeout_s
        if silent or late:
            self._timed_out(now)

    def _no_answer(self) -> str:
        s = self.settings
        tries = f"after {self._hellos} hellos, {s.connect_timeout_s:g} s each"
        if self._link == "connecting":
            return (
                f"no answer from a printer on {s.port} at {s.baudrate} baud {tries} (is it "
                "on, and is the baud rate right?)"
            )
        return (
            f"the printer on {s.port} answered the hello but sent no firmware report (M115) "
            f"{tries}; is it a Marlin-style firmware?"
        )

    def _timed_out(self, now: float) -> None:
        s = self.settings
        self._timeouts += 1
        self._heard_at = self._ok_at = now
        limit = s.max_timeouts if self._run is not None else s.max_idle_timeouts
        if self._timeouts > limit:
            text = (
                f"no response from the printer after {self._timeouts} consecutive "
                f"communication timeouts of {s.timeout_s:g} s, considering it dead"
            )
            if self._run is not None:
                self._interrupt(text, code="timeout")
            raise DeviceUnavailable(f"printer {self.name} on {s.port}: {text}")
        commands = self._flow.in_flight_commands()
        if any(codec.word(c) in codec.LONG_RUNNING for c in commands):
            log.info(
                "printer %s: timeout %d during %s; waiting", self.name, self._timeouts, commands
            )
            return
        log.warning("printer %s: communication timeout %d; sending M105", self.name, self._timeouts)
        wake = bool(commands) and codec.word(commands[0]) == "M105"
        self._flow.release(late=not wake)  # a line's ok may be late, not lost
        self._wakes_given_up += wake
        if not any(tag[0] == "wake" for _, tag in self._control):
            self._control.appendleft(("M105", ("wake", 0)))

    # -- what the printer says ----------------------------------------------------------

    def _received(self, text: str, now: float) -> None:
        self._heard_at = now
        if codec.joins_next(text):
            self._joined = text.strip()
            return
        if self._joined:
            text, self._joined = f"{self._joined} {text.strip()}", ""
        reply = codec.parse(text)
        if self._ok_owed and not isinstance(reply, codec.Ok):
            log.info("printer %s: no ok after a resend request; assuming one", self.name)
            self._on_ok(codec.Ok(), now)
        self._ok_owed = False
        if self._fatal and not isinstance(reply, codec.Fatal):
            self._conclude_fatal()
        self._handle(reply, text, now)
        self._notify()

    def _handle(self, reply: codec.Reply, text: str, now: float) -> None:
        match reply:
            case codec.Ok() if self._link == "identifying" and self._firmware_seen:
                self._ok_at, self._timeouts = now, 0
                self._flow.ok_for(self._flow.next_number - 1)  # M115, the last line sent
                self._on_identified(now)
            case codec.Ok():
                self._on_ok(reply, now)
            case codec.Wait() if self._flow.outstanding:
                self._flow.release()  # it is idle and waiting: our ok was lost
            case codec.Busy():
                self._ok_at = now
            case codec.Resend() if self._link == "connecting":
                self._ok_owed = True  # drawn by a line from before the hello: void
            case codec.Resend(number=number):
                self._ok_owed = True
                try:
                    self._flow.resend(number)
                except LinkBroken as exc:
                    self._broken("resend-loop" if not isinstance(exc, NoHistory) else "resend", exc)
            case codec.CommError(resend_follows=False):
                self._flow.release()  # no resend, no ok follow: the next line draws them
            case codec.Fatal():
                self._fatal.append(reply.text)
                if reply.final:
                    self._conclude_fatal()
                else:
                    self._fatal_at = now + FATAL_JOIN_S
            case codec.FirmwareError(text=words):
                log.warning("printer %s: %s", self.name, text.strip())
                self._stop("error", f"printer error: {words}")
            case codec.Start():
                self._on_start()
            case codec.Temperatures(readings=readings):
                self._read_temperatures(readings)
            case codec.Firmware(info=info):
                self.firmware = info
                self._firmware_seen = self._link == "identifying"
            case codec.Capability(name=name, enabled=enabled):
                self.capabilities[name] = enabled
            case codec.Unknown(text=command) if self._flow.unknown(command):
                log.info(
                    "printer %s: ran a stray line %r (a line cut by a flush)", self.name, command
                )
            case codec.Action(name="cancel"):
                self._stop("cancelled", f"cancelled on the printer ({text.strip()})")
            case _:
                log.debug("printer %s: %s", self.name, text)

    def _on_ok(self, reply: codec.Ok, now: float) -> None:
        self._ok_at = now
        self._timeouts = 0
        self._read_temperatures(reply.temperatures)
        answers_m105 = bool(reply.temperatures)  # M105 answers ok T:..., a line a bare ok
        if answers_m105 and self._wakes_given_up and "M105" not in self._flow.in_flight_commands():
            self._wakes_given_up -= 1
            return  # the late answer of a wake given up after a second timeout
        for tag in self._flow.ok(lambda command: (codec.word(command) == "M105") == answers_m105):
            self._confirmed(tag, now)

    def _read_temperatures(self, readings: dict[str, codec.Reading]) -> None:
        self.temperatures.update(readings)
        if self._run is not None:
            for sensor, reading in readings.items():
                self._peaks[sensor] = max(self._peaks.get(sensor, reading.actual), reading.actual)

    def _confirmed(self, tag: Tag, now: float) -> None:
        kind = tag[0]
        if kind == "hello":
            self._link = "identifying"
            self._control.append(("M115", ("info", 0)))
        elif kind == "report":
            self._online(now)
        elif self._run is not None and kind in ("job", "park", "unpark", "end"):
            run = self._run
            event = run.confirmed(tag)
            if event == "complete":
                self._finish(JobCompleted(run.job_id, self._measurements(run, now)))
            elif event == "stopped":
                assert run.result is not None
                self._finish(JobFaulted(run.job_id, *run.result))

    def _on_identified(self, now: float) -> None:
        s = self.settings
        self._link, self._firmware_seen = "configuring", False
        self._autoreport = self.capabilities.get("AUTOREPORT_TEMP", False)
        if self._autoreport:
            interval = max(1, round(s.temperature_s))
            self._control.append((f"M155 S{interval}", ("report", 0)))
        else:
            self._online(now)

    def _online(self, now: float) -> None:
        s = self.settings
        self._link = "online"
        self._poll_at = now + s.temperature_s
        if self._cleanup_due:
            self._cleanup_due = False
            log.warning("printer %s: sending the end code after a job was cut off", self.name)
            self._control.extend((c, ("end", 0)) for c in s.end_code)

    def _on_start(self) -> None:
        if self._link in _HANDSHAKE:
            self._hello_due = True  # it booted just now: the hello went nowhere
            return
        log.warning("printer %s: printer restarted ('start' while connected)", self.name)
        if self._run is not None:
            run = self._run
            self._finish(
                JobFaulted(
                    run.job_id,
                    "reset",
                    f"the printer restarted ('start') during the job, after {run.lines_done} of "
                    f"{run.size} program lines: it lost the job",
                )
            )
        self._halted, self._fatal, self._fatal_at = None, [], None
        self._control.clear()
        self._link, self._hello_due, self._hellos = "connecting", True, 0

    def _conclude_fatal(self) -> None:
        words = " - ".join(self._fatal)
        self._fatal, self._fatal_at = [], None
        if not words:
            return
        log.error("printer %s halted: %s", self.name, words)
        self._halted = words
        self._control.clear()
        if self._run is not None:
            self._finish(JobFaulted(self._run.job_id, "halted", words))
        self._notify()

    # -- job ends -----------------------------------------------------------------------

    def _measurements(self, run: JobRun, now: float) -> dict[str, float]:
        started, resent = self._started
        out = {
            "cycle_s": round(now - started, 3),
            "lines": float(run.lines_done),
            "bytes": float(run.total_bytes),
            "resends": float(self._flow.resent - resent),
        }
        for sensor, name in (("T", "hotend"), ("T0", "hotend"), ("B", "bed")):
            reading = self.temperatures.get(sensor)
            if reading is not None and f"{name}_c" not in out:
                out[f"{name}_c"] = reading.actual
                out[f"{name}_max_c"] = self._peaks.get(sensor, reading.actual)
        return out

    def _finish(self, report: JobCompleted | JobFaulted) -> None:
        if isinstance(report, JobFaulted):
            log.warning(
                "printer %s: job %d: [%s] %s", self.name, report.job_id, report.code, report.text
            )
        self._last, self._run = report, None
        self._notify()

    def _stop(self, code: str, text: str) -> None:
        """End the running job with ``code``/``text`` after sending the end code."""
        if self._run is not None and self._run.live:
            self._run.stop(code, text)
            self._wake()

    def _interrupt(self, why: str, code: str = "interrupted") -> None:
        """End the running job now (nothing more can be sent); end code at next connect."""
        run = self._run
        assert run is not None
        self._cleanup_due = True
        self._finish(
            JobFaulted(
                run.job_id,
                code,
                f"{why}; the job stopped after {run.lines_done} of {run.size} program "
                "lines and a streamed print cannot resume",
            )
        )

    def _broken(self, code: str, exc: Exception) -> None:
        if self._run is not None:
            self._interrupt(str(exc), code=code)
        raise DeviceUnavailable(f"printer {self.name} on {self.settings.port}: {exc}") from exc

    def _lost(self, exc: DeviceUnavailable) -> None:
        if self._run is not None:
            self._interrupt(f"link to the printer lost: {exc}")
        self._failure = exc
        self._notify()

    # -- the driver interface -----------------------------------------------------------

    async def status(self) -> CellStatus:
        self._check_link()
        if self._halted is not None:
            state = MachineState.ABORTED
        elif self._run is not None:
            state = self._run.state
        else:
            state = MachineState.IDLE if self._link == "online" else MachineState.RESETTING
        return CellStatus(
            state=state,
            job_id=self._run.job_id if self._run else None,
            last_job_id=self._last.job_id if self._last else None,
            last_report=self._last,
        )

    async def start_job(self, job: Job) -> None:
        self._check_link()
        if self.settings.read_only:
            raise JobRejected(f"printer {self.name} is read-only: will not start job {job.job_id}")
        run = self._run
        if job.job_id in (
            (run.job_id if run else None),
            (self._last.job_id if self._last else None),
        ):
            return  # it arrived before: never hand a job over twice
        if job.job_id in self._seen:
            raise JobRejected(f"printer {self.name} already ran job {job.job_id} ({REFUSALS[2]})")
        if self._halted is not None:
            raise DeviceFault(
                f"printer {self.name} is halted until reset: {self._halted}", "halted"
            )
        if run is not None:
            raise JobRejected(f"printer {self.name} is busy with job {run.job_id} ({REFUSALS[1]})")
        if self._link != "online":
            raise JobRejected(f"printer {self.name} is restarting; not ready for a job yet")
        if job.program.kind is not ProgramKind.GCODE:
            raise JobRejected(
                f"printer {self.name}: job {job.job_id} carries a {job.program.kind.value} "
                f"program; a printer runs G-code ({REFUSALS[3]})"
            )
        s = self.settings
        try:
            lines = codec.program_lines(job.program.body, max_line_bytes=s.max_line_bytes)
        except codec.ProgramError as exc:
            raise JobRejected(
                f"printer {self.name}: job {job.job_id}: nothing sent: {exc}"
            ) from exc
        run = JobRun(job.job_id, lines, park=s.park_code, unpark=s.unpark_code, end_code=s.end_code)
        self._seen.add(job.job_id)
        self._run = run
        self._started = (asyncio.get_running_loop().time(), self._flow.resent)
        self._peaks = {}
        self._wake()
        await self._until(lambda: self._run is not run or run.phase is not Phase.STARTING)

    async def reports(self, job_id: int) -> AsyncIterator[JobReport]:
        run, last = self._run, self._last
        if (run is None or run.job_id != job_id) and last is not None and last.job_id == job_id:
            yield last
            return
        self._check_link()
        if run is None or run.job_id != job_id:
            raise JobRejected(f"printer {self.name} does not know job {job_id}")
        reported = -1.0
        while True:
            changed = self._changed
            if self._run is not run:
                assert self._last is not None and self._last.job_id == job_id
                yield self._last
                return
            if self._failure is not None:
                raise self._failure
            if run.fraction >= reported + PROGRESS_STEP or (run.fraction == 1.0 > reported):
                reported = run.fraction
                yield JobProgress(job_id, reported)
                continue
            await changed.wait()

    async def _command(self, what: str, act: Callable[[JobRun], None], done: Phase) -> None:
        self._check_link()
        if self.settings.read_only:
            raise JobRejected(f"printer {self.name} is read-only: will not {what}")
        run = self._run
        if run is None:
            raise JobRejected(f"printer {self.name} has no job to {what} ({REFUSALS[4]})")
        try:
            act(run)
        except InvalidTransition as exc:
            raise JobRejected(
                f"printer {self.name} cannot {what} now: {exc} ({REFUSALS[4]})"
            ) from exc
        self._wake()
        await self._until(lambda: self._run is not run or run.phase is done)

    async def hold(self) -> None:
        await self._command("hold", JobRun.hold, Phase.HELD)

    async def resume(self) -> None:
        await self._command("resume", JobRun.resume, Phase.EXECUTE)

    async def abort(self) -> None:
        # During a heat-up wait the end code follows when the wait ends. M108 would break
        # the wait, but whether a printer answers M108 with an ok differs between firmwares,
        # and an ok counted wrongly would confirm a line the printer never took.
        await self._command("abort", lambda run: run.stop("900", STOP_CODES[900]), Phase.ENDED)
