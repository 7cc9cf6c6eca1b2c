"""GRBL 1.1's host protocol as pure values: what it says, what we send, what the codes mean.

Theory of operation (gnea/grbl ``doc/markdown/interface.md``, ``doc/csv/*.csv``): GRBL
answers every line it takes with ``ok`` or ``error:N``; everything else it says is a
*push* message that answers no line: status reports ``<...>``, ``ALARM:N``, feedback in
brackets (``[MSG:...]``, ``[GC:...]``, ``[VER:...]``, ``[OPT:...]``), settings ``$x=v``,
startup-line results ``>line:ok`` (one line, so they are never counted as an ``ok``) and
the welcome ``Grbl 1.1h ['$' for help]`` it prints after every reset. :func:`parse` sorts a
line into one of these; :func:`parse_status` reads a status report field by field.

:func:`program_lines` prepares G-code for streaming the way GRBL itself will read it
(comments and whitespace dropped, upper case), so every byte we count is a byte GRBL
keeps, and refuses what would go wrong on the wire: a ``?``, ``!`` or ``~`` anywhere in a
line (even in a comment) is a real-time command GRBL acts on at once; bytes above 0x7F
are overrides; a line longer than GRBL's 80-byte line buffer is ``error:11``; a ``$``
line inside a program is a system command (settings writes must never be streamed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drivers.serial.grbl_codes import ALARMS, ERRORS
from mes.domain.job import MachineState

#: GRBL 1.1's serial receive buffer (``RX_BUFFER_SIZE``); ``$I`` may report another.
RX_BUFFER_SIZE = 128
#: Planner blocks (``BLOCK_BUFFER_SIZE`` 16, of which 15 are usable).
PLANNER_BLOCKS = 15
#: Characters of one line GRBL keeps (``LINE_BUFFER_SIZE`` 80 with its terminator).
MAX_LINE = 79

# Real-time commands: single bytes GRBL picks off the wire before its receive buffer.
SOFT_RESET = b"\x18"
STATUS_QUERY = b"?"
CYCLE_START = b"~"
FEED_HOLD = b"!"
SAFETY_DOOR = b"\x84"
JOG_CANCEL = b"\x85"
#: Characters that act as real-time commands wherever they appear in a line.
REALTIME_CHARACTERS = frozenset("?!~\x18")

#: Alarms after which GRBL halts until a soft reset (``[MSG:Reset to continue]``).
CRITICAL_ALARMS = frozenset({1, 2})


def error_text(code: int) -> str:
    """``error:N`` as a sentence: ``error:20 (Unsupported command): Unsupported or ...``."""
    name, description = ERRORS.get(code, ("unknown error", "not in GRBL 1.1's error table"))
    return f"error:{code} ({name}): {description}"


def alarm_text(code: int) -> str:
    """``ALARM:N`` as a sentence: ``ALARM:1 (Hard limit): Hard limit has been ...``."""
    name, description = ALARMS.get(code, ("unknown alarm", "not in GRBL 1.1's alarm table"))
    return f"ALARM:{code} ({name}): {description}"


# -- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ok:
    """A line was taken (it answers the oldest line in flight)."""


@dataclass(frozen=True, slots=True)
class Error:
    """A line was refused: nothing of it was executed (it answers the oldest line)."""

    code: int


@dataclass(frozen=True, slots=True)
class Alarm:
    """GRBL entered the alarm state; g-code is locked out until ``$X``, ``$H`` or reset."""

    code: int


@dataclass(frozen=True, slots=True)
class Welcome:
    """``Grbl 1.1h ['$' for help]``: GRBL (re)initialised; whatever it held is gone."""

    version: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """A bracketed push message: ``kind`` is ``MSG``, ``GC``, ``VER``, ``OPT``, ``G54``..."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Setting:
    """A ``$x=value`` (or ``$Nx=line``) printout line."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class StartupLine:
    """``>G54G20:ok``: a startup line ran (``error`` is its error code, if it failed)."""

    line: str
    error: int | None


@dataclass(frozen=True, slots=True)
class Other:
    """Anything else (noise after a reset, a firmware we do not know)."""

    text: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One real-time status report, field by field (absent fields are None).

    Positions are machine positions when GRBL sent ``MPos`` and work positions when it
    sent ``WPos`` (``$10``); :meth:`work_position` converts with the last ``WCO`` known.
    """

    state: str
    substate: int | None = None
    mpos: tuple[float, ...] | None = None
    wpos: tuple[float, ...] | None = None
    wco: tuple[float, ...] | None = None
    feed: float | None = None
    speed: float | None = None
    planner_free: int | None = None
    rx_free: int | None = None
    line_number: int | None = None
    overrides: tuple[int, int, int] | None = None
    pins: str = ""
    accessories: str = ""
    unknown: dict[str, str] = field(default_factory=dict)

    def work_position(self, wco: tuple[float, ...] | None) -> tuple[float, ...] | None:
        """WPos = MPos - WCO (``wco``: the latest one GRBL sent)."""
        if self.wpos is not None:
            return self.wpos
        if self.mpos is None or wco is None:
            return None
        return tuple(round(m - o, 4) for m, o in zip(self.mpos, wco, strict=False))

    @property
    def moving(self) -> bool:
        """The machine may be moving: a reset now would throw ALARM:3 and lose position."""
        if self.state in ("Run", "Jog", "Home"):
            return True
        if self.state == "Hold":
            return self.substate != 0
        if self.state == "Door":
            return self.substate in (2, 3)
        return False


