"""Which cells a unit's step may run on: capability, then the program's fit.

A cell that runs G-code declares its machine class (the G/M words it accepts) and its
work envelope. A generated program is checked against each capable cell from the
generator's parameters alone (:func:`routing.programs.bounds` and ``words``: no
G-code is made), so
releasing thousands of units stays fast. A step fits the cells that pass; a step that
fits none is refused at release with every cell's reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from mes.domain.job import ProgramKind
from routing.planner import PlannedStep
from routing.programs import bounds, words
from routing.programs.gcode import Envelope, check_bounds


@dataclass(frozen=True, slots=True)
class Station:
    """A cell as the planner sees it: what it can do and, if it runs G-code, its limits."""

    name: str
    capabilities: frozenset[str]
    envelope: Envelope | None = None
    words: frozenset[str] = frozenset()


def place(step: PlannedStep, stations: Sequence[Station]) -> tuple[tuple[str, ...], list[str]]:
    """The cells ``step`` may run on, and why the others cannot.

    Raises:
        ValueError: the generator refuses the program's parameters.

    Returns:
        ``(cells, reasons)``: ``cells`` is empty when every capable cell will do (no
        restriction); ``reasons`` lists ``"cell: why"`` for each capable cell that
        cannot take the program. A step that fits no cell has reasons and no cells.
    """
    capable = [s for s in stations if step.capability in s.capabilities]
    if step.skipped or step.program.kind is not ProgramKind.GENERATOR:
        return (), []
    call = json.loads(step.program.body)
    box = bounds(call["generator"], call["parameters"])
    used = words(call["generator"], call["parameters"])
    fit: list[str] = []
    reasons: list[str] = []
    for station in capable:
        if station.envelope is None:
            fit.append(station.name)  # declares no limits (e.g. a simulated cell)
            continue
        problems = check_bounds(box, used, station.envelope, station.words)
        if problems:
            reasons.append(f"{station.name}: {'; '.join(problems)}")
        else:
            fit.append(station.name)
    if len(fit) == len(capable):
        return (), []
    return tuple(fit), reasons
