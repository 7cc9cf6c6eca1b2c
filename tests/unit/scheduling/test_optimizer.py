"""The optimizer: CP-SAT plus neighbourhood search, in-process and in a worker process."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from routing.scheduling import optimizer
from routing.scheduling.check import check
from routing.scheduling.heuristic import dispatch_schedule
from routing.scheduling.model import Availability, Job, Machine, Operation, Problem
from tests.unit.scheduling.factories import printer_problem

needs_ortools = pytest.mark.skipif(
    not optimizer.available(), reason="OR-Tools is not installed (pip install '.[opt]')"
)
REPO = Path(__file__).resolve().parents[3]


@needs_ortools
def test_mk01_is_solved_to_optimality_from_the_dispatchers_hint(mk01: Problem):
    hint = dispatch_schedule(mk01, effort=0.1)
    result = optimizer.optimize(mk01, 5.0, hint)
    assert check(mk01, result.schedule) == []
    assert result.schedule.makespan == 40 and result.optimal and result.lower_bound == 40
    assert result.start_makespan == hint.makespan


@needs_ortools
def test_neighbourhood_search_runs_when_the_whole_model_is_not_closed(fjsp_dir: Path):
    from routing.scheduling.fjsp import read_fjsp

    problem = read_fjsp(fjsp_dir / "mk10.fjs")
    hint = dispatch_schedule(problem, effort=0.05)
    result = optimizer.optimize(problem, 2.0, hint)
    assert check(problem, result.schedule) == []
    assert result.schedule.makespan <= hint.makespan
    assert result.rounds > 0 and not result.optimal


@needs_ortools
def test_setups_are_modelled_and_honoured():
    problem = printer_problem(("petg", "pla", "petg", "pla"), run=100, change=600)
    result = optimizer.optimize(problem, 2.0)  # no hint: it makes its own
    assert check(problem, result.schedule) == []
    assert result.schedule.makespan == 1000 and result.optimal  # 4 runs + one change


@needs_ortools
def test_setups_across_two_printers_availability_and_a_held_machine():
    materials = ["pla", "petg", "abs", "pla", "petg", "abs"]
    ops = tuple(
        Operation(f"o{i}", f"j{i}", {"p1": 100, "p2": 120, "p3": 1}, attributes={"material": m})
        for i, m in enumerate(materials)
    )
    machines = (
        Machine("p1", {"material": 300}, {"material": "pla"}),
        Machine("p2", {"material": 300}, {"material": "abs"}, available_from=50),
        Machine("p3", availability=Availability.HELD),
    )
    problem = Problem(ops, machines, tuple(Job(f"j{i}") for i in range(6)))
    result = optimizer.optimize(problem, 3.0, dispatch_schedule(problem, effort=0.2))
    assert check(problem, result.schedule) == []
    assert "p3" not in {s.machine for s in result.schedule.slots.values()}


@needs_ortools
def test_fractional_times_are_scaled_and_the_result_stays_exact():
    ops = (
        Operation("a", "j", {"m1": 0.25, "m2": 1.5}),
        Operation("b", "j", {"m1": 0.75}, after=("a",)),
        Operation("c", "k", {"m1": 0.5, "m2": 0.3}),
    )
    problem = Problem(ops, (Machine("m1"), Machine("m2", available_from=0.1)), (Job("j"), Job("k")))
    result = optimizer.optimize(problem, 2.0)
    assert check(problem, result.schedule) == []
    assert result.schedule.makespan == pytest.approx(1.0)


def test_without_ortools_the_optimizer_says_so(monkeypatch: pytest.MonkeyPatch, mk01: Problem):
    monkeypatch.setattr(optimizer, "available", lambda: False)
    with pytest.raises(optimizer.OptimizerUnavailable, match="pip install"):
        optimizer.optimize(mk01, 1.0)
    with pytest.raises(optimizer.OptimizerUnavailable):
        optimizer.Planner().plan(mk01, 1.0)


def test_the_scheduling_package_does_not_import_ortools_until_asked():
    code = (
        "import sys\n"
        "import routing.scheduling.optimizer, routing.scheduling.heuristic\n"
        "import routing.scheduling.dispatch, routing.scheduling.fjsp, mes.cli_bench\n"
        "assert 'ortools' not in sys.modules, 'ortools imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


@pytest.fixture(scope="module")
def planner() -> Iterator[optimizer.Planner]:
    with optimizer.Planner() as planner:
        yield planner


@needs_ortools
def test_plan_runs_in_a_worker_process(planner: optimizer.Planner, mk01: Problem):
    schedule = planner.plan(mk01, 3.0, dispatch_schedule(mk01, effort=0.1))
    assert check(mk01, schedule) == [] and schedule.makespan == 40


@needs_ortools
async def test_plan_async_leaves_the_event_loop_free(planner: optimizer.Planner, mk01: Problem):
    planner.plan(Problem((Operation("o", "j", {"m": 1}),), (Machine("m"),), (Job("j"),)), 0.5)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    problem = random_problem(jobs=15, ops=10, machines=8)  # too big to close in 1.5 s
    loop = asyncio.get_running_loop()
    started = loop.time()
    schedule = await planner.plan_async(problem, 1.5)
    elapsed = loop.time() - started
    beat.cancel()
    assert check(problem, schedule) == []
    assert elapsed > 1.0
    assert ticks >= elapsed / 0.01 / 3  # the loop kept ticking while the worker planned


def random_problem(jobs: int, ops: int, machines: int) -> Problem:
    rng = random.Random(5)
    names = [f"m{k}" for k in range(machines)]
    operations = []
    for j in range(jobs):
        for o in range(ops):
            eligible = rng.sample(names, rng.randint(1, 3))
            after = (f"j{j}.{o - 1}",) if o else ()
            durations = {m: rng.randint(1, 20) for m in eligible}
            operations.append(Operation(f"j{j}.{o}", f"j{j}", durations, after))
    return Problem(
        tuple(operations),
        tuple(Machine(m) for m in names),
        tuple(Job(f"j{j}") for j in range(jobs)),
    )
