"""The plant as an OPC UA server, seen by a separate asyncua client the way SCADA sees it:
browse the cells, subscribe to their values, be refused writes, hold a cell when allowed,
and log in over Basic256Sha256 SignAndEncrypt with a certificate from ``mes certs init``."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.common.node import Node
from asyncua.crypto.security_policies import (
    SecurityPolicyAes256Sha256RsaPss,
    SecurityPolicyBasic256Sha256,
)
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from mes.certs import CertificateFiles, create_certificate
from mes.domain import CellState
from mes.faces.opcua import CELL_VARIABLES, PLANT_VARIABLES, PlantServer, PlantServerSettings
from mes.faces.view import PlantWatch
from tests.service.conftest import Plant, build, release_units, running

NAMESPACE = "urn:mes-batch-of-one:plant"
TIMEOUT = 10.0


def settings(**changes: Any) -> PlantServerSettings:
    base: dict[str, Any] = {"endpoint": "opc.tcp://127.0.0.1:0/mes", "update_ms": 50.0}
    return PlantServerSettings(**(base | changes))


@contextlib.asynccontextmanager
async def serving(plant: Plant, **changes: Any) -> AsyncIterator[PlantServer]:
    server = PlantServer(
        "test plant",
        list(plant.controller.cells),
        PlantWatch(plant.controller, plant.store),
        settings(**changes),
    )
    async with server:
        yield server


class Changes:
    """A subscription handler that lets a test wait for a node to take a value."""

    def __init__(self) -> None:
        self.values: dict[ua.NodeId, Any] = {}
        self.seen: dict[ua.NodeId, list[Any]] = {}
        self._changed = asyncio.Condition()

    def datachange_notification(self, node: Node, val: Any, _data: Any) -> None:
        self.values[node.nodeid] = val
        self.seen.setdefault(node.nodeid, []).append(val)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, node: Node, value: Any) -> None:
        async with asyncio.timeout(TIMEOUT), self._changed:
            await self._changed.wait_for(lambda: self.values.get(node.nodeid) == value)


async def cell_node(client: Client, cell: str, name: str = "") -> Node:
    ns = await client.get_namespace_index(NAMESPACE)
    path = [f"{ns}:Plant", f"{ns}:Cells", f"{ns}:{cell}"] + ([f"{ns}:{name}"] if name else [])
    return await client.nodes.objects.get_child(path)


async def test_a_client_browses_the_plant_and_its_cells(store) -> None:
    plant = build(store)
    async with running(plant), serving(plant) as server, Client(server.endpoint) as client:
        ns = await client.get_namespace_index(NAMESPACE)
        top = await client.nodes.objects.get_child(f"{ns}:Plant")
        names = {(await n.read_browse_name()).Name for n in await top.get_children()}
        assert names == {*PLANT_VARIABLES, "Cells"}
        cells = await top.get_child(f"{ns}:Cells")
        assert {(await n.read_browse_name()).Name for n in await cells.get_children()} == {
            "a1",
            "a2",
            "b1",
        }
        a1 = await cell_node(client, "a1")
        children = {(await n.read_browse_name()).Name: n for n in await a1.get_children()}
        assert set(children) == set(CELL_VARIABLES)  # read-only: no methods
        for name, vtype in CELL_VARIABLES.items():
            assert await children[name].read_data_type_as_variant_type() == vtype
        await server.updated(server.updates)
        assert await children["State"].read_value() == "idle"
        assert await children["Online"].read_value() is True
        name = await top.get_child(f"{ns}:Name")
        assert await name.read_value() == "test plant"


async def test_a_subscriber_follows_a_unit_through_a_cell(store) -> None:
    plant = build(store)
    async with running(plant), serving(plant) as server, Client(server.endpoint) as client:
        handler = Changes()
        subscription = await client.create_subscription(20, handler)
        state, unit, step, progress, done = [
            await cell_node(client, "a1", n)
            for n in ("State", "Unit", "Step", "Progress", "JobsDone")
        ]
        ns = await client.get_namespace_index(NAMESPACE)
        units_done = await client.nodes.objects.get_child([f"{ns}:Plant", f"{ns}:UnitsDone"])
        await subscription.subscribe_data_change([state, unit, step, progress, done, units_done])
        await handler.until(state, "idle")

        (unit_id,) = release_units(store, 1)
        plant.controller.wake()
        cut = await plant.started("a1")
        await handler.until(state, "execute")
        await handler.until(unit, unit_id)
        await handler.until(step, "cut")
        plant.fakes["a1"].progress(cut.job_id, 0.5)
        await handler.until(progress, 50.0)
        plant.fakes["a1"].complete(cut.job_id)
        await handler.until(done, 1)
        await handler.until(state, "idle")
        await handler.until(unit, "")
        check = await plant.started("b1")
        plant.fakes["b1"].complete(check.job_id)
        await handler.until(units_done, 1)
        assert handler.seen[state.nodeid].count("execute") == 1  # one change, one notification


async def test_values_cannot_be_written_and_a_read_only_plant_has_no_methods(store) -> None:
    plant = build(store)
    async with running(plant), serving(plant) as server, Client(server.endpoint) as client:
        state = await cell_node(client, "a1", "State")
        with pytest.raises(UaStatusCodeError) as refused:
            await state.write_value(ua.Variant("held", ua.VariantType.String))
        assert ua.StatusCode(refused.value.code).name in ("BadNotWritable", "BadUserAccessDenied")
        with pytest.raises(UaStatusCodeError):
            await (await cell_node(client, "a1")).add_variable(
                ua.NodeId("intruder", 2), "2:intruder", 1
            )
        assert plant.controller.cells["a1"].state is CellState.IDLE


async def test_an_operator_holds_and_resumes_a_cell_by_method_when_allowed(store) -> None:
    plant = build(store)
    async with (
        running(plant),
        serving(plant, read_only=False) as server,
        Client(server.endpoint) as client,
    ):
        ns = await client.get_namespace_index(NAMESPACE)
        a1 = await cell_node(client, "a1")
        request_id = await a1.call_method(f"{ns}:Hold", ua.Variant("shift change"))
        assert request_id > 0
        held = await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "hold")
        assert held.actor == "opcua" and held.data.get("reason") == "shift change"
        with pytest.raises(UaStatusCodeError):  # a number where a reason belongs
            await a1.call_method(f"{ns}:Hold", ua.Variant(7, ua.VariantType.UInt32))
        await a1.call_method(f"{ns}:Resume")
        await plant.wait_for(lambda e: e.subject == "a1" and e.transition == "unhold")
        assert plant.controller.cells["a1"].state is CellState.IDLE


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertificateFiles]:
    """The plant's certificate (``mes certs init``), a SCADA client's, and a stranger's."""
    root = tmp_path_factory.mktemp("pki")
    made = {name: create_certificate(root / name) for name in ("plant", "scada", "stranger")}
    shutil.copy(made["scada"].certificate, made["plant"].trust_dir / "scada.der")
    return made


