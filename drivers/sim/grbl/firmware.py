"""A virtual GRBL 1.1: the controller side of the host protocol, in device time.

Theory of operation (grbl 1.1h's ``serial.c``, ``protocol.c``, ``system.c``; every
duration is device time divided by ``speed``):

* **Serial input** (:meth:`SimGrbl.feed`, the receive interrupt). Real-time bytes are
  picked off before the buffer: ``?`` status, ``!`` feed hold, ``~`` cycle start, Ctrl-X
  soft reset, 0x85 jog cancel, 0x90..0x9D overrides. Every other byte goes into a
  ``rx_buffer``-byte buffer (128); a byte that finds it full is lost (:attr:`overflowed`),
  as on the real UART, so a host that over-sends corrupts lines. While a ``$x=`` setting
  is written to EEPROM the interrupt is off and arriving bytes are lost.
* **Main loop.** Takes bytes from the buffer into a line as GRBL does (whitespace,
  control characters and comments dropped, upper case, ``\\n`` or ``\\r`` ends a line, more
  than 79 characters is ``error:11``) and answers each line with ``ok`` or ``error:N``
  once it is executed: a move is answered when it is in the planner, so the loop stops
  taking bytes while the planner (15 blocks) is full and the buffer fills. A line is not
  taken while GRBL is suspended (feed hold, door, halted after a critical alarm).
* **Motion.** A stepper task works the planner off: each block takes its length over its
  feed rate (G0: the axes' ``$110..$112`` maximum rates), with no acceleration, scaled by
  the feed/rapid override and ``speed``. A feed hold decelerates (``Hold:1``) for
  ``hold_decel_s`` of the block, then holds (``Hold:0``); ``~`` resumes.
* **States and commands**: ``Idle``, ``Run``, ``Hold``, ``Jog``, ``Alarm``, ``Check``,
  ``Home``, ``Sleep``; ``$$ $# $G $I $N $C $X $H $J= $SLP $RST= $x=v $Nx=line``. A soft
  reset in motion throws ALARM:3; GRBL keeps the alarm across the reset and prints
  ``[MSG:'$H'|'$X' to unlock]`` after its welcome; with ``$22=1`` it powers up locked.
* **Job log.** A comment line ``(MES job <id> begin)`` / ``(... end)`` taken outside check
  mode marks a job: :attr:`executed` lists job ids in the order they began, :attr:`jobs`
  how each ended (``done``, ``alarm``, ``lost`` to a reset); ``on_job(name, id)`` hears
  each begin (``mes sim`` writes its execution log from it).
* **Scripted faults**, each on the ``after``-th G-code line from now taken outside check
  mode: :meth:`fail_next` (``error:N`` instead of running it), :meth:`corrupt` (it
  arrives with a bit flipped), :meth:`drop_ok` (run, not answered), :meth:`stall` (the
  main loop freezes before it, in device time: no answers, no status reports). And
  :meth:`inject_alarm` (e.g. a hard limit, ALARM:1), :meth:`reset` (the reset button, or
  a power cycle: the welcome line again), :meth:`go_silent` / :meth:`wake_up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from drivers.sim.grbl.gcode import (
    Dwell,
    GcodeError,
    Interpreter,
    Move,
    Pause,
    ProgramEnd,
    Spindle,
)
from drivers.sim.grbl.motion import Block, Stepper

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[int, str] = {
    0: "10", 1: "25", 2: "0", 3: "0", 4: "0", 5: "0", 6: "0", 10: "3", 11: "0.010",
    12: "0.002", 13: "0", 20: "0", 21: "0", 22: "0", 23: "0", 24: "25.000", 25: "500.000",
    26: "250", 27: "1.000", 30: "1000", 31: "0", 32: "0", 100: "250.000", 101: "250.000",
    102: "250.000", 110: "6000.000", 111: "6000.000", 112: "3000.000", 120: "10.000",
    121: "10.000", 122: "10.000", 130: "200.000", 131: "200.000", 132: "200.000",
}  # fmt: skip
"""interface.md's list, with faster rapids and ``$10=3`` (MPos and buffer state)."""
CRITICAL = {1, 2}
_MARKER = re.compile(r"MES job (\d+) (begin|end)")
_BUILD_DATE = "20190825"


@dataclass
class _Scripted:
    """A fault waiting for its line: ``after`` G-code lines still to let pass."""

    after: int
    kind: str
    """``error``, ``corrupt``, ``drop_ok`` or ``stall``."""
    value: float


