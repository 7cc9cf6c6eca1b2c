"""The demo plant run: release random custom units, run them to the end, summarise.

Used by ``mes demo``. The controller is the production one; only the cells are
simulated, and time on them runs ``speed`` times faster than the wall clock.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from mes.domain import Event, UnitState
from mes.service.controller import Controller
from mes.service.order_files import OrderSpec, UnitSpec
from mes.service.release import ReleaseMessages, release
from mes.settings import Plant
from mes.store import Store
from routing.fit import Station

TERMINAL = {UnitState.DONE.value, UnitState.FAILED.value, UnitState.SCRAPPED.value}


def random_order(plant: Plant, units: int, rng: random.Random) -> OrderSpec:
    """One order of ``units`` random custom units across the plant's families."""
    names = sorted(plant.families)
    specs = []
    for n in range(1, units + 1):
        family = plant.families[names[rng.randrange(len(names))]]
        specs.append(UnitSpec(family.name, family.sample(rng), f"unit {n}", None))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return OrderSpec(f"DEMO-{stamp}-{uuid.uuid4().hex[:4]}", 0, None, tuple(specs), "demo", None)


@dataclass(slots=True)
class Progress:
    """Prints a line per finished or failed unit and per fault, as they become durable."""

    order_id: str
    total: int | None
    out: TextIO
    start: float = field(default_factory=time.monotonic)
    finished: int = 0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    quiet: bool = False

    def __call__(self, events: list[Event]) -> None:
        for e in events:
            if e.kind == "unit" and e.after in TERMINAL and e.subject.startswith(self.order_id):
                self.finished += 1
                count = f" {self.finished}/{self.total}" if self.total else ""
                self._line(f"unit {e.subject} {e.after}{count}")
            elif e.kind == "step" and e.transition == "fail":
                self._line(
                    f"fault on {e.data.get('cell')}: {e.data.get('code')} "
                    f"{e.data.get('text')} ({e.subject})"
                )
            elif e.kind == "step" and e.transition == "interrupt":
                self._line(f"interrupted: {e.subject} ({e.data.get('reason')})")
        if self.total is not None and self.finished >= self.total:
            self.all_done.set()

    def _line(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.start:7.1f}s] {text}", file=self.out, flush=True)


def summarise(
    store: Store, order_id: str, wall_s: float, speed: float, cells: list[str]
) -> dict[str, Any]:
    """The demo's figures: units by state, makespan, throughput and per-cell utilisation."""
    units = store.order_units(order_id)
    jobs = store.order_jobs(order_id)
    states = Counter(u["state"] for u in units)
    ended = [j["finished_at"] for j in jobs if j["finished_at"]]
    if jobs and ended:
        # From the first hand-off to the last end: the plant's work, not start-up.
        wall_s = (max(ended) - min(j["dispatched_at"] for j in jobs)).total_seconds()
    done = states.get("done", 0)
    busy: Counter[str] = Counter()
    for job in jobs:
        if job["started_at"] and job["finished_at"]:
            busy[job["cell"]] += (job["finished_at"] - job["started_at"]).total_seconds()
    plant_s = wall_s * speed
    return {
        "order": order_id,
        "units": len(units),
        "done": done,
        "failed": states.get("failed", 0),
        "scrapped": states.get("scrapped", 0),
        "unfinished": len(units) - done - states.get("failed", 0) - states.get("scrapped", 0),
        "families": dict(sorted(Counter(u["family"] for u in units).items())),
        "jobs": len(jobs),
        "job_faults": sum(1 for j in jobs if j["state"] == "failed"),
        "makespan_s": round(wall_s, 3),
        "plant_makespan_s": round(plant_s, 1),
        "throughput_per_h": round(done / (plant_s / 3600), 2) if plant_s > 0 else 0.0,
        "utilisation": {c: round(min(1.0, busy[c] / wall_s), 3) if wall_s else 0.0 for c in cells},
    }


async def run_demo(
    plant: Plant,
    store: Store,
    controller: Controller,
    spec: OrderSpec,
    stations: Sequence[Station],
    *,
    speed: float,
    out: TextIO = sys.stdout,
    quiet: bool = False,
    messages: ReleaseMessages | None = None,
) -> dict[str, Any]:
    """Release ``spec``, run ``controller`` until each of its units is done or failed,
    and summarise. The caller composes the controller (``mes.bootstrap``) and what a
    release tells MQTT (``messages``)."""
    progress = Progress(spec.id or "", len(spec.units), out, quiet=quiet)
    controller.recorder.subscribe(progress)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, controller.stop)
    try:
        result = release(
            store,
            [spec],
            plant.families,
            datetime.now(UTC),
            source="demo",
            actor="demo",
            stations=stations,
            messages=messages,
        )
        progress._line(
            f"released order {spec.id}: {result.units} custom units on "
            f"{len(plant.cells)} cells (speed x{speed:g})"
        )
        runner = asyncio.create_task(controller.run())
        finished = asyncio.create_task(progress.all_done.wait())
        await asyncio.wait({runner, finished}, return_when=asyncio.FIRST_COMPLETED)
        controller.stop()
        if finished.done():
            # The order is done: stop at once rather than wait for other work (blanks being
            # made for stock: simulated printers stream G-code far slower than a fast clock
            # runs). Such a job stays on its cell, recorded; the next run on this database
            # reconciles it with the cell like any job a stop left behind.
            left = sorted(c.name for c in controller.cells.values() if c.job_id is not None)
            if left:
                progress._line(
                    f"stopping: the jobs on {', '.join(left)} (blanks for stock, or units "
                    "of earlier orders) are left unfinished; the next run on this database "
                    "takes them up"
                )
            controller.stop()
        await runner
        finished.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    wall = time.monotonic() - progress.start
    return summarise(store, spec.id or "", wall, speed, [c.name for c in plant.cells])
