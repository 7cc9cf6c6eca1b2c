"""Mass customization at mass-production efficiency: the demo plant (simulated cells, fast
clock, no faults) runs 500 identical units, then 500 units that all differ (sizes,
materials, colours, engraving), same product mix. Prints both throughputs and their ratio
beside the target (>= 0.95), and the plant's setup times.

The ratio is taken on work content (nominal processing hours completed per plant hour),
since customised units differ in size and so in work; the raw units/h ratio is printed
too. Only setup-aware sequencing keeps changeovers from eating the difference.

Run: .venv/bin/python tests/benchmarks/bench_customization.py [--units N] [--speed X]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from mes.bootstrap import build_controller  # noqa: E402
from mes.service.demo import run_demo  # noqa: E402
from mes.service.order_files import OrderSpec, UnitSpec  # noqa: E402
from mes.settings import Plant, load_plant  # noqa: E402
from mes.settings.stations import stations  # noqa: E402
from mes.store import Store  # noqa: E402
from routing.planner import plan  # noqa: E402

TARGET = 0.95


def without_faults(plant: Plant) -> Plant:
    cells = [
        c.model_copy(update={"driver": c.driver.model_copy(update={"fault_rate": 0.0})})
        for c in plant.config.cells
    ]
    # No stock targets: blanks made ahead would change both runs' work (bench_postponement).
    config = plant.config.model_copy(update={"cells": cells, "stock": []})
    return Plant(plant.path, config, plant.families, plant.family_files)


def orders(plant: Plant, count: int, seed: int) -> tuple[OrderSpec, OrderSpec]:
    rng = random.Random(seed)
    names = sorted(plant.families)
    mix = [names[rng.randrange(len(names))] for _ in range(count)]
    same = tuple(UnitSpec(f, {}, f"unit {n}", None) for n, f in enumerate(mix))
    varied = tuple(
        UnitSpec(f, plant.families[f].sample(rng), f"unit {n}", None) for n, f in enumerate(mix)
    )
    return (
        OrderSpec("IDENTICAL", 0, None, same, "", None),
        OrderSpec("CUSTOM", 0, None, varied, "", None),
    )


def work_hours(plant: Plant, order: OrderSpec) -> float:
    total = 0.0
    for unit in order.units:
        family = plant.families[unit.family]
        total += sum(
            s.expected_s for s in plan(family, family.configure(unit.options)) if not s.skipped
        )
    return total / 3600


def run(plant: Plant, order: OrderSpec, speed: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        try:
            summary = asyncio.run(
                run_demo(
                    plant,
                    store,
                    build_controller(plant, store, speed=speed, seed=1, actor="demo"),
                    order,
                    stations(plant),
                    speed=speed,
                    out=io.StringIO(),
                    quiet=True,
                )
            )
        finally:
            store.close()
    hours = summary["plant_makespan_s"] / 3600
    return {
        "units": summary["done"],
        "hours": hours,
        "units_h": summary["done"] / hours,
        "work_h": work_hours(plant, order),
        "setups": 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--speed", type=float, default=4000.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    plant = without_faults(load_plant(REPO / "config"))
    print(f"demo plant, dispatch rule {plant.config.plant.dispatch!r}, speed x{args.speed:g}")
    for cell in plant.cells:
        if cell.setup_s:
            setups = ", ".join(f"{k} change {v / 60:g} min" for k, v in cell.setup_s.items())
            print(f"  setup times on {cell.name}: {setups}")
    identical, custom = orders(plant, args.units, args.seed)
    rows = {
        "identical": run(plant, identical, args.speed),
        "custom": run(plant, custom, args.speed),
    }
    print(
        f"\n{'run':10} {'units':>6} {'plant h':>8} {'units/h':>8} {'work h':>8} "
        f"{'work/plant h':>13}"
    )
    for name, r in rows.items():
        print(
            f"{name:10} {r['units']:6.0f} {r['hours']:8.2f} {r['units_h']:8.2f} "
            f"{r['work_h']:8.1f} {r['work_h'] / r['hours']:13.2f}"
        )
    ratio = (rows["custom"]["work_h"] / rows["custom"]["hours"]) / (
        rows["identical"]["work_h"] / rows["identical"]["hours"]
    )
    raw = rows["custom"]["units_h"] / rows["identical"]["units_h"]
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    print(
        f"\nthroughput ratio custom/identical (work content): {ratio:.3f}   "
        f"target >= {TARGET}   {verdict}"
    )
    print(f"throughput ratio custom/identical (raw units/h):   {raw:.3f}")


if __name__ == "__main__":
    main()
