"""A serial port for asyncio: a device path or a pyserial URL. The only module that imports
pyserial; the Marlin driver (and GRBL, later) speak their protocols over it.

Theory of operation:

* **Open.** ``serial.serial_for_url`` takes a device path (``/dev/ttyACM0``, a pty) or a URL
  (``socket://host:port``, ``rfc2217://host:port``). It runs in a worker thread: opening a
  USB device or connecting a socket may take a while and the event loop must not wait.
  Device paths are locked (``exclusive``) so two controllers never stream to one machine.
  Every failure becomes :class:`DeviceUnavailable` naming the port and the reason.
* **Read.** One reader thread per open port blocks in ``read(in_waiting or 1)`` and hands
  each chunk to the event loop with ``loop.call_soon_threadsafe``; the loop side keeps a
  byte buffer that :meth:`read_line` (line protocols) and :meth:`read_some` (byte level:
  GRBL's real-time replies and character counting) consume. Why a thread and not
  ``loop.add_reader``: pyserial's URL handlers hide their file descriptor or have none
  (``rfc2217://`` runs its own threads, Windows ports have no fd at all), so a thread is
  the one way that behaves the same on every kind of port. The read has a short timeout
  (:data:`READ_POLL_S`) so the thread notices a close; POSIX ports are also woken at once
  with ``cancel_read()``.
* **Write.** Writes go through an executor with a single worker: they keep their order,
  ``await write()`` is back-pressure (it returns once pyserial handed the bytes to the
  OS), and a full output buffer blocks that worker, never the loop. A write that takes
  longer than ``write_timeout_s`` means the far end stopped reading: the port is failed.
  pyserial's read and write use separate system calls, so one reader thread and one
  writer thread never step on each other.
* **Failure.** A read or write error (unplugged cable, peer closed the socket) fails the
  port: buffered bytes can still be read, then every read and write raises the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import serial  # type: ignore[import-untyped]  # pyserial ships no type information

from mes.errors import DeviceUnavailable

log = logging.getLogger(__name__)

#: How long one blocking read waits before the reader thread checks for a close.
READ_POLL_S = 0.05
#: How much the loop side buffers before it stops taking more (a peer flooding us).
MAX_BUFFER = 1 << 20


class SerialTransport:
    """One serial port (path or pyserial URL), opened and read without blocking the loop.

    Attributes:
        url: The device path or URL, as configured (used in every error message).
        bytes_in: Bytes received since :meth:`open`.
        bytes_out: Bytes written since :meth:`open`.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        write_timeout_s: float = 10.0,
        exclusive: bool = True,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.write_timeout_s = write_timeout_s
        self.exclusive = exclusive
        self.bytes_in = 0
        self.bytes_out = 0
        self._port: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._writer: ThreadPoolExecutor | None = None
        self._buffer = bytearray()
        self._arrived = asyncio.Event()
        self._error: DeviceUnavailable | None = None

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<SerialTransport {self.url} {self.baudrate} baud {state}>"

    @property
    def is_open(self) -> bool:
        return self._port is not None and self._error is None

    # -- open and close ----------------------------------------------------------------

    async def open(self, *, discard_input: bool = False) -> None:
        """Open the port and start reading.

        Args:
            discard_input: Drop what the port holds from before (output of an earlier
                session). Done before the reader starts: flushing under a reader that is
                waiting on the port makes its read come back empty.

        Raises:
            DeviceUnavailable: the port cannot be opened (missing, busy, refused, bad URL).
        """
        if self._port is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._error = None
        self._buffer.clear()
        self._arrived = asyncio.Event()
        self._stop = threading.Event()
        self.bytes_in = self.bytes_out = 0
        try:
            port = await loop.run_in_executor(None, self._open_port, discard_input)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceUnavailable(f"cannot open serial port {self.url}: {_reason(exc)}") from exc
        self._port = port
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"serial-write {self.url}")
        self._reader = threading.Thread(
            target=self._read_loop, args=(port, loop), name=f"serial-read {self.url}", daemon=True
        )
        self._reader.start()

    def _open_port(self, discard_input: bool) -> Any:
        kwargs: dict[str, Any] = {
            "baudrate": self.baudrate,
            "timeout": READ_POLL_S,
            "write_timeout": self.write_timeout_s,
        }
        if self.exclusive and "://" not in self.url:
            kwargs["exclusive"] = True
        port = serial.serial_for_url(self.url, **kwargs)
        if discard_input:
            try:
                port.reset_input_buffer()
            except BaseException:
                port.close()
                raise
        return port

    async def aclose(self) -> None:
        """Stop reading and close the port. Never raises; safe to call twice."""
        port, self._port = self._port, None
        if port is None:
            return
        self._stop.set()
        with contextlib.suppress(Exception):
            port.cancel_read()  # POSIX ports: wake the blocked read now
        reader, self._reader = self._reader, None
        writer, self._writer = self._writer, None
        loop = asyncio.get_running_loop()

        def finish() -> None:
            if reader is not None:
                reader.join(timeout=2.0)
            if writer is not None:
                writer.shutdown(wait=True, cancel_futures=True)
            with contextlib.suppress(Exception):
                port.close()

        await loop.run_in_executor(None, finish)
        if self._error is None:
            self._error = DeviceUnavailable(f"serial port {self.url} is closed")
        self._arrived.set()

    # -- reader thread -----------------------------------------------------------------

    def _read_loop(self, port: Any, loop: asyncio.AbstractEventLoop) -> None:
        while not self._stop.is_set():
            try:
                data = port.read(port.in_waiting or 1)
            except Exception as exc:  # pyserial raises SerialException, OSError, TypeError...
                if not self._stop.is_set():
                    self._call(loop, self._failed, exc)
                return
            if data:
                self._call(loop, self._received, bytes(data))

    @staticmethod
    def _call(loop: asyncio.AbstractEventLoop, callback: Any, arg: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
            loop.call_soon_threadsafe(callback, arg)

    def _received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if len(self._buffer) + len(data) > MAX_BUFFER:
            self._fail(
                DeviceUnavailable(
                    f"serial port {self.url}: more than {MAX_BUFFER} "
                    "bytes unread (is something flooding the line?)"
                )
            )
            return
        self._buffer += data
        self._arrived.set()

    def _failed(self, exc: BaseException) -> None:
        self._fail(DeviceUnavailable(f"serial port {self.url} failed: {_reason(exc)}"))

    def _fail(self, error: DeviceUnavailable) -> None:
        if self._error is None:
            log.debug("%s", error)
            self._error = error
        self._arrived.set()

    # -- reading -----------------------------------------------------------------------

    async def _more(self) -> None:
        """Wait until new bytes arrive (or the port fails)."""
        if self._error is not None:
            raise self._error
        self._arrived.clear()
        await self._arrived.wait()

    async def read_line(self) -> bytes:
        """The next line, without its ``\\n`` (and a ``\\r`` before it).

        Raises:
            DeviceUnavailable: the port failed or was closed before a whole line came.
        """
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            await self._more()

    async def read_some(self) -> bytes:
        """Every byte received and not yet read (at least one; waits for it).

        Raises:
            DeviceUnavailable: the port failed or was closed and nothing is left to read.
        """
        while not self._buffer:
            await self._more()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def discard_input(self) -> int:
        """Drop every byte received and not yet read; how many were dropped."""
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped

    # -- writing -----------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Write ``data``; return once pyserial has handed it to the OS.

        Raises:
            DeviceUnavailable: the port is closed or failed, or the write timed out.
        """
        if self._error is not None:
            raise self._error
        port, writer = self._port, self._writer
        if port is None or writer is None:
            raise DeviceUnavailable(f"serial port {self.url} is not open")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(writer, port.write, data)
        except serial.SerialTimeoutException as exc:
            error = DeviceUnavailable(
                f"serial port {self.url}: write timed out after {self.write_timeout_s:g} s "
                "(the far end stopped reading)"
            )
            self._fail(error)
            raise error from exc
        except (serial.SerialException, OSError, TypeError, RuntimeError) as exc:
            # TypeError/RuntimeError: pyserial or the executor after a close under us.
            error = DeviceUnavailable(f"serial port {self.url}: write failed: {_reason(exc)}")
            self._fail(error)
            raise error from exc
        self.bytes_out += len(data)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
