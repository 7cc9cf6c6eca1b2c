"""Serve a :class:`SimGrbl` on a pseudo-terminal and on a TCP socket, at a line's speed
(:mod:`drivers.sim.serial_line`)."""

from __future__ import annotations

from pathlib import Path

from drivers.sim.grbl.firmware import SimGrbl
from drivers.sim.serial_line import BITS_PER_BYTE, SimSerialPort
from drivers.sim.serial_line import serve as _serve


class SimGrblPort(SimSerialPort):
    """Where a host reaches one simulated GRBL."""

    def __init__(
        self, grbl: SimGrbl, *, baudrate: int = 115200, bits_per_byte: int = BITS_PER_BYTE
    ) -> None:
        super().__init__(grbl, baudrate=baudrate, bits_per_byte=bits_per_byte)
        self.grbl = grbl


async def serve(
    grbl: SimGrbl,
    *,
    link: str | Path | None = None,
    pty: bool = False,
    host: str | None = None,
    port: int = 0,
    baudrate: int = 115200,
) -> SimSerialPort:
    """Power ``grbl`` on and serve it (see :func:`drivers.sim.serial_line.serve`)."""
    return await _serve(grbl, link=link, pty=pty, host=host, port=port, baudrate=baudrate)
