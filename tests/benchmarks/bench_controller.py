"""Controller throughput and memory: the real controller, group commit and SQLite store.

Run: .venv/bin/python tests/benchmarks/bench_controller.py [--units N] [--cells N]

1. Durable step completions per second (target >= 1,000/s on SQLite with
   ``synchronous=FULL``): ``--units`` units of three steps each run on ``--cells``
   instantaneous cells (``SimCell`` at a speed that makes every job take nanoseconds,
   or ``FakeDriver`` completed as soon as it accepts with ``--driver fake``). Counted
   are the step ``complete`` entries in the journal after the run (the recorder commits
   before the controller acts), over the time from the first dispatch to the moment the
   last completion was durable.
2. The controller's memory with ``--memory-units`` units in progress (target under
   300 MB): in a fresh interpreter, on cells that accept and never finish, measured once
   the controller has adopted every unit and dispatched to every cell: the process's
   resident set (VmRSS, and its peak) and what tracemalloc traced since before the
   controller was built.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from drivers.base import Driver  # noqa: E402
from drivers.fake import FakeDriver  # noqa: E402
from drivers.sim import SimCell  # noqa: E402
from mes.domain import Event  # noqa: E402
from mes.service.controller import CellSetup, Controller, ControllerOptions  # noqa: E402
from mes.service.order_files import OrderSpec, UnitSpec  # noqa: E402
from mes.service.release import release  # noqa: E402
from mes.store import Store  # noqa: E402
from routing.family import Family, OptionKind, OptionSpec, StepSpec  # noqa: E402

RATE_TARGET = 1000.0
MEMORY_TARGET_MB = 300.0
CAPABILITIES = ("cap.cut", "cap.mark", "cap.check")
#: Three steps of one second each; the cells run them ``SPEED`` times faster.
FAMILY = Family(
    "part",
    {
        "size": OptionSpec("size", OptionKind.INTEGER, default=1, min=1, max=9),
        "serial": OptionSpec("serial", OptionKind.INTEGER, default=0, min=0, max=10**9),
    },
    tuple(StepSpec(c.split(".")[1], c, 1.0) for c in CAPABILITIES),
)
SPEED = 1e9
OPTIONS = ControllerOptions(poll_s=0.5, drain_s=0.5)


@dataclass(frozen=True, slots=True)
class Throughput:
    completions: int
    expected: int
    window_s: float
    commits: int
    events: int


def plant(cells: int) -> list[CellSetup]:
    """``cells`` cells, each able to do every step (so every cell has work at once)."""
    return [CellSetup(f"c{n:02d}", frozenset(CAPABILITIES), "bench") for n in range(cells)]


def release_units(store: Store, count: int, per_order: int = 1000) -> None:
    """Release ``count`` units, each with its own options, hence its own programs."""
    for start in range(0, count, per_order):
        units = tuple(
            UnitSpec("part", {"size": n % 9 + 1, "serial": n}, f"unit {n}", None)
            for n in range(start, min(start + per_order, count))
        )
        release(
            store,
            [OrderSpec(f"B-{start}", 0, None, units, "bench", None)],
            {"part": FAMILY},
            datetime.now(UTC),
            source="bench",
        )


def sqlite_settings(store: Store) -> str:
    with store.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"SQLite {sqlite3.sqlite_version}, journal_mode={mode}, synchronous={names.get(sync)}"


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (tmpfs would make fsync free)."""
    best, kind = "", "?"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fs = line.split()[:3]
            if str(path).startswith(point) and len(point) > len(best):
                best, kind = point, fs
    return kind


# -- 1. durable completions per second -----------------------------------------------------


async def run_throughput(
    store: Store, cells: list[CellSetup], driver: str, total: int
) -> Throughput:
    fakes = {c.name: FakeDriver(c.name) for c in cells}
    drivers: dict[str, Driver] = (
        dict(fakes)
        if driver == "fake"
        else {c.name: SimCell(c.name, speed=SPEED, jitter=0.0) for c in cells}
    )
    controller = Controller(store, cells, drivers, options=OPTIONS, actor="bench")
    done = asyncio.Event()
    seen = {"completions": 0, "last": datetime.now(UTC)}

    def on_events(events: list[Event]) -> None:
        # Called after the batch committed: these completions are durable now.
        n = sum(1 for e in events if e.kind == "step" and e.transition == "complete")
        if n:
            seen["completions"] += n
            seen["last"] = datetime.now(UTC)
            if seen["completions"] >= total:
                done.set()

    async def complete_at_once(fake: FakeDriver) -> None:
        while True:
            job = await fake.next_started()
            fake.complete(job.job_id)

    controller.recorder.subscribe(on_events)
    completers = (
        [asyncio.create_task(complete_at_once(f)) for f in fakes.values()]
        if driver == "fake"
        else []
    )
    runner = asyncio.create_task(controller.run())
    try:
        async with asyncio.timeout(110):
            await asyncio.wait(
                {runner, asyncio.ensure_future(done.wait())}, return_when="FIRST_COMPLETED"
            )
    finally:
        controller.stop()
        controller.stop()
        await runner
        for task in completers:
            task.cancel()
    steps = store.events(kind="step")
    first = min(e["at"] for e in steps if e["transition"] == "dispatch")
    completions = sum(1 for e in steps if e["transition"] == "complete")
    last = max(seen["last"], max(e["at"] for e in steps if e["transition"] == "complete"))
    return Throughput(
        completions, total, (last - first).total_seconds(), controller.recorder.commits, len(steps)
    )


