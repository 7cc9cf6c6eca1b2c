"""A simulated serial line for a simulated serial device (the virtual Marlin printer, the
virtual GRBL): served on a pseudo-terminal and on a TCP socket, at a line's speed.

Theory of operation: the line is two one-way wires. Each wire is a UART's transmitter
in virtual time: a byte handed to it starts when it arrives or when the byte before it
is through, whichever is later, and is through :data:`BITS_PER_BYTE` bit times later (8N1:
ten bits a byte, 11520 bytes a second at 115200 baud). A byte reaches the far end no
sooner than that. One task per wire (so order is kept) sleeps until :data:`SLICE` more
bytes, or the rest of a write, are through and then hands over every byte through by
then: a burst trickles into the device's receive buffer as it would from a UART, cut
wherever the wake-up falls (a line may arrive in two parts), and the device's output
leaves at the same rate. The schedule is kept in virtual time, not in when the task
happened to wake: the event loop wakes a sleeper up to a millisecond late (epoll's
resolution), and a wire that restarted its clock at each late wake-up ran well below its
baud rate (at 115200 baud, a quarter of the line was lost that way). What is left is a
delivery up to about a millisecond late, as a USB-serial adapter's frames are.

* **pty**: ``os.openpty()``; a host opens :attr:`SimSerialPort.path` (optionally through a
  fixed symlink) with pyserial as it would ``/dev/ttyACM0``. The slave side stays open
  here too, so a host may close and reopen it (what the device says meanwhile waits in the
  terminal's buffer; a driver drops it on open). Opening a pty toggles no DTR: like a
  board whose auto-reset is disabled, the device keeps running across a reconnect.
* **TCP**: one client at a time, as a serial-to-network bridge (ser2net) serves a port; a
  new connection replaces the old. The host opens ``socket://127.0.0.1:<port>``.

The device knows nothing of either: it gets bytes through ``feed`` and speaks through the
sink it was ``attach``-ed to (:class:`Device`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


def make_link(path: Path, target: str) -> Path:
    """Point a symlink at ``path`` to ``target``, replacing an older symlink atomically.

    Raises:
        FileExistsError: ``path`` exists and is not a symlink (never clobbered).
    """
    if path.exists() and not path.is_symlink():
        raise FileExistsError(f"{path} exists and is not a symlink")
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(path)  # atomic: a reader never finds the link missing
    return path


def remove_link(path: Path, target: str) -> None:
    """Remove the symlink if it still points at ``target`` (a newer sim may own it now)."""
    with contextlib.suppress(OSError):
        if path.is_symlink() and os.readlink(path) == target:
            path.unlink()


class Device(Protocol):
    """What a line needs of the device at its end."""

    name: str

    def feed(self, data: bytes) -> None: ...
    def attach(self, sink: Callable[[bytes], None]) -> Callable[[], None]: ...
    async def start(self) -> None: ...


#: A byte on an 8N1 line: start bit, 8 data bits, stop bit.
BITS_PER_BYTE = 10
#: Bytes through between two wake-ups of a wire's task (a UART delivers byte by byte;
#: waking for every byte would cost more than it shows).
SLICE = 16


class _Wire:
    """One direction of the line: a transmitter in virtual time (module docstring)."""

    def __init__(self, deliver: Callable[[bytes], None], byte_s: float, name: str) -> None:
        self._deliver = deliver
        self._byte_s = byte_s
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=name)

    def put(self, data: bytes) -> None:
        self._queue.put_nowait((self._loop.time(), data))

    async def _run(self) -> None:
        loop, byte_s = self._loop, self._byte_s
        free_at = 0.0  # when the last byte handed to the wire is through
        while True:
            arrived, data = await self._queue.get()
            start = max(free_at, arrived)  # the first byte's start bit
            done = 0
            while done < len(data):
                through = min(len(data), int((loop.time() - start) / byte_s + 1e-9))
                if through > done:
                    self._deliver(data[done:through])
                    done = through
                    continue
                wake = min(len(data), done + SLICE)
                await asyncio.sleep(start + wake * byte_s - loop.time())
            free_at = start + len(data) * byte_s

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class SimSerialPort:
    """Where a host reaches one simulated serial device (see the module docstring).

    Construct it inside a running event loop.

    Attributes:
        path: The pty a host opens (the symlink if one was asked for); None until
            :meth:`start_pty`.
        port: The bound TCP port; None until :meth:`start_tcp`.
        dropped: Bytes of output lost because nobody was connected.
        connected: Set while a TCP client is connected.
    """

    def __init__(
        self, device: Device, *, baudrate: int = 115200, bits_per_byte: int = BITS_PER_BYTE
    ) -> None:
        self.device = device
        self.baudrate = baudrate
        self.path: str | None = None
        self.port: int | None = None
        self.host = "127.0.0.1"
        self.dropped = 0
        self.connected = asyncio.Event()
        byte_s = bits_per_byte / baudrate
        self._to_device = _Wire(device.feed, byte_s, f"sim-serial-rx:{device.name}")
        self._to_host = _Wire(self._transmit, byte_s, f"sim-serial-tx:{device.name}")
        self._detach = device.attach(self._to_host.put)
        self._fds: list[int] = []
        self._master: int | None = None
        self._link: tuple[Path, str] | None = None
        self._server: asyncio.Server | None = None
        self._client: asyncio.StreamWriter | None = None

    @property
    def url(self) -> str:
        """``socket://host:port`` for pyserial (after :meth:`start_tcp`)."""
        if self.port is None:
            raise RuntimeError("not serving TCP")
        return f"socket://{self.host}:{self.port}"

    async def start_pty(self, link: str | Path | None = None) -> str:
        """Serve on a new pty; returns the path a host opens.

        Args:
            link: If given, a symlink made (or replaced) there pointing at the pty, so a
                plant file can name a fixed path; removed again by :meth:`aclose`.

        Raises:
            FileExistsError: ``link`` exists and is not a symlink.
        """
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, before any host configures it
        os.set_blocking(master, False)
        self._fds += [master, slave]
        self._master = master
        asyncio.get_running_loop().add_reader(master, self._read_pty)
        self.path = os.ttyname(slave)
        if link is not None:
            self._link = (make_link(Path(link), self.path), self.path)
            self.path = str(link)
        return self.path

    def _read_pty(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except OSError:  # EAGAIN after a spurious wake-up, or EIO while no host has it open
            return
        if data:
            self._to_device.put(data)

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port.

        Raises:
            OSError: the address cannot be bound.
        """
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.drop_connections()
        self._client = writer
        self.connected.set()
        try:
            while data := await reader.read(4096):
                self._to_device.put(data)
        except ConnectionError:
            pass
        finally:
            if self._client is writer:
                self._client = None
                self.connected.clear()
            writer.close()

    def drop_connections(self) -> int:
        """Close the TCP client's connection (the port keeps listening); how many."""
        client, self._client = self._client, None
        self.connected.clear()
        if client is None:
            return 0
        client.close()
        return 1

    def _transmit(self, data: bytes) -> None:
        delivered = False
        if self._master is not None:
            rest = data
            with contextlib.suppress(OSError):  # the terminal's buffer is full: nobody reads
                while rest:
                    rest = rest[os.write(self._master, rest) :]
                delivered = True
        if self._client is not None and not self._client.is_closing():
            self._client.write(data)
            delivered = True
        if not delivered:
            self.dropped += len(data)

    async def aclose(self) -> None:
        """Stop serving; close the pty and the socket, remove the link. Safe twice."""
        self._detach()
        if self._master is not None:
            asyncio.get_running_loop().remove_reader(self._master)
            self._master = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        if self._link is not None:
            remove_link(*self._link)
            self._link = None
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        await self._to_device.aclose()
        await self._to_host.aclose()


async def serve(
    device: Device,
    *,
    link: str | Path | None = None,
    pty: bool = False,
    host: str | None = None,
    port: int = 0,
    baudrate: int = 115200,
) -> SimSerialPort:
    """Power ``device`` on and serve it: on a pty (``pty`` or a ``link`` path for it)
    and/or on TCP (``host``, ``port``; 0 picks a free one). Close with
    ``await served.aclose()`` and ``await device.aclose()``.

    Raises:
        FileExistsError: ``link`` exists and is not a symlink.
        OSError: the TCP address cannot be bound.
    """
    served = SimSerialPort(device, baudrate=baudrate)
    try:
        if pty or link is not None:
            await served.start_pty(link)
        if host is not None:
            await served.start_tcp(host, port)
        await device.start()
    except BaseException:
        await served.aclose()
        raise
    return served
