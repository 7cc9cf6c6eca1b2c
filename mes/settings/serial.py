"""The serial part of the plant file: Marlin-style printers (and GRBL machines) streamed
G-code over a serial line or a networked serial port (docs/serial.md).

``port`` is a device path (``/dev/ttyACM0``, better a stable ``/dev/serial/by-id/...``)
or a pyserial URL (``socket://10.0.0.30:4001`` for a ser2net bridge, ``rfc2217://...``).
The defaults are the field's (OctoPrint's); the driver's own settings check the park,
unpark and end code at load (:func:`mes.settings.checks.check_plant`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from drivers.serial.grbl_settings import GrblSettings
from drivers.serial.marlin_settings import MarlinSettings
from mes.settings.base import Model, NonBlank

_MARLIN = MarlinSettings(port="-")


class SimSerialConfig(Model):
    """``[cells.driver.sim]``: how ``mes sim`` and ``mes demo`` simulate this machine."""

    speed: float = Field(default=1.0, gt=0.0)
    """Device time (motion, heating) runs this much faster than real time."""


class MarlinDriverConfig(Model):
    """A Marlin-style 3D printer (Marlin, Prusa, most RepRap firmwares)."""

    kind: Literal["marlin"]
    port: NonBlank
    baudrate: int = Field(default=115200, ge=300)
    window: int = Field(default=1, ge=1, le=8)
    """Lines in flight awaiting ``ok`` (1: ping-pong, as OctoPrint and Printrun)."""
    history: int = Field(default=_MARLIN.history, ge=1)
    max_resends: int = Field(default=_MARLIN.max_resends, ge=1)
    connect_timeout_s: float = Field(default=_MARLIN.connect_timeout_s, gt=0.0)
    hellos: int = Field(default=_MARLIN.hellos, ge=1)
    wait_for_start: bool = False
    """Wait for the printer's ``start`` (boards that reset when the port opens)."""
    timeout_s: float = Field(default=_MARLIN.timeout_s, gt=0.0)
    max_timeouts: int = Field(default=_MARLIN.max_timeouts, ge=0)
    max_idle_timeouts: int = Field(default=_MARLIN.max_idle_timeouts, ge=0)
    temperature_s: float = Field(default=_MARLIN.temperature_s, gt=0.0)
    park_code: list[str] = Field(default_factory=lambda: list(_MARLIN.park_code))
    unpark_code: list[str] = Field(default_factory=lambda: list(_MARLIN.unpark_code))
    end_code: list[str] = Field(default_factory=lambda: list(_MARLIN.end_code))
    max_line_bytes: int = Field(default=_MARLIN.max_line_bytes, ge=16)
    write_timeout_s: float = Field(default=_MARLIN.write_timeout_s, gt=0.0)
    read_only: bool = False
    """Connect and read temperatures only; never start, hold or abort a print."""
    sim: SimSerialConfig | None = None

    def settings(self, *, read_only: bool = False) -> MarlinSettings:
        """The driver's settings.

        Raises:
            ValueError: a park, unpark or end code line the printer could not take.
        """
        return MarlinSettings(
            port=self.port,
            baudrate=self.baudrate,
            window=self.window,
            history=self.history,
            max_resends=self.max_resends,
            connect_timeout_s=self.connect_timeout_s,
            hellos=self.hellos,
            wait_for_start=self.wait_for_start,
            timeout_s=self.timeout_s,
            max_timeouts=self.max_timeouts,
            max_idle_timeouts=self.max_idle_timeouts,
            temperature_s=self.temperature_s,
            park_code=tuple(self.park_code),
            unpark_code=tuple(self.unpark_code),
            end_code=tuple(self.end_code),
            max_line_bytes=self.max_line_bytes,
            write_timeout_s=self.write_timeout_s,
            read_only=read_only or self.read_only,
        )


_GRBL = GrblSettings(port="-")


class GrblDriverConfig(Model):
    """A GRBL 1.1 machine: a CNC router, a laser (docs/grbl.md)."""

    kind: Literal["grbl"]
    port: NonBlank
    baudrate: int = Field(default=115200, ge=300)
    streaming: Literal["counting", "send_response"] = "counting"
    """Character counting against GRBL's receive buffer, or send-one-wait-ok."""
    rx_buffer: int | None = Field(default=None, ge=2)
    """GRBL's receive buffer; unset: as ``$I`` reports it, else 128."""
    check_mode: bool = True
    """Run each program in check mode (``$C``) first; run it for real only if clean."""
    unlock: Literal["never", "unless_hard_limit", "always"] = "never"
    home: Literal["never", "on_connect", "when_locked"] = "never"
    poll_s: float = Field(default=_GRBL.poll_s, gt=0.0)
    status_timeout_s: float = Field(default=_GRBL.status_timeout_s, gt=0.0)
    connect_timeout_s: float = Field(default=_GRBL.connect_timeout_s, gt=0.0)
    reset_timeout_s: float = Field(default=_GRBL.reset_timeout_s, gt=0.0)
    command_timeout_s: float = Field(default=_GRBL.command_timeout_s, gt=0.0)
    hold_timeout_s: float = Field(default=_GRBL.hold_timeout_s, gt=0.0)
    homing_timeout_s: float = Field(default=_GRBL.homing_timeout_s, gt=0.0)
    build_info: bool = True
    machine_settings: dict[str, float | str] = Field(default_factory=dict)
    """``$`` settings written at connect where GRBL's differ: ``{"$32" = 1}``."""
    write_timeout_s: float = Field(default=_GRBL.write_timeout_s, gt=0.0)
    read_only: bool = False
    sim: SimSerialConfig | None = None

    def settings(self, *, read_only: bool = False) -> GrblSettings:
        """The driver's settings.

        Raises:
            ValueError: settings that cannot work together (the message names one).
        """
        values = self.model_dump(exclude={"kind", "sim", "read_only"})
        return GrblSettings(**values, read_only=read_only or self.read_only)


#: Every serial driver config, for code that treats them alike.
SerialDriverConfig = MarlinDriverConfig | GrblDriverConfig
