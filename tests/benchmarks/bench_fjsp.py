"""Brandimarte Mk01-Mk10: the dispatcher and the optimizer against best-known makespans.

For each instance (read from ``../shared/fjsp/`` beside the repository, never copied
into it): the dispatcher's schedule (rules, randomised restarts, critical-path tabu
search; deterministic given the seed) and the optimizer's (CP-SAT warm-started with the
dispatcher's schedule, then neighbourhood search; 2 CP-SAT workers in a worker process).
The optimizer's time budget includes the dispatcher run that warm-starts it, so its
column's time is the total. Both schedules are checked for feasibility. Runs are
sequential. Prints each gap to the best-known upper bound and the means beside the
targets (dispatcher <= 20%, optimizer <= 5% at 10 s).

Run: ``.venv/bin/python tests/benchmarks/bench_fjsp.py [--time-limit 10] [--instances mk01,mk06]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from routing.scheduling.check import check  # noqa: E402
from routing.scheduling.fjsp import read_bounds, read_fjsp  # noqa: E402
from routing.scheduling.heuristic import dispatch_schedule  # noqa: E402
from routing.scheduling.model import Job, Machine, Operation, Problem, Schedule  # noqa: E402
from routing.scheduling.optimizer import Planner, available  # noqa: E402

FJSP_DIR = REPO / ".." / "shared" / "fjsp"
DISPATCH_TARGET = 0.20
OPTIMIZER_TARGET = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="optimizer s/instance")
    parser.add_argument(
        "--instances", default=",".join(f"mk{i:02d}" for i in range(1, 11)), help="comma list"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=FJSP_DIR, help="instance directory")
    parser.add_argument("--no-optimizer", action="store_true")
    args = parser.parse_args()
    if not args.dir.is_dir():
        print(f"instances not found: {args.dir.resolve()}", file=sys.stderr)
        return 2
    use_optimizer = available() and not args.no_optimizer
    header = (
        f"{'instance':<9}{'lb':>5}{'ub':>5} | {'dispatcher':>10}{'gap':>8}{'s':>6} | "
        f"{'optimizer':>10}{'gap':>8}{'s':>6}"
    )
    print(
        f"Brandimarte FJSP; optimizer {args.time_limit:g} s per instance (dispatcher warm "
        f"start included), 2 CP-SAT workers"
        if use_optimizer
        else "Brandimarte FJSP; dispatcher only (optimizer not installed or disabled)"
    )
    print(header)
    print("-" * len(header))
    d_gaps: list[float] = []
    o_gaps: list[float] = []
    d_times: list[float] = []
    o_times: list[float] = []
    with Planner() as planner:
        if use_optimizer:  # start the worker process before timing anything
            warm = Problem((Operation("o", "j", {"m": 1}),), (Machine("m"),), (Job("j"),))
            planner.optimize(warm, 0.1)
        for name in args.instances.split(","):
            path = args.dir / f"{name.strip()}.fjs"
            problem = read_fjsp(path)
            bounds = read_bounds(path)
            ub = bounds.ub if bounds else float("nan")
            t0 = time.perf_counter()
            dispatched = dispatch_schedule(problem, seed=args.seed)
            d_s = time.perf_counter() - t0
            _feasible(problem, dispatched, name, "dispatcher")
            d_gap = (dispatched.makespan - ub) / ub
            d_gaps.append(d_gap)
            d_times.append(d_s)
            line = (
                f"{name:<9}{bounds.lb if bounds else '-':>5g}{ub:>5g} | "
                f"{dispatched.makespan:>10g}{d_gap:>+8.1%}{d_s:>6.2f} | "
            )
            if use_optimizer:
                result = planner.optimize(problem, max(0.1, args.time_limit - d_s), dispatched)
                o_s = time.perf_counter() - t0
                _feasible(problem, result.schedule, name, "optimizer")
                o_gap = (result.schedule.makespan - ub) / ub
                o_gaps.append(o_gap)
                o_times.append(o_s)
                mark = "*" if result.optimal else " "
                line += f"{result.schedule.makespan:>9g}{mark}{o_gap:>+8.1%}{o_s:>6.2f}"
            else:
                line += f"{'-':>10}{'-':>8}{'-':>6}"
            print(line, flush=True)
    print("-" * len(header))
    d_mean = sum(d_gaps) / len(d_gaps)
    line = f"{'mean':<19} | {'':>10}{d_mean:>+8.1%}{sum(d_times) / len(d_times):>6.2f} | "
    if o_gaps:
        o_mean = sum(o_gaps) / len(o_gaps)
        line += f"{'':>10}{o_mean:>+8.1%}{sum(o_times) / len(o_times):>6.2f}"
    print(line)
    print(
        f"dispatcher mean gap {d_mean:+.1%} (target <= {DISPATCH_TARGET:.0%}): "
        f"{'met' if d_mean <= DISPATCH_TARGET else 'NOT met'}; max {max(d_times):.2f} s"
    )
    if o_gaps:
        o_mean = sum(o_gaps) / len(o_gaps)
        print(
            f"optimizer mean gap {o_mean:+.1%} (target <= {OPTIMIZER_TARGET:.0%} at 10 s): "
            f"{'met' if o_mean <= OPTIMIZER_TARGET else 'NOT met'}"
        )
    print("* proven optimal; gaps are to the best-known upper bound (bks.json)")
    return 0


def _feasible(problem: Problem, schedule: Schedule, name: str, who: str) -> None:
    violations = check(problem, schedule)
    if violations:
        for v in violations[:5]:
            print(f"{name}: {who}: {v}", file=sys.stderr)
        raise SystemExit(f"{name}: {who} schedule infeasible ({len(violations)} violations)")


if __name__ == "__main__":
    sys.exit(main())
