"""Controller throughput and memory: the real controller, group commit and SQLite store.

Run: .venv/bin/python tests/benchmarks/bench_controller.py [--units N] [--cells N]

1. Durable step completions per second (target >= 1,000/s on SQLite with
   ``synchronous=FULL``): ``--units`` units of three steps each run on ``--cells``
   instantaneous cells (``SimCell`` at a speed that makes every job take nanoseconds,
   or ``FakeDriver`` completed as soon as it accepts with ``--driver fake``). Counted
   are the step ``complete`` entries in the journal after the run (the recorder commits
   before the controller acts), over the time from the first dispatch to the moment the
   last completion was durable.
   Also printed: commits (group commit batches) and the process's CPU per completion,
   which a busy neighbour on the machine disturbs less than the wall-clock rate.
2. The controller's memory with ``--memory-units`` units in progress (target under
   300 MB): in a fresh interpreter, on ``FakeDriver`` cells that accept and never
   finish, measured once the controller has adopted every unit and dispatched to every
   cell: the process's resident set (VmRSS now and its peak VmHWM), and in a second
   fresh run the memory tracemalloc traced from before the controller was built (its
   own overhead would inflate the resident set of the first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
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
    journal: int
    cpu_s: float


@dataclass(slots=True)
class Tally:
    """What the recorder reported as committed: durable by the time it is counted."""

    total: int
    completions: int = 0
    journal: int = 0
    last: datetime = field(default_factory=lambda: datetime.now(UTC))
    cpu_start: float = field(default_factory=time.process_time)
    cpu_end: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, events: list[Event]) -> None:
        self.journal += len(events)
        n = sum(1 for e in events if e.kind == "step" and e.transition == "complete")
        if n:
            self.completions += n
            self.last = datetime.now(UTC)
            if self.completions >= self.total:
                self.cpu_end = time.process_time()
                self.done.set()


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
    store: Store, cells: list[CellSetup], driver: str, total: int, limit_s: float
) -> Throughput:
    """Run ``total`` instantaneous jobs through the controller (or as many as durable
    within ``limit_s``) and count the completions the journal holds afterwards."""
    fakes = {c.name: FakeDriver(c.name) for c in cells}
    drivers: dict[str, Driver] = (
        dict(fakes)
        if driver == "fake"
        else {c.name: SimCell(c.name, speed=SPEED, jitter=0.0) for c in cells}
    )
    controller = Controller(store, cells, drivers, options=OPTIONS, actor="bench")
    tally = Tally(total)
    controller.recorder.subscribe(tally)

    async def complete_at_once(fake: FakeDriver) -> None:
        while True:
            job = await fake.next_started()
            fake.complete(job.job_id)

    helpers = [asyncio.create_task(complete_at_once(f)) for f in fakes.values()]
    if driver != "fake":
        for task in helpers:
            task.cancel()
    runner = asyncio.create_task(controller.run())
    finished = asyncio.create_task(tally.done.wait())
    try:
        await asyncio.wait({runner, finished}, timeout=limit_s, return_when="FIRST_COMPLETED")
    finally:
        controller.stop()
        controller.stop()
        await runner  # raises if the controller failed
        for task in [*helpers, finished]:
            task.cancel()
    steps = store.events(kind="step")
    completed = [e["at"] for e in steps if e["transition"] == "complete"]
    first = min((e["at"] for e in steps if e["transition"] == "dispatch"), default=tally.last)
    last = max([tally.last, *completed])
    return Throughput(
        len(completed),
        total,
        (last - first).total_seconds() if completed else 0.0,
        controller.recorder.commits,
        tally.journal,
        (tally.cpu_end or time.process_time()) - tally.cpu_start,
    )


# -- 2. memory with many units in progress ---------------------------------------------------


def vm_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def measure_memory(
    db: str, cells: list[CellSetup], units: int, trace: bool
) -> dict[str, Any]:
    """In this (fresh) process: adopt ``units`` units on cells that never finish a job.

    With ``trace``, tracemalloc runs from before the controller is built (it costs time
    and memory of its own, so the resident set is measured in a run without it).
    """
    store = Store.open(f"sqlite:///{db}")
    baseline_kb = vm_kb("VmRSS")
    if trace:
        tracemalloc.start()
    fakes = {c.name: FakeDriver(c.name) for c in cells}
    controller = Controller(store, cells, dict(fakes), options=OPTIONS, actor="bench")
    began = time.perf_counter()
    runner = asyncio.create_task(controller.run())
    marks: list[float] = []

    async def every_cell_busy() -> None:
        await controller.started.wait()
        marks.append(time.perf_counter() - began)
        waits = [asyncio.ensure_future(f.next_started()) for f in fakes.values()]
        try:
            for started in asyncio.as_completed(waits):
                await started
                marks.append(time.perf_counter() - began)
                if len(marks) > min(len(fakes), units):
                    return
        finally:
            for wait in waits:
                wait.cancel()

    watcher = asyncio.create_task(every_cell_busy())
    try:
        async with asyncio.timeout(90):
            await asyncio.wait({runner, watcher}, return_when="FIRST_COMPLETED")
        if runner.done():
            runner.result()  # the controller failed: say why
        traced, traced_peak = tracemalloc.get_traced_memory() if trace else (0, 0)
        rss_kb, hwm_kb = vm_kb("VmRSS"), vm_kb("VmHWM")
        adopted = len(controller.units)
        dispatched = sum(len(f.started) for f in fakes.values())
    finally:
        watcher.cancel()
        controller.stop()
        controller.stop()
        await runner
        tracemalloc.stop()
        store.close()
    return {
        "adopted": adopted,
        "dispatched": dispatched,
        "started_s": marks[0],
        "first_job_s": marks[1],
        "every_cell_s": marks[-1],
        "baseline_mb": baseline_kb / 1024,
        "rss_mb": rss_kb / 1024,
        "hwm_mb": hwm_kb / 1024,
        "traced_mb": traced / 2**20,
        "traced_peak_mb": traced_peak / 2**20,
    }


# -- main ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSES TARGET"


def memory_run(released: str, args: argparse.Namespace, trace: bool) -> dict[str, Any]:
    """``measure_memory`` in a fresh interpreter (nothing else in its memory), on a fresh
    copy of the database as released (a run leaves its jobs on cells that are gone)."""
    db = released.replace(".db", "-traced.db" if trace else "-run.db")
    with sqlite3.connect(released) as source, sqlite3.connect(db) as target:
        source.backup(target)
    command = [sys.executable, __file__, "--memory-child", db]
    command += ["--cells", str(args.cells), "--memory-units", str(args.memory_units)]
    child = subprocess.run(
        command + (["--trace"] if trace else []), capture_output=True, text=True, check=False
    )
    if child.returncode:
        sys.exit(f"memory run failed:\n{child.stderr}")
    result: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return result


def throughput_part(tmp: str, args: argparse.Namespace, cells: list[CellSetup]) -> None:
    store = Store.open(f"sqlite:///{tmp}/throughput.db")
    print(f"store: {sqlite_settings(store)}")
    total = args.units * len(CAPABILITIES)
    t0 = time.perf_counter()
    release_units(store, args.units)
    print(
        f"1. released {args.units} units x {len(CAPABILITIES)} steps in "
        f"{time.perf_counter() - t0:.1f}s; running them on {args.cells} {args.driver} cells "
        "with instantaneous jobs",
        flush=True,
    )
    result = asyncio.run(run_throughput(store, cells, args.driver, total, args.limit_s))
    store.close()
    rate = result.completions / result.window_s if result.window_s > 0 else 0.0
    cpu_ms = f"{result.cpu_s / result.completions * 1e3:.2f}" if result.completions else "-"
    print(
        f"   {result.completions}/{result.expected} durable completions in "
        f"{result.window_s:.2f}s (first dispatch to last durable completion); "
        f"{result.commits} commits, {result.journal / max(result.commits, 1):.0f} journal "
        f"entries per commit; process CPU {cpu_ms} ms per completion (all threads, from "
        "controller start)"
    )
    ok = rate >= RATE_TARGET and result.completions == result.expected
    print(
        f"   durable step completions: {rate:,.0f}/s   target >= {RATE_TARGET:,.0f}/s   "
        f"{verdict(ok)}",
        flush=True,
    )


def memory_part(tmp: str, args: argparse.Namespace) -> None:
    db = f"{tmp}/memory.db"
    store = Store.open(f"sqlite:///{db}")
    t0 = time.perf_counter()
    release_units(store, args.memory_units)
    store.close()
    print(
        f"2. released {args.memory_units} units in {time.perf_counter() - t0:.1f}s; the "
        f"controller runs in a fresh process on {args.cells} cells that never finish a job",
        flush=True,
    )
    m = memory_run(db, args, trace=False)
    t = memory_run(db, args, trace=True)
    print(
        f"   {m['adopted']} units in progress, {m['dispatched']} jobs on the cells: started "
        f"(units loaded) after {m['started_s']:.1f}s, first job on a cell after "
        f"{m['first_job_s']:.1f}s, every cell busy after {m['every_cell_s']:.1f}s"
    )
    print(
        f"   controller RSS {m['rss_mb']:.0f} MB (peak {m['hwm_mb']:.0f} MB; "
        f"{m['baseline_mb']:.0f} MB of it before the controller was built)   "
        f"target < {MEMORY_TARGET_MB:.0f} MB   {verdict(m['hwm_mb'] < MEMORY_TARGET_MB)}"
    )
    print(
        f"   tracemalloc (separate run): {t['traced_mb']:.0f} MB traced now, peak "
        f"{t['traced_peak_mb']:.0f} MB   target < {MEMORY_TARGET_MB:.0f} MB   "
        f"{verdict(t['traced_peak_mb'] < MEMORY_TARGET_MB)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5000, help="units for the throughput run")
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--driver", choices=("sim", "fake"), default="sim")
    parser.add_argument("--memory-units", type=int, default=10_000)
    parser.add_argument(
        "--limit-s", type=float, default=60.0, help="stop the throughput run after this long"
    )
    parser.add_argument("--memory-child", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cells = plant(args.cells)
    if args.memory_child:
        memory = measure_memory(args.memory_child, cells, args.memory_units, args.trace)
        print(json.dumps(asyncio.run(memory)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-controller-") as tmp:
        print(
            f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start; "
            f"database in {tmp} ({filesystem(Path(tmp))})"
        )
        throughput_part(tmp, args, cells)
        memory_part(tmp, args)


if __name__ == "__main__":
    main()
