"""The PackML state flow both simulated machines run (the Modbus PLC and the OPC UA
machine): where a scan takes each transient state, and which command starts which
transition from which state. Data, shared, so the two simulators cannot drift apart."""

from __future__ import annotations

from mes.domain.job import MachineState

S = MachineState

#: Transient state -> where the next scan takes it.
NEXT: dict[MachineState, MachineState] = {
    S.STARTING: S.EXECUTE,
    S.HOLDING: S.HELD,
    S.UNHOLDING: S.EXECUTE,
    S.ABORTING: S.ABORTED,
    S.STOPPING: S.STOPPED,
    S.CLEARING: S.STOPPED,
    S.RESETTING: S.IDLE,
    S.COMPLETING: S.COMPLETE,
}
#: States with a job on the machine (it may be aborted from them).
JOB_STATES = (S.STARTING, S.EXECUTE, S.HOLDING, S.HELD, S.UNHOLDING)
#: (command, state) -> the transient state it starts; ``start`` is checked apart.
COMMANDS: dict[tuple[str, MachineState], MachineState] = {
    ("hold", S.EXECUTE): S.HOLDING,
    ("unhold", S.HELD): S.UNHOLDING,
    **{("abort", state): S.ABORTING for state in JOB_STATES},
    ("stop", S.EXECUTE): S.STOPPING,
    ("stop", S.HELD): S.STOPPING,
    ("clear", S.ABORTED): S.CLEARING,
    ("reset", S.COMPLETE): S.RESETTING,
    ("reset", S.STOPPED): S.RESETTING,
}
