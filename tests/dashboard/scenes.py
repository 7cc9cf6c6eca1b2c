"""Fixed plants for the dashboard's snapshot tests: the same screen drawn on every run.

A :class:`Shift` writes six hours of the snapshot plant (tests/dashboard/plant/) into a
store as the controller would: every change through the domain's own state machines,
with its journal entries, in one batch, at a time of the script's clock, never the wall
clock. A small event loop plays it: orders are released, idle cells take the first ready
step they can do (in release order), jobs take their expected time on the cell, a cell
that waits for an operator is confirmed a few minutes later. A scene adds what happened
near the end of the shift (a fault, holds, a lost link) at fixed times. What is drawn
then depends only on :data:`NOW`, which the dashboard is given as its clock.

Scenes, as an operator sees them at 14:00:

- ``normal``: the cells busy with the third order, one idle, no alarm.
- ``alarm``: a job faulted on press-2 (high, unacknowledged, its step ran again), a job
  running long on mill-2 (medium), an acknowledged low alarm.
- ``held``: press-1 held for a die change, mill-1 waiting for its stock to be changed,
  mill-2 to be held after its job, two units held.
- ``link_down``: test-2's link lost mid-job (the tile red, its values stale); the rest
  as normal.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mes.domain import Cell, Event
from mes.domain.cell import CellEvent, CellState
from mes.domain.machine import Transition
from mes.domain.step import Step, StepEvent, StepState
from mes.domain.unit import Unit, UnitEvent, UnitState
from mes.service.order_files import OrderSpec, UnitSpec
from mes.service.release import release
from mes.settings import Plant, load_plant
from mes.store import Changes, Store
from tests.conftest import REPO

PLANT = REPO / "tests" / "dashboard" / "plant" / "plant.toml"
#: The dashboard's clock in every scene: a Monday, 14:00 UTC.
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
START = NOW - timedelta(hours=6)
SCENES = ("normal", "alarm", "held", "link_down")
ACTOR = "controller"


def at(hh_mm: str) -> datetime:
    """A time of the scenes' day: ``at("13:40")``."""
    hours, minutes = hh_mm.split(":")
    return NOW.replace(hour=int(hours), minute=int(minutes))


def snapshot_plant() -> Plant:
    return load_plant(PLANT)


@dataclass
class _Job:
    step: Step
    started: datetime
    ends: datetime


