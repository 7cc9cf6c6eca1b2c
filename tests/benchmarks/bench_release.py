"""Release throughput: 10,000 mixed custom units into SQLite, validated, planned, durable.

Run: .venv/bin/python tests/benchmarks/bench_release.py [--units N] [--batch N]
Prints units per second beside the target (2,000 units/s on a 2-core machine).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from mes.service.order_files import OrderSpec, UnitSpec  # noqa: E402
from mes.service.release import release  # noqa: E402
from mes.settings import load_plant  # noqa: E402
from mes.settings.stations import stations  # noqa: E402
from mes.store import Store  # noqa: E402

TARGET = 2000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="units per order")
    args = parser.parse_args()

    plant = load_plant(REPO / "config")
    rng = random.Random(1)
    names = sorted(plant.families)
    orders = []
    for start in range(0, args.units, args.batch):
        units = []
        for n in range(start, min(start + args.batch, args.units)):
            family = plant.families[names[n % len(names)]]
            units.append(UnitSpec(family.name, family.sample(rng), f"unit {n}", None))
        orders.append(OrderSpec(f"B-{start}", 0, None, tuple(units), "bench", None))

    cells = stations(plant)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        began = time.perf_counter()
        released = 0
        for spec in orders:
            released += release(
                store, [spec], plant.families, datetime.now(UTC), stations=cells
            ).units
        elapsed = time.perf_counter() - began
        steps = sum(len(u.steps) for u in store.load_units())
        store.close()
    rate = released / elapsed
    print(
        f"released {released} units ({steps} steps) in {elapsed:.2f}s, "
        f"{args.batch} units per order, SQLite synchronous=FULL"
    )
    verdict = "OK" if rate >= TARGET else "BELOW TARGET"
    print(f"release rate: {rate:,.0f} units/s   target >= {TARGET:,.0f} units/s   {verdict}")


if __name__ == "__main__":
    main()
