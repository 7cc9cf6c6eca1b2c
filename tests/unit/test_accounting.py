"""State time accounting per cell from the journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mes.domain.accounting import availability, state_times, waiting_intervals

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_time_in_each_state_within_the_window():
    changes = [
        (at(-5), "p1", "idle"),  # before the window: the state it starts in
        (at(10), "p1", "starting"),
        (at(11), "p1", "execute"),
        (at(40), "p1", "aborted"),
        (at(45), "p1", "stopped"),
        (at(46), "p1", "idle"),
        (at(50), "p1", "held"),
        (at(55), "p1", "offline"),
        (at(90), "p1", "idle"),  # after the window
    ]
    times = state_times(changes, T0, at(60))
    assert times["p1"] == pytest.approx(
        {
            "executing": 30 * 60,
            "starved": 14 * 60,
            "blocked": 0.0,
            "held": 5 * 60,
            "faulted": 6 * 60,
            "offline": 5 * 60,
        }
    )
    assert sum(times["p1"].values()) == 3600
    assert availability(times["p1"]) == pytest.approx(30 / 55)


def test_idle_while_work_waited_is_blocked_not_starved():
    changes = [(at(0), "p1", "idle")]
    times = state_times(changes, T0, at(60), waiting={"p1": [(at(20), at(30))]})
    assert times["p1"]["blocked"] == 600 and times["p1"]["starved"] == 3000


def test_a_cell_never_seen_before_the_window_starts_offline():
    times = state_times([(at(30), "p2", "idle")], T0, at(60))
    assert times["p2"]["offline"] == 1800 and times["p2"]["starved"] == 1800


def test_work_waits_for_every_cell_that_could_take_it_while_it_is_ready():
    step_changes = [
        (at(0), "U.1/cut", "ready"),
        (at(10), "U.1/cut", "dispatched"),
        (at(5), "U.2/cut", "ready"),  # overlaps U.1's wait: merged, not counted twice
        (at(20), "U.2/cut", "dispatched"),
        (at(30), "U.3/check", "ready"),  # still ready at the end
        (at(40), "U.1/cut", "ready"),  # ready again after a retry
        (at(45), "U.1/cut", "dispatched"),
    ]
    eligible = {"U.1/cut": ["a1", "a2"], "U.2/cut": ["a1"], "U.3/check": ["b1"]}
    waiting = waiting_intervals(step_changes, eligible, at(60))
    assert waiting == {
        "a1": [(at(0), at(20)), (at(40), at(45))],
        "a2": [(at(0), at(10)), (at(40), at(45))],
        "b1": [(at(30), at(60))],
    }
    times = state_times([(at(-1), "a1", "idle")], T0, at(60), waiting)
    assert times["a1"]["blocked"] == 25 * 60 and times["a1"]["starved"] == 35 * 60
