"""What a batch of changes tells the Unified Namespace: the recorder's messages callback.

Theory of operation: the recorder calls the :class:`Messenger` with every merged batch
just before it commits, and the messages returned go to the outbox in the same
transaction, so a message exists exactly when the change it tells does. Each journal
entry becomes one message on its cell's or unit's ``events`` topic, in journal order;
each cell the batch changed and each unit it moved gets one retained ``state`` message
(its state after the batch; the steps in between are on ``events``); alarms raised,
cleared and acknowledged go to the site's ``alarms`` topic (a clear only when it clears
an alarm known active). A cell's job progress alone republishes
its state only when it moved by ``progress_step``, so a long job makes a few dozen
messages, not one a second.

The messenger remembers what it needs across batches (each cell's job, unit, step and
since when it is in its state), so it must see every batch of one controller, in order:
the recorder's single commit task guarantees that. Time is read from ``clock`` only for
a batch without journal entries (progress alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from mes.domain import Event, Unit
from mes.domain.step import ON_CELL
from mes.domain.unit import FINISHED
from mes.mqtt.topics import (
    CellView,
    Namespace,
    alarm_acknowledged,
    alarm_cleared,
    alarm_raised,
    dumps,
    event_payload,
    unit_payload,
)
from mes.store import Changes, Message

#: Job id -> (unit id, step id) of the step it runs, for jobs the messenger has not seen
#: dispatched (those running when the controller started).
JobLookup = Callable[[int], tuple[str, str] | None]


class Messenger:
    """Makes the outbox messages for each batch of changes (see the module doc)."""

    def __init__(
        self,
        ns: Namespace,
        *,
        clock: Callable[[], datetime],
        progress_step: float = 0.05,
        job_lookup: JobLookup | None = None,
        active_alarms: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.ns = ns
        self.clock = clock
        self.progress_step = progress_step
        self.job_lookup = job_lookup
        self._cells: dict[str, CellView] = {}
        self._sent_progress: dict[str, float] = {}
        self._jobs: dict[int, tuple[str, str]] = {}
        self._ended: set[int] = set()
        #: (cell, subject) of the alarms active, so that a clear is told only when it
        #: clears one (the controller clears as a matter of course).
        self._active: set[tuple[str, str]] = set(active_alarms)

    def __call__(self, changes: Changes) -> list[Message]:
        """The messages telling ``changes``, in the order they are to be published."""
        messages: list[Message] = []
        self._learn_jobs(changes)
        cell_last: dict[str, Event] = {}
        unit_last: dict[str, Event] = {}
        for event in changes.events:
            topic = self._events_topic(event)
            if topic is not None:
                messages.append(Message(topic, dumps(event_payload(event)), event.at))
            if event.kind == "cell":
                cell_last[event.subject] = event
            elif event.kind == "unit":
                unit_last[event.subject] = event
        at = max((e.at for e in changes.events), default=None) or self.clock()
        for name in self._cells_to_tell(changes, cell_last):
            view = self._cells[name]
            self._sent_progress[name] = view.progress
            payload = dumps(view.payload(self.ns, at))
            messages.append(Message(self.ns.cell(name, "state"), payload, at, retain=True))
        for unit_id, last in unit_last.items():
            unit = changes.units.get(unit_id)
            if unit is not None:  # a unit in a batch without a transition did not change
                messages.append(self._unit_state(unit, last, at))
        messages.extend(self._alarms(changes))
        self._forget_ended_jobs()
        return messages

    def released(self, units: Iterable[Unit], events: Iterable[Event]) -> list[Message]:
        """The messages telling an order release (for ``Store.release(messages=...)``)."""
        return self(Changes(units={u.id: u for u in units}, events=list(events)))

    # -- cells ------------------------------------------------------------------------

    def _cells_to_tell(self, changes: Changes, last: dict[str, Event]) -> list[str]:
        """Bring each cell's view up to date; return the cells whose state to publish."""
        told: list[str] = []
        for name in dict.fromkeys([*last, *changes.cells]):
            view = self._cells.setdefault(name, CellView(name))
            if name in last:
                view.last, view.since, view.state = last[name], last[name].at, last[name].after
            cell = changes.cells.get(name)
            if cell is not None:
                view.state, view.hold = cell.state.value, cell.hold
                view.waiting_for = cell.waiting_for
                if cell.job_id != view.job:
                    view.job, view.progress = cell.job_id, 0.0
                    view.unit, view.step = self._job_step(cell.job_id)
            told.append(name)
        for name, progress in changes.progress.items():
            seen = self._cells.get(name)
            if seen is None:
                continue  # not seen since start: its next transition tells all
            seen.progress = progress
            moved = abs(progress - self._sent_progress.get(name, 0.0))
            if name not in told and (moved >= self.progress_step or progress >= 1.0 > moved > 0):
                told.append(name)
        return told

    def _job_step(self, job_id: int | None) -> tuple[str | None, str | None]:
        if job_id is None:
            return None, None
        found = self._jobs.get(job_id)
        if found is None and self.job_lookup is not None:
            found = self.job_lookup(job_id)
        return found if found is not None else (None, None)

    def _learn_jobs(self, changes: Changes) -> None:
        for step in changes.steps.values():
            if step.job_id is None:
                continue
            self._jobs[step.job_id] = (step.unit_id, step.id)
            if step.state in ON_CELL:
                self._ended.discard(step.job_id)
            else:
                self._ended.add(step.job_id)

    def _forget_ended_jobs(self) -> None:
        current = {view.job for view in self._cells.values()}
        for job_id in [j for j in self._ended if j not in current]:
            self._ended.discard(job_id)
            self._jobs.pop(job_id, None)

    # -- units, events, alarms ----------------------------------------------------------

    def _unit_state(self, unit: Unit, last: Event | None, at: datetime) -> Message:
        payload = unit_payload(unit, last, at, finished=unit.state in FINISHED)
        return Message(self.ns.unit(unit.id, "state"), dumps(payload), at, retain=True)

    def _events_topic(self, event: Event) -> str | None:
        if event.kind == "cell":
            return self.ns.cell(event.subject, "events")
        if event.kind in ("unit", "step"):
            return self.ns.unit(event.subject.split("/", 1)[0], "events")
        cell = event.data.get("cell")
        if event.kind == "job" and isinstance(cell, str) and cell:
            return self.ns.cell(cell, "events")
        return None  # requests: their effects are told by the entries they cause

    def _alarms(self, changes: Changes) -> list[Message]:
        out = []
        for op, args in changes.alarm_ops:
            if op == "raise":
                self._active.add((args["cell"], args["subject"]))
                out.append(Message(self.ns.alarms, dumps(alarm_raised(args)), args["raised_at"]))
                continue
            cell, subject = args["c"], args["s"]
            cleared = {
                (c, s)
                for c, s in self._active
                if (not cell or c == cell) and (not subject or s == subject)
            }
            if cleared:
                self._active -= cleared
                payload = alarm_cleared(cell, subject, args["at"])
                out.append(Message(self.ns.alarms, dumps(payload), args["at"]))
        for alarm_id, (who, at) in changes.acks.items():
            out.append(Message(self.ns.alarms, dumps(alarm_acknowledged(alarm_id, who, at)), at))
        return out


def namespace(
    enterprise: str,
    site: str,
    cells: Iterable[tuple[str, str, str]],
    default: tuple[str, str] = ("default", "default"),
) -> Namespace:
    """A :class:`Namespace` from each cell's (name, area, line); "" takes the default."""
    places = {name: (area or default[0], line or default[1]) for name, area, line in cells}
    return Namespace(enterprise, site, places, default)
