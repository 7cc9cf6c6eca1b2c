"""What the dashboard reads from the store, in one worker thread, as plain snapshots.

Theory of operation: :class:`Reader` is called about once a second from a thread
worker (never on the event loop) and returns a frozen :class:`Snapshot`. Cells and open
alarms are read whole every time (they are few). Work in progress can be 10,000 units
or more, so it is read whole once and then only the units the journal touched since the
last read are read again (:meth:`Store.touched_units`); a full read every
``resync_s`` catches what a concurrent writer committed out of id order (PostgreSQL).
Performance figures read a window of the journal and are refreshed every
``performance_s`` seconds, only while someone looks at them.

The reader owns no lock and no connection of its own: the store's engine gives each
thread its connection, and SQLite in WAL mode lets it read while the controller writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mes.dashboard.performance import Performance, compute, ideal_rate
from mes.errors import MesError
from mes.store import Store


@dataclass(frozen=True, slots=True)
class StationView:
    """What a station's operator needs: the unit on (or last on) the cell, its step."""

    cell: str
    unit: Mapping[str, Any] | None = None
    """``Store.unit_record`` of the unit (options, steps with jobs), or None."""
    step: Mapping[str, Any] | None = None
    """The step the cell runs, or ran last."""
    running: bool = False
    """Whether the cell runs that step now (else it ran it last)."""
    program: Mapping[str, Any] = field(default_factory=dict)
    """Kind and parameters (recipe, generator call) or first lines (G-code)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The plant as the store had it at ``at``."""

    at: datetime
    cells: tuple[Mapping[str, Any], ...] = ()
    cell_alarms: Mapping[str, list[str]] = field(default_factory=dict)
    """Cell ("" for the plant) -> texts of its active alarms, newest first."""
    links_down: frozenset[str] = frozenset()
    """Cells with an active lost-link alarm: what they show is stale."""
    alarms: tuple[Mapping[str, Any], ...] = ()
    """Alarms active or not yet acknowledged: active and unacknowledged first."""
    wip: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Unit id -> ``Store.wip`` row; a row is a new object only when it was read again."""
    performance: Performance | None = None
    station: StationView | None = None
    read_s: float = 0.0
    error: str = ""
    """Why the store could not be read ("" when it could); the rest is then stale."""


class Reader:
    """Reads snapshots of one store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        speed: float = 1.0,
        window_s: float = 8 * 3600.0,
        factors: Mapping[str, Mapping[str, float]] | None = None,
        target_h: float | None = None,
        station: str | None = None,
        resync_s: float = 30.0,
        performance_s: float = 5.0,
    ) -> None:
        self.store = store
        self.speed = speed
        self.window_s = window_s
        self.factors = dict(factors or {})
        self.target_h = target_h
        self.station = station
        self.resync_s = resync_s
        self.performance_s = performance_s
        self._wip: dict[str, Mapping[str, Any]] = {}
        self._last_event = -1
        self._synced = 0.0
        self._performance: Performance | None = None
        self._performance_read = 0.0
        self._needs: dict[str, tuple[str, list[str]]] = {}
        self._last: Snapshot | None = None

    def read(self, now: datetime, *, performance: bool = False) -> Snapshot:
        """The plant now; ``performance`` also refreshes the figures when they are due.

        Never raises for a store that cannot be read: the snapshot says why, and keeps
        the last values it had.
        """
        began = time.perf_counter()
        try:
            cells = tuple(self.store.cell_board())
            alarms = tuple(self.store.alarms(open_only=True))
            self._read_wip()
            if performance and time.monotonic() - self._performance_read >= self.performance_s:
                self._performance = self._read_performance(now, cells)
                self._performance_read = time.monotonic()
            station = self._read_station(cells) if self.station else None
        except MesError as exc:
            last = self._last or Snapshot(now)
            return Snapshot(
                last.at,
                last.cells,
                last.cell_alarms,
                last.links_down,
                last.alarms,
                last.wip,
                last.performance,
                last.station,
                time.perf_counter() - began,
                str(exc),
            )
        by_cell: dict[str, list[str]] = {}
        links: set[str] = set()
        for alarm in alarms:
            if alarm["active"]:
                by_cell.setdefault(str(alarm["cell"]), []).append(str(alarm["text"]))
                if alarm["subject"] == "link":
                    links.add(str(alarm["cell"]))
        self._last = Snapshot(
            now,
            cells,
            by_cell,
            frozenset(links),
            alarms,
            dict(self._wip),
            self._performance,
            station,
            time.perf_counter() - began,
        )
        return self._last

    def refresh_performance(self) -> None:
        """Make the performance figures due at the next read."""
        self._performance_read = 0.0

    # -- parts ------------------------------------------------------------------------

    def _read_wip(self) -> None:
        if self._last_event < 0 or time.monotonic() - self._synced >= self.resync_s:
            last = self.store.last_event_id()
            self._wip = {row["id"]: row for row in self.store.wip()}
            self._last_event, self._synced = last, time.monotonic()
            return
        touched, self._last_event = self.store.touched_units(self._last_event)
        if not touched:
            return
        fresh = {row["id"]: row for row in self.store.wip(touched)}
        for unit_id in touched:
            if unit_id in fresh:
                self._wip[unit_id] = fresh[unit_id]
            else:
                self._wip.pop(unit_id, None)

    def _read_performance(self, now: datetime, cells: tuple[Mapping[str, Any], ...]) -> Performance:
        start = now - timedelta(seconds=self.window_s / self.speed)
        events = self.store.events_since(("cell", "step"), start)
        cell_events = [e for e in events if e["kind"] == "cell"]
        step_events = [e for e in events if e["kind"] == "step"]
        unknown = {str(e["subject"]) for e in step_events} - self._needs.keys()
        if unknown:
            for step, (need, only) in self.store.step_needs(unknown).items():
                self._needs[step] = (need, only)
        needs = {
            s: self._needs[s] for s in {str(e["subject"]) for e in step_events} if s in self._needs
        }
        count, work = self.store.work_content(start)
        by_capability: dict[str, int] = {}
        for cell in cells:
            for capability in cell.get("capabilities") or ():
                by_capability[capability] = by_capability.get(capability, 0) + 1
        return compute(
            now=now,
            window_s=self.window_s,
            speed=self.speed,
            cells=cells,
            cell_events=cell_events,
            step_events=step_events,
            ready_now=self.store.ready_steps(),
            needs=needs,
            jobs=self.store.finished_jobs(start),
            units=self.store.finished_units(start),
            lead_rows=self.store.lead_times(start),
            factors=self.factors,
            target_h=self.target_h,
            ideal_h=ideal_rate(count, work, by_capability),
            active_since=events[0]["at"] if events else None,
        )

    def _read_station(self, cells: tuple[Mapping[str, Any], ...]) -> StationView:
        name = self.station or ""
        row = next((c for c in cells if c["name"] == name), None)
        if row is None:
            return StationView(name)
        running = row.get("unit_id") is not None
        if running:
            unit_id, step_id = str(row["unit_id"]), str(row["step_id"])
        else:
            job = self.store.last_job(name)
            if job is None:
                return StationView(name)
            unit_id, step_id = str(job["unit_id"]), str(job["step_id"])
        record = self.store.unit_record(unit_id)
        if record is None:
            return StationView(name)
        step = next((s for s in record["steps"] if s["id"] == step_id), None)
        program: dict[str, Any] = {}
        if step is not None:
            program = describe_program(self.store, str(step["program_id"]))
        return StationView(name, record, step, running, program)


def describe_program(store: Store, program_id: str) -> dict[str, Any]:
    """A program as an operator reads it: a recipe's or generator call's parameters, or
    a G-code program's size and first comment lines."""
    try:
        program = store.program(program_id)
    except Exception:  # the store's own lookup error: a missing program is shown
        return {"id": program_id, "kind": "unknown"}
    kind = program.kind.value
    if kind == "gcode":
        lines = program.body.splitlines()
        notes = [ln.strip("; ") for ln in lines[:40] if ln.startswith(";")][:6]
        return {"id": program_id, "kind": kind, "lines": len(lines), "notes": notes}
    try:
        body = json.loads(program.body)
    except ValueError:
        body = {"text": program.body[:200]}
    return {"id": program_id, "kind": kind, "body": body}
