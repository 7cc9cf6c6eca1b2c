"""The feasibility checker finds every kind of violation, and nothing in a good schedule."""

from __future__ import annotations

import pytest

from routing.scheduling.check import Kind, check
from routing.scheduling.model import (
    Availability,
    Job,
    Machine,
    Operation,
    Problem,
    Schedule,
    Slot,
)

PROBLEM = Problem(
    operations=(
        Operation("a1", "a", {"p1": 10, "p2": 12}, attributes={"material": "pla"}),
        Operation("a2", "a", {"p1": 5}, after=("a1",), attributes={"material": "petg"}),
        Operation("b1", "b", {"p2": 4, "held": 1}, attributes={"material": "pla"}),
    ),
    machines=(
        Machine("p1", setup_s={"material": 3}, state={"material": "pla"}),
        Machine("p2", setup_s={"material": 3}, state={"material": "pla"}, available_from=2),
        Machine("held", availability=Availability.HELD),
    ),
    jobs=(Job("a"), Job("b")),
)
# a1 on p1 0-10, then a needs PLA -> PETG (3) so a2 starts at 13; b1 on p2 from 2.
GOOD = {"a1": Slot("p1", 0, 10), "a2": Slot("p1", 13, 18), "b1": Slot("p2", 2, 6)}


def kinds(**changes: Slot | None) -> list[Kind]:
    slots = {**GOOD, **changes}
    schedule = Schedule({k: v for k, v in slots.items() if v is not None})
    return [v.kind for v in check(PROBLEM, schedule)]


def test_a_feasible_schedule_has_no_violations():
    assert kinds() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"a2": None}, [Kind.MISSING]),
        ({"zz": Slot("p1", 30, 31)}, [Kind.UNKNOWN]),
        ({"a2": Slot("p2", 13, 18)}, [Kind.ELIGIBILITY]),
        ({"a2": Slot("p1", 13, 17)}, [Kind.DURATION]),
        # a2 before a1 ends (its machine is free: a1 moved to p2).
        ({"a1": Slot("p2", 6, 18), "a2": Slot("p1", 3, 8)}, [Kind.PRECEDENCE]),
        # b1 and a1 both on p2 at once.
        ({"a1": Slot("p2", 3, 15), "a2": Slot("p1", 15, 20)}, [Kind.OVERLAP]),
        # a2 right after a1: no room for the PLA -> PETG change.
        ({"a2": Slot("p1", 11, 16)}, [Kind.SETUP]),
        # b1 on the held machine.
        ({"b1": Slot("held", 0, 1)}, [Kind.AVAILABILITY]),
        # b1 before p2 is available.
        ({"b1": Slot("p2", 1, 5)}, [Kind.AVAILABILITY]),
        ({"b1": Slot("p2", -4, 0)}, [Kind.AVAILABILITY, Kind.AVAILABILITY]),
    ],
)
def test_each_kind_of_violation_is_found(changes, expected):
    assert kinds(**changes) == expected


def test_the_first_operation_needs_the_setup_from_the_initial_state():
    problem = Problem(
        (Operation("x", "j", {"m": 1}, attributes={"material": "abs"}),),
        (Machine("m", setup_s={"material": 5}, state={"material": "pla"}),),
        (Job("j"),),
    )
    (violation,) = check(problem, Schedule({"x": Slot("m", 4, 5)}))
    assert violation.kind is Kind.AVAILABILITY and "setup 5" in violation.reason
    assert check(problem, Schedule({"x": Slot("m", 5, 6)})) == []


def test_state_carries_forward_over_operations_without_the_attribute():
    # pla, then an op with no material, then pla again: no change, no setup.
    problem = Problem(
        (
            Operation("x", "j", {"m": 1}, attributes={"material": "pla"}),
            Operation("y", "j", {"m": 1}),
            Operation("z", "j", {"m": 1}, attributes={"material": "pla"}),
        ),
        (Machine("m", setup_s={"material": 5}, state={"material": "pla"}),),
        (Job("j"),),
    )
    slots = {"x": Slot("m", 0, 1), "y": Slot("m", 1, 2), "z": Slot("m", 2, 3)}
    assert check(problem, Schedule(slots)) == []


def test_violations_read_well():
    (violation,) = check(PROBLEM, Schedule({**GOOD, "a2": Slot("p1", 11, 16)}))
    assert str(violation).startswith("setup: a2 starts 11 on p1, but after a1")
    assert violation.operations == ("a1", "a2")
