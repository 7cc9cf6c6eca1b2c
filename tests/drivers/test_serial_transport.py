"""The serial transport against real peers: a pty (raw bytes on the far end) and TCP.

Lines and bytes arrive as sent, writes go out, and every failure is a DeviceUnavailable
that names the port.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator, Iterator

import pytest

from drivers.serial.transport import SerialTransport
from mes.errors import DeviceUnavailable
from tests.conftest import free_ports


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """A pty: the master fd (the far end) and the path a transport opens."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        for fd in (master, slave):
            os.close(fd)


@pytest.fixture
async def opened(pty: tuple[int, str]) -> AsyncIterator[tuple[int, SerialTransport]]:
    master, path = pty
    transport = SerialTransport(path, baudrate=115200)
    await transport.open()
    try:
        yield master, transport
    finally:
        await transport.aclose()


async def read_master(master: int, count: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < count:
        data += await loop.run_in_executor(None, os.read, master, count - len(data))
    return data


async def test_lines_and_bytes_arrive_as_sent(opened: tuple[int, SerialTransport]) -> None:
    master, transport = opened
    os.write(master, b"ok\r\nT:21.0 /0.0\nbusy")
    async with asyncio.timeout(5):
        assert await transport.read_line() == b"ok"
        assert await transport.read_line() == b"T:21.0 /0.0"
        assert await transport.read_some() == b"busy"
        os.write(master, b"\x00?<Idle>\n")
        raw = b""
        while len(raw) < 9:  # bytes as they come, in one chunk or several
            raw += await transport.read_some()
        assert raw == b"\x00?<Idle>\n"
    assert transport.bytes_in == len(b"ok\r\nT:21.0 /0.0\nbusy\x00?<Idle>\n")


async def test_writes_reach_the_far_end_in_order(opened: tuple[int, SerialTransport]) -> None:
    master, transport = opened
    await asyncio.gather(*(transport.write(f"N{i} G1 X{i}\n".encode()) for i in range(20)))
    expected = b"".join(f"N{i} G1 X{i}\n".encode() for i in range(20))
    async with asyncio.timeout(5):
        assert await read_master(master, len(expected)) == expected
    assert transport.bytes_out == len(expected)


async def test_stale_input_is_discarded_on_open(pty: tuple[int, str]) -> None:
    master, path = pty
    os.write(master, b"ok\nok\n")  # an earlier session's answers
    transport = SerialTransport(path)
    await transport.open(discard_input=True)
    try:
        os.write(master, b"start\n")
        async with asyncio.timeout(5):
            assert await transport.read_line() == b"start"
    finally:
        await transport.aclose()


async def test_a_read_waiting_when_the_port_closes_ends_with_device_unavailable(
    opened: tuple[int, SerialTransport],
) -> None:
    _, transport = opened
    reading = asyncio.ensure_future(transport.read_line())
    await transport.aclose()
    with pytest.raises(DeviceUnavailable, match=r"serial port /dev/pts/\d+ is closed"):
        async with asyncio.timeout(5):
            await reading
    with pytest.raises(DeviceUnavailable, match=r"closed"):
        await transport.write(b"M105\n")


async def test_a_port_already_in_use_is_refused(pty: tuple[int, str]) -> None:
    _, path = pty
    first = SerialTransport(path)
    await first.open()
    try:
        with pytest.raises(DeviceUnavailable, match=rf"cannot open serial port {path}: .*lock"):
            await SerialTransport(path).open()
    finally:
        await first.aclose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("/dev/does-not-exist", r"No such file or directory"),
        ("nosuch://printer", r"protocol 'nosuch' not known"),
    ],
)
async def test_a_port_that_cannot_be_opened_is_named_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(DeviceUnavailable, match=rf"cannot open serial port {url}: .*{reason}"):
        await SerialTransport(url).open()


async def test_a_socket_url_is_served_and_a_closed_peer_is_a_lost_port() -> None:
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = SerialTransport(f"socket://127.0.0.1:{port}")
    await transport.open()
    try:
        async with asyncio.timeout(5):
            peer = await accepted.get()
            peer.write(b"start\n")
            assert await transport.read_line() == b"start"
            peer.close()
            with pytest.raises(DeviceUnavailable, match=rf"socket://127.0.0.1:{port} failed"):
                await transport.read_line()
    finally:
        await transport.aclose()
        server.close()


async def test_a_refused_socket_names_the_url() -> None:
    (port,) = free_ports(1)
    url = f"socket://127.0.0.1:{port}"
    with pytest.raises(DeviceUnavailable, match=rf"cannot open serial port {url}: .*refused"):
        await SerialTransport(url).open()
