"""How one GRBL machine is reached and streamed to: the driver's settings.

The plant config's ``grbl`` driver section maps onto :class:`GrblSettings`, which checks
itself on construction, so a bad value fails at start. Pure: importing it pulls in neither
pyserial nor asyncio. docs/grbl.md says why each default is what it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from drivers.serial.grbl_codec import MAX_LINE


@dataclass(frozen=True, slots=True)
class GrblSettings:
    """How one GRBL machine is reached and streamed to (from its driver config).

    Raises:
        ValueError: a value that cannot work (the message names the setting).
    """

    port: str
    """A device path (``/dev/ttyUSB0``) or a pyserial URL (``socket://host:port``)."""
    baudrate: int = 115200
    streaming: Literal["counting", "send_response"] = "counting"
    rx_buffer: int | None = None
    """GRBL's receive buffer; None: as ``$I`` reports it, else 128."""
    check_mode: bool = True
    """Stream each program in check mode (``$C``) first; run it only if GRBL finds no error."""
    unlock: Literal["never", "unless_hard_limit", "always"] = "never"
    """When GRBL is locked in ALARM (power-up with homing enabled, or after an alarm):
    ``$X`` never, unless the alarm was a hard limit (ALARM:1), or always."""
    home: Literal["never", "on_connect", "when_locked"] = "never"
    """``$H``: never, at every connect (and when locked), or only when locked."""
    poll_s: float = 0.2
    """Status query interval (interface.md: at most 5 Hz)."""
    status_timeout_s: float = 2.0
    """A ``?`` unanswered this long fails the link."""
    connect_timeout_s: float = 3.0
    reset_timeout_s: float = 3.0
    command_timeout_s: float = 5.0
    hold_timeout_s: float = 10.0
    """How long a feed hold may take to stop before the soft reset goes anyway."""
    homing_timeout_s: float = 120.0
    build_info: bool = True
    """Ask ``$I`` on connect."""
    machine_settings: Mapping[str, str | float] = field(default_factory=dict)
    """``$`` settings written at connect where GRBL's differ, e.g. ``{"$32": "1"}``."""
    write_timeout_s: float = 10.0
    read_only: bool = False
    """Connect and watch; never start, hold, resume or abort a job, never write."""

    def __post_init__(self) -> None:
        if self.rx_buffer is not None and self.rx_buffer <= MAX_LINE:
            raise ValueError(
                f"rx_buffer {self.rx_buffer}: GRBL's receive buffer must hold a whole line "
                f"({MAX_LINE + 1} bytes); GRBL 1.1 has 128"
            )
        for name in ("poll_s", "status_timeout_s", "connect_timeout_s", "reset_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0")
        if self.status_timeout_s <= self.poll_s:
            raise ValueError("status_timeout_s must be longer than poll_s")
        for key, value in self.machine_settings.items():
            if not re.fullmatch(r"\$?\d+", key):
                raise ValueError(f"machine_settings: {key!r} is not a GRBL setting ($0..$132)")
            if not re.fullmatch(r"[-+]?\d*\.?\d+", str(value)):
                raise ValueError(f"machine_settings: {key} = {value!r} is not a number")
