"""Order tracking's pure core: a unit in its customer's words, its lead time split, the
percentile, and the forecast replaying the dispatch rule over the open work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mes.domain.tracking import (
    CustomerStatus,
    Interval,
    StepView,
    customer_status,
    lead_time,
    percentile,
    summarise,
)
from routing.scheduling.forecast import ForecastCell, OpenStep, OpenUnit, forecast

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
STEPS = ("printing", "engraving", "quality check")


def views(*states: str, attempts: tuple[int, ...] = (1, 1, 1)) -> list[StepView]:
    return [
        StepView(n, state, stage, attempts[n - 1])
        for n, (state, stage) in enumerate(zip(states, STEPS, strict=True), 1)
    ]


@pytest.mark.parametrize(
    ("unit", "steps", "expected"),
    [
        ("released", views("ready", "pending", "pending", attempts=(0, 0, 0)), "received"),
        # A blank stood in for the printing: nothing of its own begun yet.
        ("released", views("skipped", "ready", "pending", attempts=(0, 0, 0)), "received"),
        ("in_progress", views("running", "pending", "pending"), "in production: printing"),
        (
            "in_progress",
            views("done", "ready", "pending", attempts=(1, 0, 0)),
            "in production: engraving",
        ),
        ("in_progress", views("done", "done", "dispatched"), "in production: quality check"),
        ("in_progress", views("done", "interrupted", "pending"), "delayed"),
        ("failed", views("done", "failed", "pending"), "delayed"),
        ("held", views("done", "ready", "pending"), "delayed"),
        ("scrapped", views("done", "done", "failed"), "delayed"),
        ("done", views("done", "done", "done"), "ready"),
    ],
)
def test_a_unit_reads_in_its_customers_words(
    unit: str, steps: list[StepView], expected: str
) -> None:
    assert customer_status(unit, steps).text == expected


def test_a_step_without_a_stage_reads_in_production() -> None:
    assert CustomerStatus("in_production").text == "in production"


def test_lead_time_splits_into_custom_generic_and_waiting() -> None:
    jobs = [
        Interval(True, T0 + timedelta(minutes=5), T0 + timedelta(minutes=15)),
        Interval(False, T0 + timedelta(minutes=20), T0 + timedelta(minutes=22)),
        Interval(False, T0 + timedelta(minutes=22), T0 + timedelta(minutes=25)),  # a retry
    ]
    lead = lead_time(T0, T0 + timedelta(minutes=30), jobs, T0 + timedelta(hours=5))
    assert (lead.total_s, lead.generic_s, lead.custom_s, lead.waiting_s) == (1800, 600, 300, 900)
    assert lead.done
    running = [Interval(False, T0 + timedelta(minutes=1), None)]
    open_lead = lead_time(T0, None, running, T0 + timedelta(minutes=3), speed=100)
    assert (open_lead.total_s, open_lead.custom_s, open_lead.done) == (18000, 12000, False)


def test_the_summary_gives_means_and_the_95th_percentile() -> None:
    leads = [(lead_time(T0, T0 + timedelta(seconds=s), [], T0), s < 30) for s in range(1, 101)]
    summary = summarise(leads)
    assert summary is not None
    assert (summary.units, summary.from_stock, summary.p95_s) == (100, 29, 95.0)
    assert summary.mean_s == pytest.approx(50.5) and summary.waiting_s == pytest.approx(50.5)
    assert summarise([]) is None
    assert percentile([1.0, 2.0], 0.5) == 1.0


def cell(name: str, *caps: str, **kw: object) -> ForecastCell:
    return ForecastCell(name, frozenset(caps), **kw)  # type: ignore[arg-type]


def unit(uid: str, *steps: tuple[str, float], priority: int = 0, n: int = 1) -> OpenUnit:
    return OpenUnit(
        uid,
        tuple(
            OpenStep(f"{uid}/{i}", i, cap, secs, "open", (i - 1,) if i > 1 else ())
            for i, (cap, secs) in enumerate(steps, 1)
        ),
        priority,
        None,
        (T0, uid, n),
    )


def test_the_forecast_replays_the_rule_on_the_cells() -> None:
    cells = [cell("p1", "print"), cell("e1", "engrave")]
    units = [
        unit("A", ("print", 100), ("engrave", 10), n=1),
        unit("B", ("print", 100), ("engrave", 10), n=2),
        unit("C", ("engrave", 10), n=3),
    ]
    assert forecast(units, cells) == {"C": 10.0, "A": 110.0, "B": 210.0}


def test_customer_work_ranks_above_stock_and_jobs_on_cells_end_first() -> None:
    cells = [cell("p1", "print", factors={"print": 2.0}, free_in_s=50)]
    running = OpenUnit(
        "R", (OpenStep("R/1", 1, "print", 100, "on_cell", remaining_s=50),), 0, None, (T0, "R", 1)
    )
    stock = unit("S", ("print", 10), priority=-1000, n=1)
    custom = unit("C", ("print", 10), n=2)
    assert forecast([running, stock, custom], cells) == {"R": 50.0, "C": 70.0, "S": 90.0}


def test_work_no_cell_up_can_do_has_no_estimate() -> None:
    cells = [cell("p1", "print"), cell("e1", "engrave", up=False)]
    etas = forecast([unit("A", ("print", 5), ("engrave", 5)), unit("B", ("print", 5))], cells)
    assert etas == {"B": 5.0}


def test_setups_count() -> None:
    cells = [cell("p1", "print", setup_s={"material": 60}, loaded={"material": "pla"})]
    petg = OpenUnit(
        "A",
        (OpenStep("A/1", 1, "print", 10, "open", attributes={"material": "petg"}),),
        0,
        None,
        (T0, "A", 1),
    )
    assert forecast([petg], cells) == {"A": 70.0}


def test_the_performance_figures_split_the_lead_time_of_customer_units() -> None:
    from mes.dashboard.performance import compute

    done = T0 + timedelta(hours=1)
    rows = [
        {
            "released_at": T0,
            "finished_at": done,
            "blank": "STOCK-000001.1",
            "jobs": [
                {
                    "generic": False,
                    "dispatched_at": T0 + timedelta(minutes=50),
                    "started_at": T0 + timedelta(minutes=50),
                    "finished_at": done,
                }
            ],
        },
        {
            "released_at": T0 + timedelta(minutes=30),
            "finished_at": done,
            "blank": "",
            "jobs": [
                {
                    "generic": True,
                    "dispatched_at": T0 + timedelta(minutes=30),
                    "started_at": None,
                    "finished_at": T0 + timedelta(minutes=50),
                }
            ],
        },
    ]
    perf = compute(
        now=done,
        window_s=8 * 3600,
        speed=1.0,
        cells=[],
        cell_events=[],
        step_events=[],
        ready_now={},
        needs={},
        jobs=[],
        units=[],
        factors={},
        lead_rows=rows,
    )
    lead = perf.lead
    assert lead is not None and (lead.units, lead.from_stock) == (2, 1)
    assert (lead.mean_s, lead.custom_s, lead.generic_s, lead.waiting_s) == (2700, 300, 600, 1800)
