"""``mes bench``: run the schedulers on standard benchmark files and print what they get.

``mes bench fjsp FILE...`` reads every file first (a bad file refuses the whole run with
``file:line: reason``, exit code 2 via :func:`mes.cli.main`), then for each one
schedules it with the dispatcher and, when OR-Tools is installed, with the optimizer
warm-started from the dispatcher's schedule. Both schedules are checked for feasibility
before anything is printed; a violation is a bug and ends the run with exit code 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mes.errors import Problem
from routing.scheduling.check import check
from routing.scheduling.fjsp import Bounds, FjspError, read_bounds, read_fjsp
from routing.scheduling.heuristic import dispatch_schedule
from routing.scheduling.model import Problem as SchedulingProblem
from routing.scheduling.model import Schedule
from routing.scheduling.optimizer import Planner, available

bench_app = typer.Typer(
    help="Benchmarks: run the schedulers on standard instances.", no_args_is_help=True
)


@bench_app.callback()
def _bench() -> None:
    """Benchmarks: run the schedulers on standard instances."""


@bench_app.command("fjsp")
def fjsp(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="Flexible job-shop files (Brandimarte format)."),
    ],
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit",
            min=0.1,
            help="Seconds per file for the optimizer, its dispatcher warm start included.",
        ),
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the dispatcher's randomised runs.")] = 0,
) -> None:
    """Schedule each FILE with the dispatcher and the optimizer; print the makespans, the
    time taken and the best lower bound known (from a bks.json beside the file)."""
    problems: list[Problem] = []
    loaded: list[tuple[Path, SchedulingProblem, Bounds | None]] = []
    for path in files:
        try:
            loaded.append((path, read_fjsp(path), read_bounds(path)))
        except FjspError as exc:
            problems += exc.problems
    if problems:
        raise FjspError(problems)
    rows: list[dict[str, Any]] = []
    optimizer = available()
    with Planner() as planner:
        for path, problem, bounds in loaded:
            rows.append(
                _run(path, problem, bounds, planner if optimizer else None, time_limit, seed)
            )
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    print(_table(rows))
    if not optimizer:
        print("optimizer not installed (pip install '.[opt]'): dispatcher only")


def _run(
    path: Path,
    problem: SchedulingProblem,
    bounds: Bounds | None,
    planner: Planner | None,
    time_limit: float,
    seed: int,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    # Deterministic for the seed unless a huge file hits the time limit (a safety net).
    dispatched = dispatch_schedule(
        problem, seed=seed, stop=lambda: time.perf_counter() - t0 > time_limit
    )
    dispatch_s = time.perf_counter() - t0
    _require_feasible(path, "dispatcher", problem, dispatched)
    row: dict[str, Any] = {
        "file": str(path),
        "jobs": len(problem.jobs),
        "machines": len(problem.machines),
        "operations": len(problem.operations),
        "best_known_lb": bounds.lb if bounds else None,
        "best_known_ub": bounds.ub if bounds else None,
        "dispatcher": _figures(dispatched.makespan, dispatch_s, bounds),
        "optimizer": None,
        "proven_lb": None,
    }
    if planner is not None:
        result = planner.optimize(problem, max(0.1, time_limit - dispatch_s), dispatched)
        total_s = time.perf_counter() - t0
        _require_feasible(path, "optimizer", problem, result.schedule)
        row["optimizer"] = _figures(result.schedule.makespan, total_s, bounds)
        row["optimizer"]["optimal"] = result.optimal
        row["proven_lb"] = result.lower_bound or None
    return row


def _figures(makespan: float, seconds: float, bounds: Bounds | None) -> dict[str, Any]:
    gap = (makespan - bounds.ub) / bounds.ub if bounds and bounds.ub > 0 else None
    return {"makespan": makespan, "seconds": round(seconds, 3), "gap_to_best_known": gap}


def _require_feasible(path: Path, who: str, problem: SchedulingProblem, schedule: Schedule) -> None:
    violations = check(problem, schedule)
    if violations:
        for violation in violations[:10]:
            print(f"error: {path}: {who} schedule: {violation}", file=sys.stderr)
        print(f"{len(violations)} violations: not reported (this is a bug)", file=sys.stderr)
        raise typer.Exit(1)


def _table(rows: list[dict[str, Any]]) -> str:
    headers = ["file", "ops", "lb", "ub", "dispatcher", "gap", "s", "optimizer", "gap", "s"]
    lines = []
    for r in rows:
        d, o = r["dispatcher"], r["optimizer"]
        lbs = [x for x in (r["best_known_lb"], r["proven_lb"]) if x is not None]
        lines.append(
            [
                Path(r["file"]).name,
                str(r["operations"]),
                _num(max(lbs)) if lbs else "-",
                _num(r["best_known_ub"]),
                _num(d["makespan"]),
                _pct(d["gap_to_best_known"]),
                f"{d['seconds']:.1f}",
                _num(o["makespan"]) + ("*" if o["optimal"] else "") if o else "-",
                _pct(o["gap_to_best_known"]) if o else "-",
                f"{o['seconds']:.1f}" if o else "-",
            ]
        )
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(headers)]
    out = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    for line in lines:
        out.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    out.append("lb: best lower bound known (bks.json or proven by the optimizer); * proven optimal")
    return "\n".join(out)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"
