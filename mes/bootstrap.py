"""The composition root: the one place where config, store, drivers and service meet."""

from __future__ import annotations

from drivers.base import Driver
from drivers.sim import SimCell
from mes.service.controller import CellSetup, Controller, ControllerOptions
from mes.settings import CellConfig, Plant, SimDriverConfig
from mes.store import Store


def cell_setups(plant: Plant) -> list[CellSetup]:
    """What the controller needs to know of each configured cell."""
    return [
        CellSetup(
            name=c.name,
            capabilities=frozenset(c.capabilities),
            driver_kind=c.driver.kind,
            factors=dict(c.duration_factors),
            rerun_interrupted=c.rerun_interrupted,
        )
        for c in plant.cells
    ]


def build_driver(cell: CellConfig, *, speed: float = 1.0, seed: int | str = 0) -> Driver:
    """The driver for one configured cell. ``speed`` scales simulated cells' time."""
    config = cell.driver
    if isinstance(config, SimDriverConfig):
        return SimCell(
            cell.name, speed=speed * config.speed, fault_rate=config.fault_rate, seed=seed
        )
    raise NotImplementedError(f"no driver for kind {config.kind!r}")  # pragma: no cover


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
    return Controller(store, cell_setups(plant), drivers, options=options, actor=actor)
