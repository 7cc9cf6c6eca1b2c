"""State time accounting per cell from the journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mes.domain.accounting import availability, state_times

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