class Shift:
    """Plays a shift of ``plant`` into ``store`` (see the module docstring)."""

    def __init__(self, store: Store, plant: Plant) -> None:
        self.store = store
        self.plant = plant
        self.cells = {
            c.name: Cell(c.name, frozenset(c.capabilities), c.driver.kind) for c in plant.cells
        }
        self.factors = {c.name: dict(c.duration_factors) for c in plant.cells}
        self.prompts = {c.name: c.confirm_after_job or "" for c in plant.cells}
        self.units: dict[str, Unit] = {}
        self.jobs: dict[str, _Job] = {}
        self.avoid: dict[str, str] = {}
        """Step -> the cell it faulted on: another cell takes it next."""
        self.confirm_after = timedelta(minutes=3)
        self.attended = True
        self._queue: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._order = itertools.count()
        store.register_cells(self.cells.values(), START)

    # -- the script ---------------------------------------------------------------------

    def schedule(self, when: datetime, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), action))

    def order(self, when: datetime, order_id: str, lengths: list[int], due: datetime) -> None:
        """Release ``order_id`` at ``when``: one bracket per length, finishes in turn."""

        def released(now: datetime) -> None:
            finishes = ("zinc", "raw", "powder")
            units = tuple(
                UnitSpec(
                    "bracket",
                    {"length_mm": n, "finish": finishes[i % 3], "label": f"B{i + 1}"},
                    f"{order_id} unit {i + 1}",
                    None,
                )
                for i, n in enumerate(lengths)
            )
            spec = OrderSpec(order_id, 0, due, units, "scene", None)
            release(self.store, [spec], self.plant.families, now, source="scene")
            ids = [f"{order_id}.{n}" for n in range(1, 1 + len(units))]
            self.units.update((unit.id, unit) for unit in self.store.load_units(ids))

        self.schedule(when, released)

    def play(self, until: datetime = NOW) -> None:
        """Run every scripted and resulting change up to ``until``, then record the
        progress of the jobs still running."""
        self.schedule(START, self._connect)
        while self._queue and self._queue[0][0] <= until:
            when, _, action = heapq.heappop(self._queue)
            action(when)
            self._dispatch(when)
        self._progress(until, *self.jobs)

    def _progress(self, now: datetime, *names: str) -> None:
        changes = Changes()
        for name in names:
            job = self.jobs[name]
            if self.cells[name].state is not CellState.OFFLINE:
                changes.progress[name] = round((now - job.started) / (job.ends - job.started), 2)
        self._commit(changes)

    # -- what happens -------------------------------------------------------------------

    def _commit(self, changes: Changes) -> None:
        self.store.apply(changes)

    def _event(
        self, changes: Changes, transition: Transition, item: Unit | Step | Cell, **data: object
    ) -> None:
        changes.add(Event.of(transition, ACTOR, **data), item)

    def _connect(self, now: datetime) -> None:
        changes = Changes()
        for cell in self.cells.values():
            self._event(changes, cell.handle(CellEvent.CONNECT, now), cell)
        self._commit(changes)

    def _dispatch(self, now: datetime) -> None:
        for cell in self.cells.values():
            if cell.state is not CellState.IDLE or cell.name in self.jobs:
                continue
            step = self._ready_for(cell)
            if step is not None:
                self._start(cell, step, now)

    def _ready_for(self, cell: Cell) -> Step | None:
        busy = {job.step.unit_id for job in self.jobs.values()}
        for unit in self.units.values():
            if unit.state not in (UnitState.RELEASED, UnitState.IN_PROGRESS) or unit.id in busy:
                continue
            for step in unit.steps:
                if (
                    step.state is StepState.READY
                    and step.capability in cell.capabilities
                    and self.avoid.get(step.id) != cell.name
                ):
                    return step
        return None

    def _start(self, cell: Cell, step: Step, now: datetime) -> None:
        (job_id,) = self.store.reserve_job_ids(1)
        unit = self.units[step.unit_id]
        changes = Changes()
        changes.add(Event.of(step.dispatch(cell.name, job_id, now), ACTOR, cell=cell.name))
        changes.job(step, at=now, program_id=step.program_id)
        self._event(changes, cell.handle(CellEvent.START, now), cell, job_id=job_id)
        cell.job_id = job_id
        if unit.state is UnitState.RELEASED:
            self._event(changes, unit.handle(UnitEvent.START, now), unit)
        self._event(changes, step.handle(StepEvent.ACCEPT, now), step, job_id=job_id)
        step.started_at = now
        changes.job(step)
        self._event(changes, cell.handle(CellEvent.ACCEPT, now), cell, job_id=job_id)
        self._commit(changes)
        seconds = step.expected_s * self.factors[cell.name].get(step.capability, 1.0)
        ends = now + timedelta(seconds=round(seconds))
        self.jobs[cell.name] = _Job(step, now, ends)
        self.schedule(ends, lambda when: self._finish(cell.name, step, when))

    def _finish(self, name: str, step: Step, now: datetime) -> None:
        job = self.jobs.get(name)
        if job is None or job.step is not step or self.cells[name].state is CellState.OFFLINE:
            return  # faulted or lost meanwhile
        del self.jobs[name]
        cell, unit, changes = self.cells[name], self.units[step.unit_id], Changes()
        self._event(changes, step.handle(StepEvent.COMPLETE, now), step, cell=name)
        step.finished_at = now
        step.result = {"outcome": "successful", "measurements": {}}
        changes.job(step)
        self._event(changes, cell.handle(CellEvent.COMPLETE, now), cell)
        for nxt in unit.next_ready():
            self._event(changes, nxt.handle(StepEvent.READY, now), nxt)
        if unit.complete and unit.state is UnitState.IN_PROGRESS:
            self._event(changes, unit.handle(UnitEvent.FINISH, now), unit)
        changes.add(unit)
        self._ended(cell, changes, now)
        self._commit(changes)

    def _ended(self, cell: Cell, changes: Changes, now: datetime) -> None:
        """Back to idle after a job; held if an operator must attend or held it."""
        if cell.state is CellState.ABORTED:
            self._event(changes, cell.handle(CellEvent.CLEAR, now), cell)
        self._event(changes, cell.handle(CellEvent.RESET, now), cell)
        prompt = self.prompts[cell.name]
        if prompt:
            changes.alarm(
                "low",
                f"waiting for an operator: {prompt} (job {cell.job_id} ended); "
                f"then mes cell confirm {cell.name}",
                now,
                cell=cell.name,
                subject="attend",
                code="attend",
            )
            cell.waiting_for = prompt
            self._event(changes, cell.handle(CellEvent.HOLD, now), cell, waiting_for=prompt)
            if self.attended:
                self.schedule(now + self.confirm_after, lambda when: self._confirm(cell, when))
        elif cell.hold:
            self._event(
                changes, cell.handle(CellEvent.HOLD, now), cell, reason=f"held: {cell.hold}"
            )
        cell.job_id = None
        changes.add(cell)

    def _confirm(self, cell: Cell, now: datetime) -> None:
        changes = Changes()
        for alarm in self.store.alarms(open_only=True):
            if alarm["cell"] == cell.name and alarm["subject"] == "attend":
                changes.acks[int(alarm["id"])] = ("bob", now)
        cell.waiting_for = ""
        self._event(changes, cell.handle(CellEvent.UNHOLD, now), cell, confirmed=True)
        changes.clear(cell.name, "attend", now)
        self._commit(changes)

    # -- a scene's events -------------------------------------------------------------

    def fault(self, when: datetime, name: str, code: str, text: str) -> None:
        """The job ``name`` runs at ``when`` faults; its step is ready again at once."""

        def faulted(now: datetime) -> None:
            job = self.jobs.pop(name)
            step, cell, changes = job.step, self.cells[name], Changes()
            job_id = step.job_id
            self._event(changes, step.handle(StepEvent.FAIL, now), step, job_id=job_id, code=code)
            step.finished_at = now
            step.result = {"outcome": "unsuccessful", "code": code, "text": text}
            changes.job(step)
            changes.alarm(
                "high", f"{code} {text} (job {job_id}, {step.id})", now, cell=name, subject=step.id
            )
            self._event(changes, cell.handle(CellEvent.FAULT, now), cell, code=code, text=text)
            self._event(changes, step.handle(StepEvent.RETRY, now), step, avoid=name)
            self.avoid[step.id] = name
            self._ended(cell, changes, now)
            self._commit(changes)

        self.schedule(when, faulted)

    def hold_cell(self, when: datetime, name: str, reason: str) -> None:
        """An operator holds ``name``: now if idle, else when its job ends."""

        def held(now: datetime) -> None:
            cell, changes = self.cells[name], Changes()
            cell.hold = reason
            if cell.state is CellState.IDLE:
                changes.add(Event.of(cell.handle(CellEvent.HOLD, now), "alice", reason=reason))
            changes.add(cell)  # a running cell: held when its job ends
            self._commit(changes)

        self.schedule(when, held)

    def hold_unit(self, when: datetime, unit_id: str, reason: str) -> None:
        def held(now: datetime) -> None:
            unit, changes = self.units[unit_id], Changes()
            changes.add(Event.of(unit.handle(UnitEvent.HOLD, now), "alice", reason=reason), unit)
            self._commit(changes)

        self.schedule(when, held)

    def lose_link(self, when: datetime, name: str, reason: str) -> None:
        def lost(now: datetime) -> None:
            if name in self.jobs:
                self._progress(now, name)  # its last known values
            cell, changes = self.cells[name], Changes()
            self._event(changes, cell.handle(CellEvent.DISCONNECT, now), cell, reason=reason)
            changes.alarm(
                "medium", f"link lost: {reason}", now, cell=name, subject="link", code="offline"
            )
            self._commit(changes)

        self.schedule(when, lost)

    def alarm(self, when: datetime, severity: str, text: str, cell: str, acked: bool) -> None:
        def raised(now: datetime) -> None:
            changes = Changes()
            changes.alarm(severity, text, now, cell=cell, subject="scene", code="scene")
            self._commit(changes)
            if acked:
                alarm_id = max(int(a["id"]) for a in self.store.alarms())
                changes = Changes()
                changes.acks[alarm_id] = ("bob", now + timedelta(minutes=1))
                self._commit(changes)

        self.schedule(when, raised)

    def stop_attending(self, when: datetime) -> None:
        """From ``when`` no operator confirms what a cell waits for."""

        def away(now: datetime) -> None:
            self.attended = False

        self.schedule(when, away)


