"""The dispatcher simulated over whole problems, and the local search after it."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings

from routing.scheduling.check import check
from routing.scheduling.compiled import Compiled, evaluate, from_schedule, to_schedule
from routing.scheduling.construct import RULES, construct
from routing.scheduling.heuristic import dispatch_schedule
from routing.scheduling.model import (
    Availability,
    Job,
    Machine,
    Operation,
    Problem,
    ProblemError,
    Schedule,
)
from routing.scheduling.tabu import tabu_search
from tests.unit.scheduling.factories import printer_problem, problems


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_builds_a_feasible_schedule_for_mk01(mk01: Problem, rule: str):
    c = Compiled(mk01)
    schedule = to_schedule(c, construct(c, rule))
    assert check(mk01, schedule) == []
    assert 40 <= schedule.makespan <= 80  # best known 40; plain rules land 43-54


def test_the_dispatcher_schedule_of_mk01_is_feasible_and_near_the_best_known(mk01: Problem):
    schedule = dispatch_schedule(mk01, seed=3)
    assert check(mk01, schedule) == []
    assert 40 <= schedule.makespan <= 44  # best known 40 (proven optimal)


def test_the_dispatcher_schedule_is_deterministic_given_the_seed(mk01: Problem):
    first = dispatch_schedule(mk01, seed=7, effort=0.3)
    assert dispatch_schedule(mk01, seed=7, effort=0.3).slots == first.slots


def test_a_stop_request_returns_the_best_so_far(mk01: Problem):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    schedule = dispatch_schedule(mk01, effort=5.0, stop=stop)
    assert check(mk01, schedule) == []
    assert len(calls) == 3


def test_unknown_rule_and_missing_rng_are_refused(mk01: Problem):
    c = Compiled(mk01)
    with pytest.raises(ValueError, match="unknown rule"):
        construct(c, "fastest")
    with pytest.raises(ValueError, match="needs an rng"):
        construct(c, "ect", noise=0.5)


def test_setups_are_honoured_and_same_material_work_is_grouped():
    problem = printer_problem(("petg", "pla", "petg", "pla", "petg", "pla"))
    schedule = dispatch_schedule(problem, seed=1)
    assert check(problem, schedule) == []
    # Six runs of 100 and one change to PETG (the printer starts on PLA): 1200 at best,
    # alternating would cost five changes more.
    assert schedule.makespan == 1200


def test_a_held_machine_gets_nothing_and_late_machines_start_late():
    ops = tuple(Operation(f"o{i}", "j", {"m1": 5, "m2": 1}) for i in range(4))
    machines = (Machine("m1", available_from=7), Machine("m2", availability=Availability.HELD))
    problem = Problem(ops, machines, (Job("j"),))
    schedule = dispatch_schedule(problem)
    assert check(problem, schedule) == []
    assert {s.machine for s in schedule.slots.values()} == {"m1"}
    assert min(s.start for s in schedule.slots.values()) == 7


def test_work_only_a_down_machine_can_do_is_refused():
    problem = Problem(
        (Operation("o", "j", {"m": 1}),),
        (Machine("m", availability=Availability.DOWN),),
        (Job("j"),),
    )
    with pytest.raises(ProblemError, match="every eligible machine is held or down"):
        dispatch_schedule(problem)


def test_an_empty_problem_has_an_empty_schedule():
    assert dispatch_schedule(Problem((), (Machine("m"),))).slots == {}


def test_due_dates_and_priorities_steer_the_slack_rule():
    ops = (Operation("late", "a", {"m": 5}), Operation("urgent", "b", {"m": 5}))
    problem = Problem(ops, (Machine("m"),), (Job("a", due=100), Job("b", due=5)))
    c = Compiled(problem)
    schedule = to_schedule(c, construct(c, "slack"))
    assert schedule.slots["urgent"].start == 0
    prioritised = Problem(ops, (Machine("m"),), (Job("a", due=100, priority=1), Job("b", due=5)))
    c = Compiled(prioritised)
    assert to_schedule(c, construct(c, "slack")).slots["late"].start == 0


def test_a_schedule_round_trips_through_the_solution_form(mk01: Problem):
    c = Compiled(mk01)
    solution = construct(c, "mwkr")
    back = from_schedule(c, to_schedule(c, solution))
    assert back is not None and back.makespan == solution.makespan
    assert from_schedule(c, Schedule({})) is None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_random_problems_get_feasible_schedules_from_every_stage(problem: Problem):
    c = Compiled(problem)
    rng = random.Random(0)
    for rule in RULES:
        built = construct(c, rule, rng, 0.5)
        assert check(problem, to_schedule(c, built)) == []
        assert evaluate(c, built.mach, built.seqs) is not None
    improved = tabu_search(c, built, 60, rng, patience=20)
    assert improved.makespan <= built.makespan
    assert check(problem, to_schedule(c, improved)) == []
    assert check(problem, dispatch_schedule(problem, effort=0.05)) == []
