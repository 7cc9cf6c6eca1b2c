"""The pure domain: ids, orders, units, steps, cells, their state machines, the journal.

Standard library only; time is passed in, never read.
"""

from mes.domain.cell import Cell, CellEvent, CellState
from mes.domain.events import Event
from mes.domain.job import (
    CellStatus,
    Job,
    JobCompleted,
    JobFaulted,
    JobOutcome,
    JobProgress,
    JobReport,
    MachineState,
    Program,
    ProgramKind,
    Reading,
)
from mes.domain.machine import Transition
from mes.domain.order import Order
from mes.domain.step import Step, StepEvent, StepState
from mes.domain.unit import Unit, UnitEvent, UnitState

__all__ = [
    "Cell",
    "CellEvent",
    "CellState",
    "CellStatus",
    "Event",
    "Job",
    "JobCompleted",
    "JobFaulted",
    "JobOutcome",
    "JobProgress",
    "JobReport",
    "MachineState",
    "Order",
    "Program",
    "ProgramKind",
    "Reading",
    "Step",
    "StepEvent",
    "StepState",
    "Transition",
    "Unit",
    "UnitEvent",
    "UnitState",
]