def shift(store: Store, plant: Plant, scene: str = "normal") -> Shift:
    """Write the ``scene`` (one of :data:`SCENES`) into ``store``; return its shift."""
    if scene not in SCENES:
        raise ValueError(f"no scene {scene!r}: one of {', '.join(SCENES)}")
    play = Shift(store, plant)
    play.order(at("08:00"), "SO-1001", [120, 80, 200, 160, 100, 240, 140, 60], due=at("11:30"))
    play.order(at("10:30"), "SO-1002", [300, 140, 180, 60, 220, 100, 260, 120], due=at("13:30"))
    play.order(
        at("12:45"),
        "SO-1003",
        [260, 120, 280, 90, 150, 200, 340, 110, 70, 230, 130, 250],
        due=at("15:00"),
    )
    play.order(at("13:40"), "SO-1004", [100, 180], due=at("13:55"))
    if scene == "alarm":
        play.fault(at("13:41"), "press-2", "E101", "ram pressure low")
        play.alarm(at("13:30"), "medium", "job running long", "mill-2", acked=False)
        play.alarm(at("12:10"), "low", "coolant level low", "mill-1", acked=True)
    elif scene == "held":
        play.stop_attending(at("13:30"))
        play.hold_cell(at("13:45"), "press-1", "die change")
        play.hold_cell(at("13:58"), "mill-2", "spindle check")
        play.hold_unit(at("13:20"), "SO-1003.10", "customer changed the label")
        play.hold_unit(at("13:40"), "SO-1003.7", "waiting for a drawing")
    elif scene == "link_down":
        play.lose_link(at("13:58"), "test-2", "no answer for 5 s")
    play.play()
    return play
