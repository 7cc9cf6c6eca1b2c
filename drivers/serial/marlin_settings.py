"""How one Marlin-style printer is reached and streamed to: the driver's settings.

The defaults are the field's (OctoPrint's serial settings, Marlin's buffers); docs/serial.md
says why each is what it is. The plant config's ``marlin`` driver section maps onto this;
:class:`MarlinSettings` checks itself on construction, so a bad value fails at start.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.serial.marlin_codec import MAX_LINE_BYTES, ProgramError, program_lines


@dataclass(frozen=True, slots=True)
class MarlinSettings:
    """How one printer is reached and streamed to (from its driver config).

    Raises:
        ValueError: a value is out of range, or a park/unpark/end code line could not be
            streamed (the message names the setting).
    """

    port: str
    """A device path (``/dev/ttyACM0``) or a pyserial URL (``socket://host:port``)."""
    baudrate: int = 115200
    window: int = 1
    """Lines in flight awaiting ``ok``; 1 is ping-pong (OctoPrint's and Printrun's)."""
    history: int = 50
    """Lines kept for resend requests (OctoPrint: 50)."""
    max_resends: int = 10
    """The same line asked for more often than this in a row is a resend loop."""
    connect_timeout_s: float = 10.0
    """How long one hello waits for its answer (OctoPrint: 10 s)."""
    hellos: int = 3
    """Hellos sent before the printer is reported unavailable (OctoPrint: 3)."""
    wait_for_start: bool = False
    """Wait (up to ``connect_timeout_s``) for ``start`` before the first hello."""
    timeout_s: float = 30.0
    """No line, or no ``ok`` for a line in flight, this long is a timeout (OctoPrint: 30 s)."""
    max_timeouts: int = 5
    """Consecutive timeouts tolerated during a job (OctoPrint: 5)."""
    max_idle_timeouts: int = 2
    """Consecutive timeouts tolerated with no job (OctoPrint: 2)."""
    temperature_s: float = 2.0
    """M155 auto-report interval (whole seconds, at least 1), else the M105 poll interval."""
    park_code: tuple[str, ...] = ("G91", "G1 Z10 F600", "G90")
    """Sent on hold, after the last program line sent: lift the nozzle 10 mm."""
    unpark_code: tuple[str, ...] = ("G91", "G1 Z-10 F600", "G90")
    """Sent on resume, before the program's modes and feed rate are put back."""
    end_code: tuple[str, ...] = ("M104 S0", "M140 S0", "M107", "M84")
    """Sent on abort or a job fault the printer survives: heaters, fan and motors off."""
    max_line_bytes: int = MAX_LINE_BYTES
    """Longest line the firmware takes, number and checksum included (MAX_CMD_SIZE)."""
    write_timeout_s: float = 10.0
    """A write blocked this long means the far end stopped reading: the link is lost."""
    read_only: bool = False
    """Connect and read temperatures; never start, hold, resume or abort a job."""

    def __post_init__(self) -> None:
        if not self.port.strip():
            raise ValueError("port: a device path or a pyserial URL is needed")
        for name in ("baudrate", "window", "history", "max_resends", "hellos", "max_line_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("connect_timeout_s", "timeout_s", "temperature_s", "write_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be more than 0, got {getattr(self, name)}")
        for name in ("max_timeouts", "max_idle_timeouts"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be 0 or more, got {getattr(self, name)}")
        for name in ("park_code", "unpark_code", "end_code"):
            try:
                program_lines("\n".join(getattr(self, name)), max_line_bytes=self.max_line_bytes)
            except ProgramError as exc:
                raise ValueError(f"{name}: {exc}") from exc
