"""Real Modbus servers (TCP, and RTU on a pseudo-terminal) in front of simulated PLCs.

Theory of operation: pymodbus does the protocol (framing, PDUs, exception responses); this
module only tells it where the data lives. :class:`PlcContext` stands in for pymodbus's
datastore: the server calls ``async_getValues`` / ``async_setValues`` with a device id, a
function code, an address and a count or values; the context picks the :class:`SimPlc`
by device id (several behind one port are a gateway with unit ids), the table by function
code, and answers a list or an ``ExcCodes`` member: ILLEGAL_ADDRESS for anything outside
the map or a write to a register no writable point covers. A PLC's ``reply_delay_s`` is
awaited once per request before it is served. Device id 0 is a broadcast (applied to every
PLC, never answered) unless a PLC sits at id 0 itself. An unknown id is answered with
GATEWAY_NO_RESPONSE over TCP and ignored on an RTU bus, as a gateway and a line would.

Every decoded request (rejected ones too) passes ``trace_pdu`` and lands in the request
log of the PLC it addressed (:attr:`SimPlc.requests`; a broadcast in every one) and in
:attr:`SimServer.requests`.

RTU runs on a software null-modem: two pseudo-terminals whose master ends
:class:`PtyRelay` joins with ``loop.add_reader``; the server opens one slave, a client
the other (:attr:`SimServer.serial_port`, optionally reached through a fixed symlink).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    MaskWriteRegisterRequest,
    ReadWriteMultipleRegistersRequest,
)
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer

from drivers.modbus.codec import Table
from drivers.sim.plc import REQUEST_LOG, AddressError, Request, SimPlc
from drivers.sim.serial_line import make_link, remove_link

#: Function code -> the table it reads or writes.
TABLES: dict[int, Table] = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE_INPUT,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    22: Table.HOLDING,
    23: Table.HOLDING,
    4: Table.INPUT,
}
_READS = frozenset({1, 2, 3, 4})  # served by async_getValues alone: the delay goes there


class PlcContext(ModbusServerContext):
    """pymodbus's datastore, answered by simulated PLCs by device id."""

    def __init__(self, plcs: Mapping[int, SimPlc]) -> None:
        """Serve ``plcs`` (device id -> PLC).

        pymodbus's own ``__init__`` is not called: it builds a datastore of its own. With
        ``old_simulator`` set, the server hands every request to the two methods below.
        """
        self.old_simulator = True
        self.simdevices = []
        self.plcs = dict(plcs)
        self.broadcast = 0 not in self.plcs

    def device_ids(self) -> list[int]:
        """The device ids served (pymodbus applies a broadcast to each)."""
        return list(self.plcs)

    def _plc(self, device_id: int) -> SimPlc:
        if device_id not in self.plcs:
            raise NoSuchIdException(f"no simulated PLC at device id {device_id}")
        return self.plcs[device_id]

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        """Serve a read; the values, or ILLEGAL_FUNCTION / ILLEGAL_ADDRESS."""
        plc = self._plc(device_id)
        if func_code not in TABLES:
            return ExcCodes.ILLEGAL_FUNCTION
        if func_code in _READS and plc.reply_delay_s > 0:
            await asyncio.sleep(plc.reply_delay_s)
        try:
            return plc.read(TABLES[func_code], address, count)
        except AddressError:
            return ExcCodes.ILLEGAL_ADDRESS

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        """Serve a write; None when stored, else ILLEGAL_ADDRESS / ILLEGAL_VALUE."""
        plc = self._plc(device_id)
        if func_code not in TABLES or func_code in _READS:
            return ExcCodes.ILLEGAL_FUNCTION
        if plc.reply_delay_s > 0:
            await asyncio.sleep(plc.reply_delay_s)
        try:
            plc.write(TABLES[func_code], address, [int(v) for v in values])
        except AddressError:
            return ExcCodes.ILLEGAL_ADDRESS
        except ValueError:
            return ExcCodes.ILLEGAL_VALUE
        return None


def _request_of(pdu: ModbusPDU, at: float) -> Request:
    address, count, values = pdu.address, pdu.count, tuple(int(b) for b in pdu.bits)
    if isinstance(pdu, ReadWriteMultipleRegistersRequest):
        address, count = pdu.write_address, pdu.write_count
        values = tuple(pdu.write_registers)
    elif isinstance(pdu, MaskWriteRegisterRequest):
        values, count = (pdu.and_mask, pdu.or_mask), 1
    elif pdu.function_code in (6, 16):
        values = tuple(pdu.registers)
    return Request(pdu.dev_id, pdu.function_code, address, count or len(values), values, at)


