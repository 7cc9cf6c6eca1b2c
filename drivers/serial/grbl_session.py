"""One open link to a GRBL controller: the pump that reads, polls and writes (docs/grbl.md).

Theory of operation: one task (the pump) owns the port while it is open. Each turn it
checks its clocks (the next ``?`` poll, an unanswered ``?``, a soft reset waiting for its
welcome, a feed hold that must stop the machine), writes what may go out (real-time
bytes first, then ``$`` commands one at a time with nothing beside them, then job lines
as far as :class:`CharCounter` lets them), and waits for GRBL's next line or the next
clock. Each line is sorted (:func:`grbl_codec.parse`): answers go to the oldest line in
flight; status reports, alarms and welcome lines are told to the driver through
:class:`SessionEvents`, which decides what they mean for the job. The session knows
links and bytes; the driver knows jobs and policies.

Failures: a ``?`` unanswered for ``status_timeout_s`` (except while homing, when GRBL does
not answer), a soft reset not followed by a welcome within ``reset_timeout_s``, or a port
error fail the session for good: every waiter gets :class:`DeviceUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drivers.serial import grbl_codec as codec
from drivers.serial.grbl_job import CharCounter, GrblRun, Phase, Tag
from drivers.serial.transport import SerialTransport
from mes.errors import DeviceFault, DeviceUnavailable

if TYPE_CHECKING:
    from drivers.serial.grbl_settings import GrblSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionEvents:
    """What the session tells its driver (all called on the pump, never awaited)."""

    run: Callable[[], GrblRun | None]
    """The job being streamed, if any."""
    answered: Callable[[Tag, int | None], None]
    """A job or check line was answered: ``ok`` (None) or ``error:N`` (N)."""
    status: Callable[[codec.StatusReport, bool], None]
    """A status report; True when it came after the job's last line was answered."""
    alarm: Callable[[int], None]
    reset: Callable[[bool, str], None]
    """A welcome line: whether we caused the reset, and the line."""
    lost: Callable[[DeviceUnavailable], None]


@dataclass
class _Command:
    text: str
    future: asyncio.Future[list[codec.Reply]]
    homing: bool = False
    resets: bool = False
    replies: list[codec.Reply] = field(default_factory=list)


