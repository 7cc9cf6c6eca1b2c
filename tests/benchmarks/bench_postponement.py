"""Postponement: the lead time of custom units with and without blanks made ahead.

The demo plant (its seven cells with their capabilities, duration factors and setup
times, driven as in-process simulated cells, no faults, on a fast clock) takes a stream
of customer orders, one coaster each (the demo family whose printed blank is its
generic stage: material and size; the buyer's words are engraved, then it is checked
and packed), arriving at random (Poisson) in the plant's stocked variants. Twice:

- **without** stock targets: every unit prints its own blank, then is customised;
- **with** the demo plant's ``[[stock]]`` targets: idle printers keep blanks made
  ahead, and a released unit that finds one starts at its engraving.

Both runs let the plant idle for ``--warmup`` plant minutes before the first order
(the run with targets fills its stock then; the other just idles), use the same orders
at the same times, and count every customer unit released (none is left out). Printed
per run: mean and 95th-percentile lead time (release to done) of the custom units,
its split into custom work, their own generic work and waiting, and how many started
from a blank; then the ratio of the means beside the target: with postponement at
most half (<= 0.5).

Run: .venv/bin/python tests/benchmarks/bench_postponement.py [--orders N] [--per-hour R]
     [--speed X] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from mes.bootstrap import build_controller, controller_options  # noqa: E402
from mes.domain.tracking import Interval, LeadSummary, lead_time, summarise  # noqa: E402
from mes.service.order_files import OrderSpec, UnitSpec  # noqa: E402
from mes.service.release import release  # noqa: E402
from mes.settings import Plant, SimDriverConfig, load_plant  # noqa: E402
from mes.settings.stations import stations  # noqa: E402
from mes.store import Store  # noqa: E402

TARGET = 0.5
FAMILY = "coaster"
WORDS = ["CHEERS", "ADA", "MUM & DAD", "SALUD", "PROST", "HOME", "TEAM 7", "SKOL", "ZUM WOHL"]


def simulated(plant: Plant, *, stock: bool) -> Plant:
    """The demo plant with in-process simulated cells (no faults), with or without its
    stock targets."""
    cells = [
        c.model_copy(update={"driver": SimDriverConfig(kind="sim", fault_rate=0.0)})
        for c in plant.config.cells
    ]
    config = plant.config.model_copy(
        update={
            "cells": cells,
            "stock": plant.config.stock if stock else [],
            "opcua_server": None,
            "mqtt": None,
            "intake": None,
        }
    )
    return Plant(plant.path, config, plant.families, plant.family_files)


def demand(plant: Plant, orders: int, per_hour: float, seed: int) -> list[tuple[float, OrderSpec]]:
    """(plant seconds after the first order, order) for a Poisson stream of coasters in
    the stocked variants, the more stocked the more often asked for."""
    rng = random.Random(seed)
    variants = [e.variant for e in plant.config.stock if e.family == FAMILY]
    weights = [e.target for e in plant.config.stock if e.family == FAMILY]
    at, out = 0.0, []
    for n in range(1, orders + 1):
        options = {**rng.choices(variants, weights)[0], "text": rng.choice(WORDS)}
        unit = UnitSpec(FAMILY, options, "unit 1", None)
        out.append((at, OrderSpec(f"C-{n:04d}", 0, None, (unit,), "bench", None)))
        at += rng.expovariate(per_hour / 3600)
    return out


async def run(
    plant: Plant, stream: Sequence[tuple[float, OrderSpec]], speed: float, warmup_s: float
) -> tuple[LeadSummary | None, int, float]:
    """Run the stream on ``plant``; the custom units' lead-time summary, how many stock
    units were released, and the wall seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        options = controller_options(plant)
        options = type(options)(rule=options.rule, poll_s=0.02, drain_s=1.0)  # no optimizer
        controller = build_controller(plant, store, speed=speed, options=options, actor="bench")
        done: set[str] = set()
        finished = asyncio.Event()
        wanted = {f"{spec.id}.1" for _, spec in stream}

        def on_events(events: list[object]) -> None:
            for e in events:
                if getattr(e, "kind", "") == "unit" and getattr(e, "after", "") == "done":
                    done.add(e.subject)  # type: ignore[attr-defined]
            if wanted <= done:
                finished.set()

        controller.recorder.subscribe(on_events)
        places = stations(plant)
        began = time.monotonic()
        runner = asyncio.create_task(controller.run())
        await controller.started.wait()
        await asyncio.sleep(warmup_s / speed)
        start = asyncio.get_running_loop().time()
        for at, spec in stream:
            delay = start + at / speed - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
            await asyncio.to_thread(
                release,
                store,
                [spec],
                plant.families,
                datetime.now(UTC),
                source="bench",
                stations=places,
            )
        await asyncio.wait_for(finished.wait(), timeout=600)
        controller.stop()
        await runner
        wall = time.monotonic() - began
        rows = store.lead_times(datetime(2000, 1, 1, tzinfo=UTC))
        made = controller.stock.released if controller.stock is not None else 0
        store.close()
    leads = []
    for row in rows:
        jobs = [
            Interval(bool(j["generic"]), j["started_at"] or j["dispatched_at"], j["finished_at"])
            for j in row["jobs"]
        ]
        lead = lead_time(row["released_at"], row["finished_at"], jobs, row["finished_at"], speed)
        leads.append((lead, bool(row["blank"])))
    assert len(leads) == len(stream), f"{len(leads)} of {len(stream)} custom units done"
    return summarise(leads), made, wall


def minutes(seconds: float) -> str:
    return f"{seconds / 60:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=120)
    parser.add_argument("--per-hour", type=float, default=8.0, help="orders per plant hour")
    parser.add_argument("--speed", type=float, default=1500.0)
    parser.add_argument("--warmup", type=float, default=45.0, help="plant minutes")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    demo = load_plant(REPO / "config")
    with_stock, without = simulated(demo, stock=True), simulated(demo, stock=False)
    stream = demand(with_stock, args.orders, args.per_hour, args.seed)
    targets = ", ".join(
        f"{e.family} {'/'.join(str(v) for v in e.variant.values())} x{e.target}"
        for e in demo.config.stock
    )
    print(
        f"demo plant, {len(demo.cells)} simulated cells, rule {demo.config.plant.dispatch!r} "
        f"(optimizer off: a plan takes seconds, hours of plant time at x{args.speed:g})\n"
        f"{args.orders} orders of one {FAMILY} each, {args.per_hour:g}/h (Poisson), "
        f"after {args.warmup:g} min of warm-up; stock targets: {targets}\n"
    )
    results = {}
    for name, plant in (("without", without), ("with", with_stock)):
        summary, made, wall = asyncio.run(run(plant, stream, args.speed, args.warmup * 60))
        assert summary is not None
        results[name] = summary
        print(
            f"{name + ' stock':13} lead time min: mean {minutes(summary.mean_s)}  "
            f"p95 {minutes(summary.p95_s)}   = custom {minutes(summary.custom_s)} + generic "
            f"{minutes(summary.generic_s)} + waiting {minutes(summary.waiting_s)}   "
            f"{summary.from_stock:3d}/{summary.units} from stock, {made} blanks released "
            f"({wall:.0f} s wall)"
        )
    ratio = results["with"].mean_s / results["without"].mean_s
    p95 = results["with"].p95_s / results["without"].p95_s
    verdict = "OK" if ratio <= TARGET else "ABOVE TARGET"
    print(
        f"\nmean lead time with/without stock: {ratio:.2f}   target <= {TARGET}   {verdict}"
        f"\n95th percentile with/without:      {p95:.2f}"
    )


if __name__ == "__main__":
    main()
