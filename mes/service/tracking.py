"""An order as its customer sees it: each unit's stage, an estimated completion time, and
its lead time split. Used by ``mes order status`` and published per order on MQTT.

Theory of operation: the store gives the order whole and the open work of the plant;
:func:`estimates` turns the open work into the forecast's terms (each job on a cell
ends after its expected remaining time, from the cell's recorded progress or from its
start) and replays the plant's dispatch rule (:func:`routing.scheduling.forecast.
forecast`); :func:`order_status` speaks the customer's words
(:mod:`mes.domain.tracking`) from an allow-list of fields, so a cell's name, a program
or a fault's text can never reach a customer: a unit waiting for people reads
"delayed" and has no estimate. Times are plant time divided by ``speed`` (a simulated
plant running faster than the clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from mes.domain.stock import STOCK_SOURCE
from mes.domain.tracking import (
    DELAYED,
    IN_PRODUCTION,
    READY,
    RECEIVED,
    Interval,
    StepView,
    customer_status,
    lead_time,
)
from mes.errors import NotFound
from mes.store import Store
from routing.scheduling.forecast import ForecastCell, OpenStep, OpenUnit, forecast

#: What an estimate is, in the payload (customers should know what they are told).
BASIS = (
    "estimated by replaying the plant's dispatch rule over the work open now, at "
    "expected times; faults, holds and orders yet to come move it"
)
_DOWN = ("offline", "aborted", "stopped", "held")
_RUNS = ("dispatched", "running")
_WAITS_FOR_PEOPLE = ("failed", "interrupted", "aborted")
_FORECAST_STATE = {
    "dispatched": "on_cell",
    "running": "on_cell",
    "done": "settled",
    "skipped": "settled",
}


class CellLike(Protocol):
    """What the forecast needs of a configured cell (``CellSetup`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def capabilities(self) -> frozenset[str]: ...
    @property
    def factors(self) -> Mapping[str, float]: ...
    @property
    def setup_s(self) -> Mapping[str, float]: ...


def estimates(
    work: Mapping[str, Any],
    cells: Sequence[CellLike],
    rule: str,
    now: datetime,
    speed: float = 1.0,
) -> dict[str, datetime]:
    """Unit id -> estimated completion, for the open units that can be estimated.

    Args:
        work: :meth:`Store.open_work`.
        cells: the plant's cells as configured (capabilities, factors, setups).
        rule: the plant's dispatch rule.
        now: the time the work was read.
        speed: plant seconds per wall second.
    """
    rows = {str(c["name"]): c for c in work["cells"]}
    units, busy = [], {}
    for row in work["units"]:
        unit, on_cell = _open_unit(row, cells, rows, now, speed)
        if unit is not None:
            units.append(unit)
            busy.update(on_cell)
    plant = [
        ForecastCell(
            c.name,
            c.capabilities,
            c.factors,
            c.setup_s,
            work["loaded"].get(c.name, {}),
            busy.get(c.name, 0.0),
            c.name in rows and rows[c.name]["state"] not in _DOWN,
        )
        for c in cells
    ]
    return {
        unit_id: now + timedelta(seconds=seconds / speed)
        for unit_id, seconds in forecast(units, plant, rule).items()
    }


def _open_unit(
    row: Mapping[str, Any],
    cells: Sequence[CellLike],
    rows: Mapping[str, Mapping[str, Any]],
    now: datetime,
    speed: float,
) -> tuple[OpenUnit | None, dict[str, float]]:
    """A unit row in the forecast's terms (None: it waits for people), and the remaining
    seconds of its job on a cell, by cell."""
    if row["state"] not in ("released", "in_progress"):
        return None, {}
    factors = {c.name: c.factors for c in cells}
    steps, busy = [], {}
    for s in row["steps"]:
        state = s["state"]
        if state in _WAITS_FOR_PEOPLE:
            return None, {}
        remaining = 0.0
        if state in _RUNS and s["cell"]:
            cell = str(s["cell"])
            expected = s["expected_s"] * factors.get(cell, {}).get(s["capability"], 1.0)
            progress = float(rows.get(cell, {}).get("progress") or 0.0)
            if progress > 0:
                remaining = expected * (1 - progress)
            elif s["started_at"] is not None:
                remaining = expected - (now - s["started_at"]).total_seconds() * speed
            else:
                remaining = expected
            remaining = max(0.0, remaining)
            busy[cell] = remaining
        steps.append(
            OpenStep(
                s["id"],
                s["seq"],
                s["capability"],
                s["expected_s"],
                "on_cell"
                if state in _RUNS
                else "settled"
                if state in ("done", "skipped")
                else "open",
                tuple(s["after"] or ()),
                dict(s["attributes"] or {}),
                frozenset(s["cells"] or ()),
                remaining,
            )
        )
    released = (row["released_at"], str(row["order_id"]), int(row["seq"]))
    return OpenUnit(row["id"], tuple(steps), row["priority"], row["due"], released), busy


def order_status(
    record: Mapping[str, Any],
    etas: Mapping[str, datetime],
    now: datetime,
    speed: float = 1.0,
) -> dict[str, Any]:
    """An order in its customer's words (JSON-ready but for datetimes).

    Args:
        record: :meth:`Store.order_record`.
        etas: estimated completions by unit (:func:`estimates`).
        now: now.
        speed: plant seconds per wall second (for lead times).
    """
    units = []
    for u in record["units"]:
        views = [
            StepView(int(s["seq"]), str(s["state"]), str(s["stage"]), int(s["attempts"]))
            for s in u["steps"]
        ]
        status = customer_status(str(u["state"]), views)
        jobs = [
            Interval(bool(j["generic"]), j["started_at"] or j["dispatched_at"], j["finished_at"])
            for j in u["jobs"]
        ]
        lead = lead_time(u["released_at"], u["finished_at"], jobs, now, speed)
        eta = u["finished_at"] if status.status == READY else None
        if status.status in (RECEIVED, IN_PRODUCTION):
            eta = etas.get(str(u["id"]))
        units.append(
            {
                "unit": u["id"],
                "family": u["family"],
                "status": status.status,
                "stage": status.stage,
                "text": status.text,
                "eta": eta,
                "from_stock": bool(u["blank"]),
                "lead_time_s": {
                    "total": round(lead.total_s, 1),
                    "custom": round(lead.custom_s, 1),
                    "generic": round(lead.generic_s, 1),
                    "waiting": round(lead.waiting_s, 1),
                },
            }
        )
    states = {u["status"] for u in units}
    overall = (
        READY
        if states == {READY}
        else DELAYED
        if DELAYED in states
        else RECEIVED
        if states == {RECEIVED}
        else IN_PRODUCTION
    )
    etas_all = [u["eta"] for u in units]
    eta = max(etas_all) if etas_all and all(e is not None for e in etas_all) else None
    due = record["due"]
    return {
        "order": record["id"],
        "status": overall,
        "released_at": record["released_at"],
        "due": due,
        "eta": eta,
        "on_time": None if eta is None or due is None else eta <= due,
        "eta_basis": BASIS,
        "units": units,
    }


def track_order(
    store: Store,
    order_id: str,
    cells: Sequence[CellLike],
    rule: str,
    now: datetime,
    speed: float = 1.0,
) -> dict[str, Any]:
    """An order's status now, read from the store (``mes order status``).

    Raises:
        NotFound: no such order (stock orders are not customers').
    """
    record = store.order_record(order_id)
    if record is None or record["source"] == STOCK_SOURCE:
        raise NotFound(f"no order {order_id!r}")
    etas: dict[str, datetime] = {}
    if any(u["state"] not in ("done", "scrapped") for u in record["units"]):
        etas = estimates(store.open_work(), cells, rule, now, speed)
    return order_status(record, etas, now, speed)
