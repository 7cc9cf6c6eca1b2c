"""OPC UA cells in the plant file: security is explicit, secrets stay out of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mes.bootstrap import opcua_settings
from mes.errors import ConfigError, MesError
from mes.settings import load_plant
from mes.settings.opcua import OpcuaDriverConfig
from tests.unit.test_settings_modbus import FAMILY

PLANT = """\
[plant]
name = "UA plant"

[[cells]]
name = "mill-1"
capabilities = ["test"]
[cells.driver]
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
machine = "mill-1"
[cells.driver.security]
"""


def load(tmp_path: Path, security: str):  # type: ignore[no-untyped-def]
    (tmp_path / "products").mkdir(exist_ok=True)
    (tmp_path / "products" / "part.toml").write_text(FAMILY)
    (tmp_path / "plant.toml").write_text(PLANT + security)
    return load_plant(tmp_path / "plant.toml")


def test_no_security_needs_an_explicit_allow_insecure(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, 'policy = "None"\n')
    (problem,) = info.value.problems
    assert (problem.line, problem.path) == (12, "cells[0].driver.security.policy")
    assert "allow_insecure = true" in problem.reason
    plant = load(tmp_path, 'policy = "None"\nallow_insecure = true\n')
    assert plant.cells[0].driver.kind == "opcua"


def test_a_secure_policy_needs_a_certificate_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, 'policy = "Basic256Sha256"\ntrust_dir = "pki/trusted"\n')
    assert [p.path for p in info.value.problems] == [
        "cells[0].driver.security.certificate",
        "cells[0].driver.security.private_key",
    ]
    assert "mes certs init" in info.value.problems[0].reason


def test_a_password_in_the_plant_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, 'policy = "None"\nallow_insecure = true\npassword = "hunter2"\n')
    assert info.value.problems[0].path == "cells[0].driver.security.password"


def test_user_and_password_come_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "ua.secret"
    secret.write_text("s3cret\n")
    config = OpcuaDriverConfig.model_validate(
        {
            "kind": "opcua",
            "endpoint": "opc.tcp://h:4840",
            "machine": "m",
            "security": {
                "policy": "None",
                "allow_insecure": True,
                "user_env": "UA_USER",
                "password_file": str(secret),
            },
        }
    )
    with pytest.raises(MesError, match=r"\$UA_USER \(its OPC UA user\) is not set"):
        opcua_settings("m", config)
    monkeypatch.setenv("UA_USER", "operator")
    settings = opcua_settings("m", config)
    assert (settings.user, settings.password, settings.policy) == ("operator", "s3cret", None)
    assert "s3cret" not in repr(settings)


SERVER = """
[opcua_server]
endpoint = "opc.tcp://0.0.0.0:4850/mes"
[opcua_server.security]
"""


def test_the_plant_server_takes_the_same_security_rules(tmp_path: Path) -> None:
    cell = 'policy = "None"\nallow_insecure = true\n'
    with pytest.raises(ConfigError) as info:
        load(tmp_path, cell + SERVER + 'policy = "None"\n')
    (problem,) = info.value.problems
    assert problem.path == "opcua_server.security.policy" and problem.line == 18
    with pytest.raises(ConfigError) as info:
        load(tmp_path, cell + SERVER + "user_env = 'SCADA_USER'\n")
    assert [p.path for p in info.value.problems] == [
        "opcua_server.security.certificate",
        "opcua_server.security.private_key",
    ]
    server = load(tmp_path, cell + SERVER + 'policy = "None"\nallow_insecure = true\n')
    config = server.config.opcua_server
    assert config is not None and config.read_only and config.update_ms == 500.0
    assert load(tmp_path, cell).config.opcua_server is None


def test_a_node_map_needs_command_and_job_id_together(tmp_path: Path) -> None:
    insecure = 'policy = "None"\nallow_insecure = true\n'
    with pytest.raises(ConfigError) as info:
        load(tmp_path, insecure + '[cells.driver.nodes]\ncommand = "Command"\n')
    (problem,) = info.value.problems
    assert problem.path == "cells[0].driver.nodes.job_id" and "both" in problem.reason
    plant = load(
        tmp_path,
        insecure + '[cells.driver.nodes]\ncommand = "Command"\njob_id = "ns=3;s=Job"\n'
        'state = "Status/StateCurrent"\n',
    )
    settings = opcua_settings("mill-1", plant.cells[0].driver)
    assert settings.nodes == {
        "state": "Status/StateCurrent",
        "command": "Command",
        "job_id": "ns=3;s=Job",
    }


def test_a_cells_secure_connection_checks_the_servers_certificate(tmp_path: Path) -> None:
    """A secure policy without a trust directory would take whoever answers for the
    machine: refused at load, unless allow_insecure says so (and the start warns)."""
    secure = 'policy = "Basic256Sha256"\ncertificate = "c.der"\nprivate_key = "k.pem"\n'
    with pytest.raises(ConfigError) as info:
        load(tmp_path, secure)
    (problem,) = info.value.problems
    assert problem.path == "cells[0].driver.security.trust_dir"
    assert "allow_insecure = true to accept any server" in problem.reason
    assert load(tmp_path, secure + 'trust_dir = "pki/trusted"\n').cells
    assert load(tmp_path, secure + "allow_insecure = true\n").cells
