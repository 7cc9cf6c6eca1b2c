"""Serve a :class:`SimMarlin` on a pseudo-terminal and on a TCP socket, at a line's speed
(:mod:`drivers.sim.serial_line`)."""

from __future__ import annotations

from pathlib import Path

from drivers.sim.marlin.firmware import SimMarlin
from drivers.sim.serial_line import BITS_PER_BYTE, SimSerialPort
from drivers.sim.serial_line import serve as _serve


class SimMarlinPort(SimSerialPort):
    """Where a host reaches one simulated printer."""

    def __init__(
        self, printer: SimMarlin, *, baudrate: int = 115200, bits_per_byte: int = BITS_PER_BYTE
    ) -> None:
        super().__init__(printer, baudrate=baudrate, bits_per_byte=bits_per_byte)
        self.printer = printer


async def serve(
    printer: SimMarlin,
    *,
    link: str | Path | None = None,
    pty: bool = False,
    host: str | None = None,
    port: int = 0,
    baudrate: int = 115200,
) -> SimSerialPort:
    """Power ``printer`` on and serve it (see :func:`drivers.sim.serial_line.serve`)."""
    return await _serve(printer, link=link, pty=pty, host=host, port=port, baudrate=baudrate)