# -- 2. memory with many units in progress ---------------------------------------------------


def vm_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def measure_memory(db: str, cells: list[CellSetup], units: int) -> dict[str, Any]:
    """In this (fresh) process: adopt ``units`` units on cells that never finish a job."""
    store = Store.open(f"sqlite:///{db}")
    baseline_kb = vm_kb("VmRSS")
    tracemalloc.start()
    fakes = {c.name: FakeDriver(c.name) for c in cells}
    controller = Controller(store, cells, dict(fakes), options=OPTIONS, actor="bench")
    runner = asyncio.create_task(controller.run())
    began = time.perf_counter()
    try:
        async with asyncio.timeout(90):
            started = asyncio.ensure_future(controller.started.wait())
            await asyncio.wait({runner, started}, return_when="FIRST_COMPLETED")
            if runner.done():
                runner.result()  # the controller failed: say why
            for fake in fakes.values():
                await fake.next_started()
        ready_s = time.perf_counter() - began
        adopted = len(controller.units)
        dispatched = sum(len(f.started) for f in fakes.values())
        traced, traced_peak = tracemalloc.get_traced_memory()
        rss_kb, hwm_kb = vm_kb("VmRSS"), vm_kb("VmHWM")
    finally:
        controller.stop()
        controller.stop()
        await runner
        tracemalloc.stop()
        store.close()
    return {
        "adopted": adopted,
        "dispatched": dispatched,
        "ready_s": ready_s,
        "baseline_mb": baseline_kb / 1024,
        "rss_mb": rss_kb / 1024,
        "hwm_mb": hwm_kb / 1024,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "traced_mb": traced / 2**20,
        "traced_peak_mb": traced_peak / 2**20,
    }


# -- main ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSES TARGET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5000, help="units for the throughput run")
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--driver", choices=("sim", "fake"), default="sim")
    parser.add_argument("--memory-units", type=int, default=10_000)
    parser.add_argument("--memory-child", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cells = plant(args.cells)
    if args.memory_child:
        print(json.dumps(asyncio.run(measure_memory(args.memory_child, cells, args.memory_units))))
        return

    with tempfile.TemporaryDirectory(prefix="bench-controller-") as tmp:
        print(
            f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}; database in {tmp} ({filesystem(Path(tmp))})"
        )
        store = Store.open(f"sqlite:///{tmp}/throughput.db")
        print(f"store: {sqlite_settings(store)}")
        total = args.units * len(CAPABILITIES)
        t0 = time.perf_counter()
        release_units(store, args.units)
        print(
            f"released {args.units} units x {len(CAPABILITIES)} steps in "
            f"{time.perf_counter() - t0:.1f}s; running them on {args.cells} {args.driver} cells "
            f"(instantaneous jobs)"
        )
        result = asyncio.run(run_throughput(store, cells, args.driver, total))
        store.close()
        rate = result.completions / result.window_s if result.window_s > 0 else 0.0
        print(
            f"  {result.completions}/{result.expected} durable completions in "
            f"{result.window_s:.2f}s (first dispatch to last durable completion); "
            f"{result.commits} commits, {result.events} step journal entries"
        )
        print(
            f"  durable step completions: {rate:,.0f}/s   target >= {RATE_TARGET:,.0f}/s   "
            f"{verdict(rate >= RATE_TARGET and result.completions == result.expected)}"
        )

        store = Store.open(f"sqlite:///{tmp}/memory.db")
        t0 = time.perf_counter()
        release_units(store, args.memory_units)
        store.close()
        print(
            f"released {args.memory_units} units in {time.perf_counter() - t0:.1f}s; "
            f"controller in a fresh process, {args.cells} cells that never finish"
        )
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--memory-child",
                f"{tmp}/memory.db",
                "--cells",
                str(args.cells),
                "--memory-units",
                str(args.memory_units),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode:
            sys.exit(f"memory run failed:\n{child.stderr}")
        m = json.loads(child.stdout.splitlines()[-1])
    print(
        f"  adopted {m['adopted']} units, {m['dispatched']} jobs on the cells, "
        f"{m['ready_s']:.1f}s after start (tracemalloc on)"
    )
    print(
        f"  controller memory: RSS {m['rss_mb']:.0f} MB (peak {m['hwm_mb']:.0f} MB; "
        f"{m['baseline_mb']:.0f} MB before the controller), tracemalloc {m['traced_mb']:.0f} MB "
        f"(peak {m['traced_peak_mb']:.0f} MB)   target < {MEMORY_TARGET_MB:.0f} MB   "
        f"{verdict(m['hwm_mb'] < MEMORY_TARGET_MB)}"
    )


if __name__ == "__main__":
    main()
