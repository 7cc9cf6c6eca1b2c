"""Plant configuration: pydantic schema of the plant and product files, and their loader.

Load with :func:`load_plant`; every problem is reported at once as a
:class:`mes.errors.ConfigError` naming file, line, key path and reason.
"""

from __future__ import annotations

from mes.settings.loader import DEFAULT_PLANT_PATH, Plant, load_plant
from mes.settings.schema import (
    CellConfig,
    DriverConfig,
    FamilyConfig,
    OptionConfig,
    PlantConfig,
    PlantSection,
    SimDriverConfig,
    StepConfig,
)

__all__ = [
    "DEFAULT_PLANT_PATH",
    "CellConfig",
    "DriverConfig",
    "FamilyConfig",
    "OptionConfig",
    "Plant",
    "PlantConfig",
    "PlantSection",
    "SimDriverConfig",
    "StepConfig",
    "load_plant",
]
