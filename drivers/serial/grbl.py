"""A GRBL 1.1 machine (CNC router, laser) streamed G-code over a serial line (docs/grbl.md).

Theory of operation:

* **One pump.** While connected, one task (:class:`Session`) owns the link: it reads
  GRBL's lines, answers the oldest line in flight for each ``ok``/``error:N``
  (:class:`CharCounter`), polls ``?`` every ``poll_s`` and writes whatever may go out
  next: real-time bytes first (they never enter GRBL's buffer and act at once), then
  ``$`` commands one at a time with nothing beside them (send-response, as EEPROM writes
  need), then as many job lines as fit in GRBL's 128-byte receive buffer. It tells this
  driver what it hears (:class:`SessionEvents`); the driver decides what that means for
  the job (:class:`GrblRun`). Public methods change state and wake the pump, then wait
  for the state they need.
* **Connect.** Open the port; GRBL is alive when it prints its welcome (a board reset
  by the port's DTR line) or answers ``?`` (a board that was not reset, perhaps still
  running our job). Only if neither comes is it soft-reset (Ctrl-X), so a reconnect
  never kills a running job. Then ``$I`` (build info; the receive buffer's size from
  ``[OPT:...]``), the configured ``$`` settings that differ, and the start-up policy:
  ``$H`` (``home``) or ``$X`` (``unlock``) when GRBL starts locked in ALARM. By default
  nothing is unlocked silently: the cell reports ``aborted`` with the alarm's meaning.
* **Jobs.** A job is idempotent by id: ids are remembered and never streamed twice.
  Before any motion the program is streamed in check mode (``$C``; every ``error:N``
  collected; leaving check mode soft-resets GRBL); a program with errors is refused
  naming its lines. Then markers, program and ``G4P0.01`` are streamed by character
  counting (:mod:`grbl_job`); the job completes when every line is answered and GRBL
  reports ``Idle``.
* **Faults.** ``error:N`` ends the job with the code and its meaning; since GRBL keeps
  executing what is already buffered, the machine is stopped: feed hold ``!``, and once
  the hold is complete (no position lost) soft reset. ``ALARM:N`` ends it at once (a
  hard or soft limit halts GRBL until a reset, which the driver sends). A welcome line
  we did not cause means GRBL reset and lost the job: faulted, never re-run (and the
  bytes still on the wire are flushed by one more hold and reset). Abort is the same
  stop as an error. Hold is ``!``, resume ``~``; GRBL holding itself (``M0``) shows as
  a held job.
* **Link.** A ``?`` unanswered for ``status_timeout_s`` (not while homing) fails the
  link. A job whose every line was sent when the link went away is left to the
  machine and followed again after a reconnect; one that was not is ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping

from drivers.base import Driver
from drivers.serial import grbl_codec as codec
from drivers.serial.grbl_job import CharCounter, GrblRun, Phase, Tag
from drivers.serial.grbl_session import Session, SessionEvents
from drivers.serial.grbl_settings import GrblSettings
from drivers.serial.grbl_setup import Setup
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
)
from mes.errors import DeviceFault, DeviceUnavailable, InvalidTransition, JobRejected

__all__ = ["GrblCell", "GrblSettings"]

log = logging.getLogger(__name__)

#: Smallest progress step reported (a share of the program's bytes).
PROGRESS_STEP = 0.01


class GrblCell(Driver):
    """One GRBL machine on one serial port (see the module docstring)."""

    kind = "grbl"
    remembers_jobs = False  # the job lives in the stream; GRBL keeps no job ids

    def __init__(self, name: str, settings: GrblSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self._session: Session | None = None
        self._failure: DeviceUnavailable | None = None
        self._run: GrblRun | None = None
        self._last: JobCompleted | JobFaulted | None = None
        self._seen: set[int] = set()
        self._started = 0.0
        self._answers = 0  # job lines answered, ever
        self._quiet: tuple[int, float] | None = None  # answers, time: idle, lines missing
        self._recovering: asyncio.Task[None] | None = None
        self._setup = Setup(name, settings)

    @property
    def version(self) -> str:
        """From the welcome line or ``$I`` (``Grbl 1.1h``)."""
        return self._setup.version

    @property
    def build(self) -> str:
        """The build date ``$I`` reports (``20190825``)."""
        return self._setup.build

    @property
    def options(self) -> str:
        """The ``[OPT:...]`` line of ``$I`` (``VL,15,128``)."""
        return self._setup.options

    @property
    def report(self) -> codec.StatusReport | None:
        """The latest status report."""
        return self._session.report if self._session else None

    # -- link ---------------------------------------------------------------------------

    async def connect(self) -> None:
        s = self.settings
        if self._session is not None:
            if self._session.failure is None:
                return
            await self._close_session()
        transport = SerialTransport(s.port, baudrate=s.baudrate, write_timeout_s=s.write_timeout_s)
        await transport.open()
        transport.discard_input()  # output of an earlier session answers nothing of ours
        counter: CharCounter[Tag] = CharCounter(
            s.rx_buffer or codec.RX_BUFFER_SIZE, send_response=s.streaming == "send_response"
        )
        session = Session(self.name, transport, counter, s, self._events())
        self._session, self._failure = session, None
        try:
            await session.start()
            welcomed = await session.hello()
            await self._setup.identify(session)
            self._reconcile(session, welcomed)
            if self._run is None or not self._run.live:
                await self._setup.prepare(session)
            session.online = True
        except DeviceUnavailable as exc:
            await self._close_session()
            self._failure = exc
            raise
        except BaseException:
            failure = session.failure
            await self._close_session()
            self._failure = failure
            raise
        log.info("GRBL %s: %s on %s, %s", self.name, self.version, s.port, session.report)

    def _reconcile(self, session: Session, welcomed: bool) -> None:
        """A job left to the machine when the link went away: follow it, or end it."""
        run = self._run
        if run is None or not run.live:
            return
        report = session.report
        assert report is not None
        if welcomed:
            self._end(
                run,
                "interrupted",
                f"GRBL restarted ({session.welcome}) while the link was down: "
                f"the job is lost after {run.lines_done} of {run.size} lines sent; a streamed "
                "job is never re-run",
            )
        elif report.state == "Alarm":
            self._end(run, "alarm", "GRBL went into ALARM while the link was down")
        else:
            run.detached = False
            run.assume_answered()
            session.job_settling()

    async def aclose(self) -> None:
        run = self._run
        session = self._session
        if run is not None and run.phase is Phase.CHECKING:
            self._drop(run, "the controller closed the link during the check")
        elif run is not None and run.live and session is not None:
            if run.all_sent and run.phase is not Phase.STARTING:
                run.detached = True  # GRBL has every line: it finishes the part alone
            elif session.failure is None:
                self._stop(run, "interrupted", self._interrupted_text(run, "closed the link"))
                s = self.settings
                with contextlib.suppress(DeviceUnavailable, TimeoutError):
                    async with asyncio.timeout(s.hold_timeout_s + s.reset_timeout_s):
                        await self._until(lambda: self._run is not run)
        if self._run is run and run is not None and run.live and not run.detached:
            self._end(run, "interrupted", self._interrupted_text(run, "closed the link"))
        await self._close_session()
        if self._failure is None:
            self._failure = DeviceUnavailable(f"GRBL {self.name} on {self.settings.port} is closed")

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        task, self._recovering = self._recovering, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if session is not None:
            await session.aclose()

    async def link_lost(self) -> None:
        await self._until(lambda: False)

    async def _until(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()``; raises the link's failure first if there is one."""
        await self._live_session().until(done)

    def _live_session(self) -> Session:
        session = self._session
        if session is not None and session.failure is not None:
            raise session.failure
        if session is None:
            why = f" ({self._failure})" if self._failure else ""
            raise DeviceUnavailable(
                f"GRBL {self.name} on {self.settings.port} is not connected{why}"
            )
        return session

    # -- what the session tells the driver ----------------------------------------------

    def _events(self) -> SessionEvents:
        return SessionEvents(
            run=lambda: self._run,
            answered=self._answered,
            status=self._status,
            alarm=self._alarm,
            reset=self._reset,
            lost=self._lost,
        )

    def _answered(self, tag: Tag, error: int | None) -> None:
        kind, index = tag
        run = self._run
        if run is None:
            return
        if kind == "check":
            run.check_answered(index, error)
            return
        if not run.live or run.phase is Phase.STOPPING:
            return  # a line already in GRBL's buffer when the job was stopped
        self._answers += 1
        if error is not None:
            self._stop(
                run,
                f"error:{error}",
                f"{codec.error_text(error)} at {run.source_of(index)}: {run.lines[index]!r} "
                f"(after {run.lines_done} of {run.size} lines; the machine was stopped)",
            )
            return
        if run.answered(index) == "accepted":
            self._started = asyncio.get_running_loop().time()
            self._seen.add(run.job_id)
        if run.all_answered and self._session is not None:
            self._session.job_settling()

    def _status(self, report: codec.StatusReport, settled: bool) -> None:
        run = self._run
        session = self._session
        if run is None:
            if report.state == "Alarm" and session is not None and session.online:
                self._apply_policy(session)
            return
        if run.phase is Phase.EXECUTE and report.state == "Hold":
            run.handle("hold")  # GRBL held itself: M0, or the machine's own hold button
        if run.phase is Phase.HOLDING and report.state == "Hold" and report.substate == 0:
            run.handle("held")
        elif run.phase is Phase.UNHOLDING and report.state in ("Run", "Idle"):
            run.handle("running")
        if settled and run.all_answered and report.state == "Idle" and run.live:
            self._complete(run)
        elif run.phase is Phase.EXECUTE and run.all_sent and report.state == "Idle":
            now = asyncio.get_running_loop().time()
            if self._quiet is None or self._quiet[0] != self._answers:
                self._quiet = (self._answers, now)  # once more: nothing may be on its way
            elif session is not None and now - self._quiet[1] >= run.dwell_s():
                self._lost_oks(run, session)
        else:
            self._quiet = None

    def _lost_oks(self, run: GrblRun, session: Session) -> None:
        """Every line was sent, and over two status reports (and any dwell still
        unanswered: GRBL dwells ``Idle``) GRBL stood idle and answered nothing more: the
        lines it has not answered ran and their ``ok`` was lost (the second ``?`` went out
        after the last line, so GRBL had read it)."""
        missing = session.counter.in_flight
        log.warning(
            "GRBL %s: job %d: %d line(s) never answered though GRBL is idle with all of them "
            "sent; their ok was lost, taking them as answered",
            self.name,
            run.job_id,
            missing,
        )
        session.counter.clear()
        run.assume_answered()
        self._quiet = None
        session.job_settling()

    def _apply_policy(self, session: Session) -> None:
        """GRBL is locked in ALARM with no job running: home or unlock it by the cell's
        policy, once per lock, in the background (start_job waits for it)."""
        if self.settings.read_only or session.policy_done or self._recovery_busy():
            return
        session.policy_done = True

        async def recover() -> None:
            try:
                await self._setup.unlock_by_policy(session)
            except (DeviceFault, DeviceUnavailable) as exc:
                log.error("GRBL %s: could not clear the alarm: %s", self.name, exc)

        self._recovering = asyncio.create_task(recover())

    def _recovery_busy(self) -> bool:
        return self._recovering is not None and not self._recovering.done()

    def _alarm(self, code: int) -> None:
        run = self._run
        self._setup.note = ""
        if run is None:
            log.error("GRBL %s: %s", self.name, codec.alarm_text(code))
            return
        if run.phase is Phase.CHECKING:
            return  # the session noted it against the line being checked
        if run.live or run.phase is Phase.STOPPING:
            self._end(
                run,
                f"ALARM:{code}",
                f"{codec.alarm_text(code)} (after {run.lines_done} of {run.size} lines)",
            )

    def _reset(self, expected: bool, welcome: str) -> None:
        run = self._run
        if welcome:
            self._setup.version = welcome
        if run is None:
            if not expected:
                log.warning("GRBL %s reset (%s) with no job running", self.name, welcome)
            return
        if run.phase is Phase.STOPPING:
            assert run.result is not None
            run.handle("stopped")
            self._finish(JobFaulted(run.job_id, *run.result))
        elif run.phase is Phase.CHECKING and not expected:
            self._drop(run, f"GRBL reset during the check ({welcome!r}); nothing moved")
        elif run.phase is not Phase.CHECKING and run.live and not expected:
            log.warning(
                "GRBL %s: unexpected reset (%s) during job %d", self.name, welcome, run.job_id
            )
            self._end(
                run,
                "reset",
                f"GRBL reset during the job ({welcome!r}): it lost the job after "
                f"{run.lines_done} of {run.size} lines; a streamed job is never re-run",
            )

    def _lost(self, exc: DeviceUnavailable) -> None:
        run = self._run
        self._failure = exc
        if run is None or not run.live:
            return
        if run.phase is Phase.CHECKING:
            self._drop(run, f"lost the link during the check ({exc}); nothing moved")
            return
        if run.all_sent and run.phase is not Phase.STARTING:
            run.detached = True
            return
        code = "timeout" if "did not answer" in str(exc) else "interrupted"
        self._end(run, code, self._interrupted_text(run, f"lost the link ({exc})"))

    # -- job ends -------------------------------------------------------------------------

    def _interrupted_text(self, run: GrblRun, what: str) -> str:
        return (
            f"the controller {what} after {run.lines_done} of {run.size} program lines; "
            "a streamed job cannot resume and is never re-run"
        )

    def _stop(self, run: GrblRun, code: str, text: str) -> None:
        """Feed hold, then soft reset once the hold is complete; then end with code/text."""
        run.stop(code, text)
        if self._session is not None:
            self._session.stop_machine()

    def _end(self, run: GrblRun, code: str, text: str) -> None:
        if run.live or run.phase is Phase.STOPPING:
            run.end(code, text)
        self._finish(JobFaulted(run.job_id, code, text))

    def _drop(self, run: GrblRun, why: str) -> None:
        """Forget a job still in its ``$C`` pass: it never ran, so it may be handed over
        again (start_job raises JobRejected, or the link's failure)."""
        if run.live:
            run.end("rejected", f"GRBL {self.name}: job {run.job_id} not started: {why}")
        if self._run is run:
            self._run = None
        if self._session is not None:
            self._session.notify()

    def _complete(self, run: GrblRun) -> None:
        run.handle("end")
        now = asyncio.get_running_loop().time()
        self._finish(
            JobCompleted(
                run.job_id,
                {
                    "cycle_s": round(now - self._started, 3),
                    "lines": float(run.size),
                    "bytes": float(run.total_bytes),
                },
            )
        )

    def _finish(self, report: JobCompleted | JobFaulted) -> None:
        if isinstance(report, JobFaulted):
            log.warning(
                "GRBL %s: job %d: [%s] %s", self.name, report.job_id, report.code, report.text
            )
        self._seen.add(report.job_id)
        self._last, self._run = report, None
        if self._session is not None:
            self._session.notify()

    # -- the driver interface -----------------------------------------------------------

    async def status(self) -> CellStatus:
        session = self._live_session()
        run = self._run
        report = session.report
        if run is not None:
            state = run.state
            if state is MachineState.EXECUTE and report is not None and report.state == "Door":
                state = codec.machine_state(report)
        elif report is None:
            state = MachineState.UNKNOWN
        else:
            state = codec.machine_state(report)
        return CellStatus(
            state=state,
            job_id=run.job_id if run else None,
            last_job_id=self._last.job_id if self._last else None,
            last_report=self._last,
        )

    async def start_job(self, job: Job) -> None:
        session = self._live_session()
        s = self.settings
        if s.read_only:
            raise JobRejected(f"GRBL {self.name} is read-only: will not start job {job.job_id}")
        run = self._run
        if run is not None and run.job_id == job.job_id:
            return  # it arrived before: never hand a job over twice
        if self._last is not None and self._last.job_id == job.job_id:
            return
        if job.job_id in self._seen:
            raise JobRejected(f"GRBL {self.name} already ran job {job.job_id} ({REFUSALS[2]})")
        if run is not None:
            raise JobRejected(f"GRBL {self.name} is busy with job {run.job_id} ({REFUSALS[1]})")
        if job.program.kind is not ProgramKind.GCODE:
            raise JobRejected(
                f"GRBL {self.name}: job {job.job_id} carries a {job.program.kind.value} program; "
                f"GRBL runs G-code ({REFUSALS[3]})"
            )
        try:
            program = codec.program_lines(job.program.body)
        except codec.ProgramError as exc:
            raise JobRejected(f"GRBL {self.name}: job {job.job_id}: nothing sent: {exc}") from exc
        if session.busy:  # a stop or reset under way: then ask how GRBL stands
            await self._until(lambda: not session.busy)
            await session.refresh()
        report = session.report
        if report is not None and report.state == "Alarm":
            self._apply_policy(session)  # locked just now: the policy has its say first
        if self._recovery_busy():
            await self._until(lambda: not self._recovery_busy())
        report = session.report
        if report is not None and report.state == "Alarm":
            raise DeviceFault(
                f"GRBL {self.name}: {self._setup.locked(session)}", f"ALARM:{session.alarm or 0}"
            )
        if report is None or report.state != "Idle":
            state = report.state if report else "unknown"
            raise JobRejected(
                f"GRBL {self.name} is not idle (state {state}) and runs no job of ours "
                f"({REFUSALS[1]})"
            )
        run = GrblRun(job.job_id, program, check=s.check_mode)
        self._run = run
        session.settling = False
        if s.check_mode:
            await self._check(session, run)
        session.wake()
        await self._until(lambda: self._run is not run or run.phase is not Phase.STARTING)
        if self._run is not run and run.result is not None and run.result[0] == "rejected":
            raise JobRejected(run.result[1])

    async def _check(self, session: Session, run: GrblRun) -> None:
        """The ``$C`` pass: stream the program in check mode; refuse it on any error."""
        try:
            await session.request("$C")
            session.checking = True
            session.wake()  # the pump streams the check lines now
            await self._until(lambda: run.check_done or session.alarm_from_check or not run.live)
            if run.phase is Phase.CHECKING and not session.alarm_from_check:
                await session.request("$C", resets=True)
            await self._until(lambda: not session.resetting)
            if session.alarm_from_check:
                await self._setup.unlock_by_policy(session)
        except BaseException:
            if self._run is run:
                self._run = None
            raise
        if run.phase is not Phase.CHECKING:
            return  # stopped meanwhile
        if run.check_errors:
            self._run = None
            shown = "; ".join(
                f"line {n}: {text!r}: {codec.error_text(e) if e > 0 else codec.alarm_text(-e)}"
                for n, e, text in run.check_errors[:5]
            )
            more = len(run.check_errors) - 5
            run.end(
                "rejected",
                f"GRBL {self.name}: job {run.job_id} refused by GRBL's check mode ($C), nothing "
                f"moved: {shown}" + (f"; and {more} more" if more > 0 else ""),
            )
            session.notify()
            raise JobRejected(run.result[1] if run.result else "refused by check mode")
        run.handle("checked")

    async def reports(self, job_id: int) -> AsyncIterator[JobReport]:
        run, last = self._run, self._last
        if (run is None or run.job_id != job_id) and last is not None and last.job_id == job_id:
            yield last
            return
        self._live_session()
        if run is None or run.job_id != job_id:
            raise JobRejected(f"GRBL {self.name} does not know job {job_id}")
        reported = -1.0
        while True:
            if self._run is not run:
                assert self._last is not None and self._last.job_id == job_id
                yield self._last
                return
            session = self._live_session()
            changed = session.changed
            fraction = run.fraction
            if fraction >= reported + PROGRESS_STEP or (fraction == 1.0 > reported):
                reported = fraction
                yield JobProgress(job_id, reported)
                continue
            await changed.wait()

    def _job_for(self, what: str) -> tuple[Session, GrblRun]:
        session = self._live_session()
        if self.settings.read_only:
            raise JobRejected(f"GRBL {self.name} is read-only: will not {what}")
        run = self._run
        if run is None:
            raise JobRejected(f"GRBL {self.name} has no job to {what} ({REFUSALS[4]})")
        return session, run

    async def hold(self) -> None:
        session, run = self._job_for("hold")
        try:
            run.handle("hold")
        except InvalidTransition as exc:
            raise JobRejected(f"GRBL {self.name} cannot hold now: {exc} ({REFUSALS[4]})") from exc
        session.realtime(codec.FEED_HOLD)
        await self._until(lambda: self._run is not run or run.phase is not Phase.HOLDING)

    async def resume(self) -> None:
        session, run = self._job_for("resume")
        await self._until(lambda: self._run is not run or run.phase is not Phase.HOLDING)
        try:
            run.handle("resume")
        except InvalidTransition as exc:
            raise JobRejected(f"GRBL {self.name} cannot resume now: {exc} ({REFUSALS[4]})") from exc
        session.realtime(codec.CYCLE_START)
        await self._until(lambda: self._run is not run or run.phase is not Phase.UNHOLDING)

    async def abort(self) -> None:
        _, run = self._job_for("abort")
        try:
            self._stop(run, "900", STOP_CODES[900])
        except InvalidTransition as exc:
            raise JobRejected(f"GRBL {self.name} cannot abort now: {exc} ({REFUSALS[4]})") from exc
        await self._until(lambda: self._run is not run)

    # -- beyond the job contract: for operators and set-up -------------------------------

    async def home(self) -> None:
        """Run the homing cycle (``$H``); clears an alarm lock.

        Raises:
            JobRejected: a job is running, or the cell is read-only.
            DeviceFault: GRBL refused (``error:5``: homing is not enabled) or homing failed.
            DeviceUnavailable: not connected.
        """
        session = self._idle_session("home")
        if not await self._setup.home(session):
            raise DeviceFault(f"GRBL {self.name}: {self._setup.note}")

    async def unlock(self) -> None:
        """Clear an alarm lock (``$X``) whatever the unlock policy: an operator's decision.

        Raises:
            JobRejected: a job is running, or the cell is read-only.
            DeviceUnavailable: not connected.
        """
        await self._setup.unlock(self._idle_session("unlock"))

    async def jog(self, *, feed_mm_min: float, absolute: bool = False, **axes: float) -> None:
        """Jog (``$J=``): ``jog(feed_mm_min=600, X=10)`` moves X by +10 mm; returns once GRBL
        has taken the move (it runs on: :meth:`cancel_jog` stops it).

        Raises:
            JobRejected: a job is running, the cell is read-only, or no axis was given.
            DeviceFault: GRBL refused (``error:15`` beyond travel, ``error:8`` not idle).
            DeviceUnavailable: not connected.
        """
        session = self._idle_session("jog")
        words = "".join(f"{a.upper()}{v:.3f}" for a, v in axes.items() if a.upper() in "XYZ")
        if not words:
            raise JobRejected(f"GRBL {self.name}: a jog needs an axis (X, Y or Z)")
        mode = "G90" if absolute else "G91"
        await session.request(f"$J={mode}G21{words}F{feed_mm_min:g}")

    async def cancel_jog(self) -> None:
        """Stop a jog now (real-time 0x85; GRBL decelerates and empties its planner).

        Raises:
            DeviceUnavailable: not connected.
        """
        session = self._live_session()
        session.realtime(codec.JOG_CANCEL)
        await session.refresh()  # a report from after the cancel, then one that is not Jog
        await self._until(lambda: session.report is not None and session.report.state != "Jog")

    async def read_settings(self) -> dict[str, str]:
        """GRBL's ``$$`` settings, ``{"$0": "10", ...}``.

        Raises:
            JobRejected: a job is running.
            DeviceUnavailable: not connected.
        """
        session = self._live_session()
        if self._run is not None:
            raise JobRejected(f"GRBL {self.name} is running job {self._run.job_id}")
        replies = await session.request("$$")
        return {r.key: r.value for r in replies if isinstance(r, codec.Setting)}

    async def write_settings(self, values: Mapping[str, str | float]) -> None:
        """Write ``$x=value`` settings, one at a time, each answered before the next.

        Raises:
            JobRejected: a job is running, or the cell is read-only.
            DeviceFault: GRBL refused one (its ``error:N``); the ones before it are written.
            DeviceUnavailable: not connected.
        """
        session = self._idle_session("write settings")
        for key, value in values.items():
            key = key if key.startswith("$") else f"${key}"
            await session.request(f"{key}={value}")

    def _idle_session(self, what: str) -> Session:
        session = self._live_session()
        if self.settings.read_only:
            raise JobRejected(f"GRBL {self.name} is read-only: will not {what}")
        if self._run is not None:
            raise JobRejected(f"GRBL {self.name} is running job {self._run.job_id}")
        return session
