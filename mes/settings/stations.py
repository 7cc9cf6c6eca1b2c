"""The plant's cells as the planner sees them: capabilities, and machine limits where a
cell declares ``[cells.machine]`` (its G-code words and work envelope)."""

from __future__ import annotations

from mes.settings.loader import Plant
from routing.fit import Station
from routing.programs.gcode import WORDS_BY_MACHINE, Envelope


def stations(plant: Plant) -> list[Station]:
    """One :class:`Station` per cell of ``plant``, in plant order."""
    out = []
    for cell in plant.cells:
        machine = cell.machine
        if machine is None:
            out.append(Station(cell.name, frozenset(cell.capabilities)))
            continue
        envelope = Envelope(
            machine.x_mm[1],
            machine.y_mm[1],
            machine.z_mm[1],
            machine.x_mm[0],
            machine.y_mm[0],
            machine.z_mm[0],
        )
        words = WORDS_BY_MACHINE[machine.kind] | frozenset(machine.extra_words)
        out.append(Station(cell.name, frozenset(cell.capabilities), envelope, words))
    return out
