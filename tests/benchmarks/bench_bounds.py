"""Time of the release-time program checks: ``bounds``, ``words`` and ``fits`` per call.

For each generator, a few hundred valid parameter sets (seeded random, around realistic
parts; engraving with mostly distinct serial-number texts, so its text cache is cold)
are each answered ``--repeat`` times. Prints the mean microseconds per call of
``bounds``, ``words``, ``fits`` and ``bounds`` with the engraving text cache cleared,
beside the 100 µs target, and for contrast the time to generate and analyse the real
program for a few of them.

Run: ``.venv/bin/python tests/benchmarks/bench_bounds.py [--params N] [--repeat N]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from routing.programs import bounds, fits, generate, machine_class, words
from routing.programs.engrave import _layout_inks
from routing.programs.gcode import WORDS_BY_MACHINE, Envelope, analyse

TARGET_US = 100.0
Params = dict[str, Any]
ENVELOPES = {
    "engrave_text": Envelope(600.0, 400.0, 0.0),
    "profile_rect": Envelope.cnc(1200.0, 800.0, depth_mm=40.0, clearance_mm=60.0),
    "fdm_part": Envelope(220.0, 220.0, 250.0),
}
WORDS_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def _engraving(rng: random.Random) -> Params:
    serial = "".join(rng.choice("0123456789") for _ in range(8))
    text = rng.choice([f"SN {serial}", f"Lot {serial[:4]} Unit {serial}", serial])
    if rng.random() < 0.1:  # a long label now and then
        text = " ".join(
            "".join(rng.choice(WORDS_LETTERS) for _ in range(rng.randint(2, 9)))
            for _ in range(rng.randint(5, 20))
        )
    return {
        "text": text[:200],
        "width_mm": rng.uniform(60, 400),
        "height_mm": rng.uniform(20, 120),
        "margin_mm": rng.uniform(1, 5),
        "mode": rng.choice(["laser", "cnc"]),
        "min_char_height_mm": 0.5,
        "two_lines": rng.random() < 0.7,
    }


def _profile(rng: random.Random) -> Params:
    width, height, tool = rng.uniform(20, 800), rng.uniform(20, 600), rng.uniform(2, 12)
    return {
        "width_mm": width,
        "height_mm": height,
        "corner_radius_mm": rng.uniform(0, min(width, height) / 2),
        "thickness_mm": rng.uniform(3, 30),
        "tool_diameter_mm": tool,
        "lead_in": rng.choice(["arc", "ramp"]),
        "lead_in_mm": rng.uniform(2, 10),
        "margin_mm": tool / 2 + 10 + rng.uniform(0, 20),
        "climb": rng.random() < 0.8,
    }


def _print(rng: random.Random) -> Params:
    return {
        "shape": rng.choice(["plate", "box"]),
        "width_mm": rng.uniform(20, 200),
        "depth_mm": rng.uniform(20, 200),
        "height_mm": rng.uniform(2, 60),
        "layer_height_mm": rng.choice([0.1, 0.15, 0.2, 0.28]),
        "infill_percent": rng.uniform(0, 40),
    }


MAKERS: dict[str, Callable[[random.Random], Params]] = {
    "engrave_text": _engraving,
    "profile_rect": _profile,
    "fdm_part": _print,
}


def _valid(name: str, count: int, rng: random.Random) -> list[Params]:
    found: list[Params] = []
    while len(found) < count:
        params = MAKERS[name](rng)
        try:
            bounds(name, params)
        except ValueError:
            continue
        found.append(params)
    return found


def _per_call_us(call: Callable[[Params], object], params: list[Params], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for p in params:
            call(p)
    return (time.perf_counter() - start) / (repeat * len(params)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=int, default=300, help="parameter sets per generator")
    parser.add_argument("--repeat", type=int, default=20, help="calls per parameter set")
    args = parser.parse_args()
    rng = random.Random(1)
    print(f"{'generator':<14} {'bounds':>9} {'cold':>9} {'words':>9} {'fits':>9}   (µs/call)")
    worst = 0.0
    for name in MAKERS:
        params = _valid(name, args.params, rng)
        envelope = ENVELOPES[name]
        allowed = WORDS_BY_MACHINE[machine_class(name, params[0])]

        def bounds_of(p: Params, name: str = name) -> object:
            return bounds(name, p)

        def cold(p: Params, name: str = name) -> object:
            _layout_inks.cache_clear()
            return bounds(name, p)

        def words_of(p: Params, name: str = name) -> object:
            return words(name, p)

        def fits_of(
            p: Params, name: str = name, e: Envelope = envelope, w: frozenset[str] = allowed
        ) -> object:
            return fits(name, p, e, w)

        times = [
            _per_call_us(bounds_of, params, args.repeat),
            _per_call_us(cold, params, max(1, args.repeat // 4)),
            _per_call_us(words_of, params, args.repeat),
            _per_call_us(fits_of, params, args.repeat),
        ]
        worst = max(worst, *times)
        print(f"{name:<14} " + " ".join(f"{t:9.1f}" for t in times))
        sample = params[:5]
        start = time.perf_counter()
        for p in sample:
            analyse(generate(name, p))
        made = (time.perf_counter() - start) / len(sample) * 1e3
        print(f"{'':<14} for contrast: generate + analyse {made:,.1f} ms per program")
    verdict = "OK" if worst < TARGET_US else "SLOW"
    print(f"slowest mean: {worst:.1f} µs/call   target < {TARGET_US:.0f} µs/call   {verdict}")


if __name__ == "__main__":
    main()
