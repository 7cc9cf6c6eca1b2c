"""A cell as the controller sees it, with a PackML-named state machine.

Theory of operation: a cell is ``offline`` until its driver connects, then ``idle``.
Handing it a job makes it ``starting`` until the cell echoes the job id (``execute``),
or refuses it (back to ``idle``). A finished job leaves it ``complete`` until the
controller records the result and resets it to ``idle``. A fault makes it ``aborted``;
clearing it (operator or automatic recovery) makes it ``stopped`` and a reset ``idle``.
An operator may ``hold`` an idle cell so no new job goes to it, or ``pause`` one running a
job on a machine that can (``held`` with its job; ``resume`` goes back to ``execute``; the
job may still end or fault while held). A cell that needs an operator between jobs is
held after each job with what it waits for (``waiting_for``) until one confirms it.
Losing the link from any
state makes it ``offline``. State names follow PackML (ISA-TR88.00.02) so devices are
mapped by name, never by integer code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mes.domain.machine import Transition, advance, table


class CellState(StrEnum):
    OFFLINE = "offline"
    IDLE = "idle"
    STARTING = "starting"
    EXECUTE = "execute"
    COMPLETE = "complete"
    HELD = "held"
    ABORTED = "aborted"
    STOPPED = "stopped"


class CellEvent(StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    START = "start"
    ACCEPT = "accept"
    REJECT = "reject"
    COMPLETE = "complete"
    RESET = "reset"
    FAULT = "fault"
    CLEAR = "clear"
    HOLD = "hold"
    UNHOLD = "unhold"
    PAUSE = "pause"
    RESUME = "resume"


_S, _E = CellState, CellEvent
_ONLINE = tuple(s for s in CellState if s is not CellState.OFFLINE)

CELL_TRANSITIONS: dict[tuple[CellState, CellEvent], CellState] = table(
    [
        (_S.OFFLINE, _E.CONNECT, _S.IDLE),
        (_ONLINE, _E.DISCONNECT, _S.OFFLINE),
        (_S.IDLE, _E.START, _S.STARTING),
        (_S.STARTING, _E.ACCEPT, _S.EXECUTE),
        (_S.STARTING, _E.REJECT, _S.IDLE),
        ((_S.STARTING, _S.EXECUTE, _S.HELD), _E.COMPLETE, _S.COMPLETE),
        ((_S.COMPLETE, _S.STOPPED), _E.RESET, _S.IDLE),
        ((_S.IDLE, _S.STARTING, _S.EXECUTE, _S.COMPLETE, _S.HELD), _E.FAULT, _S.ABORTED),
        (_S.ABORTED, _E.CLEAR, _S.STOPPED),
        (_S.IDLE, _E.HOLD, _S.HELD),
        (_S.HELD, _E.UNHOLD, _S.IDLE),
        (_S.EXECUTE, _E.PAUSE, _S.HELD),
        (_S.HELD, _E.RESUME, _S.EXECUTE),
    ]
)


@dataclass(slots=True)
class Cell:
    """A work cell: what it can do, what drives it, and where it stands."""

    name: str
    capabilities: frozenset[str]
    driver_kind: str
    state: CellState = CellState.OFFLINE
    job_id: int | None = None
    hold: str = ""
    """Why an operator holds the cell ("" : no hold): it is held, or will be when its
    job ends, until resumed, across lost links and restarts."""
    waiting_for: str = ""
    """What an operator must do and confirm before the cell takes a job (a printer's bed
    cleared, a CNC's stock changed); the cell is ``held`` meanwhile. Empty: nothing."""

    def handle(self, event: CellEvent, at: datetime) -> Transition:
        """Apply ``event`` at time ``at``.

        Raises:
            InvalidTransition: the event is not allowed in the current state.
        """
        before = self.state
        self.state = advance(CELL_TRANSITIONS, f"cell {self.name}", before, event)
        return Transition("cell", self.name, event.value, before.value, self.state.value, at)

    @property
    def available(self) -> bool:
        """Whether a new job may be handed to this cell now."""
        return self.state is CellState.IDLE

    def __repr__(self) -> str:
        return f"<Cell {self.name} {self.state.value}>"
