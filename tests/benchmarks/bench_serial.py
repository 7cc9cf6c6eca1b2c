"""Streaming G-code over a 115200-baud serial line: how much of the link each host uses.

Run: .venv/bin/python tests/benchmarks/bench_serial.py [--moves N] [--speed F]

Both machines are the project's simulators on a real pty, in this process. The line is
modelled at 115200 baud (10 bits a byte: 11,520 bytes a second) and the machines run in
real device time (``--speed 1``): the program is ``--moves`` short moves at high feed
(0.05 mm steps at 6000 mm/min, what a finely segmented curve or engraving produces), so a
move takes less time to make than its line takes to send, and the link, not the motion,
sets the pace. The motion time is printed beside the link's to show it. Time runs from
the job's start to its last program line acknowledged (the link's share; the motion
after it is the machine's). Bytes are what went over the wire for the program's lines:
for GRBL the lines as the driver prepares them (spaces and comments removed, newline
counted), for Marlin the numbered lines with their checksums.

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
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from drivers.serial import grbl_codec, marlin_codec  # noqa: E402
from drivers.serial.marlin import MarlinCell, MarlinSettings  # noqa: E402
from drivers.sim.marlin.firmware import SimMarlin  # noqa: E402
from drivers.sim.marlin.port import SimMarlinPort  # noqa: E402
from mes.domain.job import Job, JobCompleted, JobProgress, Program, ProgramKind  # noqa: E402

BAUD = 115200
BYTES_PER_S = BAUD / 10
FEED = 6000.0  # mm/min: the virtual GRBL's fastest axis rate ($110, $111)
STEP = 0.05  # mm a move on each axis that moves
TARGET_GRBL = 0.90


def moves(count: int) -> list[str]:
    """A zig-zag of short moves (no long jumps back: every move is one step)."""
    lines = []
    for i in range(count):
        x, y = _triangle(i, 40) * STEP, _triangle(i, 9) * STEP
        lines.append(f"G1 X{10 + x:.2f} Y{20 + y:.2f} F{FEED:.0f}")
    return lines


def _triangle(i: int, half: int) -> int:
    phase = i % (2 * half)
    return phase if phase < half else 2 * half - phase


def motion_s(lines: list[str]) -> float:
    """Device seconds the moves take at their feed (no acceleration, as both sims)."""
    total, at = 0.0, (10.0, 20.0)
    for line in lines:
        words = dict((w[0], float(w[1:])) for w in line.split()[1:])
        to = (words["X"], words["Y"])
        total += math.dist(at, to) / (words["F"] / 60.0)
        at = to
    return total


def job(job_id: int, lines: list[str], capability: str) -> Job:
    # G92: the tool stands where the zig-zag starts (no long first move to get there).
    body = "\n".join(["G21", "G90", "G92 X10 Y20", *lines])
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


async def marlin(lines: list[str], window: int, speed: float) -> tuple[float, int]:
    """Seconds to stream ``lines`` and the bytes sent for them, with ``window`` in flight."""
    printer = SimMarlin("bench", speed=speed)
    port = SimMarlinPort(printer, baudrate=BAUD)
    path = await port.start_pty()
    await printer.start()
    driver = MarlinCell("bench", MarlinSettings(port=path, baudrate=BAUD, window=window))
    try:
        await driver.connect()
        await driver.start_job(job(1, lines, "print.fdm"))
        elapsed, end = await stream(driver, 1)
        assert isinstance(end, JobCompleted), end
        # Numbered and checksummed as sent (the numbers shift by the connect's few lines;
        # a digit more or less on a handful of lines).
        commands = marlin_codec.program_lines(job(1, lines, "").program.body)
        return elapsed, sum(len(marlin_codec.frame(n, c)) for n, c in enumerate(commands, 4))
    finally:
        await driver.aclose()
        await port.aclose()
        await printer.aclose()


async def grbl(lines: list[str], streaming: str, speed: float) -> tuple[float, int]:
    """Seconds to stream ``lines`` and their bytes, with ``streaming`` (GRBL)."""
    from drivers.serial.grbl import GrblCell
    from drivers.serial.grbl_settings import GrblSettings
    from drivers.sim.grbl.firmware import SimGrbl
    from drivers.sim.grbl.port import serve

    machine = SimGrbl("bench", speed=speed)
    served = await serve(machine, pty=True, baudrate=BAUD)
    assert served.path is not None
    settings = GrblSettings(port=served.path, baudrate=BAUD, streaming=streaming, check_mode=False)
    driver = GrblCell("bench", settings)
    try:
        await driver.connect()
        await driver.start_job(job(1, lines, "cnc.route"))
        elapsed, end = await stream(driver, 1)
        assert isinstance(end, JobCompleted), end
        prepared = grbl_codec.program_lines(job(1, lines, "").program.body)
        return elapsed, sum(len(text) + 1 for _, text in prepared)
    finally:
        await driver.aclose()
        await served.aclose()
        await machine.aclose()


async def main(count: int, speed: float) -> None:
    lines = moves(count)
    size = sum(len(text) + 1 for _, text in grbl_codec.program_lines("\n".join(lines)))
    link_s = size / BYTES_PER_S
    print(
        f"{count} moves, {size} bytes to GRBL ({size / count:.1f} a line); link {BAUD} baud = "
        f"{BYTES_PER_S:,.0f} bytes/s = {BYTES_PER_S / (size / count):,.0f} lines/s\n"
        f"motion {motion_s(lines) / speed:.2f} s (device speed x{speed:g}) against "
        f"{link_s:.2f} s of wire for GRBL: "
        f"{'the link sets the pace' if motion_s(lines) / speed < link_s else 'MOTION-BOUND'}"
    )
    counting = await grbl(lines, "counting", speed)
    ping = await grbl(lines, "send_response", speed)
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
        elapsed, sent = await marlin(lines, window, speed)
        print(
            f"Marlin, {window} line{'s' if window > 1 else ' '} in flight: "
            f"{count / elapsed:,.0f} lines/s (the link carries "
            f"{BYTES_PER_S / (sent / (count + 3)):,.0f}), {sent / elapsed:,.0f} bytes/s on the "
            f"wire (numbers and checksums included) = {sent / elapsed / BYTES_PER_S:.0%} of it"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=3000)
    parser.add_argument("--speed", type=float, default=1.0, help="device time factor")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.moves, arguments.speed))