class Session:
    """The pump of one open port (see the module docstring).

    Attributes:
        report: The latest status report (None until GRBL answered one).
        wco: The latest work coordinate offset GRBL reported.
        welcome: The latest welcome line (``Grbl 1.1h``).
        alarm: The ``ALARM:N`` that locked GRBL (None: not locked, or locked at power-up).
        alarm_from_check: The lock came from a soft limit found in check mode.
        policy_done: The unlock/home policy was applied to the current lock.
        online: Connected and identified: job lines may be streamed.
        checking: GRBL is in check mode for the job's ``$C`` pass.
        settling: The job's last line was answered; the next status reports say whether
            the machine has stopped.
        failure: Why the session ended, once it has.
    """

    def __init__(
        self,
        name: str,
        transport: SerialTransport,
        counter: CharCounter[Tag],
        settings: GrblSettings,
        events: SessionEvents,
    ) -> None:
        self.name = name
        self.transport = transport
        self.counter = counter
        self.settings = settings
        self.events = events
        self.report: codec.StatusReport | None = None
        self.reports = 0
        self.wco: tuple[float, ...] | None = None
        self.welcome = ""
        self.welcomes = 0
        self.alarm: int | None = None
        self.alarm_from_check = False
        self.policy_done = False
        self.online = False
        self.checking = False
        self.settling = False
        self.failure: DeviceUnavailable | None = None
        self.changed = asyncio.Event()
        self._inbox: asyncio.Queue[bytes | DeviceUnavailable | None] = asyncio.Queue()
        self._realtime = bytearray()
        self._commands: deque[_Command] = deque()
        self._command: _Command | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._hello = True
        self._poll_at = 0.0
        self._asked_at: float | None = None
        self._reset_at: float | None = None
        self._hold_at: float | None = None

    def __repr__(self) -> str:
        return f"<Session {self.name} {self.transport.url} {self.counter!r}>"

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._poll_at = asyncio.get_running_loop().time()
        self._tasks = [
            asyncio.create_task(self._read(), name=f"grbl-read:{self.name}"),
            asyncio.create_task(self._pump(), name=f"grbl-pump:{self.name}"),
        ]

    async def hello(self) -> bool:
        """Wait until GRBL shows it is alive; soft-reset it only if it says nothing.

        Returns whether a welcome line came (GRBL was reset: whatever it ran is gone).

        Raises:
            DeviceUnavailable: no welcome and no status report, even after a soft reset.
        """
        s = self.settings
        where = f"GRBL on {self.transport.url} at {s.baudrate} baud"
        try:
            try:
                async with asyncio.timeout(s.connect_timeout_s):
                    await self.until(lambda: self.report is not None or self.welcomes > 0)
            except TimeoutError:
                log.info("%s: no welcome and no status report; soft reset", where)
                self.reset("no answer on connect")
                async with asyncio.timeout(s.reset_timeout_s):
                    await self.until(lambda: self.welcomes > 0)
            async with asyncio.timeout(s.connect_timeout_s):
                await self.until(lambda: self.report is not None)
        except (TimeoutError, DeviceUnavailable) as exc:
            raise DeviceUnavailable(
                f"no answer from {where}: neither a welcome line nor a status report within "
                f"{s.connect_timeout_s:g} s, nor after a soft reset (is it on, is it GRBL, and "
                "is the baud rate right?)"
            ) from exc
        finally:
            self._hello = False
        return self.welcomes > 0

    async def aclose(self) -> None:
        if self.failure is None:
            self.failure = DeviceUnavailable(f"GRBL {self.name} on {self.transport.url} is closed")
        self._fail_commands(self.failure)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.transport.aclose()
        self.notify()

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def until(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()``; raises the session's failure first if there is one."""
        while True:
            changed = self.changed
            if self.failure is not None:
                raise self.failure
            if done():
                return
            await changed.wait()

    def wake(self) -> None:
        """Let the pump look again for something to send."""
        self._inbox.put_nowait(None)

    # -- what the driver asks -----------------------------------------------------------

    async def request(
        self,
        text: str,
        *,
        timeout_s: float | None = None,
        homing: bool = False,
        resets: bool = False,
    ) -> list[codec.Reply]:
        """Send one ``$`` command alone (send-response); the push messages that came with
        its ``ok``.

        Args:
            homing: ``$H``: GRBL answers no ``?`` until it is done.
            resets: GRBL resets itself after the ``ok`` (leaving check mode).

        Raises:
            DeviceFault: GRBL answered ``error:N`` (or reset before answering).
            DeviceUnavailable: no answer in time, or the link failed.
        """
        if self.failure is not None:
            raise self.failure
        future: asyncio.Future[list[codec.Reply]] = asyncio.get_running_loop().create_future()
        command = _Command(text, future, homing=homing, resets=resets)
        self._commands.append(command)
        self.wake()
        limit = timeout_s if timeout_s is not None else self.settings.command_timeout_s
        try:
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            future.cancel()
            raise DeviceUnavailable(
                f"GRBL {self.name} on {self.transport.url}: no answer to {text!r} within "
                f"{limit:g} s"
            ) from None

    def realtime(self, byte: bytes) -> None:
        """Write a real-time command now (it skips GRBL's buffer and every line queued)."""
        self._realtime += byte
        self.wake()

    def reset(self, why: str) -> None:
        """Soft-reset GRBL (Ctrl-X) unless a reset is already under way."""
        if self._reset_at is not None or self.failure is not None:
            return
        log.info("GRBL %s: soft reset (%s)", self.name, why)
        self._realtime += codec.SOFT_RESET
        self._await_welcome()
        self.counter.clear()  # GRBL drops its buffer: those lines get no answer
        if self._command is not None:
            self._answer_command(None, DeviceFault(f"{self._command.text}: GRBL reset", "reset"))
        self.wake()

    @property
    def resetting(self) -> bool:
        return self._reset_at is not None

    @property
    def busy(self) -> bool:
        """Stopping the machine (hold, then reset): nothing is sent until it is done."""
        return self._reset_at is not None or self._hold_at is not None

    def stop_machine(self) -> None:
        """Feed hold now, soft reset once a report says the machine stands still (or after
        ``hold_timeout_s``, losing position); nothing else is sent meanwhile."""
        now = asyncio.get_running_loop().time()
        self.checking = False
        self._realtime += codec.FEED_HOLD
        self._hold_at = now + self.settings.hold_timeout_s
        self._poll_at = now
        self.wake()

    async def refresh(self) -> codec.StatusReport:
        """Ask for a status report now and wait for it (the state after a command).

        Raises:
            DeviceUnavailable: the link failed (a ``?`` unanswered fails it).
        """
        seen = self.reports
        self._poll_at = asyncio.get_running_loop().time()
        self.wake()
        await self.until(lambda: self.reports > seen)
        assert self.report is not None
        return self.report

    def job_settling(self) -> None:
        """The job's last line is answered: ask how the machine stands now."""
        self.settling = True
        self._poll_at = asyncio.get_running_loop().time()
        self.wake()

    # -- the pump -------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                self._inbox.put_nowait(await self.transport.read_line())
        except DeviceUnavailable as exc:
            self._inbox.put_nowait(exc)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._tick(loop.time())
                await self._send()
                try:
                    async with asyncio.timeout_at(self._deadline()):
                        item = await self._inbox.get()
                except TimeoutError:
                    continue
                while True:
                    if isinstance(item, DeviceUnavailable):
                        raise item
                    if item is not None:
                        self._received(item.decode("ascii", "replace"), loop.time())
                    if self._inbox.empty():
                        break
                    item = self._inbox.get_nowait()
                self.notify()
        except DeviceUnavailable as exc:
            self._fail(exc)
        except Exception as exc:  # a bug here must not leave callers waiting forever
            log.exception("GRBL %s: driver failed", self.name)
            self._fail(DeviceUnavailable(f"GRBL {self.name}: driver failed: {exc!r}"))

    def _fail(self, exc: DeviceUnavailable) -> None:
        if self.failure is None:
            self.failure = exc
        self._fail_commands(exc)
        self.events.lost(exc)
        self.notify()

    def _fail_commands(self, exc: Exception) -> None:
        for command in [*self._commands, *([self._command] if self._command else [])]:
            if not command.future.done():
                command.future.set_exception(exc)
        self._commands.clear()
        self._command = None

    def _deadline(self) -> float:
        s = self.settings
        times = [self._poll_at]
        if self._asked_at is not None and self._watching():
            times.append(self._asked_at + s.status_timeout_s)
        if self._reset_at is not None:
            times.append(self._reset_at)
        if self._hold_at is not None:
            times.append(self._hold_at)
        return min(times)

    def _watching(self) -> bool:
        """Whether an unanswered ``?`` counts now (not while GRBL cannot answer one)."""
        homing = self._command is not None and self._command.homing
        return not (self._hello or homing or self._reset_at is not None)

    def _tick(self, now: float) -> None:
        s = self.settings
        if self._reset_at is not None and now >= self._reset_at:
            raise DeviceUnavailable(
                f"GRBL {self.name} on {self.transport.url} did not come back from a soft reset "
                f"(no welcome line within {s.reset_timeout_s:g} s)"
            )
        if self._hold_at is not None and now >= self._hold_at:
            self._hold_at = None
            log.warning(
                "GRBL %s: the feed hold did not stop the machine within %g s; resetting "
                "anyway (position may be lost)",
                self.name,
                s.hold_timeout_s,
            )
            self.reset("feed hold timed out")
        asked = self._asked_at
        if asked is not None and self._watching() and now >= asked + s.status_timeout_s:
            raise DeviceUnavailable(
                f"GRBL {self.name} on {self.transport.url} did not answer a status query ('?') "
                f"within {s.status_timeout_s:g} s: the link is down or the controller hung"
            )
        if now >= self._poll_at and self._reset_at is None:
            self._realtime += codec.STATUS_QUERY  # duplicates before the report are ignored
            self._poll_at = now + s.poll_s
            if self._asked_at is None:
                self._asked_at = now

    async def _send(self) -> None:
        out = bytearray(self._realtime)
        self._realtime.clear()
        while (frame := self._next_frame()) is not None:
            out += frame
        if out:
            await self.transport.write(bytes(out))

    def _next_frame(self) -> bytes | None:
        if self.busy:
            return None
        while self._command is None and self._commands and self.counter.in_flight == 0:
            command = self._commands.popleft()
            if command.future.done():
                continue  # its caller gave up waiting
            self._command = command
            data = f"{command.text}\n".encode("ascii")
            self.counter.sent(len(data), ("cmd", 0))
            return data
        if self._command is not None or self._commands or not self.online:
            return None  # nothing goes beside a $ command
        run = self.events.run()
        if run is None:
            return None
        if run.phase is Phase.CHECKING:
            item = run.next_check_line() if self.checking else None
        else:
            item = run.next_line()
        if item is None:
            return None
        text, tag = item
        data = f"{text}\n".encode("ascii")
        if not self.counter.fits(len(data)):
            return None
        self.counter.sent(len(data), tag)
        if run.phase is Phase.CHECKING:
            run.check_line_sent()
        else:
            run.line_sent()
        return data

    # -- what GRBL says -----------------------------------------------------------------

    def _received(self, text: str, now: float) -> None:
        reply = codec.parse(text)
        match reply:
            case codec.Ok() | codec.Error():
                self._on_answer(reply, now)
            case codec.Status(report=report):
                self._on_status(report)
            case codec.Alarm(code=code):
                self._on_alarm(code)
            case codec.Welcome(version=version):
                self._on_welcome(version, now)
            case codec.Feedback(kind="MSG", text=message):
                self._on_message(message)
            case codec.Feedback() | codec.Setting():
                if self._command is not None:
                    self._command.replies.append(reply)
            case codec.StartupLine(line=line, error=error) if error is not None:
                log.warning(
                    "GRBL %s: startup line %r: %s", self.name, line, codec.error_text(error)
                )
            case _:
                log.debug("GRBL %s: %s", self.name, text)

    def _on_answer(self, reply: codec.Ok | codec.Error, now: float) -> None:
        tag = self.counter.answered()
        if tag is None:
            log.debug(
                "GRBL %s: %r answers no line of ours (from before a reset?)", self.name, reply
            )
            return
        error = reply.code if isinstance(reply, codec.Error) else None
        if tag[0] != "cmd":
            self.events.answered(tag, error)
            return
        command = self._command
        if command is None:
            return
        if error is not None:
            fault = DeviceFault(f"{command.text}: {codec.error_text(error)}", f"error:{error}")
            self._answer_command(None, fault)
            return
        if command.homing:
            self._asked_at, self._poll_at = None, now  # GRBL dropped the queries made meanwhile
        if command.resets:
            self._await_welcome()
        self._answer_command(command.replies, None)

    def _answer_command(self, replies: list[codec.Reply] | None, error: Exception | None) -> None:
        command, self._command = self._command, None
        if command is None or command.future.done():
            return
        if error is not None:
            command.future.set_exception(error)
        else:
            command.future.set_result(replies or [])

    def _await_welcome(self) -> None:
        now = asyncio.get_running_loop().time()
        self._reset_at = now + self.settings.reset_timeout_s
        self._asked_at = None
        self._hold_at = None
        self.checking = False
        self.settling = False

    def _on_status(self, report: codec.StatusReport) -> None:
        self._asked_at = None
        self.reports += 1
        if report.wco is not None:
            self.wco = report.wco
        self.report = report
        if report.state != "Alarm":
            self.alarm, self.alarm_from_check, self.policy_done = None, False, False
        if self._hold_at is not None and still(report):
            self._hold_at = None
            self.reset("the machine stands still")
        self.events.status(report, self.settling)

    def _on_alarm(self, code: int) -> None:
        log.warning("GRBL %s: %s", self.name, codec.alarm_text(code))
        self.alarm = code
        run = self.events.run()
        if run is not None and run.phase is Phase.CHECKING and self.checking:
            self.alarm_from_check = True
            self.checking = False
            for tag in self.counter.clear():
                if tag[0] == "check":  # the oldest line in flight raised it
                    run.check_answered(tag[1], -code)
                    break
        self.events.alarm(code)
        if code in codec.CRITICAL_ALARMS:
            self.reset(f"ALARM:{code} halts GRBL until a reset")

    def _on_message(self, message: str) -> None:
        if self._command is not None:
            self._command.replies.append(codec.Feedback("MSG", message))
        if message == "Reset to continue":
            self.reset("GRBL asks for a reset to continue")
        elif message.endswith("to unlock"):  # right after a welcome: GRBL starts locked
            self.report = codec.StatusReport("Alarm")
        elif message == "Check Door":
            log.warning("GRBL %s: safety door open", self.name)
        else:
            log.debug("GRBL %s: [MSG:%s]", self.name, message)

    def _on_welcome(self, version: str, now: float) -> None:
        expected = self._reset_at is not None or self._hello
        # What GRBL is right after a reset, until its next report: an alarm survives it.
        locked = self.alarm is not None or (
            self.report is not None and self.report.state in ("Alarm", "Sleep")
        )
        if self.report is not None or not self._hello:
            self.report = codec.StatusReport("Alarm" if locked else "Idle")
        self._reset_at = self._hold_at = self._asked_at = None
        self.welcome = version
        self.welcomes += 1
        self.checking = self.settling = False
        stray = not expected and self.counter.used > 0
        self.counter.clear()
        if self._command is not None:
            self._answer_command(None, DeviceFault(f"{self._command.text}: GRBL reset", "reset"))
        self._poll_at = now
        self.events.reset(expected, version)
        if stray:
            # Bytes still on their way reach the fresh GRBL as lines of their own (and their
            # answers would be taken for ours): stop and reset once more to flush them.
            log.warning("GRBL %s: flushing the lines that were on the wire at its reset", self.name)
            self.stop_machine()


def still(report: codec.StatusReport) -> bool:
    """After a feed hold: the machine stands still and a reset loses no position.

    ``Idle`` is not enough: GRBL turns a feed hold in Idle into ``Hold:0``, so an ``Idle``
    report is from before the hold and the machine may have started a move since.
    """
    if report.state == "Hold":
        return report.substate == 0
    if report.state == "Door":
        return report.substate in (0, 1)
    return report.state in ("Alarm", "Check", "Sleep")