class PtyRelay:
    """Two pseudo-terminals joined back to back: a null-modem cable in software.

    Bytes read from either master are written to the other. Both slave ends are opened
    here and kept open, so the masters never see EOF while a user closes and reopens.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._fds: list[int] = []
        masters: list[int] = []
        self.paths: list[str] = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._fds += [master, slave]
            masters.append(master)
            self.paths.append(os.ttyname(slave))
        one, two = masters
        self._loop.add_reader(one, self._copy, one, two)
        self._loop.add_reader(two, self._copy, two, one)
        self._masters = masters

    @staticmethod
    def _copy(source: int, target: int) -> None:
        try:
            data = os.read(source, 4096)
        except OSError:  # EAGAIN after a spurious wake-up, or EIO: nothing to copy
            return
        with contextlib.suppress(BlockingIOError):  # the far end's buffer is full: a lost frame
            while data:
                data = data[os.write(target, data) :]

    def close(self) -> None:
        """Stop copying and close all four ends."""
        for master in self._masters:
            self._loop.remove_reader(master)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []


class SimServer:
    """A running Modbus server in front of one or more :class:`SimPlc` (see module docstring).

    Attributes:
        plcs: Device id -> PLC.
        requests: The last ``REQUEST_LOG`` requests received, whatever their device id.
        port: The bound TCP port (also when started on port 0); None for RTU.
        serial_port: The pty path an RTU client opens (the link if one was given).
    """

    def __init__(self, plcs: Mapping[int, SimPlc]) -> None:
        if not plcs:
            raise ValueError("a server needs at least one PLC")
        self.context = PlcContext(plcs)
        self.plcs = self.context.plcs
        self.requests: deque[Request] = deque(maxlen=REQUEST_LOG)
        self.port: int | None = None
        self.serial_port: str | None = None
        self._server: ModbusBaseServer | None = None
        self._relay: PtyRelay | None = None
        self._link: tuple[Path, str] | None = None  # (symlink, pty it points at)

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending:
            return pdu
        request = _request_of(pdu, asyncio.get_running_loop().time())
        self.requests.append(request)
        if pdu.dev_id == 0 and self.context.broadcast:
            targets = list(self.plcs.values())
        else:
            targets = [self.plcs[pdu.dev_id]] if pdu.dev_id in self.plcs else []
        for plc in targets:
            plc.log(request)
        return pdu

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen for Modbus TCP on ``host:port`` (0: any free port, see :attr:`port`).

        Raises:
            OSError: the address cannot be bound.
        """
        server = ModbusTcpServer(
            self.context,
            address=(host, port),
            broadcast_enable=self.context.broadcast,
            trace_pdu=self._trace,
        )
        if not await server.listen():
            raise OSError(f"cannot listen for Modbus TCP on {host}:{port}")
        self._server = server
        listener: asyncio.Server = server.transport  # type: ignore[assignment]  # typed as BaseTransport
        self.port = int(listener.sockets[0].getsockname()[1])

    async def start_rtu(self, link: str | Path | None = None, *, baudrate: int = 19200) -> None:
        """Serve Modbus RTU on a new pty pair; a client opens :attr:`serial_port`.

        Args:
            link: If given, a symlink made (or replaced) there pointing at the client's pty,
                so a plant file can name a fixed path; removed again by :meth:`aclose`.
            baudrate: The server's line speed (a pty ignores it).

        Raises:
            FileExistsError: ``link`` exists and is not a symlink.
            OSError: the ptys or the server cannot be opened.
        """
        self._relay = relay = PtyRelay()
        try:
            server = ModbusSerialServer(
                self.context,
                framer=FramerType.RTU,
                port=relay.paths[0],
                baudrate=baudrate,
                ignore_missing_devices=True,
                broadcast_enable=self.context.broadcast,
                trace_pdu=self._trace,
            )
            if not await server.listen():
                raise OSError(f"cannot open the RTU server on {relay.paths[0]}")
            self._server = server
            self.serial_port = relay.paths[1]
            if link is not None:
                self._link = (make_link(Path(link), relay.paths[1]), relay.paths[1])
                self.serial_port = str(link)
        except BaseException:
            await self.aclose()
            raise

    def drop_connections(self) -> int:
        """Close every client's TCP connection (the server keeps listening); how many.

        An RTU line has no connections: nothing happens there.
        """
        if self._server is None or self.port is None:
            return 0
        connections = list(self._server.active_connections.values())
        for connection in connections:
            connection.close()
        return len(connections)

    async def aclose(self) -> None:
        """Stop serving, close the ptys and remove the link; safe to call twice."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]  # unannotated
            self._server = None
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if self._link is not None:
            remove_link(*self._link)
            self._link = None


async def serve_tcp(
    plcs: Mapping[int, SimPlc], *, host: str = "127.0.0.1", port: int = 0
) -> SimServer:
    """Start a Modbus TCP server for ``plcs`` (device id -> PLC); see ``SimServer.start_tcp``."""
    server = SimServer(plcs)
    await server.start_tcp(host, port)
    return server


async def serve_rtu(
    plcs: Mapping[int, SimPlc], *, link: str | Path | None = None, baudrate: int = 19200
) -> SimServer:
    """Start a Modbus RTU server on a pty for ``plcs``; see :meth:`SimServer.start_rtu`."""
    server = SimServer(plcs)
    await server.start_rtu(link, baudrate=baudrate)
    return server
