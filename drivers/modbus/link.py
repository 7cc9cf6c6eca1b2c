"""One Modbus connection (a TCP socket or an RTU bus), shared safely by the cells on it.

Theory of operation: a :class:`ModbusLink` owns one pymodbus async client. Every cell
behind it (several PLCs behind one gateway, several drops on one RS-485 bus) sends its
requests through :meth:`ModbusLink.read` and :meth:`ModbusLink.write_registers`, which
take the link's lock, so one request is on the wire at a time; on RTU the lock is held
for the bus's inter-frame silence after each answer. The link opens on the first
:meth:`acquire` and closes after the last :meth:`release`.

pymodbus's own reconnect is switched off (``reconnect_delay=0``): the cell's supervisor
reconnects with the plant's backoff, and after a reconnect the driver reads state before
it writes anything. A device that does not answer fails only its own request (one dead
drop must not take the bus down, pymodbus#1654); a broken connection fails every cell
on it until one of them opens it again. This is the only module that imports pymodbus's
client, and it translates its exceptions into :mod:`mes.errors`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from drivers.modbus.codec import Table
from mes.errors import DeviceUnavailable

log = logging.getLogger(__name__)

Client = AsyncModbusTcpClient | AsyncModbusSerialClient

#: Function codes of the requests this link sends (for logs and messages).
READ_CODES = {Table.COIL: 1, Table.DISCRETE_INPUT: 2, Table.HOLDING: 3, Table.INPUT: 4}
EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a link goes: a TCP host and port, or a serial port with its framing."""

    transport: str  # "tcp" | "rtu"
    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str = ""
    baudrate: int = 19200
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    def __str__(self) -> str:
        if self.transport == "tcp":
            return f"modbus tcp {self.host}:{self.port}"
        framing = f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"
        return f"modbus rtu {self.serial_port} {framing}"

    def inter_frame_s(self) -> float:
        """RTU bus silence between frames: 3.5 characters, at least 1.75 ms (the spec)."""
        if self.transport != "rtu":
            return 0.0
        return max(3.5 * 11 / self.baudrate, 0.00175)


class ModbusLink:
    """A shared connection to one endpoint, one request at a time."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout_s: float = 1.0,
        retries: int = 2,
        inter_frame_s: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retries = retries
        self.inter_frame_s = endpoint.inter_frame_s() if inter_frame_s is None else inter_frame_s
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._users = 0
        #: Requests sent, by function code (what a test of read-only mode looks at).
        self.sent: dict[int, int] = {}

    def _make_client(self) -> Client:
        ep = self.endpoint
        if ep.transport == "tcp":
            return AsyncModbusTcpClient(
                ep.host,
                port=ep.port,
                timeout=self.timeout_s,
                retries=self.retries,
                reconnect_delay=0,
            )
        return AsyncModbusSerialClient(
            ep.serial_port,
            baudrate=ep.baudrate,
            parity=ep.parity,
            stopbits=ep.stopbits,
            bytesize=ep.bytesize,
            timeout=self.timeout_s,
            retries=self.retries,
            reconnect_delay=0,
        )

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def acquire(self) -> None:
        """Count a user of the link and open it if it is not open.

        Raises:
            DeviceUnavailable: the endpoint cannot be reached.
        """
        self._users += 1
        try:
            await self.open()
        except DeviceUnavailable:
            self._users -= 1
            raise

    async def open(self) -> None:
        """Open the connection if it is not open (another cell may have lost it).

        Raises:
            DeviceUnavailable: the endpoint cannot be reached.
        """
        async with self._lock:
            if self.connected:
                return
            if self._client is not None:
                self._client.close()
            self._client = self._make_client()
            try:
                ok = await self._client.connect()
            except (ModbusException, OSError) as exc:
                ok = False
                log.debug("%s: connect failed: %s", self.endpoint, exc)
            if not ok:
                self._client.close()
                self._client = None
                raise DeviceUnavailable(f"cannot connect to {self.endpoint}")

    async def release(self) -> None:
        """One user fewer; the last one closes the connection. Never raises."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            async with self._lock:
                if self._client is not None:
                    self._client.close()
                    self._client = None

    async def read(
        self, table: Table, address: int, count: int, device_id: int
    ) -> list[int] | list[bool]:
        """Read ``count`` registers (or bits) from ``address`` of ``table``.

        Raises:
            DeviceUnavailable: no connection, no answer, or an exception response.
        """

        def call(client: Client) -> Awaitable[ModbusPDU]:
            method = {
                Table.COIL: client.read_coils,
                Table.DISCRETE_INPUT: client.read_discrete_inputs,
                Table.HOLDING: client.read_holding_registers,
                Table.INPUT: client.read_input_registers,
            }[table]
            return method(address, count=count, device_id=device_id)

        what = f"read {table} {address}..{address + count - 1} from device {device_id}"
        response = await self._request(READ_CODES[table], what, call)
        if table.bits:
            return list(response.bits[:count])
        return list(response.registers)

    async def write_registers(self, address: int, values: Sequence[int], device_id: int) -> None:
        """Write holding registers from ``address`` in one request (FC16).

        Raises:
            DeviceUnavailable: no connection, no answer, or an exception response; the
                write may or may not have reached the device.
        """

        def call(client: Client) -> Awaitable[ModbusPDU]:
            return client.write_registers(address, list(values), device_id=device_id)

        what = f"write holding {address}..{address + len(values) - 1} to device {device_id}"
        await self._request(16, what, call)

    async def _request(
        self, code: int, what: str, call: Callable[[Client], Awaitable[ModbusPDU]]
    ) -> ModbusPDU:
        async with self._lock:
            client = self._client
            if client is None or not client.connected:
                raise DeviceUnavailable(f"{self.endpoint}: not connected ({what})")
            self.sent[code] = self.sent.get(code, 0) + 1
            try:
                response = await call(client)
            except ConnectionException as exc:
                client.close()
                raise DeviceUnavailable(f"{self.endpoint}: connection lost ({what})") from exc
            except ModbusException as exc:
                raise DeviceUnavailable(
                    f"{self.endpoint}: no answer within {self.timeout_s:g} s after "
                    f"{self.retries + 1} tries ({what})"
                ) from exc
            finally:
                if self.inter_frame_s:
                    await asyncio.sleep(self.inter_frame_s)
        if response.isError():
            number = response.exception_code if isinstance(response, ExceptionResponse) else 0
            meaning = EXCEPTIONS.get(number, "exception")
            raise DeviceUnavailable(
                f"{self.endpoint}: device answered {meaning} (exception {number}) to {what}"
            )
        return response

    def __repr__(self) -> str:
        return f"<ModbusLink {self.endpoint} users={self._users}>"
