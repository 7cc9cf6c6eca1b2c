"""What the dashboard computes, without a screen: andon levels, lateness, bars, OEE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mes.dashboard.figures import Level, andon, bar, duration, lateness, matches, readings
from mes.dashboard.performance import compute, ideal_rate

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "alarms", "link", "level", "label"),
    [
        ({"state": "execute"}, [], False, Level.RUN, "RUN"),
        ({"state": "starting"}, [], False, Level.RUN, "RUN"),
        ({"state": "execute"}, ["job overdue"], False, Level.WARN, "RUN, ALARM"),
        ({"state": "execute", "hold": "maintenance"}, [], False, Level.WARN, "RUN, HOLD NEXT"),
        ({"state": "idle"}, [], False, Level.IDLE, "IDLE"),
        ({"state": "held", "hold": "x"}, [], False, Level.WARN, "HELD"),
        ({"state": "held", "job_id": 3}, [], False, Level.WARN, "PAUSED"),
        ({"state": "held", "waiting_for": "clear it"}, [], False, Level.HELP, "NEEDS OPERATOR"),
        ({"state": "aborted"}, ["E1 jam"], False, Level.FAULT, "FAULT"),
        ({"state": "stopped"}, [], False, Level.FAULT, "FAULT"),
        ({"state": "offline"}, ["link lost"], True, Level.FAULT, "LINK DOWN"),
        ({"state": "offline"}, ["E310 door"], False, Level.OFFLINE, "OFFLINE"),
        ({"state": "offline"}, [], False, Level.OFFLINE, "OFFLINE"),
    ],
)
def test_andon_of_every_state(row, alarms, link, level, label) -> None:
    state = andon(row, alarms, link)
    assert (state.level, state.label) == (level, label)
    assert state.stale == (row["state"] == "offline")


def test_durations_bars_lateness_and_filters() -> None:
    shown = [duration(s) for s in (5, 60, 192, 7500, 90000)]
    assert shown == ["5s", "1m", "3m12s", "2h05m", "1d01h"]
    assert bar(0.5, 10) == "█████░░░░░" and bar(0.0, 4) == "░░░░" and bar(2, 3) == "███"
    late = lateness(NOW - timedelta(hours=2), 60, NOW)
    assert (late.text, late.level) == ("late 2h00m", "late")
    assert lateness(NOW + timedelta(minutes=1), 600, NOW).level == "risk"
    assert lateness(NOW + timedelta(hours=1), 600, NOW).text == "due in 1h00m"
    assert lateness(NOW + timedelta(seconds=36), 0, NOW, speed=100).text == "due in 1h00m"
    assert lateness(None, 1, NOW).level == "none"
    row = {"id": "SO-1.2", "family": "sign", "state": "held", "step": "route", "cell": "r1"}
    assert matches(row, "held sign") and not matches(row, "held nameplate")


def test_oee_throughput_and_lead_time_over_a_window() -> None:
    start = NOW - timedelta(hours=8)
    cells = [{"name": "c1", "state": "idle", "capabilities": ["cap"]}]
    cell_events = [  # executing 2 h of 8, held 2 h (planned), the rest idle
        {"at": start + timedelta(hours=1), "subject": "c1", "before": "idle", "after": "execute"},
        {"at": start + timedelta(hours=3), "subject": "c1", "before": "execute", "after": "held"},
        {"at": start + timedelta(hours=5), "subject": "c1", "before": "held", "after": "idle"},
    ]
    jobs = [
        {
            "cell": "c1",
            "state": "done",
            "capability": "cap",
            "expected_s": 3600.0,
            "started_at": start + timedelta(hours=1),
            "finished_at": start + timedelta(hours=3),
        },
        {
            "cell": "c1",
            "state": "failed",
            "capability": "cap",
            "expected_s": 60.0,
            "started_at": None,
            "finished_at": start + timedelta(hours=3),
        },
    ]
    units = [
        {
            "state": "done",
            "released_at": NOW - timedelta(hours=3),
            "finished_at": NOW - timedelta(minutes=30),
        },
        {"state": "scrapped", "released_at": start, "finished_at": NOW - timedelta(hours=1)},
    ]
    perf = compute(
        now=NOW,
        window_s=8 * 3600,
        speed=1.0,
        cells=cells,
        cell_events=cell_events,
        step_events=[],
        ready_now={},
        needs={},
        jobs=jobs,
        units=units,
        factors={"c1": {"cap": 1.5}},
        target_h=2.0,
    )
    (c1,) = perf.cells
    assert c1.availability == pytest.approx(2 / 6)  # held is planned downtime
    assert c1.performance == pytest.approx(5400 / 7200)  # 1 h x factor 1.5 in 2 h
    assert c1.quality == pytest.approx(0.5)
    assert c1.oee == pytest.approx(2 / 6 * 0.75 * 0.5)
    assert c1.shares["held"] == pytest.approx(0.25) and c1.shares["starved"] == pytest.approx(0.5)
    assert perf.plant.oee == pytest.approx(c1.oee)
    assert (perf.done, perf.scrapped, perf.throughput_h, perf.behind) == (1, 1, 1.0, 1)
    assert perf.lead_mean_s == pytest.approx(2.5 * 3600)
    assert sum(perf.buckets) == 1 and perf.buckets[-3] == 1  # 30 min ago, 10 min buckets
    assert ideal_rate(10, {"cap": 36000.0, "other": 3600.0}, {"cap": 2, "other": 1}) == 2.0
    assert ideal_rate(0, {}, {}) is None


def test_a_cells_readings_read_as_value_over_set_point() -> None:
    assert readings({"hotend": [209.8, 210.0], "bed": [24.0, None]}) == (
        "hotend 209.8/210° bed 24°"
    )
    assert readings({}) == "" and readings(None) == ""
