"""What the plant looks like right now, for the systems that watch it (SCADA over OPC UA).

Theory of operation: :class:`PlantWatch` takes a :class:`PlantView` from the controller's
live state (each cell's state, its job's unit and step, progress) and the store's grouped
counts (units by state, finished jobs per cell, active alarms), every time it is asked.
It remembers when each cell last changed state, so a view says how long a cell has been
in its state. A view is plain frozen data: the faces that publish it never touch the
controller.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mes.domain import StepState, UnitState
from mes.store.repository import PlantCounts, Store

if TYPE_CHECKING:
    from mes.service.controller import Controller

#: Unit states that count as work in progress.
IN_PROGRESS = (UnitState.RELEASED.value, UnitState.IN_PROGRESS.value)


@dataclass(frozen=True, slots=True)
class CellView:
    name: str
    state: str
    """The cell's state (``idle``, ``execute``, ``held``, ``offline``...)."""
    online: bool
    """Whether its driver is connected: when False every other value may be stale."""
    since: datetime
    """When the cell entered its state (as seen by this watch)."""
    unit: str = ""
    step: str = ""
    job_id: int = 0
    progress: float = 0.0
    """Of the running job, 0..1."""
    jobs_done: int = 0
    jobs_failed: int = 0
    alarms: tuple[str, ...] = ()
    """Texts of its active alarms, newest first."""
    waiting_for: str = ""
    """What an operator must do and confirm before it takes a job ("": nothing)."""


@dataclass(frozen=True, slots=True)
class PlantView:
    at: datetime
    cells: tuple[CellView, ...]
    units: dict[str, int]
    """Unit state -> units."""
    alarms: tuple[str, ...]
    """Texts of every active alarm, newest first."""

    @property
    def units_in_progress(self) -> int:
        return sum(self.units.get(s, 0) for s in IN_PROGRESS)

    @property
    def jobs_done(self) -> int:
        return sum(c.jobs_done for c in self.cells)

    @property
    def jobs_failed(self) -> int:
        return sum(c.jobs_failed for c in self.cells)


class PlantWatch:
    """Builds views of one controller's plant (see the module docstring)."""

    def __init__(self, controller: Controller, store: Store) -> None:
        self.controller = controller
        self.store = store
        self._since: dict[str, tuple[str, datetime]] = {}

    async def view(self) -> PlantView:
        """The plant now; the counts are read in a worker thread.

        Raises:
            StoreError: the store cannot be read.
        """
        counts = await asyncio.to_thread(self.store.plant_counts)
        return self.build(counts, datetime.now(UTC))

    def build(self, counts: PlantCounts, now: datetime) -> PlantView:
        """The view from the controller's live state and ``counts``, at ``now``."""
        c = self.controller
        running = {
            s.job_id: s
            for s in c.steps.values()
            if s.job_id is not None and s.state in (StepState.DISPATCHED, StepState.RUNNING)
        }
        cells = []
        for name, cell in c.cells.items():
            state = cell.state.value
            seen = self._since.get(name)
            if seen is None or seen[0] != state:
                seen = self._since[name] = (state, now)
            step = running.get(cell.job_id) if cell.job_id is not None else None
            jobs = counts.jobs.get(name, {})
            supervisor = c.supervisors.get(name)
            cells.append(
                CellView(
                    name=name,
                    state=state,
                    online=supervisor.connected if supervisor is not None else False,
                    since=seen[1],
                    unit=step.unit_id if step else "",
                    step=step.name if step else "",
                    job_id=cell.job_id or 0,
                    progress=c.progress.get(name, 0.0) if step else 0.0,
                    jobs_done=jobs.get(StepState.DONE.value, 0),
                    jobs_failed=sum(
                        jobs.get(s.value, 0)
                        for s in (StepState.FAILED, StepState.INTERRUPTED, StepState.ABORTED)
                    ),
                    alarms=tuple(counts.alarms.get(name, ())),
                    waiting_for=cell.waiting_for,
                )
            )
        every = tuple(text for texts in counts.alarms.values() for text in texts)
        return PlantView(now, tuple(cells), dict(counts.units), every)