@dataclass(frozen=True, slots=True)
class Status:
    """A status report line."""

    report: StatusReport


Reply = Ok | Error | Alarm | Welcome | Status | Feedback | Setting | StartupLine | Other

_WELCOME = re.compile(r"^(Grbl(?:HAL)?)\s+(\d+\.\d+\w*)\s*\[", re.IGNORECASE)
_BRACKET = re.compile(r"^\[([A-Za-z0-9]+):(.*)\]$")
_SETTING = re.compile(r"^\$(N?\d+)=(.*)$")
_STARTUP = re.compile(r"^>(.*):(ok|error:(\d+))$")
_ERROR = re.compile(r"^error:\s*(\d+)$", re.IGNORECASE)
_ALARM = re.compile(r"^ALARM:\s*(\d+)$", re.IGNORECASE)


def parse(line: str) -> Reply:
    """What one line from GRBL is (never raises: an unreadable line is :class:`Other`)."""
    text = line.strip().strip("\x00")
    if text == "ok":
        return Ok()
    if m := _ERROR.match(text):
        return Error(int(m[1]))
    if text.lower().startswith("error:"):  # GRBL 0.9 spoke words; the code is unknown
        return Error(0)
    if m := _ALARM.match(text):
        return Alarm(int(m[1]))
    if text.startswith("<") and text.endswith(">"):
        try:
            return Status(parse_status(text))
        except ValueError:
            return Other(text)
    if m := _WELCOME.match(text):
        return Welcome(f"{m[1]} {m[2]}")
    if m := _BRACKET.match(text):
        return Feedback(m[1], m[2])
    if m := _SETTING.match(text):
        return Setting(f"${m[1]}", m[2])
    if m := _STARTUP.match(text):
        return StartupLine(m[1], int(m[3]) if m[3] else None)
    return Other(text)