@dataclass
class JobRecord:
    """One job between its markers, as the controller saw it (loop times)."""

    job_id: int
    begun_at: float
    ended_at: float | None = None
    outcome: str = "running"
    """``running``, ``done``, ``alarm`` or ``lost`` (reset mid-job)."""


class SimGrbl:
    """A GRBL 1.1 controller with a stepper model (see the module docstring).

    Attributes:
        executed: Job ids in the order their begin markers ran (never checked ones).
        jobs: One record per job begun.
        taken: Every line the main loop took outside check mode, as GRBL kept it.
        checked: Lines taken in check mode.
        max_fill: The most bytes ever waiting in the receive buffer.
        overflowed: Bytes lost because the receive buffer was full.
        eeprom_lost: Bytes lost because they arrived during an EEPROM write.
        settings_writes: Each ``$x=v`` taken, with the bytes that waited behind it.
        blocks_done: Moves the stepper finished.
        boots: Welcome lines printed (power-ups and resets).
    """

    def __init__(
        self,
        name: str = "grbl",
        *,
        speed: float = 1.0,
        rx_buffer: int = 128,
        planner_blocks: int = 15,
        version: str = "1.1h",
        settings: Mapping[int, str | float] | None = None,
        hold_decel_s: float = 0.2,
        homing_s: float = 3.0,
        eeprom_write_s: float = 0.02,
        on_job: Callable[[str, int], None] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.name = name
        self.on_job = on_job
        self.speed = speed
        self.rx_size = rx_buffer
        self.planner_blocks = planner_blocks
        self.version = version
        self.settings = {**DEFAULT_SETTINGS, **{k: str(v) for k, v in (settings or {}).items()}}
        self.homing_s = homing_s
        self.eeprom_write_s = eeprom_write_s
        self.state = "Idle"
        self.substate: int | None = None
        self.check_mode = False
        self.critical = False
        self.executed: list[int] = []
        self.jobs: list[JobRecord] = []
        self.taken: list[str] = []
        self.checked: list[str] = []
        self.max_fill = 0
        self.overflowed = 0
        self.eeprom_lost = 0
        self.settings_writes: list[tuple[str, int]] = []
        self.overrides = [100, 100, 100]
        self.startup_lines = ["", ""]
        self.interpreter = Interpreter()
        self.stepper = Stepper(self, hold_decel_s=hold_decel_s)
        self._rx: deque[int] = deque()
        self._rx_arrived = asyncio.Event()
        self._sinks: list[Callable[[bytes], None]] = []
        self._main: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._report_due = False
        self._reports = 0
        self._wco_sent: tuple[float, ...] | None = None
        self._silent = False
        self._eeprom_busy = False
        self._script: list[_Scripted] = []
        self._frozen = False
        #: Scripted stalls made: (the line, real seconds).
        self.stalls: list[tuple[str, float]] = []
        self.reset_after_answer = False
        self.boots = 0

    def __repr__(self) -> str:
        return f"<SimGrbl {self.name} {self.state} planner={len(self.stepper.planner)}>"

    @property
    def blocks_done(self) -> int:
        return self.stepper.blocks_done

    @property
    def position(self) -> tuple[float, float, float]:
        """Machine position now (mm)."""
        return self.stepper.position()

    # -- wiring -------------------------------------------------------------------------

    def attach(self, sink: Callable[[bytes], None]) -> Callable[[], None]:
        """Send GRBL's output to ``sink``; returns a function that detaches it."""
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink) if sink in self._sinks else None

    async def start(self) -> None:
        """Power up: welcome line, locked in ALARM if homing is enabled (``$22=1``)."""
        self._power_up()

    async def aclose(self) -> None:
        await self._stop_tasks()

    def _say(self, text: str) -> None:
        if self._silent:
            return
        data = f"{text}\r\n".encode("ascii")
        for sink in list(self._sinks):
            sink(data)

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()`` (for tests: ``await sim.wait_for(lambda: ...)``)."""
        while not done():
            await self._changed.wait()

    # -- the receive interrupt ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes arriving on the serial line, in order."""
        for byte in data:
            if self._silent:
                continue
            if byte == 0x18:
                self._soft_reset()
            elif byte == 0x3F:
                self._status_query()
            elif byte == 0x21:
                self._feed_hold()
            elif byte == 0x7E:
                self._cycle_start()
            elif byte >= 0x80:
                self._extended(byte)
            elif self._eeprom_busy:
                self.eeprom_lost += 1
            elif len(self._rx) >= self.rx_size:
                self.overflowed += 1
            else:
                self._rx.append(byte)
                self.max_fill = max(self.max_fill, len(self._rx))
        self._rx_arrived.set()

    def _status_query(self) -> None:
        if self._report_due or self.critical or self.state == "Home":
            return  # extra queries before the report are ignored; none while homing/halted
        self._report_due = True
        asyncio.get_running_loop().call_soon(self._report)

    def _feed_hold(self) -> None:
        if self.state in ("Run",):
            self.state, self.substate = "Hold", 1
            self.stepper.interrupt()
        elif self.state == "Idle":
            self.state, self.substate = "Hold", 0  # GRBL: a hold in Idle is complete at once
        elif self.state == "Jog":
            self._jog_cancel()
        self.notify()

    def _cycle_start(self) -> None:
        if self.state == "Hold" and self.substate == 0:
            self.state, self.substate = ("Run" if self.stepper.planner else "Idle"), None
            self.stepper.interrupt()
        elif self.state == "Idle" and self.stepper.planner:
            self.state = "Run"
            self.stepper.interrupt()
        self.notify()

    def _extended(self, byte: int) -> None:
        if byte == 0x85 and self.state == "Jog":
            self._jog_cancel()
        feed, rapid, spindle = self.overrides
        changes = {
            0x90: (100, rapid, spindle), 0x91: (feed + 10, rapid, spindle),
            0x92: (feed - 10, rapid, spindle), 0x93: (feed + 1, rapid, spindle),
            0x94: (feed - 1, rapid, spindle), 0x95: (feed, 100, spindle),
            0x96: (feed, 50, spindle), 0x97: (feed, 25, spindle),
            0x99: (feed, rapid, 100), 0x9A: (feed, rapid, spindle + 10),
            0x9B: (feed, rapid, spindle - 10), 0x9C: (feed, rapid, spindle + 1),
            0x9D: (feed, rapid, spindle - 1),
        }  # fmt: skip
        if byte in changes:
            f, r, s = changes[byte]
            self.overrides = [min(max(f, 10), 200), r, min(max(s, 10), 200)]
            self.stepper.interrupt()  # the block in motion picks up the new rate

    def _jog_cancel(self) -> None:
        self.stepper.flush()
        self.interpreter.position = self.stepper.position()
        self.state, self.substate = "Idle", None
        self.notify()

    # -- resets -----------------------------------------------------------------------------

    def _soft_reset(self) -> None:
        """Ctrl-X (or the reset pin): stop, keep an alarm, re-initialise, welcome."""
        moving = self.state in ("Run", "Jog") or (self.state == "Hold" and self.substate == 1)
        if self.state == "Home":
            self._alarm(6)
        elif moving:
            self._alarm(3)
        self._restart(alarm=self.state in ("Alarm", "Sleep"))

    def reset(self, *, power: bool = False) -> None:
        """The reset button (a soft reset: ALARM:3 if moving), or a power cycle (``power``:
        position and alarm gone, locked again if homing is enabled)."""
        if power:
            self.stepper.flush()
            self.stepper.set_position((0.0, 0.0, 0.0))
            self.state, self.substate, self.critical = "Idle", None, False
            self._power_up()
        else:
            self._soft_reset()

    def _power_up(self) -> None:
        self._restart(alarm=self.settings[22] == "1")

    def _restart(self, *, alarm: bool) -> None:
        self.stepper.flush()
        self._rx.clear()
        self._report_due = False
        self.critical = False
        self.check_mode = False
        self._eeprom_busy = False
        self.interpreter.reset()
        self.interpreter.position = self.stepper.position()
        self._wco_sent = None
        self._reports = 0
        for record in self.jobs:
            if record.outcome == "running":
                record.outcome, record.ended_at = "lost", asyncio.get_running_loop().time()
        self.state, self.substate = ("Alarm" if alarm else "Idle"), None
        if self._main is not None:
            self._main.cancel()
        self.boots += 1
        self._say("")
        self._say(f"Grbl {self.version} ['$' for help]")
        if alarm:
            self._say("[MSG:'$H'|'$X' to unlock]")
        else:
            for line in self.startup_lines:
                if line:
                    self._say(f">{line}:ok")
        self._main = asyncio.get_running_loop().create_task(self._main_loop())
        self.stepper.start()
        self.notify()

    async def _stop_tasks(self) -> None:
        tasks = [t for t in (self._main,) if t is not None]
        self._main = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stepper.aclose()

    # -- alarms and faults ----------------------------------------------------------------

    def _alarm(self, code: int) -> None:
        self.stepper.flush()
        self.interpreter.position = self.stepper.position()
        self.state, self.substate = "Alarm", None
        for record in self.jobs:
            if record.outcome == "running":
                record.outcome, record.ended_at = "alarm", asyncio.get_running_loop().time()
        self._say(f"ALARM:{code}")
        if code in CRITICAL:
            self.critical = True  # halted: only a reset helps, no status reports
            self._say("[MSG:Reset to continue]")
        self.notify()

    def inject_alarm(self, code: int = 1) -> None:
        """An alarm now: 1 a hard limit switch, 2 soft limit, 4/5 probe, 8/9 homing..."""
        self._alarm(code)

    def fail_next(self, code: int = 20, *, after: int = 0) -> None:
        """Answer ``error:<code>`` to a coming G-code line (the ``after``-th one from now,
        not counting lines taken in check mode) instead of executing it."""
        self._script.append(_Scripted(after, "error", code))

    def corrupt(self, *, after: int = 0, bit: int = 0x04) -> None:
        """A coming G-code line arrives with ``bit`` flipped in its first letter (noise on
        the line). GRBL has no checksum: a flipped digit would run as a wrong coordinate
        unseen; a flipped letter (``G1`` read as ``C1``) is refused, as here."""
        self._script.append(_Scripted(after, "corrupt", bit))

    def drop_ok(self, *, after: int = 0) -> None:
        """Run a coming G-code line but lose its ``ok``."""
        self._script.append(_Scripted(after, "drop_ok", 0))

    def stall(self, device_s: float, *, after: int = 0) -> None:
        """Freeze the main loop for ``device_s`` of device time before a coming G-code
        line: no answer and no status report meanwhile (a ``?`` is answered after), while
        the receive buffer keeps filling and the planned moves go on. :attr:`stalls`
        records each."""
        self._script.append(_Scripted(after, "stall", device_s))

    def _due(self) -> list[_Scripted]:
        """The scripted faults for the G-code line being taken now."""
        due = [fault for fault in self._script if fault.after == 0]
        for fault in self._script:
            fault.after -= 1
        self._script = [fault for fault in self._script if fault.after >= 0]
        return due

    def go_silent(self) -> None:
        """Stop answering anything (a hung controller, a pulled cable)."""
        self._silent = True

    def wake_up(self) -> None:
        self._silent = False

    # -- status reports ------------------------------------------------------------------

    def _report(self) -> None:
        if self._frozen:
            return  # the main loop reports once it runs again
        self._report_due = False
        if self.critical or self._silent:
            return
        self._reports += 1
        mask = int(self.settings[10])
        state = self.state if self.substate is None else f"{self.state}:{self.substate}"
        position = self.position
        wco = self.interpreter.wco
        fields = [state]
        if mask & 1:
            fields.append("MPos:" + _xyz(position))
        else:
            fields.append("WPos:" + _xyz(tuple(p - o for p, o in zip(position, wco, strict=True))))
        if mask & 2:
            free = self.planner_blocks - len(self.stepper.planner)
            fields.append(f"Bf:{free},{self.rx_size - len(self._rx)}")
        feed = self.stepper.current_feed() if self.state in ("Run", "Jog") else 0.0
        speed = self.interpreter.modal.speed if self.interpreter.modal.spindle != 5 else 0.0
        fields.append(f"FS:{feed:.0f},{speed:.0f}")
        busy = self.state in ("Run", "Jog", "Hold", "Home")
        wco_due = self._wco_sent != wco or self._reports % (30 if busy else 10) == 0
        if wco_due:
            self._wco_sent = wco
            fields.append("WCO:" + _xyz(wco))
        elif self._reports == 2 or self._reports % (20 if busy else 10) == 0:
            fields.append("Ov:{},{},{}".format(*self.overrides))
            accessories = {3: "S", 4: "C"}.get(self.interpreter.modal.spindle, "")
            accessories += "".join(
                {7: "M", 8: "F"}[c] for c in sorted(self.interpreter.modal.coolant)
            )
            if accessories:
                fields.append(f"A:{accessories}")
        self._say("<" + "|".join(fields) + ">")

    # -- the main loop ----------------------------------------------------------------------

    async def _main_loop(self) -> None:
        while True:
            line, comment, overflow = await self._next_line()
            await self.wait_for(lambda: not self._suspended())
            reply = await self._execute(line, comment, overflow)
            if reply is not None:
                self._say(reply)
            if self.reset_after_answer:  # leaving check mode: GRBL resets after its ok
                self.reset_after_answer = False
                self._soft_reset()
                return

    def _suspended(self) -> bool:
        return self.critical or self.state in ("Hold", "Sleep") or self.state == "Door"

    async def _next_line(self) -> tuple[str, str, bool]:
        kept: list[str] = []
        comment: list[str] = []
        in_paren = in_semicolon = overflow = False
        while True:
            while not self._rx:
                self._rx_arrived.clear()
                await self._rx_arrived.wait()
            char = chr(self._rx.popleft())
            if char in "\r\n":
                return "".join(kept), "".join(comment), overflow
            if in_paren:
                if char == ")":
                    in_paren = False
                else:
                    comment.append(char)
            elif in_semicolon:
                comment.append(char)
            elif char <= " " or char == "/":
                continue
            elif char == "(":
                in_paren = True
            elif char == ";":
                in_semicolon = True
            elif len(kept) >= 79:
                overflow = True
            else:
                kept.append(char.upper())

    async def _execute(self, line: str, comment: str, overflow: bool) -> str | None:
        if overflow:
            return "error:11"
        if not line:
            self._marker(comment)
            return "ok"
        if line.startswith("$"):
            return await self._system(line)
        due = {fault.kind: fault.value for fault in (() if self.check_mode else self._due())}
        if "stall" in due:
            await self._freeze(line, due["stall"])
        if "corrupt" in due:
            line = chr(ord(line[0]) ^ int(due["corrupt"])) + line[1:]
        (self.checked if self.check_mode else self.taken).append(line)
        self.notify()
        if self.state in ("Alarm", "Jog"):
            return "error:9"
        if "error" in due:
            return f"error:{int(due['error'])}"
        try:
            actions = self.interpreter.execute(line)
        except GcodeError as exc:
            return f"error:{exc.code}"
        for action in actions:
            match action:
                case Move():
                    if self._beyond_travel(action.target):
                        self.stepper.set_position(self.stepper.position())
                        self._alarm(2)
                        return None  # halted mid-line: GRBL answers nothing
                    if not self.check_mode:
                        await self.stepper.plan(Block.of(action, self))
                case Spindle() if not self.check_mode and self.settings[32] != "1":
                    await self.stepper.synchronize()  # laser mode changes power on the fly
                case Dwell(seconds=seconds) if not self.check_mode:
                    await self.stepper.synchronize()
                    await asyncio.sleep(seconds / self.speed)
                case Pause() if not self.check_mode:
                    await self.stepper.synchronize()
                    self._feed_hold()
                case ProgramEnd():
                    if not self.check_mode:
                        await self.stepper.synchronize()
                    self._say("[MSG:Pgm End]")
        return None if "drop_ok" in due else "ok"

    async def _freeze(self, line: str, device_s: float) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        self._frozen = True
        try:
            await asyncio.sleep(device_s / self.speed)
        finally:
            self._frozen = False
        self.stalls.append((line, loop.time() - began))
        self.notify()
        if self._report_due:
            self._report()

    def _beyond_travel(self, target: tuple[float, float, float]) -> bool:
        if self.settings[20] != "1":
            return False
        travel = [float(self.settings[130 + i]) for i in range(3)]
        return any(t > 1e-6 or t < -limit - 1e-6 for t, limit in zip(target, travel, strict=True))

    def _marker(self, comment: str) -> None:
        match = _MARKER.search(comment)
        if match is None or self.check_mode:
            return
        job_id, what = int(match[1]), match[2]
        now = asyncio.get_running_loop().time()
        if what == "begin":
            self.executed.append(job_id)
            self.jobs.append(JobRecord(job_id, now))
            if self.on_job is not None:
                self.on_job(self.name, job_id)  # the execution log of `mes sim`
        else:
            for record in self.jobs:
                if record.job_id == job_id and record.outcome == "running":
                    record.outcome, record.ended_at = "done", now
        self.notify()

    # -- $ commands -------------------------------------------------------------------------

    async def _system(self, line: str) -> str:
        from drivers.sim.grbl.system import execute

        return await execute(self, line)

    def say(self, text: str) -> None:
        """Print a line as GRBL would (for the system commands and for tests)."""
        self._say(text)

    def eeprom(self, busy: bool) -> None:
        self._eeprom_busy = busy

    def rx_waiting(self) -> int:
        return len(self._rx)


def _xyz(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:.3f}" for v in values)
