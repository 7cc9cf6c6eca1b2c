"""Streaming G-code over a 115200-baud serial line: how much of the link each host uses.

Run: .venv/bin/python tests/benchmarks/bench_serial.py [--moves N]

Both machines are the project's simulators on a real pty, in this process, their device
time made short (a speed factor) so the link and the host are what is measured; the line
itself is modelled at 115200 baud (10 bits a byte: 11,520 bytes a second). Time runs from
the job's start to its last line acknowledged (the link's share; the motion after it is
the machine's). The program is ``--moves`` short G1 moves (about 21 bytes a line, the
kind a detailed engraving or a curved print produces).

Printed:

1. GRBL: bytes a second streamed with character counting against the 128-byte receive
   buffer, and with send-one-wait-ok, as a share of the link's capacity; target:
   character counting >= 90 % of capacity, and its ratio to send-one-wait-ok.
2. Marlin: lines a second with one line in flight (OctoPrint's ping-pong) and with a
   window of 4 (Marlin's BUFSIZE), beside the link's capacity in lines a second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from drivers.serial.marlin import MarlinCell, MarlinSettings  # noqa: E402
from drivers.sim.marlin.firmware import SimMarlin  # noqa: E402
from drivers.sim.marlin.port import SimMarlinPort  # noqa: E402
from mes.domain.job import Job, JobCompleted, JobProgress, Program, ProgramKind  # noqa: E402

BAUD = 115200
BYTES_PER_S = BAUD / 10
FAST = 200.0  # device time: motion and heating 200x (far faster and the printer sim stalls)
FAST_GRBL = 1000.0
TARGET_GRBL = 0.90


def moves(count: int) -> list[str]:
    return [f"G1 X{10 + (i % 40) * 0.5:.1f} Y{20 + (i % 9) * 0.5:.1f} F3000" for i in range(count)]


def job(job_id: int, lines: list[str], capability: str) -> Job:
    body = "\n".join(["G21", "G90", *lines])
    return Job(job_id, f"B.1/{job_id}", "B.1", capability, Program(ProgramKind.GCODE, body), 60)


async def stream(driver: object, job_id: int) -> tuple[float, object]:
    """Follow a started job: seconds until every line was acknowledged (progress 1.0,
    the link's part), and the job's end."""
    started, acked, end = time.perf_counter(), None, None
    async with asyncio.timeout(600):
        async for report in driver.reports(job_id):  # type: ignore[attr-defined]
            if isinstance(report, JobProgress) and report.fraction >= 0.999 and acked is None:
                acked = time.perf_counter() - started
            end = report
    return (acked if acked is not None else time.perf_counter() - started), end


async def marlin(lines: list[str], window: int) -> tuple[float, int]:
    """Seconds to stream ``lines`` and the bytes sent for them, with ``window`` in flight."""
    printer = SimMarlin("bench", speed=FAST)
    port = SimMarlinPort(printer, baudrate=BAUD)
    path = await port.start_pty()
    await printer.start()
    driver = MarlinCell("bench", MarlinSettings(port=path, baudrate=BAUD, window=window))
    try:
        await driver.connect()
        await driver.start_job(job(1, lines, "print.fdm"))
        elapsed, end = await stream(driver, 1)
        assert isinstance(end, JobCompleted), end
        return elapsed, int(end.measurements["bytes"])
    finally:
        await driver.aclose()
        await port.aclose()
        await printer.aclose()


async def grbl(lines: list[str], streaming: str) -> tuple[float, int]:
    """Seconds to stream ``lines`` and their bytes, with ``streaming`` (GRBL)."""
    from drivers.serial.grbl import GrblCell
    from drivers.serial.grbl_settings import GrblSettings
    from drivers.sim.grbl.firmware import SimGrbl
    from drivers.sim.grbl.port import serve

    machine = SimGrbl("bench", speed=FAST_GRBL)
    served = await serve(machine, pty=True, baudrate=BAUD)
    assert served.path is not None
    settings = GrblSettings(port=served.path, baudrate=BAUD, streaming=streaming, check_mode=False)
    driver = GrblCell("bench", settings)
    try:
        await driver.connect()
        await driver.start_job(job(1, lines, "cnc.route"))
        elapsed, end = await stream(driver, 1)
        assert isinstance(end, JobCompleted), end
        sent = sum(len(line) + 1 for line in ["G21", "G90", *lines])
        return elapsed, sent
    finally:
        await driver.aclose()
        await served.aclose()
        await machine.aclose()


async def main(count: int) -> None:
    lines = moves(count)
    size = sum(len(line) + 1 for line in lines)
    print(
        f"{count} moves, {size} bytes ({size / count:.1f} a line); link {BAUD} baud = "
        f"{BYTES_PER_S:,.0f} bytes/s = {BYTES_PER_S / (size / count):,.0f} lines/s"
    )
    counting = await grbl(lines, "counting")
    ping = await grbl(lines, "send_response")
    share = counting[1] / counting[0] / BYTES_PER_S
    print(
        f"GRBL character counting: {counting[1] / counting[0]:,.0f} bytes/s = "
        f"{share:.0%} of the link (target >= {TARGET_GRBL:.0%}: "
        f"{'met' if share >= TARGET_GRBL else 'MISSED'})\n"
        f"GRBL send-one-wait-ok:   {ping[1] / ping[0]:,.0f} bytes/s = "
        f"{ping[1] / ping[0] / BYTES_PER_S:.0%} of the link; counting is "
        f"{ping[0] / counting[0]:.1f}x faster"
    )
    for window in (1, 4):
        elapsed, sent = await marlin(lines, window)
        print(
            f"Marlin, {window} line{'s' if window > 1 else ''} in flight: "
            f"{count / elapsed:,.0f} lines/s, {sent / elapsed:,.0f} bytes/s on the wire "
            f"(numbers and checksums included) = {sent / elapsed / BYTES_PER_S:.0%} of the link"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=3000)
    asyncio.run(main(parser.parse_args().moves))
