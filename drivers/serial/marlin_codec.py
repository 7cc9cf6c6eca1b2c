"""The Marlin host protocol as pure functions: frames going out, replies coming in.

No I/O and no clock here. Going out: :func:`frame` numbers a command and adds its
checksum (``N<n> <command>*<xor>``, the XOR of every byte before the ``*``), and
:func:`program_lines` turns a job's G-code into the commands we stream (comments and
blank lines gone, every line checked before anything is sent). Coming in: :func:`parse`
classifies one line the printer sent into a :data:`Reply` value, the way the hosts that
have met most firmware in the field read them (OctoPrint's serial layer, Printrun):

* ``ok`` (also ``ok N10 P15 B3``, Repetier's ``ok 1``, and ``ok T:...`` carrying an
  M105 answer), and ``wait`` (an idle keep-alive: never an acknowledgement here);
* ``busy: processing`` / ``echo:busy: ...``: alive, still working; no acknowledgement;
* ``Resend: 6``, ``Resend:6``, ``rs N6``, ``Resend: N:6``;
* ``Error:`` and ``!!`` lines, sorted by what the host does next: a communication error
  (a resend request follows, or, for ``No Line Number with checksum``, does not), a
  fatal one (the printer killed itself: thermal runaway, MINTEMP/MAXTEMP, heating failed,
  ``Printer halted. kill() called!``, Repetier's ``fatal:``; it needs a reset), or any
  other firmware error;
* ``start`` (the firmware booted), temperature reports, the M115 firmware line and its
  ``Cap:`` lines, ``//action:`` host actions, ``echo:Unknown command: "..."`` (an
  ``ok`` follows it), ``echo:`` lines and anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import reduce
from operator import xor

#: Marlin's MAX_CMD_SIZE: a longer line is cut silently by the firmware.
MAX_LINE_BYTES = 96
#: Room a frame adds around a command: ``N`` + up to 8 digits + space + ``*`` + 3 digits.
FRAME_OVERHEAD = 14

#: Words a job program may not contain, and why.
FORBIDDEN = {
    "M0": "waits for a person to press a button (unattended cell)",
    "M1": "waits for a person to press a button (unattended cell)",
    "M28": "writes to the SD card",
    "M29": "writes to the SD card",
    "M110": "sets the line number, which the driver owns",
    "M112": "is an emergency stop, not a program step",
    "M999": "restarts a stopped printer, not a program step",
}
#: Commands after which the printer may stay silent (apart from keep-alives) for long.
LONG_RUNNING = frozenset(
    {
        "G4",
        "G28",
        "G29",
        "G30",
        "G32",
        "G33",
        "M190",
        "M109",
        "M191",
        "M116",
        "M303",
        "M400",
        "M600",
        "M226",
    }
)
#: Commands that wait for a temperature: the printer reports temperatures, no ``ok``.
HEATING = frozenset({"M109", "M190", "M191", "M116"})

_WORD = re.compile(r"^\s*(?:([GM])0*(\d+)(?:\.(\d+))?|(T)(\d+))")
_TEMP = re.compile(
    r"(?:^|\s)(?P<sensor>T\d*|B|C|P|A|L|R|M|D):\s*(?P<actual>-?\d+(?:\.\d+)?)"
    r"(?:\s*/\s*(?P<target>-?\d+(?:\.\d+)?))?"
)
_TEMP_LINE = re.compile(r"(?:^|\s)(?:T\d*|B):\s*-?\d")
_RESEND = re.compile(r"(?:N:?\s*)?(\d+)")
_FIRMWARE_KEY = re.compile(r"(?:^|\s)([A-Z][A-Z0-9_]*):")
_OK_NUMBER = re.compile(r"^(?:N)?(\d+)")
_UNKNOWN = re.compile(r'^echo:\s*unknown command:?\s*"?(.*?)"?\s*$', re.IGNORECASE)
_COMM_ERRORS = ("line number", "linenumber", "checksum", "format error", "expected line")
_COMM_ERRORS_WITHOUT_RESEND = ("no line number with checksum", "missing linenumber")
_FATAL = (
    "kill() called",
    "printer halted",
    "fatal:",
    "thermal runaway",
    "heating failed",
    "maxtemp",
    "mintemp",
    "thermal malfunction",
    "watchdog",
    "kill caused",
    "printer stopped due to errors",
    "invalid extruder number",
)
#: The last line Marlin prints before it stops for good (the cause comes before it).
_FINAL = ("kill() called", "printer halted", "printer stopped due to errors", "fatal:")


class ProgramError(ValueError):
    """A job's G-code cannot be streamed as it is; the message names the line and why."""


