"""Modbus polling at plant scale: 50 simulated PLC cells polled every 100 ms on one machine.

Run: .venv/bin/python tests/benchmarks/bench_modbus.py [--cells N] [--seconds S]

The PLCs are ``drivers/sim`` (real Modbus TCP servers, one port per PLC as 50 real PLCs
would have, scanning every 10 ms) served by the plant's own ``sim_specs`` in a separate
process, so the controller's CPU is measured apart from theirs. The controller is the
real one (``mes.bootstrap.build_controller``, SQLite store, group commit) driving one
``modbus`` cell per PLC with the demo's ``rig`` register map and ``poll_ms = 100``. Units
of a one-step family (capability ``test``, 1.0-2.0 s at the simulator's speed) keep every
cell busy for the whole run.

Printed, over a window of ``--seconds`` that opens ``--warmup-s`` after every cell has
had its first job:

1. Latency from a PLC finishing job N to the arrival at that PLC of the FC16 write that
   starts its next job (p50, p99, max; target p99 < poll interval + 20 ms = 120 ms). Both
   ends are stamped on the PLC side with the event loop's clock: the scan in which
   ``last_job_id`` became N (a ``SimPlc.subscribe`` listener), and the request log's
   ``at`` of the start write. Also split into stages from that request log: waiting for
   the next poll, the poll and the results read, the controller (recording the finish,
   dispatching, recording the dispatch) up to the status read that opens the hand-over,
   and the hand-over itself up to the start write.
   The two processes' clocks compare: asyncio's loop time is ``time.monotonic()``,
   CLOCK_MONOTONIC on Linux, the same clock in every process (checked at start).
2. CPU seconds per wall second of the controller process (all its threads: the store's
   commits run in worker threads) and of the simulator process, and requests per second
   the PLCs received.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import math
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench_controller import filesystem, sqlite_settings  # noqa: E402

from drivers.modbus.codec import decode  # noqa: E402
from mes.bootstrap import build_controller, controller_options, sim_specs  # noqa: E402
from mes.service.controller import Controller  # noqa: E402
from mes.service.order_files import OrderSpec, UnitSpec  # noqa: E402
from mes.service.release import release  # noqa: E402
from mes.settings import Plant, load_plant  # noqa: E402
from mes.settings.stations import stations  # noqa: E402
from mes.store import Store  # noqa: E402
from tests.conftest import demo_register_map, free_ports  # noqa: E402

POLL_MS = 100.0
TARGET_MS = POLL_MS + 20.0
#: How long the controller may take to stop once told twice (nothing is left to drain).
STOP_S = 5.0
FAMILY = "rig-test"
#: Jobs last ``ms / 1000`` seconds, drawn (seeded) from 1.0 to 2.0 s: not in step with
#: each other nor with the poll (whole multiples of 100 ms would finish every job at the
#: same phase of its cell's poll cycle, and bias the wait for the poll).
DURATION_MS = (1000, 2000)
SEED = 1
FAMILY_TOML = f"""\
[family]
name = "{FAMILY}"
description = "One test on a PLC rig (bench_modbus.py)"

