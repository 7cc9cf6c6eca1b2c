"""The OPC UA driver over Basic256Sha256 SignAndEncrypt with a user login, against the
simulated machine: a job runs; a wrong password and an untrusted server are refused with
a message that says what to fix."""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from drivers.opcua.driver import OpcuaCell, OpcuaSettings
from drivers.sim.opcua_machine import SimMachine
from drivers.sim.opcua_server import APPLICATION_URI, NAMESPACE_URI, OpcuaSimServer
from mes.domain.job import JobCompleted
from mes.errors import DeviceUnavailable
from tests.drivers.test_contract import follow, job

CONTROLLER_URI = "urn:mes-batch-of-one:controller"
module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    host = socket.gethostname()
    for name, uri, usage in (
        ("server", APPLICATION_URI, ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", CONTROLLER_URI, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key, cert = folder / f"{name}.pem", folder / f"{name}.der"
        await setup_self_signed_certificate(key, cert, uri, host, [usage], {"commonName": name})
    (folder / "trusted").mkdir()
    shutil.copy(folder / "server.der", folder / "trusted" / "server.der")
    (folder / "other").mkdir()  # trusts some other certificate, not this server's
    shutil.copy(folder / "client.der", folder / "other" / "client.der")
    (folder / "empty").mkdir()
    return folder


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(pki: Path) -> AsyncIterator[tuple[OpcuaSimServer, SimMachine]]:
    machine = SimMachine("secure-1", recipe={"expected_s": ua.VariantType.Double}, speed=100.0)
    sim = OpcuaSimServer(
        [machine],
        security="sign_encrypt",
        certificate=pki / "server.der",
        private_key=pki / "server.pem",
        users={"operator": "s3cret"},
    )
    async with sim:
        yield sim, machine


def settings(sim: OpcuaSimServer, pki: Path, *, password: str, trust: str) -> OpcuaSettings:
    return OpcuaSettings(
        endpoint=sim.endpoint,
        namespace=NAMESPACE_URI,
        machine="secure-1",
        policy="Basic256Sha256",
        mode="SignAndEncrypt",
        certificate=str(pki / "client.der"),
        private_key=str(pki / "client.pem"),
        trust_dir=str(pki / trust),
        application_uri=CONTROLLER_URI,
        user="operator",
        password=password,
    )


@module_loop
async def test_a_job_runs_over_sign_and_encrypt_with_a_user_login(server, pki) -> None:
    sim, machine = server
    driver = OpcuaCell("secure-1", settings(sim, pki, password="s3cret", trust="trusted"))
    await driver.connect()
    try:
        await driver.start_job(job(501))
        end = (await follow(driver, 501))[-1]
    finally:
        await driver.aclose()
    assert isinstance(end, JobCompleted) and end.job_id == 501
    assert machine.executed == [501]


@module_loop
async def test_a_wrong_password_is_refused_with_what_to_check(server, pki) -> None:
    sim, _ = server
    driver = OpcuaCell("secure-1", settings(sim, pki, password="wrong", trust="trusted"))
    with pytest.raises(DeviceUnavailable, match=r"user 'operator' refused \(BadUserAccessDenied\)"):
        await driver.connect()


@module_loop
@pytest.mark.parametrize("trust", ["other", "empty"])
async def test_an_untrusted_server_is_refused_with_where_to_trust_it(server, pki, trust) -> None:
    sim, _ = server
    driver = OpcuaCell("secure-1", settings(sim, pki, password="s3cret", trust=trust))
    with pytest.raises(DeviceUnavailable, match="copy its certificate into") as refused:
        await driver.connect()
    assert str(pki / trust) in str(refused.value)
