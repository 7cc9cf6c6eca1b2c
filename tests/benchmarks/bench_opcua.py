"""OPC UA state-change latency: the driver's subscription beside polling at the same CPU.

Run: .venv/bin/python tests/benchmarks/bench_opcua.py [--seconds S] [--publishing-ms 50 10]

The peer is ``drivers/sim`` (a real asyncua server, one simulated machine scanning every
7 ms: a period prime to the publishing intervals, so that the scan's phase against the
publish drifts; a 10 ms scan would lock it to a 10 ms publish and make every latency the
same) in a separate process, which changes the machine's state by itself: whenever the
machine has been idle for a random 30-90 ms it starts a job of a random 50-150 ms
(``starting``, one scan later ``execute``, ``complete`` at the end, one scan later ``idle``:
about 23 changes a second, the transient ones one scan apart). The server stamps each value
it writes with a SourceTimestamp (UTC, taken as the scan writes it); the latency of a change
is the client's wall clock when it sees the new value minus that stamp. Both processes read
the same system clock, so the two compare (checked at start).

1. Subscription, once per publishing interval: the real ``OpcuaCell`` connects (its one
   subscription follows State, CurrentJobId, LastJobId and Progress); a change is noticed
   when the driver's data-change handler runs for State (a subclass stamps it, then runs the
   driver's own). Target: p99 < publishing interval + 20 ms.
2. Polling, beside each: one asyncua client reads the State node (with its timestamp) on a
   fixed cadence; a change is noticed when a read returns a new SourceTimestamp. The interval
   is chosen so that client + server CPU per second is about that of the subscription run:
   two short calibration runs fit CPU/s = base + k / interval, solved for the subscription's
   CPU/s. No target: it is the comparison.

Only the values a client sees are samples; each run also prints how many changes the server
made in its window (the two windows' edges may differ by a change or two). asyncua's server
hands a subscription every change of a monitored item at the next publish (seen = made
below), transient states too; a poll sees only what is there when it reads. CPU is user +
system seconds of each process (the client's with ``time.process_time``, the server's from
``/proc``) over each run's measured window, which opens after the connection is made.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from asyncua import ua  # noqa: E402
from asyncua.client.client import Client  # noqa: E402
from asyncua.common.node import Node  # noqa: E402
from bench_modbus import cpu_s, percentile  # noqa: E402

from drivers.opcua.driver import OpcuaCell, OpcuaSettings  # noqa: E402
from drivers.sim.opcua_machine import Reply, SimMachine, Value  # noqa: E402
from drivers.sim.opcua_server import NAMESPACE_URI, OpcuaSimServer  # noqa: E402
from mes.domain.job import MachineState  # noqa: E402

MACHINE = "bench-1"
SCAN_MS = 7.0
JOB_S = (0.05, 0.15)
IDLE_S = (0.03, 0.09)
SEED = 1
TARGET_MARGIN_MS = 20.0
CALIBRATION_MS = (20.0, 4.0)
CALIBRATION_S = 4.0
WARMUP_S = 0.5

# -- the server process --------------------------------------------------------------------


class LoggedMachine(SimMachine):
    """The simulated machine, noting the wall time of every state change it makes, and
    whether it is idle (an event to wait on)."""

    def __init__(self) -> None:
        super().__init__(MACHINE, recipe={"expected_s": ua.VariantType.Double})
        self.changes: list[float] = []
        self.idle = asyncio.Event()
        self.idle.set()

    def start(self, job_id: int, recipe: Mapping[str, Value] | None = None) -> Reply:
        reply = super().start(job_id, recipe)
        if reply.accepted:
            self.changes.append(time.time())
            self.idle.clear()
        return reply

    def scan(self, now: float) -> None:
        before = self.state
        super().scan(now)
        if self.state is not before:
            self.changes.append(time.time())
            if self.state is MachineState.IDLE:
                self.idle.set()


def serve(conn: Connection) -> None:
    """Child process: serve the machine and change its state until told to stop; send back
    when it changed state (wall times)."""
    asyncio.run(_serve(conn))


async def _serve(conn: Connection) -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    machine = LoggedMachine()
    sim = OpcuaSimServer([machine], scan_ms=SCAN_MS)
    await sim.start()
    stimulus = asyncio.create_task(stimulate(sim, machine, random.Random(SEED)))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(conn.fileno(), stop.set)
    state = sim.node_id(MACHINE, "State").to_string()
    conn.send(("ready", os.getpid(), sim.endpoint, state, time.time()))
    try:
        await stop.wait()
        conn.recv()
    finally:
        loop.remove_reader(conn.fileno())
        stimulus.cancel()
        await asyncio.gather(stimulus, return_exceptions=True)
        await sim.aclose()
    conn.send(machine.changes)


async def stimulate(sim: OpcuaSimServer, machine: LoggedMachine, rng: random.Random) -> None:
    """Start a job of random length after a random idle time, again and again."""
    job_id = 0
    while True:
        await machine.idle.wait()
        await asyncio.sleep(rng.uniform(*IDLE_S))
        job_id += 1
        machine.start(job_id, {"expected_s": rng.uniform(*JOB_S)})
        await sim.push()


# -- the client ----------------------------------------------------------------------------


def age_s(value: ua.DataValue, seen: float) -> float:
    """Seconds from the server stamping ``value`` to ``seen`` (a ``time.time()``)."""
    stamp = value.SourceTimestamp
    assert stamp is not None  # the simulator stamps every value it writes
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return seen - stamp.timestamp()


@dataclass(slots=True)
class Run:
    """One measured window."""

    label: str
    #: The p99 latency to stay below (subscriptions; polling is the comparison).
    target_ms: float | None = None
    seconds: float = 0.0
    #: The window in wall time, to count the changes the server made in it.
    opened: float = 0.0
    closed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def cpu_per_s(self) -> float:
        return (self.client_cpu + self.server_cpu) / self.seconds


class Window:
    """Wall time and both processes' CPU from open to close."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.open = False
        self.opened = 0.0
        self._marks = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self._marks = (time.perf_counter(), time.process_time(), cpu_s(self.server_pid))
        self.opened = time.time()
        self.open = True

    def stop(self, run: Run) -> Run:
        self.open = False
        wall, own, server = self._marks
        run.opened, run.closed = self.opened, time.time()
        run.seconds = time.perf_counter() - wall
        run.client_cpu = time.process_time() - own
        run.server_cpu = cpu_s(self.server_pid) - server
        return run


