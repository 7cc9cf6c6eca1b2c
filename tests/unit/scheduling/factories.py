"""Small problems for the scheduling tests, built by hand or drawn by Hypothesis."""

from __future__ import annotations

from hypothesis import strategies as st

from routing.scheduling.model import Availability, Job, Machine, Operation, Problem

MATERIALS = ("pla", "petg", "abs")
COLOURS = ("black", "white")


def printer_problem(order: tuple[str, ...], run: int = 100, change: int = 600) -> Problem:
    """One printer, one operation per material in ``order``, a material change costing
    ``change``; the printer starts loaded with PLA."""
    ops = tuple(
        Operation(f"o{i}", f"j{i}", {"p1": run}, attributes={"material": m})
        for i, m in enumerate(order)
    )
    jobs = tuple(Job(f"j{i}") for i in range(len(order)))
    printer = Machine("p1", setup_s={"material": change}, state={"material": "pla"})
    return Problem(ops, (printer,), jobs)


@st.composite
def problems(draw: st.DrawFn, setups: bool = True, max_ops: int = 14) -> Problem:
    """Random problems: chains per job plus a few edges across jobs (acyclic because an
    edge only ever points to a later operation), 1-4 eligible machines with their own
    durations (zero included), attribute setups, a held machine, late availability."""
    n_machines = draw(st.integers(1, 4))
    names = [f"m{k}" for k in range(n_machines)]
    held = draw(st.sampled_from([None, *names])) if n_machines > 1 else None
    machines = tuple(
        Machine(
            name,
            setup_s=(
                {"material": draw(st.integers(0, 5)), "colour": draw(st.integers(0, 3))}
                if setups and draw(st.booleans())
                else {}
            ),
            state={"material": draw(st.sampled_from(MATERIALS))} if draw(st.booleans()) else {},
            availability=Availability.HELD if name == held else Availability.AVAILABLE,
            available_from=draw(st.sampled_from([0, 0, 0, 3, 7.5])),
        )
        for name in names
    )
    usable = [m.name for m in machines if m.usable]
    n_jobs = draw(st.integers(1, 5))
    ops: list[Operation] = []
    jobs = []
    for j in range(n_jobs):
        jobs.append(
            Job(f"j{j}", due=draw(st.none() | st.integers(0, 60)), priority=draw(st.integers(0, 2)))
        )
        previous: str | None = None
        for o in range(draw(st.integers(1, 4))):
            if len(ops) >= max_ops:
                break
            eligible = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
            if not any(name in usable for name in eligible):
                eligible.append(draw(st.sampled_from(usable)))
            durations = {name: draw(st.integers(0, 9)) for name in eligible}
            after = [previous] if previous else []
            if ops and draw(st.integers(0, 4)) == 0:
                other = draw(st.sampled_from(ops)).id
                if other not in after:
                    after.append(other)
            attributes = {}
            if draw(st.booleans()):
                attributes["material"] = draw(st.sampled_from(MATERIALS))
            if draw(st.booleans()):
                attributes["colour"] = draw(st.sampled_from(COLOURS))
            op = Operation(f"j{j}.{o}", f"j{j}", durations, tuple(after), attributes)
            ops.append(op)
            previous = op.id
    return Problem(tuple(ops), machines, tuple(jobs), name="random")
