"""The composition root: the one place where config, store, drivers and service meet."""

from __future__ import annotations

import logging

from drivers.base import Driver
from drivers.sim import SimCell
from mes.service.controller import CellSetup, Controller, ControllerOptions
from mes.settings import CellConfig, Plant, SimDriverConfig
from mes.store import Store
from routing.fit import Station
from routing.programs.gcode import WORDS_BY_MACHINE, Envelope
from routing.scheduling.optimizer import available as optimizer_available

log = logging.getLogger(__name__)


def cell_setups(plant: Plant) -> list[CellSetup]:
    """What the controller needs to know of each configured cell."""
    return [
        CellSetup(
            name=c.name,
            capabilities=frozenset(c.capabilities),
            driver_kind=c.driver.kind,
            factors=dict(c.duration_factors),
            rerun_interrupted=c.rerun_interrupted,
            setup_s=dict(c.setup_s),
        )
        for c in plant.cells
    ]


def stations(plant: Plant) -> list[Station]:
    """The cells as the planner sees them: capabilities, and machine limits where declared."""
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


def build_driver(cell: CellConfig, *, speed: float = 1.0, seed: int | str = 0) -> Driver:
    """The driver for one configured cell. ``speed`` scales simulated cells' time."""
    config = cell.driver
    if isinstance(config, SimDriverConfig):
        return SimCell(
            cell.name, speed=speed * config.speed, fault_rate=config.fault_rate, seed=seed
        )
    raise NotImplementedError(f"no driver for kind {config.kind!r}")  # pragma: no cover


def controller_options(plant: Plant) -> ControllerOptions:
    """The controller's options from the plant config; the optimizer only if installed."""
    section = plant.config.plant
    optimize_s = section.optimize_s
    if optimize_s > 0 and not optimizer_available():
        log.warning(
            "optimize_s is set but OR-Tools is not installed (pip install -e '.[opt]'); "
            "dispatching by the %r rule alone",
            section.dispatch,
        )
        optimize_s = 0.0
    return ControllerOptions(
        rule=section.dispatch, optimize_s=optimize_s, replan_s=section.replan_s
    )


def build_controller(
    plant: Plant,
    store: Store,
    *,
    speed: float = 1.0,
    seed: int | str = 0,
    options: ControllerOptions | None = None,
    actor: str = "controller",
) -> Controller:
    """A controller for ``plant`` on ``store``, with a driver for every cell."""
    drivers = {c.name: build_driver(c, speed=speed, seed=seed) for c in plant.cells}
    options = options or controller_options(plant)
    return Controller(store, cell_setups(plant), drivers, options=options, actor=actor)
