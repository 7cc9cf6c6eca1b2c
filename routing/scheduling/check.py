"""Feasibility checker: every way a schedule breaks its problem, not just the first.

Theory of operation: the checker trusts nothing the schedulers computed. It walks the
problem's operations (each scheduled once, on an eligible, usable machine, for exactly
its duration there, after all its predecessors end) and then each machine's operations
in start order, carrying the machine's attribute state forward from its initial state:
consecutive operations must not overlap and must leave room for the setup the state
change needs; the first must not start before the machine is available plus its setup.
Schedulers may assume more setup than needed (never less), so a gap larger than the
setup is fine. Times are compared with a small tolerance for float round-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from routing.scheduling.model import Problem, Schedule, next_state, setup_time

EPS = 1e-6


class Kind(StrEnum):
    """What kind of rule a violation breaks."""

    MISSING = "missing"
    UNKNOWN = "unknown"
    ELIGIBILITY = "eligibility"
    DURATION = "duration"
    PRECEDENCE = "precedence"
    OVERLAP = "overlap"
    SETUP = "setup"
    AVAILABILITY = "availability"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, with the operations involved and a readable reason."""

    kind: Kind
    operations: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


def check(problem: Problem, schedule: Schedule) -> list[Violation]:
    """Every violation of ``problem``'s rules in ``schedule`` (empty when feasible).

    Args:
        problem: The problem the schedule claims to solve.
        schedule: Operation id -> slot.
    """
    out: list[Violation] = []
    slots = schedule.slots

    def add(kind: Kind, ops: tuple[str, ...], reason: str) -> None:
        out.append(Violation(kind, ops, reason))

    for op_id in sorted(set(slots) - set(problem.operation)):
        add(Kind.UNKNOWN, (op_id,), f"{op_id} is not an operation of the problem")
    for op in problem.operations:
        slot = slots.get(op.id)
        if slot is None:
            add(Kind.MISSING, (op.id,), f"{op.id} is not scheduled")
            continue
        machine = problem.machine.get(slot.machine)
        if slot.machine not in op.durations or machine is None:
            add(Kind.ELIGIBILITY, (op.id,), f"{op.id} cannot run on {slot.machine}")
        else:
            if not machine.usable:
                add(
                    Kind.AVAILABILITY,
                    (op.id,),
                    f"{op.id} runs on {slot.machine}, which is {machine.availability}",
                )
            want = op.durations[slot.machine]
            if abs((slot.end - slot.start) - want) > EPS:
                add(
                    Kind.DURATION,
                    (op.id,),
                    f"{op.id} on {slot.machine} lasts {slot.end - slot.start:g}, needs {want:g}",
                )
        if slot.start < -EPS:
            add(Kind.AVAILABILITY, (op.id,), f"{op.id} starts before time 0 ({slot.start:g})")
        for before in op.after:
            prior = slots.get(before)
            if prior is not None and slot.start < prior.end - EPS:
                add(
                    Kind.PRECEDENCE,
                    (before, op.id),
                    f"{op.id} starts at {slot.start:g} before {before} ends at {prior.end:g}",
                )
    for machine_name, sequence in schedule.sequences().items():
        machine = problem.machine.get(machine_name)
        if machine is None:
            continue  # reported as eligibility above
        state = dict(machine.state)
        ready, previous = machine.available_from, ""
        for op_id in sequence:
            known, slot = problem.operation.get(op_id), slots[op_id]
            attributes = known.attributes if known else {}
            setup = setup_time(machine.setup_s, state, attributes)
            if previous and slot.start < slots[previous].end - EPS:
                add(
                    Kind.OVERLAP,
                    (previous, op_id),
                    f"{previous} and {op_id} overlap on {machine_name}",
                )
            elif slot.start < ready + setup - EPS:
                if previous and setup > 0:
                    add(
                        Kind.SETUP,
                        (previous, op_id),
                        f"{op_id} starts {slot.start:g} on {machine_name}, but after {previous} "
                        f"it needs a setup of {setup:g} (not before {ready + setup:g})",
                    )
                elif not previous:
                    add(
                        Kind.AVAILABILITY,
                        (op_id,),
                        f"{op_id} starts {slot.start:g} on {machine_name}, which is available "
                        f"from {machine.available_from:g} (+ setup {setup:g})",
                    )
            state = next_state(state, attributes)
            ready, previous = max(ready, slot.end), op_id
    return out
