"""Simulated cells: no hardware, the same driver interface."""

from drivers.sim.cell import SimCell

__all__ = ["SimCell"]
