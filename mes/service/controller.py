"""The controller: owns the plant's live state, decides, records, then acts.

Theory of operation: the controller holds every unfinished unit, its steps and every
cell in memory, and is the only code that changes them. Each decision follows the same
three beats: change the domain objects (their state machines refuse illegal moves),
commit the changes with their journal entries through the :class:`Recorder` (durable
on return), and only then act: hand a job to a cell's supervisor, wake the dispatcher.

Dispatch happens when something changes (a step becomes ready, a cell becomes idle, a
unit is released); the rule itself is pure (:mod:`routing.scheduling.dispatch`).

Sharing: the controller drives the cells it holds a lease on and changes only the units
in its custody (:mod:`mes.service.membership`); alone it holds them all.

Recovery: on start, steps found ``dispatched`` or ``running`` are reconciled with their
cell by job id when it connects. A job the cell finished is recorded (never re-run); one
it still runs is followed; one it never received is handed over again under the same
id; one it lost is ``interrupted``: retried under a new id only on cells whose config
says re-running is safe, otherwise left for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from drivers.base import Driver
from mes.domain import (
    Cell,
    CellEvent,
    CellState,
    CellStatus,
    Event,
    Job,
    JobCompleted,
    JobFaulted,
    JobOutcome,
    JobProgress,
    Order,
    Program,
    Step,
    StepEvent,
    StepState,
    Unit,
    UnitEvent,
    UnitState,
)
from mes.domain.quality import out_of_limits
from mes.domain.step import ON_CELL
from mes.errors import Fenced, StoreError
from mes.service.crashpoints import crash_point
from mes.service.failures import after_failure, interrupt, record_failure
from mes.service.membership import Membership, SharingOptions
from mes.service.operator import wait_for_operator
from mes.service.planning import Replanner
from mes.service.programs import ProgramCache
from mes.service.ready import ReadySteps
from mes.service.recorder import Recorder
from mes.service.recovery import reconcile
from mes.service.sharing import (
    claim_work,
    keep_membership,
    poll_requests,
    poll_work,
    take_cells,
)
from mes.service.stock import StockKeeper
from mes.service.supervisor import Action, Backoff, CellSupervisor
from mes.service.watch import cancel_all, checkpoints, publish_progress
from mes.store import Changes, Store
from routing.scheduling.dispatch import IdleCell
from routing.scheduling.model import next_state

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Cell states in which the cell has a job on it.
_RUNS_A_JOB = (CellState.STARTING, CellState.EXECUTE, CellState.HELD)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _tell(loop: asyncio.AbstractEventLoop, callback: Callable[[str], None], what: str) -> None:
    """Call ``callback(what)`` on ``loop`` from another thread, unless it has closed."""
    with contextlib.suppress(RuntimeError):  # closed: the controller has stopped
        loop.call_soon_threadsafe(callback, what)


def _observed(future: asyncio.Future[None]) -> None:
    """A commit nobody awaits: its failure stops the controller through the recorder."""
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True, slots=True)
class CellSetup:
    """What the controller needs to know about a cell from the plant config."""

    name: str
    capabilities: frozenset[str]
    driver_kind: str
    factors: Mapping[str, float] = field(default_factory=dict)
    rerun_interrupted: bool = False
    setup_s: Mapping[str, float] = field(default_factory=dict)
    #: Monitor only: the cell is watched, never handed a job.
    read_only: bool = False
    #: Reconnect delays for this cell (default: the controller's).
    backoff: Backoff | None = None
    #: What an operator must do and confirm after each job ("" : nothing).
    confirm_after_job: str = ""


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    max_attempts: int = 3
    rule: str = "rank"
    #: Optimizer time limit per plan (0: dispatch by rule alone); plan at most every
    #: ``replan_s`` seconds, when work arrives or a cell goes down.
    optimize_s: float = 0.0
    replan_s: float = 30.0
    poll_s: float = 1.0
    job_id_block: int = 256
    drain_s: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)
    #: A job running longer than ``overdue_factor`` x its expected time plus
    #: ``overdue_grace_s`` raises an alarm (once; cleared when the job ends).
    overdue_factor: float = 2.0
    overdue_grace_s: float = 60.0
    #: A step refused this often in a row (its program, its recipe) fails instead.
    max_rejections: int = 3
    #: How often job progress is recorded for watchers in other processes.
    progress_s: float = 1.0
    #: Once started, move what start-up built (modules, the plant, the units in custody),
    #: which lives as long as the process, out of the garbage collector's sight: a full
    #: collection then no longer walks it and stalls the event loop for tens of
    #: milliseconds (bench_modbus: finish-to-start p99 190-250 ms without, 112-117 with).
    #: What it later drops (units in custody at start that finish) is still freed by
    #: reference counting; only reference cycles among it would stay, bounded by the
    #: start-up heap. For a process that runs one controller (``mes run``, ``mes demo``),
    #: not for tests that build many in one process.
    freeze_heap: bool = False


class Controller:
    """Runs the plant: dispatch, hand-off, follow-up, recording, recovery."""

    def __init__(
        self,
        store: Store,
        cells: list[CellSetup],
        drivers: Mapping[str, Driver],
        *,
        options: ControllerOptions | None = None,
        clock: Clock = utc_now,
        actor: str = "controller",
        sharing: SharingOptions | None = None,
    ) -> None:
        self.store = store
        self.options = options or ControllerOptions()
        self.clock = clock
        self.actor = actor
        self.recorder = Recorder(store)
        self.membership = Membership(
            store, sharing or SharingOptions(name=actor), {c.name: c.capabilities for c in cells}
        )
        self.recorder.stamp = self.membership.stamp
        self.recorder.on_failure = self.fail
        self.setups = {c.name: c for c in cells}
        self.cells = {c.name: Cell(c.name, c.capabilities, c.driver_kind) for c in cells}
        self.supervisors = {
            c.name: CellSupervisor(self, c.name, drivers[c.name], c.backoff or self.options.backoff)
            for c in cells
        }
        self.units: dict[str, Unit] = {}
        self.steps: dict[str, Step] = {}
        self.orders: dict[str, Order] = {}
        self.progress: dict[str, float] = {}
        self._avoid: dict[str, str] = {}
        #: Step -> how often cells refused its hand-off in a row.
        self._rejections: dict[str, int] = {}
        self.ready = ReadySteps(self.options.rule, self.units, self.orders, self._avoid.get)
        #: Attribute values each cell is set up for (material, colour...), as dispatched.
        self.loaded: dict[str, dict[str, str]] = {c.name: {} for c in cells}
        self.programs = ProgramCache(store)
        self._job_ids: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: Cells an operator held while they ran a job: held when it ends.
        #: Cells being reconciled after a (re)connect: no new job until that is recorded.
        self._reconciling: set[str] = set()
        #: Cells whose job's end is being recorded: they may be given their next job
        #: meanwhile (its commit comes after), though their supervisor is still busy.
        self._freeing: set[str] = set()
        #: Jobs an operator aborted on the machine: job id -> who.
        self.aborting: dict[int, str] = {}
        #: Jobs already alarmed as overdue.
        self._overdue: set[int] = set()
        self.replanner = (
            Replanner(self, self.options.optimize_s, self.options.replan_s)
            if self.options.optimize_s > 0
            else None
        )
        #: Supervisor tasks of the cells this controller holds.
        self.cell_tasks: dict[str, asyncio.Task[None]] = {}
        #: Set to look for work at once (units let go, a release, cells running low).
        self.work_wake = asyncio.Event()
        #: Set to look at operator requests at once (one was queued).
        self.request_wake = asyncio.Event()
        #: Unit -> when its first ready step became ready here (loop time), for hand-off.
        self.waiting_since: dict[str, float] = {}
        #: Why the controller stopped on its own (a lost lease, a failed store).
        self.fatal: Exception | None = None
        #: Fills the plant's stock targets with idle cells (set by the composition root).
        self.stock: StockKeeper | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._killed = asyncio.Event()
        self.started = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        """Graceful stop: no new jobs; running ones are followed for up to ``drain_s``.

        A second call stops at once; what ran is recorded, the rest is recoverable.
        """
        if self._stopping.is_set():
            self._killed.set()
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Run until :meth:`stop`.

        Raises:
            StoreError: the store failed; the controller stopped rather than act unrecorded.
            Fenced: another controller took one of its cells (it stalled past the lease).
        """
        if self.store.is_sqlite:
            self.store.take_over_checkpoints()  # before any thread connects
        self.recorder.start()
        tasks: list[asyncio.Task[None]] = []
        unlisten: Callable[[], None] = lambda: None  # noqa: E731
        try:
            loop = asyncio.get_running_loop()
            unlisten = self.store.listen(partial(_tell, loop, self._notified))
            await self._load()
            if self.options.freeze_heap:
                gc.collect()
                gc.freeze()
            tasks.append(asyncio.create_task(keep_membership(self), name="membership"))
            tasks.append(asyncio.create_task(poll_work(self), name="work"))
            tasks.append(asyncio.create_task(poll_requests(self), name="requests"))
            if self.store.is_sqlite:
                tasks.append(asyncio.create_task(checkpoints(self.store), name="checkpoints"))
            tasks.append(asyncio.create_task(publish_progress(self), name="progress"))
            if self.replanner is not None:
                tasks.append(asyncio.create_task(self.replanner.run(), name="planner"))
            if self.stock is not None:
                tasks.append(asyncio.create_task(self.stock.run(self), name="stock"))
            self.started.set()
            await self._dispatch_loop()
            await self._drain()
        finally:
            unlisten()
            try:
                await cancel_all(tasks + list(self.cell_tasks.values()))
                for supervisor in self.supervisors.values():
                    await supervisor.driver.aclose()
                if not isinstance(self.fatal, Fenced):
                    with contextlib.suppress(StoreError):
                        await self._all_offline("controller stopped")
                await self.recorder.aclose()
            finally:
                await self.membership.leave()
        if self.fatal is not None:
            raise self.fatal
        for task in tasks:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc

    def _notified(self, what: str) -> None:
        """PostgreSQL said something happened (see :func:`mes.store.sharing.notify`)."""
        if what == "request":
            self.request_wake.set()
        else:
            self.membership.dry = False  # units were let go or released: worth a claim
            self.work_wake.set()

    def fail(self, exc: Exception) -> None:
        """Stop at once because of ``exc`` (raised from :meth:`run`)."""
        log.error("controller %s stopping: %s", self.actor, exc)
        self.fatal = self.fatal or exc
        self._stopping.set()
        self._killed.set()
        self._wake.set()

    def cell_idle(self, name: str) -> bool:
        """No job on the cell, none being handed to it or reconciled."""
        return (
            not self.supervisors[name].busy
            and self.cells[name].job_id is None
            and name not in self._reconciling
            and not any(s.cell == name and s.state in ON_CELL for s in self.steps.values())
        )

    def start_cell(self, name: str) -> None:
        """Start supervising a cell this controller now holds."""
        if name not in self.cell_tasks:
            task = asyncio.create_task(self.supervisors[name].run(), name=f"cell:{name}")
            self.cell_tasks[name] = task

    async def stop_cell(self, name: str) -> None:
        """Stop supervising a cell (handed to another controller)."""
        task = self.cell_tasks.pop(name, None)
        if task is not None:
            await cancel_all([task])
        await self.supervisors[name].driver.aclose()
        self.supervisors[name].connected = self.supervisors[name].busy = False
        self.ready.dispatcher.cell_down(name)

    async def _all_offline(self, reason: str) -> None:
        """Record that no cell is driven any more (a job on a cell is still recoverable)."""
        changes, now = Changes(), self.clock()
        for name in self.membership.leases:
            cell = self.cells[name]
            if cell.state is not CellState.OFFLINE:
                changes.add(
                    Event.of(cell.handle(CellEvent.DISCONNECT, now), self.actor, reason=reason),
                    cell,
                )
        await self.recorder.commit(changes)

    async def _drain(self) -> None:
        busy = [s for s in self.supervisors.values() if s.busy]
        if not busy:
            return
        log.info(
            "stopping: waiting up to %.0fs for %d running jobs", self.options.drain_s, len(busy)
        )
        deadline = asyncio.get_running_loop().time() + self.options.drain_s
        while any(s.busy for s in self.supervisors.values()) and not self._killed.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self._wake.wait()

    async def _load(self) -> None:
        await asyncio.to_thread(self.store.register_cells, self.cells.values(), self.clock())
        await self.membership.join(self.fail)
        beat = await self.membership.survey()
        await take_cells(self, beat.gained)
        await claim_work(self)

    async def take(self, units: list[Unit]) -> None:
        """Adopt units just taken into custody (their programs read in bulk)."""
        if units:
            ids = [s.program_id for u in units for s in u.steps]
            self.programs.preload(await asyncio.to_thread(self.store.programs, ids))
            await self._adopt(units)

    async def _adopt(self, units: list[Unit]) -> None:
        """Take units into the live state (new releases, or unfinished ones at start)."""
        fresh = [u for u in units if u.id not in self.units]
        missing = {u.order_id for u in fresh} - self.orders.keys()
        if missing:
            self.orders.update(await asyncio.to_thread(self.store.load_orders, missing))
        for unit in fresh:
            self.units[unit.id] = unit
            for step in unit.steps:
                self.steps[step.id] = step
                if step.state is StepState.READY:
                    self.make_ready(step)
        if fresh:
            self._wake.set()
            if self.replanner is not None:
                self.replanner.request()

    def wake(self) -> None:
        """Look for work to dispatch (something changed)."""
        self._wake.set()

    # -- dispatch -----------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            await self._wake.wait()
            self._wake.clear()
            if not self._stopping.is_set():
                await self._dispatch()
                if self.stock is not None:
                    self.stock.idle(self._idle_cells())  # idle now: nothing else to do

    def _idle_cells(self) -> list[IdleCell]:
        return [
            IdleCell(
                name,
                cell.capabilities,
                self.setups[name].factors,
                self.loaded[name],
                self.setups[name].setup_s,
            )
            for name, cell in self.cells.items()
            if cell.available
            and name in self.membership.leases
            and name not in self.membership.draining
            and not self.setups[name].read_only
            and name not in self._reconciling
            and self.supervisors[name].connected
            and (not self.supervisors[name].busy or name in self._freeing)
        ]

    async def _dispatch(self) -> None:
        """Hand ready steps to idle cells, in one commit."""
        if self._stopping.is_set():
            return  # stopping: no new jobs
        idle = self._idle_cells()
        if not idle or not len(self.ready):
            return
        pairs = self.ready.assign(idle)
        if not pairs:
            return
        # Everything that awaits comes first, so the decisions below see one instant.
        prepared = []
        for ready, idle_cell in pairs:
            if (offered := self.steps.get(ready.step_id)) is None:
                continue  # its unit was let go meanwhile (another controller may take it)
            try:
                program = await self.programs.get(offered.program_id)
            except ValueError as exc:
                await self._unmakeable(offered, str(exc))
                continue
            prepared.append((ready, idle_cell, program, await self._job_id()))
        changes = Changes()
        actions: list[tuple[str, Job]] = []
        for ready, idle_cell, program, job_id in prepared:
            step, cell = self.steps.get(ready.step_id), self.cells[idle_cell.name]
            if step is None or step.id not in self.ready:
                continue  # changed while we fetched; the job id is simply never used
            unit, now = self.units[step.unit_id], self.clock()
            if not cell.available or not self.ready.runnable(unit):
                self.ready.refresh(unit)  # offer it again; the job id is never used
                self._wake.set()
                continue
            setup = idle_cell.setup(ready)
            changes.add(
                Event.of(
                    step.dispatch(cell.name, job_id, now),
                    self.actor,
                    cell=cell.name,
                    job_id=job_id,
                    **({"setup_s": setup} if setup else {}),
                )
            )
            self.loaded[cell.name] = next_state(self.loaded[cell.name], step.attributes)
            changes.job(step, at=now, program_id=program.id)
            changes.add(Event.of(cell.handle(CellEvent.START, now), self.actor, job_id=job_id))
            cell.job_id = job_id
            if unit.state is UnitState.RELEASED:
                changes.add(Event.of(unit.handle(UnitEvent.START, now), self.actor), unit)
            changes.add(step, cell)
            self.ready.discard(step)
            self.waiting_since.pop(unit.id, None)
            self.ready.refresh(unit)  # its other ready steps wait until it leaves the cell
            actions.append((cell.name, self._job(step, cell.name, program, setup)))
        crash_point("dispatch.before-commit")
        await self.recorder.commit(changes)
        crash_point("dispatch.after-commit")
        for name, job in actions:
            self.supervisors[name].inbox.put_nowait(Action("start", job))
        if self.membership.running_low(len(self.ready)):
            self.work_wake.set()  # claim more before the cells run dry

    def _job(self, step: Step, cell: str, program: Program, setup_s: float = 0.0) -> Job:
        assert step.job_id is not None
        factor = self.setups[cell].factors.get(step.capability, 1.0)
        expected = setup_s + step.expected_s * factor
        return Job(step.job_id, step.id, step.unit_id, step.capability, program, expected)

    async def _job_id(self) -> int:
        if not self._job_ids:
            block = await asyncio.to_thread(self.store.reserve_job_ids, self.options.job_id_block)
            self._job_ids = list(reversed(block))
        return self._job_ids.pop()

    # -- reports from supervisors ------------------------------------------------------

    async def cell_connected(self, name: str, status: CellStatus) -> Action | None:
        """Reconcile a cell that (re)connected; return what its supervisor should do."""
        return await reconcile(self, name, status)

    async def cell_lost(self, name: str, reason: str) -> None:
        cell = self.cells[name]
        if cell.state is CellState.OFFLINE:
            return
        self.ready.dispatcher.cell_down(name)
        if self.replanner is not None:
            self.replanner.request()
        changes = Changes()
        now = self.clock()
        changes.add(
            Event.of(cell.handle(CellEvent.DISCONNECT, now), self.actor, reason=reason), cell
        )
        changes.alarm(
            "medium", f"link lost: {reason}", now, cell=name, subject="link", code="offline"
        )
        self.progress.pop(name, None)
        await self.recorder.commit(changes)

    async def job_accepted(self, name: str, job: Job) -> None:
        """Record that the cell took the job. Nothing waits on this being durable (the
        supervisor only follows the job), so it commits with whatever comes next: often
        the job's end, when jobs are short. A crash before it commits leaves the step
        ``dispatched``, and recovery finds the cell running or done with it."""
        step, cell, now = self.steps[job.step_id], self.cells[name], self.clock()
        if step.job_id != job.job_id or step.state is not StepState.DISPATCHED:
            return
        self._rejections.pop(step.id, None)
        changes = Changes()
        changes.add(Event.of(step.handle(StepEvent.ACCEPT, now), self.actor, job_id=job.job_id))
        step.started_at = now
        changes.job(step)
        changes.add(Event.of(cell.handle(CellEvent.ACCEPT, now), self.actor, job_id=job.job_id))
        changes.add(step, cell)
        self.recorder.submit(changes).add_done_callback(_observed)

    def job_progress(self, name: str, report: JobProgress) -> None:
        self.progress[name] = report.fraction

    async def job_rejected(self, name: str, job: Job, reason: str) -> None:
        step, cell, now = self.steps[job.step_id], self.cells[name], self.clock()
        changes = Changes()
        rejected = self._rejections[step.id] = self._rejections.get(step.id, 0) + 1
        if step.job_id != job.job_id or step.state is not StepState.DISPATCHED:
            pass
        elif rejected >= self.options.max_rejections:
            # Refused again and again (a program the cell will not take): a failure that
            # needs a decision, not a loop of hand-offs.
            record_failure(
                self, step, name, "rejected", f"refused {rejected} times: {reason}", changes, now
            )
            changes.add(step)
            self._rejections.pop(step.id, None)
            after_failure(self, self.units[step.unit_id], step, name, changes, now)
        else:
            changes.add(
                Event.of(
                    step.handle(StepEvent.REJECT, now), self.actor, job_id=job.job_id, reason=reason
                ),
                step,
            )
            changes.job(step, state="rejected")
            self.make_ready(step)
            self._avoid[step.id] = name
        if cell.state is CellState.STARTING:
            changes.add(
                Event.of(cell.handle(CellEvent.REJECT, now), self.actor, reason=reason), cell
            )
            cell.job_id = None
        self.ready.refresh(self.units[step.unit_id])
        await self.recorder.commit(changes)
        self._wake.set()

    async def job_lost(self, name: str, job: Job, reason: str) -> None:
        step, cell, now = self.steps[job.step_id], self.cells[name], self.clock()
        changes = Changes()
        if step.job_id == job.job_id and step.state in ON_CELL:
            interrupt(self, step, changes, reason, now)
        if cell.job_id == job.job_id:
            self._reset_cell(cell, changes, now)
        self.ready.refresh(self.units[step.unit_id])
        await self.recorder.commit(changes)
        self._wake.set()

    async def job_finished(self, name: str, job: Job, report: JobCompleted | JobFaulted) -> None:
        """Record a job's end: the step done (and the next one ready) or failed."""
        step, cell, now = self.steps[job.step_id], self.cells[name], self.clock()
        unit = self.units[step.unit_id]
        changes = Changes()
        # A report of a job the cell is no longer running (one found finished when it
        # reconnected) settles the step but leaves the cell as it is now.
        ours = cell.job_id == job.job_id
        if ours:
            self.progress.pop(name, None)
        if step.job_id != job.job_id or step.state not in ON_CELL:
            changes.add(
                Event(
                    now,
                    self.actor,
                    "job",
                    str(job.job_id),
                    "late-report",
                    data={"cell": name, "step": step.id},
                )
            )
        elif (
            isinstance(report, JobCompleted)
            and report.outcome is JobOutcome.SUCCESSFUL
            and (missed := out_of_limits(step.quality.get("limits", {}), report.measurements))
            is None
        ):
            changes.add(
                Event.of(
                    step.handle(StepEvent.COMPLETE, now), self.actor, job_id=job.job_id, cell=name
                )
            )
            step.started_at = step.started_at or now
            step.finished_at = now
            step.result = {"outcome": report.outcome.value, "measurements": report.measurements}
            changes.job(step)
            if ours and cell.state in _RUNS_A_JOB:
                changes.add(Event.of(cell.handle(CellEvent.COMPLETE, now), self.actor))
            changes.clear(name, step.id, now)  # its earlier faults here are behind it
            self._advance(unit, changes, now)
        else:
            missed = None
            if isinstance(report, JobCompleted) and report.outcome is JobOutcome.SUCCESSFUL:
                missed = out_of_limits(step.quality.get("limits", {}), report.measurements)
            code, text = (
                (report.code, report.text)
                if isinstance(report, JobFaulted)
                else ("quality", f"out of limits: {missed}")
                if missed
                else ("unsuccessful", "the cell reported the job unsuccessful")
            )
            measured = report.measurements if isinstance(report, JobCompleted) else None
            record_failure(self, step, name, code, text, changes, now, measured)
            if ours and cell.state in _RUNS_A_JOB:
                # A part out of limits is the part's fault, not the cell's.
                event = CellEvent.COMPLETE if missed else CellEvent.FAULT
                changes.add(Event.of(cell.handle(event, now), self.actor, code=code, text=text))
            if self.aborting.pop(job.job_id, None) is not None:
                # An operator aborted it: no automatic retry; the unit waits for them
                # (mes step retry, unit rework or scrap).
                if unit.state in (UnitState.IN_PROGRESS, UnitState.HELD):
                    changes.add(
                        Event.of(unit.handle(UnitEvent.FAIL, now), self.actor, step=step.id),
                        unit,
                    )
            else:
                after_failure(self, unit, step, name, changes, now, quality=missed is not None)
        if ours:
            self._reset_cell(cell, changes, now)
        changes.add(step, unit, cell)
        self.ready.refresh(unit)
        crash_point("finish.before-commit")
        if ours:
            # The freed cell's next job may be decided while this commits: the dispatch
            # commit queues behind it (FIFO), so the start goes out only after both.
            self._freeing.add(name)
        self._wake.set()
        try:
            await self.recorder.commit(changes)
        finally:
            self._freeing.discard(name)
        crash_point("finish.after-commit")
        self._wake.set()

    # -- decisions ---------------------------------------------------------------------

    def _advance(self, unit: Unit, changes: Changes, now: datetime) -> None:
        for nxt in unit.next_ready():
            changes.add(Event.of(nxt.handle(StepEvent.READY, now), self.actor), nxt)
            self.make_ready(nxt)
        if unit.complete and unit.state is UnitState.IN_PROGRESS:
            changes.add(Event.of(unit.handle(UnitEvent.FINISH, now), self.actor), unit)
            self.forget(unit)

    def _reset_cell(self, cell: Cell, changes: Changes, now: datetime) -> None:
        """Bring a cell that ended a job back to idle, journaling each PackML step."""
        if cell.state is CellState.ABORTED:
            changes.add(Event.of(cell.handle(CellEvent.CLEAR, now), self.actor))
        if cell.state in (CellState.COMPLETE, CellState.STOPPED):
            changes.add(Event.of(cell.handle(CellEvent.RESET, now), self.actor))
        prompt = self.setups[cell.name].confirm_after_job
        if cell.state is CellState.IDLE and prompt:
            wait_for_operator(self, cell, prompt, f"job {cell.job_id} ended", changes, now)
        elif cell.state is CellState.IDLE and cell.hold:
            changes.add(
                Event.of(
                    cell.handle(CellEvent.HOLD, now),
                    self.actor,
                    reason=f"an operator held it during its job: {cell.hold}",
                )
            )
        cell.job_id = None
        changes.add(cell)

    async def _unmakeable(self, step: Step, reason: str) -> None:
        """A step whose program cannot be made: abort it and fail its unit (no cell can
        run it; the family or the unit's options need a person)."""
        if step.state is not StepState.READY:
            return
        unit, now, changes = self.units[step.unit_id], self.clock(), Changes()
        self.ready.discard(step)
        changes.add(
            Event.of(
                step.handle(StepEvent.ABORT, now),
                self.actor,
                reason=f"program cannot be made: {reason}",
            ),
            step,
        )
        if unit.state is UnitState.RELEASED:
            changes.add(Event.of(unit.handle(UnitEvent.START, now), self.actor))
        changes.add(Event.of(unit.handle(UnitEvent.FAIL, now), self.actor, step=step.id), unit)
        changes.alarm(
            "high",
            f"program of {step.id} cannot be made: {reason}",
            now,
            subject=unit.id,
            code="program",
        )
        await self.recorder.commit(changes)

    def make_ready(self, step: Step) -> None:
        """Make ``step`` a dispatch candidate once its program is made, so a freed cell
        never waits for a toolpath: it takes other work meanwhile."""
        self.waiting_since.setdefault(step.unit_id, asyncio.get_running_loop().time())
        made = self.programs.prefetch(step.program_id)
        if made.done() and made.exception() is None:
            self.ready.add(step)
            return
        made.add_done_callback(lambda future: self._program_made(step, future))

    def _program_made(self, step: Step, made: asyncio.Future[Program]) -> None:
        if made.cancelled() or step.state is not StepState.READY:
            return  # shutting down, or aborted while the program was being made
        if self.steps.get(step.id) is not step:
            return  # its unit left while the program was being made
        error = made.exception()
        if error is None:
            self.ready.add(step)
            self._wake.set()
        elif isinstance(error, ValueError):
            self._tasks.add(task := asyncio.create_task(self._unmakeable(step, str(error))))
            task.add_done_callback(self._tasks.discard)
        else:
            log.error("cannot make the program of step %s: %s", step.id, error)

    def forget(self, unit: Unit) -> None:
        """Drop a finished unit from memory; the store keeps its record."""
        for step in unit.steps:
            self.steps.pop(step.id, None)
            self.ready.discard(step)
            self._avoid.pop(step.id, None)
            self._rejections.pop(step.id, None)
        self.units.pop(unit.id, None)
        self.waiting_since.pop(unit.id, None)
        self.programs.drop([step.program_id for step in unit.steps])
