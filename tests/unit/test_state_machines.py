"""Every legal transition of every state machine, and a refusal for every illegal one."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import pytest

from mes.domain import (
    Cell,
    CellEvent,
    CellState,
    Step,
    StepEvent,
    StepState,
    Unit,
    UnitEvent,
    UnitState,
)
from mes.domain.cell import CELL_TRANSITIONS
from mes.domain.machine import table
from mes.domain.step import STEP_TRANSITIONS
from mes.domain.unit import UNIT_TRANSITIONS
from mes.errors import InvalidTransition

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def make_step(state: StepState) -> Step:
    return Step("O1.1/print", "O1.1", 1, "print", "print.fdm", "p1", 60.0, state=state)


def make_unit(state: UnitState) -> Unit:
    return Unit("O1.1", "O1", 1, "nameplate", {}, T0, state=state)


def make_cell(state: CellState) -> Cell:
    return Cell("printer-1", frozenset({"print.fdm"}), "sim", state=state)


MACHINES = [
    ("step", make_step, StepState, StepEvent, STEP_TRANSITIONS),
    ("unit", make_unit, UnitState, UnitEvent, UNIT_TRANSITIONS),
    ("cell", make_cell, CellState, CellEvent, CELL_TRANSITIONS),
]


def _all_pairs(legal: bool) -> list[tuple[str, object, StrEnum, StrEnum, StrEnum | None]]:
    out = []
    for kind, make, states, events, transitions in MACHINES:
        for state in states:
            for event in events:
                target = transitions.get((state, event))
                if (target is not None) == legal:
                    out.append((kind, make, state, event, target))
    return out


@pytest.mark.parametrize(
    ("kind", "make", "state", "event", "target"),
    _all_pairs(legal=True),
    ids=lambda v: getattr(v, "value", None) or (v if isinstance(v, str) else ""),
)
def test_legal_transition_moves_and_reports(kind, make, state, event, target):
    subject = make(state)
    change = subject.handle(event, T0)
    assert subject.state is target
    assert (change.kind, change.event, change.before, change.after, change.at) == (
        kind,
        event.value,
        state.value,
        target.value,
        T0,
    )


@pytest.mark.parametrize(
    ("kind", "make", "state", "event", "target"),
    _all_pairs(legal=False),
    ids=lambda v: getattr(v, "value", None) or (v if isinstance(v, str) else ""),
)
def test_illegal_transition_is_refused_and_changes_nothing(kind, make, state, event, target):
    subject = make(state)
    with pytest.raises(InvalidTransition) as err:
        subject.handle(event, T0)
    assert subject.state is state
    assert err.value.state == state.value
    assert err.value.event == event.value
    assert f"cannot {event.value!r} while {state.value!r}" in str(err.value)


@pytest.mark.parametrize(
    ("states", "transitions", "initial", "terminal"),
    [
        (StepState, STEP_TRANSITIONS, StepState.PENDING, {StepState.SKIPPED}),
        (UnitState, UNIT_TRANSITIONS, UnitState.RELEASED, {UnitState.DONE, UnitState.SCRAPPED}),
        (CellState, CELL_TRANSITIONS, CellState.OFFLINE, set()),
    ],
)
def test_every_state_is_reachable_and_only_terminal_states_are_dead_ends(
    states, transitions, initial, terminal
):
    reached = {initial}
    frontier = [initial]
    while frontier:
        state = frontier.pop()
        for (source, _), target in transitions.items():
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(states)
    with_exit = {source for source, _ in transitions}
    assert set(states) - with_exit == terminal


def test_table_refuses_an_ambiguous_row():
    with pytest.raises(ValueError, match="ambiguous"):
        table(
            [
                (StepState.READY, StepEvent.DISPATCH, StepState.DISPATCHED),
                (StepState.READY, StepEvent.DISPATCH, StepState.RUNNING),
            ]
        )


def test_dispatch_takes_a_new_job_id_and_counts_attempts():
    step = make_step(StepState.READY)
    step.dispatch("printer-1", 7, T0)
    assert (step.cell, step.job_id, step.attempts) == ("printer-1", 7, 1)
    step.handle(StepEvent.FAIL, T0)
    step.handle(StepEvent.RETRY, T0)
    step.dispatch("printer-2", 8, T0)
    assert (step.cell, step.job_id, step.attempts) == ("printer-2", 8, 2)


def test_unit_finishing_stamps_the_time_and_next_ready_follows_the_sequence():
    unit = make_unit(UnitState.RELEASED)
    unit.steps = [
        Step(f"O1.1/s{i}", "O1.1", i, f"s{i}", "test", "p", 1.0, after=(i - 1,) if i > 1 else ())
        for i in (1, 2, 3)
    ]
    assert [s.seq for s in unit.next_ready()] == [1]
    unit.steps[0].state = StepState.DONE
    unit.steps[1].state = StepState.RUNNING
    assert unit.next_ready() == []
    unit.steps[1].state = StepState.SKIPPED
    assert [s.seq for s in unit.next_ready()] == [3]
    unit.steps[2].state = StepState.DONE
    assert unit.complete
    unit.handle(UnitEvent.START, T0)
    unit.handle(UnitEvent.FINISH, T0)
    assert unit.finished_at == T0


def test_steps_of_a_graph_may_run_in_either_order_once_their_predecessors_settle():
    unit = make_unit(UnitState.RELEASED)
    # 1 -> {2, 3} -> 4: engrave and drill in either order after cutting, then inspect.
    after = {1: (), 2: (1,), 3: (1,), 4: (2, 3)}
    unit.steps = [
        Step(f"O1.1/s{i}", "O1.1", i, f"s{i}", "test", "p", 1.0, after=after[i]) for i in after
    ]
    assert [s.seq for s in unit.next_ready()] == [1]
    unit.steps[0].state = StepState.DONE
    assert [s.seq for s in unit.next_ready()] == [2, 3]
    unit.steps[2].state = StepState.DONE
    assert [s.seq for s in unit.next_ready()] == [2]
    unit.steps[1].state = StepState.SKIPPED
    assert [s.seq for s in unit.next_ready()] == [4]


def test_reprs_name_id_and_state():
    assert repr(make_step(StepState.READY)) == "<Step O1.1/print ready>"
    assert repr(make_unit(UnitState.HELD)) == "<Unit O1.1 nameplate held>"
    assert repr(make_cell(CellState.IDLE)) == "<Cell printer-1 idle>"
