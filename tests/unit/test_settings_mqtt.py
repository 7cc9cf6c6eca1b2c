"""``[mqtt]`` and ``[intake]`` in the plant file: every bad value named at its key and line;
the password never in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mes.errors import ConfigError
from mes.settings import load_plant
from tests.unit.test_settings_modbus import FAMILY

PLANT = """\
[plant]
name = "MQTT plant"

[[cells]]
name = "press-1"
capabilities = ["test"]
area = "hall-1"
line = "line-a"
[cells.driver]
kind = "sim"

[[cells]]
name = "press-2"
capabilities = ["test"]
[cells.driver]
kind = "sim"

[mqtt]
host = "broker.local"
enterprise = "acme"
site = "works-1"
"""


def load(tmp_path: Path, extra: str = "", plant: str = PLANT):  # type: ignore[no-untyped-def]
    (tmp_path / "products").mkdir(exist_ok=True)
    (tmp_path / "products" / "part.toml").write_text(FAMILY)
    (tmp_path / "plant.toml").write_text(plant + extra)
    return load_plant(tmp_path / "plant.toml")


def problems(tmp_path: Path, extra: str = "", plant: str = PLANT) -> list[tuple[int | None, str]]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra, plant)
    return [(p.line, p.path) for p in info.value.problems]


def test_a_minimal_section_takes_the_defaults(tmp_path: Path) -> None:
    plant = load(tmp_path)
    mqtt = plant.config.mqtt
    assert mqtt is not None
    assert (mqtt.host, mqtt.port, mqtt.tls, mqtt.protocol) == ("broker.local", None, None, "5")
    assert (mqtt.area, mqtt.line, mqtt.intake) == ("default", "default", False)
    assert [(c.area, c.line) for c in plant.cells] == [("hall-1", "line-a"), ("", "")]
    assert plant.config.intake is None


def test_a_plant_without_mqtt_has_none(tmp_path: Path) -> None:
    plant = load(tmp_path, plant=PLANT[: PLANT.index("[mqtt]")])
    assert plant.config.mqtt is None


@pytest.mark.parametrize(
    ("extra", "line", "path", "says"),
    [
        ('port = "1883"\n', 22, "mqtt.port", "must be an integer"),
        ("port = 70000\n", 22, "mqtt.port", "less than or equal to 65535"),
        ('protocol = "4"\n', 22, "mqtt.protocol", "'5' or '3.1.1'"),
        ('password = "hunter2"\n', 22, "mqtt.password", "unknown key"),
        ("backlog_rate = 0\n", 22, "mqtt.backlog_rate", "greater than 0"),
        ("max_attempts = 0\n", 22, "mqtt.max_attempts", "greater than or equal to 1"),
        ("keepalive_s = 1\n", 22, "mqtt.keepalive_s", "greater than or equal to 5"),
        ('area = "a/b"\n', 22, "mqtt.area", "not a valid topic level"),
        ('client_id_prefix = "mes#"\n', 22, "mqtt.client_id_prefix", "not a valid topic level"),
        ("[mqtt.reconnect]\ncap_s = -1\n", 23, "mqtt.reconnect.cap_s", "greater than 0"),
    ],
)
def test_a_bad_value_is_named_at_its_key(
    tmp_path: Path, extra: str, line: int, path: str, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    (problem,) = info.value.problems
    assert (problem.line, problem.path) == (line, path)
    assert says in problem.reason
    assert problem.file.endswith("plant.toml")


@pytest.mark.parametrize(
    ("field", "value"),
    [("enterprise", "acme corp"), ("site", "+"), ("site", "$SYS"), ("enterprise", "")],
)
def test_the_namespace_root_is_made_of_topic_levels(tmp_path: Path, field: str, value: str) -> None:
    plant = PLANT.replace(f'{field} = "', f'{field} = "{value}" #"')
    assert problems(tmp_path, plant=plant) == [(21 if field == "site" else 20, f"mqtt.{field}")]


def test_the_namespace_root_is_required(tmp_path: Path) -> None:
    plant = PLANT.replace('site = "works-1"\n', "")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, plant=plant)
    assert [(p.path, p.reason) for p in info.value.problems] == [("mqtt.site", "is required")]


def test_cells_give_area_and_line_as_topic_levels_and_areas_avoid_reserved_names(
    tmp_path: Path,
) -> None:
    plant = PLANT.replace('area = "hall-1"', 'area = "units"').replace(
        'line = "line-a"', 'line = "line a"'
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, plant=plant)
    found = [(p.line, p.path, p.reason) for p in info.value.problems]
    assert [(line, path) for line, path, _ in found] == [
        (7, "cells[0].area"),
        (8, "cells[0].line"),
    ]
    assert "taken by the MQTT topic tree" in found[0][2]


def test_the_password_comes_from_the_environment_or_a_file_never_both(tmp_path: Path) -> None:
    config = load(tmp_path, 'username = "mes"\npassword_env = "MQTT_PASSWORD"\n').config.mqtt
    assert (config.username, config.password_env) == ("mes", "MQTT_PASSWORD")
    assert problems(
        tmp_path, 'username = "mes"\npassword_env = "P"\npassword_file = "/run/secrets/p"\n'
    ) == [(24, "mqtt.password_file")]
    assert problems(tmp_path, 'password_file = "/run/secrets/p"\n') == [(22, "mqtt.password_file")]


def test_tls_with_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    plant = load(tmp_path, '[mqtt.tls]\nca_file = "ca.pem"\n')
    assert plant.config.mqtt is not None and plant.config.mqtt.tls is not None
    assert plant.config.mqtt.tls.ca_file == "ca.pem"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, '[mqtt.tls]\ncert_file = "me.pem"\n')
    (problem,) = info.value.problems
    assert problem.path == "mqtt.tls.key_file"
    assert "needs its key file" in problem.reason
    assert problems(tmp_path, '[mqtt.tls]\nkey_file = "me.key"\n') == [(23, "mqtt.tls.key_file")]


def test_intake_names_a_folder(tmp_path: Path) -> None:
    plant = load(tmp_path, '\n[intake]\nfolder = "inbox"\n')
    assert plant.config.intake is not None
    assert (plant.config.intake.folder, plant.config.intake.poll_s) == ("inbox", 1.0)
    assert problems(tmp_path, "\n[intake]\nfolder = 3\n") == [(24, "intake.folder")]
    assert problems(tmp_path, '\n[intake]\nfolder = "in"\npoll_s = 0\n') == [(25, "intake.poll_s")]
    assert problems(tmp_path, '\n[intake]\nfolder = "in"\nwatch = true\n') == [(25, "intake.watch")]
