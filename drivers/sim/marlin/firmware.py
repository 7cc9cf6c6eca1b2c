"""A virtual Marlin printer: the firmware side of the host protocol, in device time.

Theory of operation (Marlin 2.x behaviour; every duration is device time divided by
``speed``, so ``speed=50`` heats a hotend in a second or two):

* **Serial input.** Bytes land in a ``rx_buffer``-byte buffer (Marlin's RX_BUFFER_SIZE,
  128); bytes beyond it are lost, as in a UART overrun. The main loop moves whole lines
  into the command queue (BUFSIZE, 4) only between commands, checking them as
  ``queue.cpp`` does: a numbered line needs a checksum (the XOR of the bytes before the
  last ``*``) and the number after the last one taken, unless it carries ``M110``. A bad
  line is answered ``Error:<why>, Last Line: <n>``, ``Resend: <n+1>``, ``ok``, and the
  rest of the input buffer is thrown away (``gcode_line_error``).
* **Main loop.** One command at a time, each answered ``ok`` when done with. Moves go to
  a planner of ``planner_size`` blocks that a stepper task works off; a move waits while
  the planner is full. ``G28``, ``G4`` and ``M400`` wait for the planner to empty first.
  While the loop waits it prints ``echo:busy: processing`` every ``keepalive_s``
  (HOST_KEEPALIVE_FEATURE; None turns it off).
* **Heaters** move toward their targets at ``heat_rate``/``bed_rate`` deg C/s and cool at
  ``cool_rate``. ``M109``/``M190`` wait, printing a temperature line every second and
  nothing else (``busy`` too with ``busy_while_heating``). ``M105`` answers ``ok T:...``;
  ``M155 S<n>`` reports every n seconds.
* **Reports.** ``M115``: firmware line and ``Cap:`` lines (``capabilities``). ``M118``
  prints its text (``E1``: as ``echo:``, ``A1``: as ``//action:``); ``M118 E1 MES job <id>
  begin|end`` marks a job in the execution log (:attr:`executed`, :attr:`jobs`,
  ``on_job``). :attr:`commands` lists every command taken, with its line number.
* **Scripted faults**: :meth:`corrupt` a received line, :meth:`drop_ok`, :meth:`stall`
  (frozen for a while at a line, in device time), :meth:`halt` (thermal runaway,
  MINTEMP...: kill, silent until reset), :meth:`reset` (``start`` again, job and state
  lost), :meth:`go_silent`/:meth:`wake_up`, :meth:`say` any line.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import reduce
from operator import xor
from typing import Any

CAPABILITIES = {
    "SERIAL_XON_XOFF": False,
    "BINARY_FILE_TRANSFER": False,
    "EEPROM": False,
    "VOLUMETRIC": True,
    "AUTOREPORT_POS": False,
    "AUTOREPORT_TEMP": True,
    "PROGRESS": False,
    "PRINT_JOB": True,
    "AUTOLEVEL": False,
    "Z_PROBE": False,
    "SDCARD": False,
    "AUTOREPORT_SD_STATUS": False,
    "THERMAL_PROTECTION": True,
    "EMERGENCY_PARSER": False,
    "HOST_ACTION_COMMANDS": True,
    "ARC_SUPPORT": True,
}
"""What the printer reports in M115 unless told otherwise."""

_PARAM = re.compile(r"([A-Z])\s*([-+]?\d*\.?\d+)")
_MARKER = re.compile(r"MES job (\d+) (begin|end)")


@dataclass
class JobRecord:
    """One job between its markers, as the printer saw it (loop times)."""

    job_id: int
    begun_at: float
    ended_at: float | None = None
    outcome: str = "running"
    """``running``, ``done``, ``halted`` (killed) or ``lost`` (reset mid-job)."""


@dataclass
class Heater:
    actual: float
    target: float = 0.0
    rate: float = 2.0

    def advance(self, seconds: float, cool_rate: float, ambient: float) -> None:
        if self.actual < self.target:
            self.actual = min(self.target, self.actual + self.rate * seconds)
        else:
            floor = max(self.target, ambient)
            self.actual = max(floor, self.actual - cool_rate * seconds)


@dataclass
class _Faults:
    corrupt: dict[int, int] = field(default_factory=dict)  # line number -> times left
    drop_ok: set[int] = field(default_factory=set)
    stall: dict[int, float] = field(default_factory=dict)  # line number -> device seconds


class SimMarlin:
    """The printer (see the module docstring). Serve it with :class:`SimMarlinPort`."""

    def __init__(
        self,
        name: str = "printer-1",
        *,
        speed: float = 1.0,
        planner_size: int = 16,
        bufsize: int = 4,
        rx_buffer: int = 128,
        capabilities: dict[str, bool] | None = None,
        keepalive_s: float | None = 2.0,
        busy_while_heating: bool = False,
        heat_rate: float = 3.0,
        bed_rate: float = 1.0,
        cool_rate: float = 1.0,
        ambient: float = 25.0,
        home_s: float = 4.0,
        on_job: Callable[[str, int], None] | None = None,
        command_log: int = 100_000,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.name, self.speed = name, speed
        self.planner_size, self.bufsize, self.rx_buffer = planner_size, bufsize, rx_buffer
        self.capabilities = {**CAPABILITIES, **(capabilities or {})}
        self.keepalive_s, self.busy_while_heating = keepalive_s, busy_while_heating
        self.cool_rate, self.ambient, self.home_s = cool_rate, ambient, home_s
        self.heat_rates = (heat_rate, bed_rate)
        self.on_job = on_job
        self.command_log = command_log
        #: Every job id begun, in order (what a test checks for repeats).
        self.executed: list[int] = []
        self.jobs: list[JobRecord] = []
        #: Every command taken, with its line number (None: sent without one); the
        #: oldest tenth is dropped when it passes ``command_log`` entries.
        self.commands: list[tuple[int | None, str]] = []
        #: Commands taken but not known, so not run (``echo:Unknown command``): with a
        #: window above 1, the tail of a line cut in two by a flush lands here.
        self.unknown: list[str] = []
        #: Lines refused (checksum, line number) and resend requests made.
        self.line_errors = 0
        #: Scripted stalls made: (line number, real seconds).
        self.stalls: list[tuple[int, float]] = []
        self.boots = 0
        self.faults = _Faults()
        self._sinks: list[Callable[[bytes], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._boot_state()

    def _boot_state(self) -> None:
        self.hotend = Heater(self.ambient, rate=self.heat_rates[0])
        self.bed = Heater(self.ambient, rate=self.heat_rates[1])
        self._heated_at: float | None = None
        self.last_n = 0
        self.killed = False
        self.silent = False
        self._frozen = False
        self._rx = bytearray()
        self._queue: deque[tuple[int | None, str]] = deque()
        self._planner: deque[tuple[float, float]] = deque()  # (device seconds, queued at)
        self._position = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
        self._absolute = self._e_absolute = True
        self._feed = 1500.0
        self._inch = False
        self._autoreport_s = 0.0
        self._job: JobRecord | None = None

    # -- life cycle ---------------------------------------------------------------------

    def attach(self, sink: Callable[[bytes], None]) -> Callable[[], None]:
        """Send the printer's output to ``sink`` too; returns the call that detaches it."""
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink) if sink in self._sinks else None

    async def start(self) -> None:
        """Power on: print ``start`` and run (nothing happens if it runs already)."""
        if self._tasks:
            return
        self.boots += 1
        for task in (self._main(), self._stepper(), self._reporter()):
            self._tasks.append(asyncio.create_task(task, name=f"sim-marlin:{self.name}"))
        self._say("start")
        self._say("echo:Marlin 2.1.2.1 (MES sim)")
        self._say(f"echo: Last Updated: 2024-01-01 | Author: (MES sim, {self.name})")

    async def aclose(self) -> None:
        """Power off."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def reset(self) -> None:
        """Press the reset button: everything is lost, ``start`` is printed again."""
        await self.aclose()
        self._end_job("lost")
        self._boot_state()
        await self.start()

    # -- scripted faults ----------------------------------------------------------------

    def corrupt(self, number: int, times: int = 1) -> None:
        """Garble line ``number`` the next ``times`` times it is received."""
        self.faults.corrupt[number] = times

    def drop_ok(self, number: int) -> None:
        """Do not answer line ``number`` with an ``ok`` (once)."""
        self.faults.drop_ok.add(number)

    def stall(self, number: int, device_s: float) -> None:
        """Freeze for ``device_s`` (device time) when line ``number`` is taken, before
        running it (once): nothing is said meanwhile, no ``ok``, ``busy`` or report, while
        the serial buffer keeps filling, as a firmware stuck in a loop. :attr:`stalls`
        records each, with its real duration."""
        self.faults.stall[number] = device_s

    def halt(self, cause: str = "Thermal Runaway", heater: str = "0") -> None:
        """Kill the printer as Marlin's ``_temp_error`` does: cause, then ``kill()``."""
        self._say(f"Error:{cause}, system stopped! Heater_ID: {heater}")
        self._say("Error:Printer halted. kill() called!")
        self.killed = True
        self.hotend.target = self.bed.target = 0.0
        self._planner.clear()
        self._queue.clear()
        self._end_job("halted")
        self._notify()

    def go_silent(self) -> None:
        """Stop answering and working (a hung controller board)."""
        self.silent = True

    def wake_up(self) -> None:
        self.silent = False
        self._notify()

    def say(self, line: str) -> None:
        """Print any line (``//action:cancel``, an ``Error:``...)."""
        self._say(line)

    # -- output ---------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        if self.silent or self._frozen:
            return
        data = (line + "\n").encode()
        for sink in list(self._sinks):
            sink(data)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _changes(self) -> None:
        await self._changed.wait()

    async def _sleep(self, device_s: float) -> None:
        await asyncio.sleep(max(device_s, 0.0) / self.speed)

    # -- input ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes arrive on the serial line (called by the port, in order)."""
        if self.killed or self.silent:
            return
        room = self.rx_buffer - len(self._rx)
        self._rx += data[: max(room, 0)]  # an overrun loses the rest
        self._notify()

    def _take_lines(self) -> None:
        while len(self._queue) < self.bufsize and (end := self._rx.find(b"\n")) >= 0:
            raw = bytes(self._rx[:end]).decode("ascii", "replace").strip()
            del self._rx[: end + 1]
            if raw:
                self._check(raw)

    def _check(self, raw: str) -> None:
        match = re.match(r"N(\d+)\s*", raw)
        if match is None:
            self._queue.append((None, raw.split(";", 1)[0].strip()))
            return
        number = int(match[1])
        if self.faults.corrupt.get(number, 0) > 0:
            self.faults.corrupt[number] -= 1
            at = max(raw.rfind("*") - 1, match.end())
            raw = raw[:at] + chr(ord(raw[at]) ^ 0x04) + raw[at + 1 :]  # a flipped bit
        body, star, given = raw.rpartition("*")
        command = (body if star else raw)[match.end() :].strip()
        m110 = "M110" in command
        if m110 and (reset := re.search(r"M110\s*N(-?\d+)", command)):
            number = int(reset[1])
        if not m110 and number != self.last_n + 1:
            return self._line_error("Line Number is not Last Line Number+1")
        if not star:
            return self._line_error("No Checksum with line number")
        if not given.strip().isdigit() or int(given) != reduce(xor, body.encode(), 0):
            return self._line_error("checksum mismatch")
        self.last_n = number
        self._queue.append((number, command))

    def _line_error(self, why: str) -> None:
        self.line_errors += 1
        self._say(f"Error:{why}, Last Line: {self.last_n}")
        self._rx.clear()  # Marlin reads its input buffer dry before asking
        self._say(f"Resend: {self.last_n + 1}")
        self._say("ok")

    # -- the main loop -----------------------------------------------------------------

    async def _main(self) -> None:
        while True:
            while self.silent or self.killed:
                await self._changes()
            self._take_lines()
            if not self._queue:
                await self._changes()
                continue
            number, command = self._queue.popleft()
            if number is not None and number in self.faults.stall:
                await self._freeze(number, self.faults.stall.pop(number))
            self.commands.append((number, command))
            if len(self.commands) > self.command_log:
                del self.commands[: self.command_log // 10 + 1]
            try:
                answer = await self._busy(self._execute(command), command)
            except (ValueError, ArithmeticError) as exc:  # a command the model cannot take
                self._say(f"echo:{command}: {exc}")
                answer = "ok"
            if self.killed:
                continue
            if number is not None and number in self.faults.drop_ok:
                self.faults.drop_ok.discard(number)
            else:
                self._say(answer)
            self._notify()

    async def _freeze(self, number: int, device_s: float) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        self._frozen = True
        try:
            await self._sleep(device_s)
        finally:
            self._frozen = False
        self.stalls.append((number, loop.time() - began))

    async def _busy(self, work: Coroutine[Any, Any, str], command: str) -> str:
        """Run a command; print ``busy`` every ``keepalive_s`` while it takes long."""
        task = asyncio.ensure_future(work)
        heating = command.split(" ", 1)[0].upper() in ("M109", "M190")
        interval = self.keepalive_s
        try:
            if interval is None or (heating and not self.busy_while_heating):
                return await task
            while True:
                # Real seconds, not device time: the keepalive is for the host's
                # timeout, and at a high speed factor a scaled one floods the line.
                done, _ = await asyncio.wait({task}, timeout=interval)
                if done:
                    return task.result()
                self._say("echo:busy: processing")
        finally:
            task.cancel()  # a reset or power-off stops the command too

    async def _execute(self, command: str) -> str:
        code, _, text = command.partition(" ")
        code = code.upper()
        params = {k: float(v) for k, v in _PARAM.findall(text.upper())}
        handler = _HANDLERS.get(code)
        if handler is None:
            if re.fullmatch(r"[GM]\d+(\.\d+)?|T\d+", code):
                return "ok"  # a word we know but need not model
            self.unknown.append(command)
            self._say(f'echo:Unknown command: "{command}"')
            return "ok"
        return await handler(self, params, text)

    # -- motion -------------------------------------------------------------------------

    async def _stepper(self) -> None:
        # Moves follow each other in device time, not in when this task happened to wake:
        # a sleeper wakes up to a millisecond late, and restarting the clock at each
        # wake-up made short moves take twice their time.
        loop = asyncio.get_running_loop()
        free_at = 0.0  # when the move before this one is done
        while True:
            paused = False
            while not self._planner or self.silent or self.killed:
                paused = paused or self.silent or self.killed
                await self._changes()
            move = self._planner[0]
            duration, queued_at = move
            start = max(free_at, queued_at, loop.time() if paused else 0.0)
            free_at = start + duration / self.speed
            await asyncio.sleep(free_at - loop.time())
            if self._planner and self._planner[0] is move:  # not flushed by a halt meanwhile
                self._planner.popleft()
            self._notify()

    async def _drain(self) -> None:
        while self._planner:
            await self._changes()

    async def _move(self, params: dict[str, float], _: str) -> str:
        if "F" in params:
            self._feed = params["F"] * (25.4 if self._inch else 1.0)
        scale = 25.4 if self._inch else 1.0
        delta = {}
        for axis in "XYZE":
            if axis not in params:
                continue
            relative = not (self._e_absolute if axis == "E" else self._absolute)
            value = params[axis] * scale
            target = self._position[axis] + value if relative else value
            delta[axis] = target - self._position[axis]
            self._position[axis] = target
        distance = math.dist((0, 0, 0), tuple(delta.get(a, 0.0) for a in "XYZ"))
        distance = distance or abs(delta.get("E", 0.0))
        if distance > 0:
            while len(self._planner) >= self.planner_size:
                await self._changes()
            self._planner.append(
                (distance / (self._feed / 60.0), asyncio.get_running_loop().time())
            )
            self._notify()
        return "ok"

    async def _dwell(self, params: dict[str, float], _: str) -> str:
        await self._drain()
        await self._sleep(params.get("S", params.get("P", 0.0) / 1000.0))
        return "ok"

    async def _home(self, params: dict[str, float], _: str) -> str:
        await self._drain()
        await self._sleep(self.home_s)
        self._position.update(X=0.0, Y=0.0, Z=0.0)
        return "ok"

    async def _wait_moves(self, params: dict[str, float], _: str) -> str:
        await self._drain()
        return "ok"

    async def _modes(self, code: str) -> str:
        if code == "G90":
            self._absolute = self._e_absolute = True
        elif code == "G91":
            self._absolute = self._e_absolute = False
        elif code == "M82":
            self._e_absolute = True
        elif code == "M83":
            self._e_absolute = False
        elif code in ("G20", "G21"):
            self._inch = code == "G20"
        return "ok"

    async def _set_position(self, params: dict[str, float], _: str) -> str:
        for axis in "XYZE":
            if axis in params or not params:
                self._position[axis] = params.get(axis, 0.0)
        return "ok"

    # -- heat ---------------------------------------------------------------------------

    def _heat(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._heated_at is not None:
            seconds = (now - self._heated_at) * self.speed
            for heater in (self.hotend, self.bed):
                heater.advance(seconds, self.cool_rate, self.ambient)
        self._heated_at = now

    def temperature_line(self) -> str:
        """What Marlin's ``print_heater_states`` prints (with its leading space)."""
        self._heat()
        h, b = self.hotend, self.bed
        power = 127 if h.actual < h.target else 0
        return (
            f" T:{h.actual:.2f} /{h.target:.2f} B:{b.actual:.2f} /{b.target:.2f} "
            f"@:{power} B@:{127 if b.actual < b.target else 0}"
        )

    async def _set_temperature(self, params: dict[str, float], code: str) -> str:
        self._heat()
        heater = self.bed if code in ("M140", "M190") else self.hotend
        target = params.get("S", params.get("R"))
        if target is not None:
            heater.target = target
        if code in ("M109", "M190"):
            cooling_too = "R" in params
            while True:
                self._heat()
                diff = heater.actual - heater.target
                if diff >= -1.0 and (not cooling_too or diff <= 1.0):
                    break
                self._say(self.temperature_line() + " W:?")
                await self._sleep(1.0)
        return "ok"

    async def _report_temperature(self, params: dict[str, float], _: str) -> str:
        return "ok" + self.temperature_line()

    async def _autoreport(self, params: dict[str, float], _: str) -> str:
        self._autoreport_s = params.get("S", 0.0)
        self._notify()
        return "ok"

    async def _reporter(self) -> None:
        while True:
            if self._autoreport_s <= 0 or self.silent or self.killed:
                await self._changes()
                continue
            self._say(self.temperature_line())
            # Real seconds, like the keepalive: the report is for the host, and a
            # scaled one floods the line at a high speed factor.
            await asyncio.sleep(self._autoreport_s)

    # -- reports and messages -----------------------------------------------------------

    async def _firmware(self, params: dict[str, float], _: str) -> str:
        self._say(
            "FIRMWARE_NAME:Marlin 2.1.2.1 (MES sim) SOURCE_CODE_URL:github.com/MarlinFirmware/"
            f"Marlin PROTOCOL_VERSION:1.0 MACHINE_TYPE:{self.name} EXTRUDER_COUNT:1 "
            "UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff"
        )
        for name, enabled in self.capabilities.items():
            self._say(f"Cap:{name}:{int(enabled)}")
        return "ok"

    async def _position_report(self, params: dict[str, float], _: str) -> str:
        p = self._position
        self._say(f"X:{p['X']:.2f} Y:{p['Y']:.2f} Z:{p['Z']:.2f} E:{p['E']:.2f} Count X:0 Y:0 Z:0")
        return "ok"

    async def _message(self, params: dict[str, float], text: str) -> str:
        flags = re.match(r"((?:[AEP]\d\s*)*)(.*)", text.strip())
        assert flags is not None
        prefix = ("echo:" if "E1" in flags[1] else "") + ("//action:" if "A1" in flags[1] else "")
        message = flags[2]
        self._say(prefix + message)
        if marker := _MARKER.fullmatch(message.strip()):
            self._mark(int(marker[1]), marker[2])
        return "ok"

    def _mark(self, job_id: int, what: str) -> None:
        now = asyncio.get_running_loop().time()
        if what == "begin":
            self._end_job("lost")
            self._job = JobRecord(job_id, now)
            self.jobs.append(self._job)
            self.executed.append(job_id)
            if self.on_job is not None:
                self.on_job(self.name, job_id)
        elif self._job is not None and self._job.job_id == job_id:
            self._end_job("done")

    def _end_job(self, outcome: str) -> None:
        if self._job is not None:
            self._job.ended_at = asyncio.get_running_loop().time()
            self._job.outcome = outcome
            self._job = None

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checked after every change (bound it with
        ``asyncio.timeout``)."""
        while not predicate():
            await self._changes()

    @property
    def moving(self) -> bool:
        """Moves are planned and not yet made."""
        return bool(self._planner)

    @property
    def position(self) -> dict[str, float]:
        return dict(self._position)

    @property
    def job(self) -> JobRecord | None:
        """The job between its markers now, if any."""
        return self._job

    async def _nothing(self, params: dict[str, float], _: str) -> str:
        return "ok"


Handler = Callable[[SimMarlin, dict[str, float], str], Awaitable[str]]


def _modal(code: str) -> Handler:
    return lambda sim, params, text: sim._modes(code)


def _temperature(code: str) -> Handler:
    return lambda sim, params, text: sim._set_temperature(params, code)


_HANDLERS: dict[str, Handler] = {
    "G0": SimMarlin._move,
    "G1": SimMarlin._move,
    "G2": SimMarlin._move,
    "G3": SimMarlin._move,
    "G4": SimMarlin._dwell,
    "G28": SimMarlin._home,
    "G29": SimMarlin._home,
    "G92": SimMarlin._set_position,
    "M400": SimMarlin._wait_moves,
    "M105": SimMarlin._report_temperature,
    "M114": SimMarlin._position_report,
    "M115": SimMarlin._firmware,
    "M118": SimMarlin._message,
    "M155": SimMarlin._autoreport,
    "M110": SimMarlin._nothing,
    **{code: _modal(code) for code in ("G20", "G21", "G90", "G91", "M82", "M83")},
    **{code: _temperature(code) for code in ("M104", "M109", "M140", "M190")},
}
