"""The job contract between the controller and every cell, as plain values.

The controller hands a cell a :class:`Job` (a never-reused integer job id and the
program or recipe for this unit); the cell echoes the id when it accepts it, then
reports :class:`JobProgress` while running and ends with :class:`JobCompleted`
(measurements) or :class:`JobFaulted` (code and text). A cell can be asked for its
:class:`CellStatus`: its state, the job it runs and the last job it finished. The
vocabulary follows the OPC UA ISA-95 job-control model (Store/Start/Pause/Resume/Abort;
results successful or unsuccessful) so protocol drivers map onto it directly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class MachineState(StrEnum):
    """What a machine says it is doing, by PackML name (ISA-TR88.00.02).

    Each driver maps its device's own codes onto these names (never by raw integer:
    PackTags, OPC UA TMC and vendors number them differently).
    """

    STOPPED = "stopped"
    STARTING = "starting"
    IDLE = "idle"
    SUSPENDED = "suspended"
    EXECUTE = "execute"
    STOPPING = "stopping"
    ABORTING = "aborting"
    ABORTED = "aborted"
    HOLDING = "holding"
    HELD = "held"
    UNHOLDING = "unholding"
    SUSPENDING = "suspending"
    UNSUSPENDING = "unsuspending"
    RESETTING = "resetting"
    COMPLETING = "completing"
    COMPLETE = "complete"
    CLEARING = "clearing"
    #: The machine reported a code its map does not name.
    UNKNOWN = "unknown"

    @property
    def running(self) -> bool:
        """A job is under way (possibly paused)."""
        return self in _RUNNING

    @property
    def acting(self) -> bool:
        """A PackML acting state the machine leaves on its own (starting, resetting...):
        a command waits until it has."""
        return self in _ACTING


#: PackML (PackTags v3) ``StateCurrent`` numbers by state name: how PLCs and PackML
#: OPC UA servers that carry the state as a number count.
PACKML_STATE_NUMBERS: dict[str, int] = {
    "clearing": 1,
    "stopped": 2,
    "starting": 3,
    "idle": 4,
    "suspended": 5,
    "execute": 6,
    "stopping": 7,
    "aborting": 8,
    "aborted": 9,
    "holding": 10,
    "held": 11,
    "unholding": 12,
    "suspending": 13,
    "unsuspending": 14,
    "resetting": 15,
    "completing": 16,
    "complete": 17,
}
#: PackML ``CntrlCmd`` numbers by command name.
PACKML_COMMAND_NUMBERS: dict[str, int] = {
    "reset": 1,
    "start": 2,
    "stop": 3,
    "hold": 4,
    "unhold": 5,
    "abort": 8,
    "clear": 9,
}


_RUNNING = frozenset(
    {
        MachineState.STARTING,
        MachineState.EXECUTE,
        MachineState.HOLDING,
        MachineState.HELD,
        MachineState.UNHOLDING,
        MachineState.SUSPENDING,
        MachineState.SUSPENDED,
        MachineState.UNSUSPENDING,
        MachineState.COMPLETING,
    }
)


class ProgramKind(StrEnum):
    #: Named, typed parameters for a PLC cell (canonical JSON).
    RECIPE = "recipe"
    #: G-code text for a serial machine.
    GCODE = "gcode"
    #: A call of a G-code generator (name + parameters, canonical JSON); made into
    #: ``GCODE`` when the step is dispatched.
    GENERATOR = "generator"


_ACTING = frozenset(
    {
        MachineState.STARTING,
        MachineState.CLEARING,
        MachineState.RESETTING,
        MachineState.HOLDING,
        MachineState.UNHOLDING,
        MachineState.SUSPENDING,
        MachineState.UNSUSPENDING,
        MachineState.STOPPING,
        MachineState.ABORTING,
        MachineState.COMPLETING,
    }
)

#: Codes by which a machine refuses a command, and the ends it reports for a job it
#: was told to stop: the same on every protocol (docs/modbus.md, docs/opcua.md).
REFUSALS = {
    1: "start refused: not idle",
    2: "start refused: job id already started (or 0)",
    3: "start refused: bad recipe",
    4: "command not allowed in this state",
}
STOP_CODES = {900: "job aborted", 901: "job stopped"}


@dataclass(frozen=True, slots=True)
class Program:
    """What a cell runs for one step: G-code text or a recipe of named parameters.

    ``id`` is the content hash, so a program is stored once however many steps use it.
    """

    kind: ProgramKind
    body: str

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.kind.value}\n{self.body}".encode()).hexdigest()[:20]

    @classmethod
    def recipe(cls, parameters: dict[str, Any]) -> Program:
        """A recipe program from named parameters (canonical JSON, so equal recipes match)."""
        body = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
        return cls(ProgramKind.RECIPE, body)


@dataclass(frozen=True, slots=True)
class Job:
    """One hand-off of one step to one cell."""

    job_id: int
    step_id: str
    unit_id: str
    capability: str
    program: Program
    expected_s: float


class JobOutcome(StrEnum):
    SUCCESSFUL = "successful"
    UNSUCCESSFUL = "unsuccessful"


@dataclass(frozen=True, slots=True)
class JobProgress:
    """The cell is running the job; ``fraction`` runs 0..1."""

    job_id: int
    fraction: float


@dataclass(frozen=True, slots=True)
class JobCompleted:
    """The cell finished the job; ``measurements`` are what it measured, if anything."""

    job_id: int
    measurements: dict[str, float] = field(default_factory=dict)
    outcome: JobOutcome = JobOutcome.SUCCESSFUL


@dataclass(frozen=True, slots=True)
class JobFaulted:
    """The job ended in a fault; ``code`` and ``text`` are the cell's own words."""

    job_id: int
    code: str
    text: str


JobReport = JobProgress | JobCompleted | JobFaulted


@dataclass(frozen=True, slots=True)
class Reading:
    """A sensor's value as the cell reports it (a hotend's temperature in deg C), with
    its set point where it has one."""

    value: float
    target: float | None = None


@dataclass(frozen=True, slots=True)
class CellStatus:
    """What a cell says about itself when asked (used to reconcile after a restart)."""

    state: MachineState
    job_id: int | None = None
    last_job_id: int | None = None
    last_report: JobCompleted | JobFaulted | None = None
