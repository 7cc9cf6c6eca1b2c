"""The real-time dispatcher: rules, setups, avoidance, down cells, plans, compatibility."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.scheduling.dispatch import RULES, Dispatcher, IdleCell, ReadyStep, assign
from routing.scheduling.model import setup_time

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
PRINTER_SETUPS = {"material": 600.0, "colour": 300.0}


def step(step_id: str, cap: str = "print", expected: float = 100.0, **kw: Any) -> ReadyStep:
    return ReadyStep(step_id, cap, expected, **kw)


def printer(name: str, material: str = "pla", colour: str = "black", **kw: Any) -> IdleCell:
    return IdleCell(
        name,
        frozenset({"print"}),
        state={"material": material, "colour": colour},
        setup_s=PRINTER_SETUPS,
        **kw,
    )


def pla(colour: str = "black") -> dict[str, str]:
    return {"material": "pla", "colour": colour}


# -- rules ---------------------------------------------------------------------------------


def test_ect_prefers_work_that_needs_no_setup():
    d = Dispatcher("ect")
    d.add(step("short-petg", expected=60, attributes={"material": "petg", "colour": "black"}))
    d.add(step("long-pla", expected=500, attributes=pla()))
    d.add(step("red-pla", expected=250, attributes=pla("red")))
    cell = printer("p1")
    assert cell.completion(d._entries["short-petg"].step) == 660
    assert d.pick(cell).step_id == "long-pla"  # 500 < 250 + 300 < 60 + 600
    assert d.pick(cell).step_id == "red-pla"
    assert d.pick(cell).step_id == "short-petg"
    assert d.pick(cell) is None


def test_ect_counts_the_cells_duration_factor():
    d = Dispatcher("ect")
    d.add(step("a", expected=100, attributes=pla()))
    d.add(step("b", expected=90, attributes=pla("red")))
    slow = printer("p1", colour="red", factors={"print": 2.0})
    assert d.pick(slow).step_id == "b"  # 180 + 0 < 200 + 300


def test_slack_takes_the_step_closest_to_its_due_date():
    d = Dispatcher("slack")
    d.add(step("relaxed", due=T0 + timedelta(hours=9), expected=100))
    d.add(step("tight", due=T0 + timedelta(hours=10), expected=100, remaining_s=7200))
    d.add(step("undated", expected=1))
    cell = IdleCell("c", frozenset({"print"}))
    assert [d.pick(cell).step_id for _ in range(3)] == ["tight", "relaxed", "undated"]


def test_slack_counts_the_setup():
    def first(same_due_s: int) -> str:
        d = Dispatcher("slack")
        other = {"material": "abs"}
        d.add(step("other-material", due=T0 + timedelta(seconds=1000), attributes=other))
        d.add(step("same", due=T0 + timedelta(seconds=same_due_s), attributes=pla()))
        return d.pick(printer("p1")).step_id

    # The other material's slack is 1000 - 100 - 600 (setup) = 300.
    assert first(900) == "other-material"  # 300 < 800, though its due date is later
    assert first(350) == "same"  # 250 < 300


@pytest.mark.parametrize("rule", RULES)
def test_priority_comes_first_in_every_rule(rule: str):
    d = Dispatcher(rule)
    d.add(step("normal", expected=1, attributes=pla(), due=T0))
    d.add(step("vip", expected=999, priority=2, attributes={"material": "abs"}))
    assert d.pick(printer("p1")).step_id == "vip"


def test_rank_takes_due_date_then_release_order():
    d = Dispatcher("rank")
    d.add(step("second", released=(T0, "SO-1", 1, 2)))
    d.add(step("first", released=(T0, "SO-1", 1, 1)))
    d.add(step("due", due=T0 + timedelta(days=1), released=(T0, "SO-9", 1, 1)))
    cell = IdleCell("c", frozenset({"print"}))
    assert [d.pick(cell).step_id for _ in range(3)] == ["due", "first", "second"]


def test_a_cell_only_gets_steps_of_its_capabilities():
    d = Dispatcher("ect")
    d.add(step("cut", "cnc"))
    assert d.pick(printer("p1")) is None
    assert d.pick(IdleCell("r1", frozenset({"cnc"}))).step_id == "cut"


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown dispatch rule 'fifo'"):
        Dispatcher("fifo")


def test_steps_are_added_replaced_and_removed():
    d = Dispatcher("ect")
    d.add(step("a", expected=5))
    d.add(step("a", expected=500))  # same id: replaces
    d.add(step("b", expected=50))
    assert len(d) == 2 and "a" in d
    assert d.remove("b").step_id == "b"
    assert d.remove("b") is None
    assert d.pick(IdleCell("c", frozenset({"print"}))).expected_s == 500
    assert len(d) == 0 and "a" not in d


# -- avoidance, down and held cells, plans -----------------------------------------------


def test_a_step_avoids_the_cell_it_failed_on_only_when_another_can_take_it():
    d = Dispatcher("ect")
    d.cell_up("p1", {"print"})
    d.add(step("retry", avoid="p1", expected=1, attributes=pla()))
    d.add(step("other", expected=500, attributes=pla()))
    d.cell_up("p2", {"print"})
    assert d.pick(printer("p1")).step_id == "other"
    assert d.pick(printer("p2")).step_id == "retry"
    d.add(step("again", avoid="p1"))
    d.cell_down("p2")
    assert d.pick(printer("p1")).step_id == "again"  # nobody else can


def test_a_down_or_held_cell_gets_nothing_until_it_is_up_again():
    d = Dispatcher("ect")
    d.add(step("a"))
    d.cell_down("p1")
    assert d.pick(printer("p1")) is None
    assert d.assign([printer("p1")]) == []
    d.cell_up("p1", {"print"})
    assert d.pick(printer("p1")).step_id == "a"


def test_a_cell_follows_its_plan_and_a_down_cells_queue_re_routes_to_the_others():
    d = Dispatcher("ect")
    for name in ("p1", "p2"):
        d.cell_up(name, {"print"})
    for i in range(4):
        d.add(step(f"s{i}", expected=10 * (4 - i), attributes=pla()))
    d.follow({"p1": ["s0", "s1", "s2"], "p2": ["s3"]})
    assert d.pick(printer("p1")).step_id == "s0"  # the plan, though ect prefers s3
    assert d.pick(printer("p2")).step_id == "s3"
    assert d.pick(printer("p2")) is None  # s1, s2 are reserved for p1
    assert d.cell_down("p1") == ["s1", "s2"]
    assert d.pick(printer("p1")) is None
    assert [d.pick(printer("p2")).step_id for _ in range(2)] == ["s2", "s1"]  # ect again


def test_a_planned_step_that_becomes_ready_later_is_kept_for_its_cell():
    d = Dispatcher("ect")
    d.follow({"p1": ["later", "now"]})
    d.add(step("now"))
    assert d.pick(printer("p2")) is None
    assert d.pick(printer("p1")).step_id == "now"  # looks past the one not ready yet
    d.add(step("later"))
    assert d.pick(printer("p2")) is None
    assert d.pick(printer("p1")).step_id == "later"


def test_a_new_plan_releases_the_old_reservations():
    d = Dispatcher("ect")
    d.add(step("a"))
    d.follow({"p1": ["a"]})
    assert d.pick(printer("p2")) is None
    d.follow({})
    assert d.pick(printer("p2")).step_id == "a"


# -- the batch interface -------------------------------------------------------------------


def test_assign_pairs_each_idle_cell_at_most_once_best_pair_first():
    steps = [
        step("red", expected=100, attributes=pla("red")),
        step("black", expected=100, attributes=pla()),
        step("blue", expected=100, attributes=pla("blue")),
    ]
    cells = [printer("p-black"), printer("p-red", colour="red")]
    pairs = assign(steps, cells, rule="ect")
    assert {(s.step_id, c.name) for s, c in pairs} == {("black", "p-black"), ("red", "p-red")}
    assert assign(steps, []) == []


def test_assign_honours_plans_and_down_cells():
    d = Dispatcher("ect")
    d.add(step("a", attributes=pla()))
    d.add(step("b", attributes={"material": "abs"}))
    d.follow({"p2": ["b"]})
    d.cell_down("p3")
    pairs = d.assign([printer("p1"), printer("p2"), printer("p3")])
    assert sorted((s.step_id, c.name) for s, c in pairs) == [("a", "p1"), ("b", "p2")]


def legacy_assign(ready: list[ReadyStep], idle: list[IdleCell]) -> list[tuple[ReadyStep, IdleCell]]:
    """The rule as it was before setups (copied from the previous dispatch.py)."""
    free = list(idle)
    if not free:
        return []
    offered = frozenset().union(*(c.capabilities for c in free))
    pairs: list[tuple[ReadyStep, IdleCell]] = []
    for s in sorted((s for s in ready if s.capability in offered), key=lambda s: s.rank):
        capable = [c for c in free if s.capability in c.capabilities]
        if not capable:
            continue
        preferred = [c for c in capable if c.name != s.avoid] or capable
        cell = min(preferred, key=lambda c: (c.duration(s), c.name))
        pairs.append((s, cell))
        free.remove(cell)
        if not free:
            break
        offered = frozenset().union(*(c.capabilities for c in free))
    return pairs


CAPS = ("a", "b", "c")
ready_steps = st.lists(
    st.builds(
        lambda i, cap, exp, prio, due, rel, avoid: ReadyStep(
            f"s{i}",
            cap,
            float(exp),
            priority=prio,
            due=None if due is None else T0 + timedelta(hours=due),
            released=None if rel is None else (T0 + timedelta(minutes=rel), "SO", rel, 1),
            avoid=avoid,
        ),
        st.integers(),
        st.sampled_from(CAPS),
        st.integers(1, 5),
        st.integers(0, 2),
        st.none() | st.integers(0, 3),
        st.none() | st.integers(0, 3),
        st.none() | st.sampled_from(["c0", "c1", "c2"]),
    ),
    max_size=12,
    unique_by=lambda s: s.step_id,
)
idle_cells = st.lists(
    st.builds(
        lambda i, caps, factor: IdleCell(f"c{i}", frozenset(caps), {c: factor for c in caps}),
        st.integers(0, 4),
        st.sets(st.sampled_from(CAPS), min_size=1, max_size=2),
        st.sampled_from([0.5, 1.0, 1.5]),
    ),
    max_size=4,
    unique_by=lambda c: c.name,
)


@settings(max_examples=300, deadline=None)
@given(ready=ready_steps, idle=idle_cells)
def test_assign_without_setups_decides_exactly_as_the_original_rule(ready, idle):
    assert assign(ready, idle) == legacy_assign(ready, idle)


def brute_force_key(rule: str, s: ReadyStep, cell: IdleCell, seq: int) -> tuple[object, ...]:
    due = s.due.timestamp() if s.due else math.inf
    setup = setup_time(cell.setup_s, cell.state, s.attributes)
    tie = (due, s.released or (), seq)
    if rule == "ect":
        return (-s.priority, setup + cell.duration(s), tie)
    if rule == "slack":
        return (-s.priority, due - s.expected_s - s.remaining_s - setup, tie)
    if rule == "setup":
        return (-s.priority, setup, tie)
    return (-s.priority, due, tie[1:], setup + cell.duration(s))


attributed = st.lists(
    st.tuples(
        st.sampled_from(["print", "cnc"]),
        st.integers(1, 9),
        st.integers(0, 1),
        st.none() | st.integers(0, 5),
        st.fixed_dictionaries({}, optional={"material": st.sampled_from(["pla", "abs"])}),
        st.fixed_dictionaries({}, optional={"colour": st.sampled_from(["red", "black"])}),
        st.integers(0, 3),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(rule=st.sampled_from(RULES), specs=attributed, picks=st.integers(1, 6))
def test_each_pick_is_the_rules_best_step_over_all_ready_steps(rule, specs, picks):
    d = Dispatcher(rule)
    ready = {}
    for i, (cap, exp, prio, due, material, colour, rem) in enumerate(specs):
        s = ReadyStep(
            f"s{i}",
            cap,
            float(exp * 100),
            priority=prio,
            due=None if due is None else T0 + timedelta(hours=due),
            attributes={**material, **colour},
            remaining_s=rem * 100.0,
        )
        d.add(s)
        ready[s.step_id] = (s, i)
    cell = IdleCell("p", frozenset({"print"}), {"print": 1.5}, {"material": "pla"}, PRINTER_SETUPS)
    for _ in range(picks):
        picked = d.pick(cell)
        candidates = [(brute_force_key(rule, s, cell, i), s) for s, i in ready.values()]
        candidates = [c for c in candidates if c[1].capability == "print"]
        if not candidates:
            assert picked is None
            break
        assert picked == min(candidates, key=lambda c: c[0])[1]
        del ready[picked.step_id]
        cell = IdleCell(
            "p",
            cell.capabilities,
            cell.factors,
            {**cell.state, **picked.attributes},
            PRINTER_SETUPS,
        )


@pytest.mark.parametrize("rule", ["rank", "ect", "slack"])
def test_a_step_restricted_to_cells_its_program_fits_goes_only_there(rule):
    from routing.scheduling.dispatch import Dispatcher, IdleCell, ReadyStep

    big = ReadyStep("big", "laser.engrave", 60.0, cells=frozenset({"router-1"}))
    small = ReadyStep("small", "laser.engrave", 90.0)
    laser = IdleCell("laser-1", frozenset({"laser.engrave"}))
    router = IdleCell("router-1", frozenset({"laser.engrave"}), factors={"laser.engrave": 2.0})
    dispatcher = Dispatcher(rule)
    dispatcher.add(big)
    assert dispatcher.pick(laser) is None  # it does not fit the laser's bed
    dispatcher.add(small)
    pairs = dispatcher.assign([laser, router])
    assert {(s.step_id, c.name) for s, c in pairs} == {("small", "laser-1"), ("big", "router-1")}


def test_a_plan_never_leaves_a_cell_idle_beside_work_it_can_do():
    from routing.scheduling.dispatch import Dispatcher, IdleCell, ReadyStep

    dispatcher = Dispatcher("setup")
    for n in range(3):
        dispatcher.add(ReadyStep(f"s{n}", "print", 100.0))
    # The plan gives everything to p2 (busy now) and p1's own planned step is not ready.
    dispatcher.follow({"p2": ["s0", "s1", "s2"], "p1": ["later"]})
    p1 = IdleCell("p1", frozenset({"print"}))
    pairs = dispatcher.assign([p1])
    assert [(s.step_id, c.name) for s, c in pairs] == [("s0", "p1")]