[options.ms]
type = "integer"
min = {DURATION_MS[0]}
max = {DURATION_MS[1]}
default = {sum(DURATION_MS) // 2}

[[steps]]
name = "test"
capability = "test"
duration_s = "ms / 1000"
"""

# -- the plant ---------------------------------------------------------------------------


def write_plant(directory: Path, cells: int) -> Path:
    """A plant of ``cells`` Modbus cells, each its own PLC on its own port, with the demo's
    ``rig`` register map, and the benchmark's family in its products directory."""
    register_map = demo_register_map()
    products = directory / "products"
    products.mkdir()
    (products / f"{FAMILY}.toml").write_text(FAMILY_TOML)
    text = '[plant]\nname = "Modbus bench"\nproducts = "products"\n'
    for n, port in enumerate(free_ports(cells)):
        text += (
            f'\n[[cells]]\nname = "plc-{n:02d}"\ncapabilities = ["test"]\n'
            f'[cells.driver]\nkind = "modbus"\nregister_map = "rig"\nhost = "127.0.0.1"\n'
            f"port = {port}\ndevice_id = 1\npoll_ms = {POLL_MS:g}\n"
        )
    path = directory / "plant.toml"
    path.write_text(text + register_map)
    return path


def release_units(store: Store, plant: Plant, count: int, per_order: int = 500) -> None:
    rng = random.Random(SEED)
    for start in range(0, count, per_order):
        units = tuple(
            UnitSpec(FAMILY, {"ms": rng.randint(*DURATION_MS)}, f"unit {n}", None)
            for n in range(start, min(start + per_order, count))
        )
        release(
            store,
            [OrderSpec(f"M-{start}", 0, None, units, "bench", None)],
            plant.families,
            datetime.now(UTC),
            source="bench",
            stations=stations(plant),
        )


# -- the simulator process -----------------------------------------------------------------


def simulate(plant_path: str, conn: Connection) -> None:
    """Child process: serve the plant's PLCs until told to stop, then send back what the
    PLCs saw (see :func:`collect`)."""
    asyncio.run(_simulate(Path(plant_path), conn))


async def _simulate(plant_path: Path, conn: Connection) -> None:
    from drivers.sim.plant_sims import serve

    # A reply to a poll that the stopping controller no longer waits for is logged as an
    # error with a dump of the last frames: noise at the end of every run.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    plant = load_plant(plant_path)
    sims = await serve(sim_specs(plant))
    loop = asyncio.get_running_loop()
    finished: dict[str, list[tuple[int, float]]] = {name: [] for name in sims.plcs}
    for name, plc in sims.plcs.items():
        seen = {"last": plc.value("last_job_id")}

        def listener(
            plc: Any = plc, seen: dict[str, Any] = seen, out: Any = finished[name]
        ) -> None:
            last = plc.value("last_job_id")
            if last != seen["last"]:  # this scan ended a job (the listener runs in it)
                seen["last"] = last
                out.append((int(last), loop.time()))

        plc.subscribe(listener)
    stop = asyncio.Event()
    loop.add_reader(conn.fileno(), stop.set)
    conn.send(("ready", os.getpid(), loop.time()))
    try:
        await stop.wait()
        conn.recv()
    finally:
        loop.remove_reader(conn.fileno())
        result = collect(sims, finished)
        await sims.aclose()
    conn.send(result)


def collect(sims: Any, finished: dict[str, list[tuple[int, float]]]) -> dict[str, Any]:
    """Per PLC: jobs finished ``(job id, loop time)``, and its request log classified as
    ``(at, kind, job id)``: kind ``status``/``results`` read, a command name for an FC16
    write touching ``sequence`` (job id for a start), ``other`` for anything else."""
    out: dict[str, Any] = {"finished": finished, "requests": {}, "dropped": 0}
    for name, plc in sims.plcs.items():
        m = plc.map
        state, seq, command, job_id = (
            m.point(r) for r in ("state", "sequence", "command", "job_id")
        )
        results = {p.address for p in m.results.values()}
        names = {code: cmd for cmd, code in m.commands.items()}
        rows: list[tuple[float, str, int]] = []
        for r in plc.requests:
            span = range(r.address, r.address + r.count)
            kind, job = "other", 0
            if r.function_code in (3, 4) and state.address in span:
                kind = "status"
            elif r.function_code in (3, 4) and results & set(span):
                kind = "results"
            elif r.function_code == 16 and seq.address in span and command.address in span:
                kind = names.get(r.values[command.address - r.address], "other")
                if kind == "start" and job_id.address in span:
                    at = job_id.address - r.address
                    job = int(decode(job_id, r.values[at : at + job_id.count]))
            rows.append((r.at, kind, job))
        out["requests"][name] = rows
        out["dropped"] += sum(plc.function_codes.values()) - len(plc.requests)
    return out


# -- the controller ------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all cores have spent neither idle nor waiting for I/O since boot."""
    with open("/proc/stat") as stat:
        ticks = [int(t) for t in stat.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Window:
    start: float = 0.0
    end: float = 0.0
    cpu: float = 0.0
    sim_cpu: float = 0.0
    #: CPU seconds the whole machine spent busy (every process, every core).
    machine_cpu: float = 0.0
    commits: int = 0
    recancelled: list[str] = field(default_factory=list)
    busy_after_s: float = math.nan
    jobs_left: int = 0


async def run_controller(
    plant: Plant, store: Store, sim_pid: int, args: argparse.Namespace
) -> Window:
    options = dataclasses.replace(controller_options(plant), drain_s=0.5)  # as `mes run`
    controller: Controller = build_controller(plant, store, options=options, actor="bench")
    loop = asyncio.get_running_loop()
    began = loop.time()
    runner = asyncio.create_task(controller.run())
    window = Window()
    try:
        async with asyncio.timeout(30):
            await controller.started.wait()
            while not all(s.busy for s in controller.supervisors.values()):
                if runner.done():
                    runner.result()  # the controller failed: say why
                await asyncio.sleep(0.05)
        window.busy_after_s = loop.time() - began
    except TimeoutError:
        idle = [s.name for s in controller.supervisors.values() if not s.busy]
        print(
            f"   warning: {len(idle)} cells never got a job ({', '.join(idle[:5])}...)",
            flush=True,
        )
    await asyncio.sleep(args.warmup_s)
    window.start, commits = loop.time(), controller.recorder.commits
    own, sim, machine = cpu_s(os.getpid()), cpu_s(sim_pid), machine_busy_s()
    await asyncio.sleep(args.seconds)
    window.end = loop.time()
    window.cpu = cpu_s(os.getpid()) - own
    window.sim_cpu = cpu_s(sim_pid) - sim
    window.machine_cpu = machine_busy_s() - machine
    window.commits = controller.recorder.commits - commits
    window.jobs_left = len(controller.ready)
    if runner.done():
        runner.result()
    window.recancelled = await stop(controller, runner)
    return window


async def stop(controller: Controller, runner: asyncio.Task[None]) -> list[str]:
    """Stop the controller at once; the names of tasks that had to be cancelled again.

    ``Controller.run`` cancels each cell's tasks once and awaits them. On Python 3.11,
    ``asyncio.wait_for`` (pymodbus awaits every reply with it) returns the reply instead
    of raising when the cancellation and the reply arrive in the same loop iteration, so
    a task can swallow its cancellation and run on, and the stop never ends. Here such
    tasks are cancelled again (and named in the report).
    """
    # Polls cancelled in flight get their replies after all: pymodbus logs each as an error.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    controller.stop()
    controller.stop()
    again: list[str] = []
    await asyncio.wait({runner}, timeout=STOP_S)
    while not runner.done():
        for task in asyncio.all_tasks():
            if task.get_name().startswith(("cell:", "modbus-poll:")) and task.cancelling():
                again.append(task.get_name())
                task.cancel()
        await asyncio.wait({runner}, timeout=1.0)
    runner.result()
    return again


# -- figures -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


def latencies(data: dict[str, Any], window: Window) -> dict[str, list[float]]:
    """Per job finished within the window (and followed by a start): the latency to the
    next start write, and its stages, in ms."""
    out: dict[str, list[float]] = {
        k: [] for k in ("total", "poll wait", "poll+results", "controller", "hand-over")
    }
    out["resets"] = []
    for name, finished in data["finished"].items():
        rows = data["requests"][name]
        for job, done in finished:
            if not window.start <= done <= window.end:
                continue
            after = [r for r in rows if r[0] > done]
            start = next((r for r in after if r[1] == "start" and r[2] != job), None)
            if start is None:
                continue
            poll = next((r for r in after if r[1] == "status"), None)
            # Results that come with the poll (a map with them next to the status block)
            # take no request of their own: the poll is then the results read too.
            result = next((r for r in after if r[1] == "results"), None) or poll
            before = [r for r in after if r[0] < start[0]]
            # The hand-over opens with a status read, then a reset if the PLC still says
            # complete, then the start; the last status read before that is its first.
            first_write = next((r for r in before if r[1] != "status" and r[1] != "results"), start)
            opening = next(
                (
                    r
                    for r in reversed(before)
                    if r[1] == "status" and r[0] < first_write[0] and result and r[0] > result[0]
                ),
                None,
            )
            out["total"].append((start[0] - done) * 1e3)
            out["resets"].append(float(sum(1 for r in before if r[1] == "reset")))
            if poll and result and opening and poll[0] <= result[0] <= opening[0] <= start[0]:
                out["poll wait"].append((poll[0] - done) * 1e3)
                out["poll+results"].append((result[0] - poll[0]) * 1e3)
                out["controller"].append((opening[0] - result[0]) * 1e3)
                out["hand-over"].append((start[0] - opening[0]) * 1e3)
    return out


def requests_in(data: dict[str, Any], window: Window) -> Counter[str]:
    return Counter(
        kind
        for rows in data["requests"].values()
        for at, kind, _ in rows
        if window.start <= at <= window.end
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument(
        "--warmup-s", type=float, default=3.0, help="after every cell has had a job"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-modbus-") as tmp:
        print(
            f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start; "
            f"database in {tmp} ({filesystem(Path(tmp))})"
        )
        plant_path = write_plant(Path(tmp), args.cells)
        plant = load_plant(plant_path)
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        print(f"store: {sqlite_settings(store)}")
        # Enough work for every cell for the whole run, even at the shortest job.
        units = math.ceil(
            args.cells * (args.seconds + args.warmup_s + 15) / (DURATION_MS[0] / 1000)
        )
        t0 = time.perf_counter()
        release_units(store, plant, units)
        print(
            f"released {units} units of one {DURATION_MS[0] / 1000:.1f}-"
            f"{DURATION_MS[1] / 1000:.1f} s "
            f"test step in {time.perf_counter() - t0:.1f}s; {args.cells} Modbus TCP cells, "
            f"each its own simulated PLC and port (10 ms scan, in a separate process), "
            f"poll_ms = {POLL_MS:g}",
            flush=True,
        )
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        child = context.Process(target=simulate, args=(str(plant_path), theirs), daemon=True)
        child.start()
        try:
            if not ours.poll(60):
                sys.exit("the simulated PLCs did not start")
            _, sim_pid, their_time = ours.recv()
            # Both sides stamp with the event loop's clock, time.monotonic(): on Linux
            # CLOCK_MONOTONIC, one clock for every process. Check that it is.
            skew = time.monotonic() - their_time
            if not 0.0 <= skew < 1.0:
                sys.exit(f"the two processes' monotonic clocks differ ({skew:+.3f}s)")
            window = asyncio.run(run_controller(plant, store, sim_pid, args))
            ours.send("stop")
            if not ours.poll(60):
                sys.exit("the simulated PLCs did not report")
            data: dict[str, Any] = ours.recv()
        finally:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
        store.close()
    report(data, window, args)


def report(data: dict[str, Any], window: Window, args: argparse.Namespace) -> None:
    span = window.end - window.start
    lat = latencies(data, window)
    total = sorted(lat["total"])
    counts = requests_in(data, window)
    finished = sum(
        1
        for rows in data["finished"].values()
        for _, at in rows
        if window.start <= at <= window.end
    )
    print(
        f"every cell had a job {window.busy_after_s:.1f}s after the controller started; "
        f"measured over {span:.1f}s from {args.warmup_s:g}s later: {finished} jobs finished "
        f"({finished / span:.1f}/s), {window.jobs_left} units still waiting at the end"
    )
    if data["dropped"]:
        print(f"   warning: {data['dropped']} requests fell out of the PLCs' request logs")
    if not total:
        print("latency finish->next start: no samples   MISSES TARGET")
        return
    p50, p99 = statistics.median(total), percentile(total, 99)
    print(
        f"latency finish->next start: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {total[-1]:.1f} ms "
        f"over {len(total)} jobs (target p99 < {TARGET_MS:.0f} ms) "
        f"{'OK' if p99 < TARGET_MS else 'MISSES TARGET'}"
    )
    for stage in ("poll wait", "poll+results", "controller", "hand-over"):
        values = sorted(lat[stage])
        if values:
            print(
                f"   {stage:<13} p50 {statistics.median(values):6.1f} ms   "
                f"p99 {percentile(values, 99):6.1f} ms   max {values[-1]:6.1f} ms"
            )
    resets = sum(lat["resets"])
    print(
        f"   ({len(lat['poll wait'])} jobs split into stages; {resets:.0f} needed a reset "
        "command before the start)"
    )
    rate = sum(counts.values()) / span
    kinds = ", ".join(f"{k} {n / span:.0f}/s" for k, n in counts.most_common())
    print(
        f"requests seen by the PLCs: {rate:,.0f}/s ({kinds}); "
        f"expected polls {args.cells * 1000 / POLL_MS:.0f}/s"
    )
    print(
        f"CPU: controller {window.cpu / span:.2f} s/s ({window.cpu / span * 100:.0f}% of a "
        f"core, all threads), simulators {window.sim_cpu / span:.2f} s/s "
        f"({window.sim_cpu / span * 100:.0f}%); other processes "
        f"{max(0.0, window.machine_cpu - window.cpu - window.sim_cpu) / span:.2f} s/s of "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"store commits: {window.commits / span:.1f}/s, {window.commits / max(finished, 1):.1f} "
        "per job finished (each durable before the controller acts)"
    )
    if window.recancelled:
        print(
            f"warning: the controller did not stop within {STOP_S:g}s: "
            f"{', '.join(window.recancelled)} ignored a cancellation and had to be cancelled "
            "again (asyncio.wait_for on Python 3.11 can swallow one, see stop())"
        )


if __name__ == "__main__":
    main()