class StampedCell(OpcuaCell):
    """The real driver; each State notification's age is kept while the window is open."""

    def __init__(self, name: str, settings: OpcuaSettings, state: str, window: Window) -> None:
        super().__init__(name, settings)
        self.state, self.window = state, window
        self.latencies_ms: list[float] = []

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        seen = time.time()
        if self.window.open and node.nodeid.to_string() == self.state:
            self.latencies_ms.append(age_s(data.monitored_item.Value, seen) * 1e3)
        super().datachange_notification(node, val, data)


async def subscribed(
    endpoint: str, state: str, publishing_ms: float, seconds: float, window: Window
) -> Run:
    settings = OpcuaSettings(
        endpoint=endpoint, namespace=NAMESPACE_URI, machine=MACHINE, publishing_ms=publishing_ms
    )
    driver = StampedCell(MACHINE, settings, state, window)
    await driver.connect()
    try:
        await asyncio.sleep(WARMUP_S)
        window.start()
        await asyncio.sleep(seconds)
        label = f"subscription, publishing {publishing_ms:g} ms"
        run = window.stop(Run(label, publishing_ms + TARGET_MARGIN_MS))
    finally:
        await driver.aclose()
    run.latencies_ms = driver.latencies_ms
    return run


async def polled(
    endpoint: str, state: str, interval_ms: float, seconds: float, window: Window, label: str
) -> Run:
    loop = asyncio.get_running_loop()
    period = interval_ms / 1000
    latencies: list[float] = []
    async with Client(endpoint) as client:
        node = client.get_node(state)
        last = (await node.read_data_value()).SourceTimestamp
        await asyncio.sleep(WARMUP_S)
        window.start()
        end = loop.time() + seconds
        due = loop.time()
        while loop.time() < end:
            value = await node.read_data_value()
            seen = time.time()
            if value.SourceTimestamp != last:
                last = value.SourceTimestamp
                latencies.append(age_s(value, seen) * 1e3)
            due = max(due + period, loop.time())  # behind schedule: skip, do not burst
            await asyncio.sleep(due - loop.time())
        run = window.stop(Run(label))
    run.latencies_ms = latencies
    return run