async def secure_client(
    server: PlantServer,
    files: CertificateFiles,
    password: str,
    policy: type = SecurityPolicyBasic256Sha256,
) -> Client:
    client = Client(server.endpoint)
    client.application_uri = "urn:mes-batch-of-one:controller"
    client.set_user("scada")
    client.set_password(password)
    await client.set_security(
        policy,
        certificate=str(files.certificate),
        private_key=str(files.private_key),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    return client


async def test_sign_and_encrypt_lets_in_a_trusted_client_with_its_password_only(
    store, pki: dict[str, CertificateFiles], caplog: pytest.LogCaptureFixture
) -> None:
    plant = build(store)
    own = pki["plant"]
    secure = {
        "policy": "Basic256Sha256",
        "certificate": str(own.certificate),
        "private_key": str(own.private_key),
        "trust_dir": str(own.trust_dir),
        "users": {"scada": "s3cret"},
    }
    async with running(plant), serving(plant, **secure) as server:
        client = await secure_client(server, pki["scada"], "s3cret")
        async with client:
            assert await (await cell_node(client, "b1", "State")).read_value() == "idle"
        refusals = (
            (pki["scada"], "wrong", "BadUserAccessDenied", "login refused: user 'scada'"),
            (pki["stranger"], "s3cret", "BadCertificateUntrusted", str(own.trust_dir)),
        )
        for files, password, code, logged in refusals:
            client = await secure_client(server, files, password)
            with pytest.raises(UaStatusCodeError) as refused:
                async with asyncio.timeout(TIMEOUT):
                    await client.connect()
            assert ua.StatusCode(refused.value.code).name == code
            assert any(logged in r.getMessage() for r in caplog.records), logged
            with contextlib.suppress(Exception):
                await client.disconnect()
        plain = Client(server.endpoint)
        with pytest.raises((UaError, OSError, asyncio.TimeoutError)):
            async with asyncio.timeout(TIMEOUT):
                await plain.connect()  # no endpoint without security
        with contextlib.suppress(Exception):
            await plain.disconnect()


def test_certs_init_refuses_to_replace_a_certificate_unless_forced(tmp_path: Path) -> None:
    from mes.errors import MesError

    first = create_certificate(tmp_path)
    assert (first.private_key.stat().st_mode & 0o777) == 0o600
    with pytest.raises(MesError, match="--force"):
        create_certificate(tmp_path)
    before = first.certificate.read_bytes()
    create_certificate(tmp_path, force=True)
    assert first.certificate.read_bytes() != before


async def test_aes256_sha256_rsapss_is_served_when_configured(
    store, pki: dict[str, CertificateFiles]
) -> None:
    plant = build(store)
    own = pki["plant"]
    secure = {
        "policy": "Aes256_Sha256_RsaPss",
        "certificate": str(own.certificate),
        "private_key": str(own.private_key),
        "trust_dir": str(own.trust_dir),
        "users": {"scada": "s3cret"},
    }
    async with running(plant), serving(plant, **secure) as server:
        client = await secure_client(
            server, pki["scada"], "s3cret", SecurityPolicyAes256Sha256RsaPss
        )
        async with client:
            assert await (await cell_node(client, "a1", "Online")).read_value() is True