# -- going out ------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """XOR of every byte (Marlin, OctoPrint and Printrun agree on this one)."""
    return reduce(xor, data, 0)


def frame(number: int, command: str) -> bytes:
    """``N<number> <command>*<checksum>\\n``, ready for the wire."""
    body = f"N{number} {command}".encode("ascii")
    return body + b"*" + str(checksum(body)).encode("ascii") + b"\n"


def clean(line: str) -> str:
    """A G-code line without its ``;`` comment and surrounding blanks."""
    return line.split(";", 1)[0].strip()


def word(command: str) -> str:
    """The command's code, normalized (``"G01 X1"`` -> ``"G1"``, ``"T0"``); ``""`` if none."""
    match = _WORD.match(command.upper())
    if match is None:
        return ""
    letter, number, sub, tool, tool_number = match.groups()
    if tool:
        return f"T{int(tool_number)}"
    return f"{letter}{int(number)}" + (f".{sub}" if sub else "")


def program_lines(body: str, *, max_line_bytes: int = MAX_LINE_BYTES) -> list[str]:
    """The commands to stream for a job's G-code, checked before anything is sent.

    Raises:
        ProgramError: a line is not ASCII, too long once framed, carries its own line
            number or checksum, or uses a word from :data:`FORBIDDEN`.
    """
    out: list[str] = []
    limit = max_line_bytes - FRAME_OVERHEAD
    for number, raw in enumerate(body.splitlines(), start=1):
        command = clean(raw)
        if not command:
            continue
        if not command.isascii():
            raise ProgramError(f"line {number}: not ASCII: {command[:40]!r}")
        if len(command) > limit:
            raise ProgramError(
                f"line {number}: {len(command)} characters; at most {limit} fit in the "
                f"printer's {max_line_bytes}-byte line with its number and checksum"
            )
        if "*" in command or re.match(r"N\d", command, re.IGNORECASE):
            raise ProgramError(f"line {number}: has its own line number or checksum")
        code = word(command)
        if code in FORBIDDEN:
            raise ProgramError(f"line {number}: {code} {FORBIDDEN[code]}")
        out.append(command)
    return out


# -- coming in ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """One sensor's temperature (deg C) and, where reported, its target."""

    actual: float
    target: float | None = None


@dataclass(frozen=True, slots=True)
class Ok:
    """One command consumed. ``number``: the line acknowledged (ADVANCED_OK, Repetier)."""

    number: int | None = None
    temperatures: dict[str, Reading] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wait:
    """An idle keep-alive (``wait``): the printer's queue is empty."""


@dataclass(frozen=True, slots=True)
class Busy:
    """The printer is alive and still working on a command."""

    text: str


@dataclass(frozen=True, slots=True)
class Resend:
    """The printer wants everything again from line ``number``."""

    number: int


@dataclass(frozen=True, slots=True)
class CommError:
    """A line arrived damaged or out of order. ``resend_follows``: a ``Resend:`` comes next
    (else the printer waits for the next line to ask for it)."""

    text: str
    resend_follows: bool = True


@dataclass(frozen=True, slots=True)
class Fatal:
    """The printer stopped itself and needs a reset. ``final``: the last line it prints
    (``kill() called``); a cause line (``Thermal Runaway``) comes before it."""

    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class FirmwareError:
    """Any other ``Error:``/``!!`` line: the printer refused or failed something."""

    text: str


@dataclass(frozen=True, slots=True)
class Start:
    """The firmware (re)booted."""


@dataclass(frozen=True, slots=True)
class Temperatures:
    """A temperature report without an ``ok`` (M155 auto-report, heat-up waits)."""

    readings: dict[str, Reading]


@dataclass(frozen=True, slots=True)
class Firmware:
    """The M115 firmware line, key by key (``FIRMWARE_NAME``, ``PROTOCOL_VERSION``...)."""

    info: dict[str, str]