@dataclass(frozen=True, slots=True)
class CpuModel:
    """Client + server CPU seconds per second when polling every ``interval_ms``:
    ``base + k / interval_ms`` (fitted to two calibration runs)."""

    base: float
    k: float

    @classmethod
    def fit(cls, slow: Run, slow_ms: float, fast: Run, fast_ms: float) -> CpuModel:
        k = (fast.cpu_per_s - slow.cpu_per_s) / (1 / fast_ms - 1 / slow_ms)
        return cls(slow.cpu_per_s - k / slow_ms, k)

    def interval_ms(self, cpu_per_s: float) -> float | None:
        """The interval that costs ``cpu_per_s``; None if even the idle link costs more."""
        if self.k <= 0 or cpu_per_s <= self.base:
            return None
        return self.k / (cpu_per_s - self.base)


async def measure(args: argparse.Namespace, endpoint: str, state: str, pid: int) -> list[Run]:
    window = Window(pid)
    runs: list[Run] = []
    subs = [
        await subscribed(endpoint, state, ms, args.seconds, window) for ms in args.publishing_ms
    ]
    slow_ms, fast_ms = CALIBRATION_MS
    calibration = [
        await polled(endpoint, state, ms, CALIBRATION_S, window, f"calibration {ms:g} ms")
        for ms in CALIBRATION_MS
    ]
    model = CpuModel.fit(calibration[0], slow_ms, calibration[1], fast_ms)
    print(
        f"polling CPU model (client + server): {model.base:.3f} s/s + {model.k:.2f} ms*s/s / "
        f"interval, from {CALIBRATION_S:g} s at {slow_ms:g} ms ({calibration[0].cpu_per_s:.3f} "
        f"s/s) and at {fast_ms:g} ms ({calibration[1].cpu_per_s:.3f} s/s)",
        flush=True,
    )
    for sub, publishing_ms in zip(subs, args.publishing_ms, strict=True):
        runs.append(sub)
        interval = model.interval_ms(sub.cpu_per_s)
        label = "polling every {:.1f} ms (the CPU of subscription {:g} ms)"
        if interval is None:
            interval = args.max_poll_ms
            label = "polling every {:.1f} ms (no interval matches subscription {:g} ms's CPU)"
        interval = min(max(interval, 1.0), args.max_poll_ms)
        poll_label = label.format(interval, publishing_ms)
        runs.append(await polled(endpoint, state, interval, args.seconds, window, poll_label))
    return runs


# -- figures -------------------------------------------------------------------------------


def report(runs: list[Run], changes: list[float]) -> None:
    for run in runs:
        made = sum(1 for at in changes if run.opened <= at < run.closed)
        values = sorted(run.latencies_ms)
        cpu = (
            f"CPU client {run.client_cpu:.2f} s + server {run.server_cpu:.2f} s = "
            f"{run.client_cpu + run.server_cpu:.2f} s in {run.seconds:.1f} s "
            f"({run.cpu_per_s:.3f} s/s)"
        )
        if not values:
            print(f"{run.label}: no changes seen; {cpu}")
            continue
        p50, p99 = statistics.median(values), percentile(values, 99)
        verdict = ""
        if (target := run.target_ms) is not None:
            verdict = f" (target p99 < {target:g} ms) {'OK' if p99 < target else 'MISSES TARGET'}"
        print(
            f"{run.label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {values[-1]:.1f} ms over "
            f"{len(values)} changes seen of {made} made{verdict}\n   {cpu}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run")
    parser.add_argument(
        "--publishing-ms", type=float, nargs="+", default=[50.0, 10.0], help="subscription runs"
    )
    parser.add_argument("--max-poll-ms", type=float, default=1000.0)
    args = parser.parse_args()
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start"
    )
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=serve, args=(theirs,), daemon=True)
    began = time.perf_counter()
    child.start()
    try:
        if not ours.poll(60):
            sys.exit("the simulated OPC UA server did not start")
        _, pid, endpoint, state, their_time = ours.recv()
        skew = time.time() - their_time
        if not 0.0 <= skew < 1.0:
            sys.exit(f"the two processes' wall clocks differ ({skew:+.3f}s)")
        print(
            f"server: one simulated machine at {endpoint} (separate process), scan "
            f"{SCAN_MS:g} ms, jobs of {JOB_S[0]:g}-{JOB_S[1]:g} s after {IDLE_S[0]:g}-"
            f"{IDLE_S[1]:g} s idle; {args.seconds:g} s per run",
            flush=True,
        )
        runs = asyncio.run(measure(args, endpoint, state, pid))
        ours.send("stop")
        changes: list[float] = ours.recv() if ours.poll(30) else []
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()
    report(runs, changes)
    print(
        f"whole benchmark "
        f"{time.perf_counter() - began:.0f} s; load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
