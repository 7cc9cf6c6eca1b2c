"""A PLC's register map as the driver and the simulator use it: points by role.

Theory of operation: the job contract lives in two blocks. The *command block* (command,
sequence, job id and the recipe) is what the controller writes, always in one FC16
request, so a PLC never sees half a job. The *status block* (state, acknowledgement,
current and last job id, outcome, error, progress, heartbeat) is what it polls; the
*results* are read once a job has ended. States and commands are mapped by name: the
numbers are the device's own (PackML's by default), never assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.modbus.codec import Block, Point, plan_reads
from mes.domain.job import REFUSALS, STOP_CODES, MachineState

Value = bool | int | float | str

#: Roles of the status block, in the order they are listed.
STATUS_ROLES = (
    "state",
    "ack",
    "current_job_id",
    "last_job_id",
    "outcome",
    "error",
    "progress",
    "heartbeat",
)
#: Roles of the command block (besides the recipe).
COMMAND_ROLES = ("command", "sequence", "job_id")


@dataclass(frozen=True, slots=True)
class PlcMap:
    """Where one kind of PLC keeps the job contract's points."""

    points: Mapping[str, Point]
    """Role (``state``, ``job_id``...) -> point; optional roles may be absent."""
    recipe: Mapping[str, Point] = field(default_factory=dict)
    defaults: Mapping[str, Value] = field(default_factory=dict)
    results: Mapping[str, Point] = field(default_factory=dict)
    states: Mapping[int, MachineState] = field(default_factory=dict)
    """Device code -> state name."""
    commands: Mapping[str, int] = field(default_factory=dict)
    successful: int = 1
    unsuccessful: int = 2
    faults: Mapping[str, str] = field(default_factory=dict)

    def point(self, role: str) -> Point:
        return self.points[role]

    def has(self, role: str) -> bool:
        return role in self.points

    def state_of(self, code: int) -> MachineState:
        """The state a device code means (``unknown`` for a code the map does not name)."""
        return self.states.get(code, MachineState.UNKNOWN)

    def code_of(self, state: MachineState) -> int:
        """The device's code for ``state`` (for the simulator)."""
        for code, name in self.states.items():
            if name is state:
                return code
        raise KeyError(f"the register map names no code for state {state.value!r}")

    def fault_text(self, code: int) -> str:
        return self.faults.get(str(code)) or (REFUSALS | STOP_CODES).get(
            code, f"PLC error code {code}"
        )

    def status_points(self) -> list[Point]:
        return [self.points[r] for r in STATUS_ROLES if r in self.points]

    def command_points(self) -> list[Point]:
        return [self.points[r] for r in COMMAND_ROLES] + list(self.recipe.values())

    def status_reads(self, *, max_registers: int = 125, span_gaps: int = 0) -> list[Block]:
        """The fewest read requests that cover the status block."""
        return plan_reads(self.status_points(), max_registers=max_registers, span_gaps=span_gaps)

    def result_reads(self, *, max_registers: int = 125, span_gaps: int = 0) -> list[Block]:
        """The fewest read requests that cover the results."""
        return plan_reads(
            list(self.results.values()), max_registers=max_registers, span_gaps=span_gaps
        )

    def all_points(self) -> list[Point]:
        return [*self.points.values(), *self.recipe.values(), *self.results.values()]
