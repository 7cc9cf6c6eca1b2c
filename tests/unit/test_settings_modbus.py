"""Modbus register maps in the plant file: the demo's map loads, bad maps say where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.modbus.codec import DataType, Order, Table
from mes.domain.job import MachineState
from mes.errors import ConfigError
from mes.settings import DEFAULT_PLANT_PATH, load_plant
from mes.settings.modbus import plc_map

PLANT = """\
[plant]
name = "PLC plant"

[[cells]]
name = "press-1"
capabilities = ["test"]
[cells.driver]
kind = "modbus"
register_map = "press"
port = 5020

[register_maps.press]
command = { address = 0, access = "rw" }
sequence = { address = 1, access = "rw" }
job_id = { address = 2, type = "uint32", access = "rw" }
state = { address = 10 }
ack = { address = 11 }
current_job_id = { address = 12, type = "uint32" }
last_job_id = { address = 14, type = "uint32" }
outcome = { address = 16 }
[register_maps.press.recipe]
force_kn = { address = 4, type = "float32", order = "CDAB", access = "rw", min = 0, max = 200 }
"""

FAMILY = """\
[family]
name = "part"

[[steps]]
name = "press"
capability = "test"
duration_s = 10
"""


def write(tmp_path: Path, plant: str) -> Path:
    (tmp_path / "products").mkdir(exist_ok=True)
    (tmp_path / "products" / "part.toml").write_text(FAMILY)
    path = tmp_path / "plant.toml"
    path.write_text(plant)
    return path


def problems(tmp_path: Path, plant: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as info:
        load_plant(write(tmp_path, plant))
    return [(p.line, p.path, p.reason) for p in info.value.problems]


def test_the_demo_plant_has_a_modbus_cell_with_a_sound_map() -> None:
    plant = load_plant(DEFAULT_PLANT_PATH)
    kinds = {c.name: c.driver.kind for c in plant.cells}
    assert "modbus" in kinds.values()
    rig = plc_map(plant.config.register_maps["rig"])
    assert rig.point("job_id").type is DataType.UINT32
    assert rig.recipe["expected_s"].order is Order.CDAB
    assert rig.state_of(6) is MachineState.EXECUTE  # PackML numbers by default
    assert rig.state_of(99) is MachineState.UNKNOWN
    assert len(rig.status_reads()) == 1  # the whole status block in one request


def test_a_minimal_map_loads_with_packml_defaults(tmp_path: Path) -> None:
    plant = load_plant(write(tmp_path, PLANT))
    press = plc_map(plant.config.register_maps["press"])
    assert press.point("command").table is Table.HOLDING
    assert press.commands["start"] == 2
    assert press.recipe["force_kn"].maximum == 200


def test_one_based_addressing_shifts_every_point(tmp_path: Path) -> None:
    text = PLANT.replace("[register_maps.press]\n", "[register_maps.press]\naddressing = 1\n")
    text = text.replace("command = { address = 0,", "command = { address = 7,")
    found = problems(tmp_path, text)
    # Register 0 does not exist when counting from 1; the other points moved down by one,
    # which opens a gap between sequence (now 0) and the command (now 6).
    assert any(
        path == "register_maps.press.sequence.address" and "must be next to" in reason
        for _, path, reason in found
    )


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (
            ('register_map = "press"', 'register_map = "stamp"'),
            "cells[0].driver.register_map",
            "no register map 'stamp' under [register_maps] (known: press)",
        ),
        (
            ("port = 5020", 'transport = "rtu"'),
            "cells[0].driver.transport",
            "an RTU link needs serial_port (a device path or a pyserial URL)",
        ),
        (
            ("state = { address = 10 }", 'state = { address = 10, access = "rw" }'),
            "register_maps.press.state",
            'a status or result point is read-only: use access = "ro"',
        ),
        (
            ("job_id = { address = 2,", "job_id = { address = 3,"),
            "register_maps.press",
            "overlap",
        ),
        (
            ("force_kn = { address = 4,", "force_kn = { address = 5,"),
            "register_maps.press",
            "nothing covers holding 4..4 between 'job_id' and 'recipe.force_kn'",
        ),
        (
            (
                "state = { address = 10 }",
                'state = { address = 10, type = "float32", table = "coil" }',
            ),
            "register_maps.press.state",
            "bool",
        ),
        (
            (
                'access = "rw", min = 0, max = 200 }',
                'access = "rw", min = 0, max = 200, default = 500 }',
            ),
            "register_maps.press.recipe.force_kn.default",
            "500",
        ),
        (
            (
                "outcome = { address = 16 }",
                "outcome = { address = 16 }\nstates = { idle = 1, execute = 1 }",
            ),
            "register_maps.press.states.execute",
            "code 1 is also 'idle'",
        ),
        (
            (
                "outcome = { address = 16 }",
                "outcome = { address = 16 }\nstates = { idle = 1, done = 2 }",
            ),
            "register_maps.press.states.done",
            "",
        ),
    ],
    ids=[
        "unknown map",
        "rtu without port",
        "writable status",
        "overlap",
        "gap in command block",
        "type unfit for table",
        "default out of range",
        "duplicate state code",
        "unknown state name",
    ],
)
def test_bad_maps_name_the_key_and_the_reason(
    tmp_path: Path, change: tuple[str, str], path: str, reason: str
) -> None:
    old, new = change
    assert old in PLANT
    found = problems(tmp_path, PLANT.replace(old, new))
    assert any(p == path and reason in r for _, p, r in found), found
    assert all(line is not None for line, _, _ in found)
