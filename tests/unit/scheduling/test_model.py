"""The problem model: validation, setups, schedules."""

from __future__ import annotations

import pickle

import pytest

from routing.scheduling.model import (
    Availability,
    Job,
    Machine,
    Operation,
    Problem,
    ProblemError,
    Schedule,
    Slot,
    next_state,
    setup_time,
)


def op(op_id: str, job: str = "j", after: tuple[str, ...] = (), **durations: float) -> Operation:
    return Operation(op_id, job, durations or {"m": 1}, after)


def test_a_well_formed_problem_has_a_stable_topological_order():
    problem = Problem(
        (op("c", after=("a", "b")), op("a"), op("b", after=("a",))), (Machine("m"),), (Job("j"),)
    )
    assert problem.topological_order == ("a", "b", "c")
    assert problem.operation["c"].after == ("a", "b")
    assert problem.machine["m"].usable
    assert not problem.has_setups


@pytest.mark.parametrize(
    ("operations", "machines", "jobs", "reason"),
    [
        ((op("a"), op("a")), (Machine("m"),), (Job("j"),), "duplicate operation ids"),
        ((op("a"),), (Machine("m"), Machine("m")), (Job("j"),), "duplicate machine names"),
        ((op("a", job="x"),), (Machine("m"),), (Job("j"),), "unknown job 'x'"),
        ((op("a", q=1),), (Machine("m"),), (Job("j"),), "unknown machine 'q'"),
        ((Operation("a", "j", {}),), (Machine("m"),), (Job("j"),), "no eligible machine"),
        ((op("a", m=-1),), (Machine("m"),), (Job("j"),), "must be finite and >= 0"),
        ((op("a", m=float("nan")),), (Machine("m"),), (Job("j"),), "must be finite"),
        ((op("a", after=("zz",)),), (Machine("m"),), (Job("j"),), "unknown predecessor 'zz'"),
        ((op("a", after=("a",)),), (Machine("m"),), (Job("j"),), "precedes itself"),
        ((op("a"),), (Machine("m", available_from=-1),), (Job("j"),), "available_from"),
        ((op("a"),), (Machine("m", setup_s={"x": -2}),), (Job("j"),), "setup 'x'"),
        ((op("a"),), (Machine("m"),), (Job("j"), Job("j")), "duplicate job ids"),
    ],
)
def test_malformed_problems_are_refused_with_the_reason(operations, machines, jobs, reason):
    with pytest.raises(ProblemError, match=reason):
        Problem(operations, machines, jobs, name="p")


def test_a_precedence_cycle_is_refused_naming_its_operations():
    with pytest.raises(ProblemError, match="cycle through a, b"):
        Problem((op("a", after=("b",)), op("b", after=("a",))), (Machine("m"),), (Job("j"),))


def test_setup_sums_the_attributes_that_change_and_unknown_state_counts_as_a_change():
    setups = {"material": 600, "colour": 300}
    loaded = {"material": "pla", "colour": "black"}
    assert setup_time(setups, loaded, {"material": "pla", "colour": "black"}) == 0
    assert setup_time(setups, loaded, {"material": "pla", "colour": "red"}) == 300
    assert setup_time(setups, loaded, {"material": "petg", "colour": "red"}) == 900
    assert setup_time(setups, {}, {"material": "pla"}) == 600
    assert setup_time(setups, loaded, {"size": "xl"}) == 0  # not a setup attribute
    assert Machine("p", setup_s=setups).setup_before(loaded, {"colour": "red"}) == 300


def test_the_state_after_an_operation_keeps_what_it_did_not_change():
    assert next_state({"material": "pla", "colour": "black"}, {"colour": "red"}) == {
        "material": "pla",
        "colour": "red",
    }


def test_has_setups_needs_a_declared_setup_that_some_operation_uses():
    ops = (Operation("a", "j", {"m": 1}, attributes={"material": "pla"}),)
    assert Problem(ops, (Machine("m", setup_s={"material": 5}),), (Job("j"),)).has_setups
    assert not Problem(ops, (Machine("m", setup_s={"colour": 5}),), (Job("j"),)).has_setups


def test_held_and_down_machines_are_not_usable():
    assert not Machine("m", availability=Availability.HELD).usable
    assert not Machine("m", availability=Availability.DOWN).usable


def test_schedule_makespan_and_sequences():
    schedule = Schedule(
        {"b": Slot("m1", 5, 9), "a": Slot("m1", 0, 5), "c": Slot("m2", 1, 2), "z": Slot("m2", 1, 1)}
    )
    assert schedule.makespan == 9
    assert schedule.sequences() == {"m1": ["a", "b"], "m2": ["z", "c"]}
    assert Schedule({}).makespan == 0


def test_problems_and_schedules_cross_process_boundaries():
    problem = Problem((op("a"),), (Machine("m"),), (Job("j"),))
    problem.topological_order  # noqa: B018 - fills the caches that must pickle too
    assert problem.operation["a"]
    copy = pickle.loads(pickle.dumps(problem))
    assert copy.operations == problem.operations
    schedule = Schedule({"a": Slot("m", 0, 1)})
    assert pickle.loads(pickle.dumps(schedule)).slots == schedule.slots