@dataclass(frozen=True, slots=True)
class Capability:
    """One ``Cap:NAME:0|1`` line of the M115 report."""

    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Action:
    """A host action command (``//action:cancel``): the printer asks the host to act."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """``echo:Unknown command: "<text>"``: the printer ran a line it did not understand
    (its ``ok`` follows). ``text`` as the printer quoted it."""

    text: str


@dataclass(frozen=True, slots=True)
class Echo:
    """``echo:`` lines and anything else: logged, not acted on."""

    text: str


Reply = (
    Ok
    | Wait
    | Busy
    | Resend
    | CommError
    | Fatal
    | FirmwareError
    | Start
    | Temperatures
    | Firmware
    | Capability
    | Action
    | Unknown
    | Echo
)


def temperatures(line: str) -> dict[str, Reading]:
    """Every sensor in a temperature report; the first occurrence of a sensor wins, and a
    bare ``T`` beside numbered tools (``T0``, ``T1``) is the active tool again: dropped."""
    out: dict[str, Reading] = {}
    for match in _TEMP.finditer(line):
        sensor = match["sensor"]
        if sensor in out:
            continue
        target = match["target"]
        out[sensor] = Reading(float(match["actual"]), float(target) if target else None)
    if "T" in out and any(s[0] == "T" and s[1:].isdigit() for s in out):
        del out["T"]
    return out


def firmware_info(line: str) -> dict[str, str]:
    """``KEY:value KEY:value`` of an M115 line (Malyan's ``NAME.`` read as ``NAME:``)."""
    if line.startswith("NAME."):
        line = "NAME:" + line[5:]
    keys = list(_FIRMWARE_KEY.finditer(line))
    info: dict[str, str] = {}
    for match, after in zip(keys, [*keys[1:], None], strict=True):
        end = after.start() if after is not None else len(line)
        info[match[1]] = line[match.end() : end].strip()
    return info


def joins_next(raw: str) -> bool:
    """True for the first half of an error Marlin 1.x splits over two lines
    (``Error:0`` then ``: Extruder switched off. MINTEMP triggered !``)."""
    return re.fullmatch(r"\s*Error:\s*\d+\s*", raw) is not None


def _error(text: str) -> Reply:
    lower = text.lower()
    if any(e in lower for e in _COMM_ERRORS_WITHOUT_RESEND):
        return CommError(text, resend_follows=False)
    if any(e in lower for e in _COMM_ERRORS):
        return CommError(text)
    if any(e in lower for e in _FATAL):
        return Fatal(text, final=any(e in lower for e in _FINAL))
    return FirmwareError(text)


def parse(raw: str) -> Reply:
    """Classify one line the printer sent (NULs and blanks around it ignored)."""
    line = raw.replace("\0", "").strip()
    lower = line.lower()
    if lower == "ok" or lower.startswith("ok "):
        rest = line[2:].strip()
        number = _OK_NUMBER.match(rest)
        temps = temperatures(rest) if _TEMP_LINE.search(rest) else {}
        return Ok(int(number[1]) if number else None, temps)
    if lower == "wait":
        return Wait()
    if lower.startswith(("busy:", "echo:busy:")):
        return Busy(line.split("busy:", 1)[1].strip())
    if lower.startswith(("resend", "rs ")) or lower == "rs":
        rest = line.split(":", 1)[1] if lower.startswith("resend") else line[2:]
        match = _RESEND.search(rest.strip())
        return Resend(int(match[1])) if match else Echo(line)
    if lower.startswith("fatal:"):
        return Fatal(line, final=True)
    if lower.startswith("error:"):
        return _error(line[6:].strip())
    if line.startswith("!!"):
        return _error(line[2:].strip())
    if line == "start":
        return Start()
    if lower.startswith("cap:"):
        parts = line[4:].split(":")
        if len(parts) == 2 and parts[1] in ("0", "1"):
            return Capability(parts[0].strip().upper(), parts[1] == "1")
        return Echo(line)
    if "FIRMWARE_NAME:" in line or line.startswith(("NAME:", "NAME.")):
        return Firmware(firmware_info(line))
    if line.startswith("//"):
        body = line[2:].strip()
        if body.startswith("action:"):
            name, _, text = body[7:].strip().partition(" ")
            return Action(name, text.strip())
        return Echo(line)
    if unknown := _UNKNOWN.match(line):
        return Unknown(unknown[1])
    if _TEMP_LINE.search(line) and not line.startswith("X:"):
        return Temperatures(temperatures(line))
    return Echo(line)