def _numbers(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def parse_status(text: str) -> StatusReport:
    """Read ``<Idle|MPos:0.000,0.000,0.000|FS:0,0|...>``.

    Raises:
        ValueError: not a status report, or a field GRBL defines is malformed.
    """
    if not (text.startswith("<") and text.endswith(">")) or len(text) < 3:
        raise ValueError(f"not a status report: {text!r}")
    first, *fields = text[1:-1].split("|")
    state, _, sub = first.partition(":")
    if not state.isalpha():
        raise ValueError(f"no machine state in {text!r}")
    values: dict[str, object] = {"state": state, "substate": int(sub) if sub else None}
    unknown: dict[str, str] = {}
    for item in fields:
        name, _, value = item.partition(":")
        try:
            match name:
                case "MPos" | "WPos" | "WCO":
                    values[name.lower()] = _numbers(value)
                case "F":
                    values["feed"] = float(value)
                case "FS":
                    feed, speed = _numbers(value)
                    values["feed"], values["speed"] = feed, speed
                case "Bf":
                    blocks, rx = (int(v) for v in value.split(","))
                    values["planner_free"], values["rx_free"] = blocks, rx
                case "Ln":
                    values["line_number"] = int(value)
                case "Ov":
                    feed_ov, rapid_ov, spindle_ov = (int(v) for v in value.split(","))
                    values["overrides"] = (feed_ov, rapid_ov, spindle_ov)
                case "Pn":
                    values["pins"] = value
                case "A":
                    values["accessories"] = value
                case _:
                    unknown[name] = value
        except ValueError as exc:
            raise ValueError(f"bad {name} field in {text!r}: {exc}") from exc
    return StatusReport(**values, unknown=unknown)  # type: ignore[arg-type]


#: GRBL state (and sub-state) -> PackML name (interface.md "Machine State").
STATES: dict[tuple[str, int | None], MachineState] = {
    ("Idle", None): MachineState.IDLE,
    ("Run", None): MachineState.EXECUTE,
    ("Jog", None): MachineState.EXECUTE,
    ("Hold", 0): MachineState.HELD,
    ("Hold", 1): MachineState.HOLDING,
    ("Door", 0): MachineState.SUSPENDED,
    ("Door", 1): MachineState.SUSPENDED,
    ("Door", 2): MachineState.SUSPENDING,
    ("Door", 3): MachineState.UNSUSPENDING,
    ("Alarm", None): MachineState.ABORTED,
    ("Check", None): MachineState.STARTING,
    ("Home", None): MachineState.RESETTING,
    ("Sleep", None): MachineState.STOPPED,
}


def machine_state(report: StatusReport) -> MachineState:
    """The PackML name of GRBL's state (UNKNOWN for one the table lacks)."""
    found = STATES.get((report.state, report.substate)) or STATES.get((report.state, None))
    return found or MachineState.UNKNOWN


# -- programs ------------------------------------------------------------------------------


class ProgramError(ValueError):
    """A program that cannot be streamed to GRBL as it is (the message names the line)."""


def compact(line: str) -> tuple[str, str]:
    """A line as GRBL keeps it (comments and whitespace gone, upper case), and the text of
    its comments (a ``;`` comment runs to the end of the line).

    Raises:
        ProgramError: a ``(`` comment is not closed on its line.
    """
    kept: list[str] = []
    comments: list[str] = []
    depth_start = -1
    for index, char in enumerate(line):
        if depth_start >= 0:
            if char == ")":
                comments.append(line[depth_start + 1 : index])
                depth_start = -1
            continue
        if char == "(":
            depth_start = index
        elif char == ";":
            comments.append(line[index + 1 :])
            break
        elif not char.isspace():
            kept.append(char.upper())
    if depth_start >= 0:
        raise ProgramError("a '(' comment is not closed on its line")
    return "".join(kept), " ".join(comments)


def program_lines(body: str, *, max_line: int = MAX_LINE) -> list[tuple[int, str]]:
    """The lines to stream, each with its 1-based line number in ``body``.

    Blank and comment-only lines and ``%`` tape marks are dropped.

    Raises:
        ProgramError: a line GRBL would misread (see the module docstring), naming it.
    """
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(body.splitlines(), start=1):
        where = f"line {number}"
        bad = sorted({c for c in raw if c in REALTIME_CHARACTERS or ord(c) > 0x7E})
        bad += sorted({c for c in raw if ord(c) < 0x20 and c not in "\t\r"})
        if bad:
            shown = ", ".join(ascii(c) for c in bad)
            raise ProgramError(
                f"{where}: {shown} would reach GRBL as a real-time command or override "
                "(even inside a comment); remove it"
            )
        try:
            kept, _ = compact(raw)
        except ProgramError as exc:
            raise ProgramError(f"{where}: {exc}") from exc
        if not kept or kept == "%":
            continue
        if kept.startswith("$"):
            raise ProgramError(
                f"{where}: {kept!r} is a GRBL system command; a program carries G-code only "
                "(settings are written one at a time by the driver)"
            )
        if len(kept) > max_line:
            raise ProgramError(
                f"{where}: {len(kept)} characters without spaces and comments; GRBL keeps "
                f"{max_line} (error:11, line overflow)"
            )
        out.append((number, kept))
    return out
