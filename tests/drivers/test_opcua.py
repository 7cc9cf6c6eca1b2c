"""The OPC UA driver against the simulated machine, beyond the shared contract.

Over Basic256Sha256 SignAndEncrypt with a user login: a job runs; a wrong password and an
untrusted server are refused with a message that says what to fix. Without security: a
followed job's reports come from data-change notifications, not from polling; a server
restart in the middle of a job is noticed, the real controller's supervisor reconnects and
the job is followed to its end, executed once; recipe values reach the machine with their
nodes' declared types, and a value that does not fit is refused before anything is written.

asyncua servers take a second to start, so the module shares them on a module-scoped event
loop, each test with a machine of its own (the restart test has a server of its own). Waiting
is for notifications and journal entries inside ``asyncio.timeout``, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.callback import CallbackType, ServerItemCallback

from drivers.opcua.driver import OpcuaCell, OpcuaSettings
from drivers.sim.opcua_machine import SimMachine
from drivers.sim.opcua_server import NAMESPACE_URI, OpcuaSimServer
from mes.domain.job import Job, JobCompleted, JobProgress, Program
from mes.errors import DeviceUnavailable, JobRejected
from mes.service.controller import CellSetup, Controller, ControllerOptions
from mes.service.order_files import OrderSpec, UnitSpec
from mes.service.release import release
from mes.service.supervisor import Backoff
from mes.store import Store
from routing.family import Family, StepSpec
from tests.drivers.conftest import secure_login, secure_server
from tests.drivers.test_contract import follow, job
from tests.service.conftest import Plant, running

V = ua.VariantType
module_loop = pytest.mark.asyncio(loop_scope="module")


def settings(sim: OpcuaSimServer, machine: str, **fields: Any) -> OpcuaSettings:
    return OpcuaSettings(endpoint=sim.endpoint, namespace=NAMESPACE_URI, machine=machine, **fields)


# -- security ----------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(pki: Path) -> AsyncIterator[tuple[OpcuaSimServer, SimMachine]]:
    machine = SimMachine("secure-1", recipe={"expected_s": V.Double}, speed=100.0)
    async with OpcuaSimServer([machine], **secure_server(pki)) as sim:
        yield sim, machine


@module_loop
async def test_a_job_runs_over_sign_and_encrypt_with_a_user_login(server, pki) -> None:
    sim, machine = server
    driver = OpcuaCell("secure-1", settings(sim, "secure-1", **secure_login(pki)))
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
    driver = OpcuaCell("secure-1", settings(sim, "secure-1", **secure_login(pki, password="no")))
    with pytest.raises(DeviceUnavailable, match=r"user 'operator' refused \(BadUserAccessDenied\)"):
        await driver.connect()


@module_loop
@pytest.mark.parametrize("trust", ["other", "empty"])
async def test_an_untrusted_server_is_refused_with_where_to_trust_it(server, pki, trust) -> None:
    sim, _ = server
    driver = OpcuaCell("secure-1", settings(sim, "secure-1", **secure_login(pki, trust=trust)))
    with pytest.raises(DeviceUnavailable, match="copy its certificate into") as refused:
        await driver.connect()
    assert str(pki / trust) in str(refused.value)


# -- subscriptions and typed writes, without security -------------------------------------

#: Recipe parameters in node order, each of a type a Python value does not name by itself.
RECIPE = {
    "expected_s": V.Double,
    "width_mm": V.Float,
    "passes": V.UInt16,
    "serial": V.UInt32,
    "layers": V.Byte,
    "batch": V.Int64,
    "coolant": V.Boolean,
    "material": V.String,
}
#: Values that need each node's own type: 3e9 is above Int32, 2**40 above UInt32.
TYPED = {
    "width_mm": 12.5,
    "passes": 3,
    "serial": 3_000_000_000,
    "layers": 7,
    "batch": 2**40,
    "coolant": True,
    "material": "PLA",
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def plain() -> AsyncIterator[OpcuaSimServer]:
    machines = [
        SimMachine("follow-1", recipe={"expected_s": V.Double}),
        SimMachine("typed-1", recipe=RECIPE, speed=100.0),
    ]
    async with OpcuaSimServer(machines, scan_ms=5) as sim:
        yield sim


@pytest_asyncio.fixture(loop_scope="module")
async def reader(plain: OpcuaSimServer) -> AsyncIterator[Client]:
    """A client of its own, to look at the server's nodes beside the driver."""
    async with Client(plain.endpoint) as client:
        yield client


@pytest.fixture
def reads(plain: OpcuaSimServer) -> Iterator[list[list[ua.NodeId]]]:
    """The nodes of every Read a client sends while the test runs, one list per request."""
    requests: list[list[ua.NodeId]] = []

    def seen(event: ServerItemCallback, _dispatcher: object) -> None:
        if event.is_external:
            requests.append([item.NodeId for item in event.request_params.NodesToRead])

    # The simulator does not expose its asyncua Server; its callback hook is public.
    server = plain._server
    assert server is not None
    server.subscribe_server_callback(CallbackType.PreRead, seen)
    yield requests
    server.unsubscribe_server_callback(CallbackType.PreRead, seen)


@module_loop
async def test_a_followed_job_reports_progress_from_notifications_not_polling(
    plain: OpcuaSimServer, reads: list[list[ua.NodeId]]
) -> None:
    driver = OpcuaCell("follow-1", settings(plain, "follow-1", publishing_ms=20))
    await driver.connect()
    try:
        await driver.start_job(job(601, expected_s=1.0))  # 1 s: ~50 publishing intervals
        reads.clear()
        reports = await follow(driver, 601)
    finally:
        await driver.aclose()
    assert isinstance(reports[-1], JobCompleted)
    progress = [r for r in reports if isinstance(r, JobProgress)]
    assert len(progress) >= 10
    # The machine's own nodes were read a fixed few times however long the job ran: its
    # state once as the follow began, its outcome and results once at the end.
    ours = [ids for ids in reads if any(i.NamespaceIndex == plain.namespace_index for i in ids)]
    state = plain.node_id("follow-1", "State")
    assert sum(state in ids for ids in ours) <= 2, ours
    assert len(ours) <= 4, ours


async def recipe_nodes(reader: Client, sim: OpcuaSimServer) -> dict[str, ua.Variant]:
    """The typed-1 machine's recipe variables as the server holds them (value and type)."""
    nodes = [reader.get_node(sim.node_id("typed-1", f"Recipe/{name}")) for name in RECIPE]
    values = [await node.read_data_value() for node in nodes]
    return {name: value.Value for name, value in zip(RECIPE, values, strict=True)}


@module_loop
async def test_recipe_values_are_written_as_their_nodes_declared_types(
    plain: OpcuaSimServer, reader: Client
) -> None:
    machine = plain.machines["typed-1"]
    driver = OpcuaCell("typed-1", settings(plain, "typed-1"))
    await driver.connect()
    try:
        await driver.start_job(typed_job(701, TYPED))
        end = (await follow(driver, 701))[-1]
    finally:
        await driver.aclose()
    assert isinstance(end, JobCompleted)
    held = await recipe_nodes(reader, plain)
    assert {name: v.VariantType for name, v in held.items()} == RECIPE
    assert {name: held[name].Value for name in TYPED} == TYPED
    assert held["expected_s"].Value == 10.0  # the job's own duration
    assert machine.recipe == TYPED | {"expected_s": 10.0}
    assert machine.executed == [701]


def typed_job(job_id: int, recipe: dict[str, object], expected_s: float = 10.0) -> Job:
    return Job(job_id, f"U.7/{job_id}", "U.7", "test", Program.recipe(recipe), expected_s)


@module_loop
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("passes", 70_000),  # above UInt16
        ("passes", -1),  # unsigned
        ("passes", 2.5),  # not whole
        ("serial", 2**32),  # above UInt32
        ("layers", 256),  # above Byte
        ("batch", 2**63),  # above Int64
        ("width_mm", 1e39),  # beyond Float, though a Double
        ("width_mm", float("inf")),
        ("width_mm", "wide"),  # text for a number
        ("coolant", 1),  # a number for a Boolean
        ("material", 5),  # a number for a String
    ],
)
async def test_a_value_that_does_not_fit_is_refused_before_anything_is_written(
    plain: OpcuaSimServer, reader: Client, name: str, value: object
) -> None:
    machine = plain.machines["typed-1"]
    before, executed = await recipe_nodes(reader, plain), list(machine.executed)
    # Every other value fits and differs from what its node holds, expected_s (the first
    # node) too: none may land.
    good = {"width_mm": 99.5, "passes": 9, "serial": 1, "layers": 1, "batch": -5}
    recipe = {k: v for k, v in good.items() if k != name} | {name: value}
    driver = OpcuaCell("typed-1", settings(plain, "typed-1"))
    await driver.connect()
    try:
        with pytest.raises(JobRejected, match=f"recipe '{name}'.*nothing sent"):
            await driver.start_job(typed_job(702, recipe, expected_s=20.0))
    finally:
        await driver.aclose()
    assert await recipe_nodes(reader, plain) == before
    assert machine.executed == executed


# -- a server restart in the middle of a job, through the controller's supervisor -------------

CELL = "restart-1"
#: One 60 s step: at speed 1 it cannot end by itself before the test has seen what it needs.
FAMILY = Family("restart", {}, (StepSpec("run", "cap.a", 60.0),))


class Watched(Controller):
    """The real controller, keeping every progress report too (they are not journalled)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fractions: list[float] = []
        self._more = asyncio.Event()

    def job_progress(self, name: str, report: JobProgress) -> None:
        super().job_progress(name, report)
        self.fractions.append(report.fraction)
        self._more.set()

    async def progress_above(self, fraction: float, seconds: float = 10.0) -> None:
        """Wait for a progress report beyond ``fraction``."""
        async with asyncio.timeout(seconds):
            while not self.fractions or self.fractions[-1] <= fraction:
                self._more.clear()
                await self._more.wait()


async def test_a_server_restart_mid_job_is_survived_and_the_job_runs_once(tmp_path) -> None:
    machine = SimMachine(CELL, recipe={"expected_s": V.Double})
    sim = OpcuaSimServer([machine], scan_ms=5)
    await sim.start()
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    driver = OpcuaCell(CELL, settings(sim, CELL, publishing_ms=20))
    cell = CellSetup(CELL, frozenset({"cap.a"}), "opcua", backoff=Backoff(0.05, 0.2))
    controller = Watched(store, [cell], {CELL: driver}, options=ControllerOptions(drain_s=5.0))
    plant = Plant(store, {}, controller)
    controller.recorder.subscribe(plant.on_events)
    order = OrderSpec("R1", 0, None, (UnitSpec("restart", {}, "unit", None),), "test", None)
    release(store, [order], {"restart": FAMILY}, datetime.now(UTC), source="test")
    try:
        async with running(plant):
            accepted = await plant.wait_for(lambda e: e.kind == "step" and e.transition == "accept")
            job_id = accepted.data["job_id"]
            await controller.progress_above(0.0)
            lost = asyncio.create_task(driver.link_lost())
            await sim.aclose()
            with pytest.raises(DeviceUnavailable, match=re.escape(sim.endpoint)):
                async with asyncio.timeout(5):
                    await lost
            offline = await plant.wait_for(lambda e: e.transition == "disconnect")
            assert sim.endpoint in offline.data["reason"]
            before = max(controller.fractions)
            await sim.start()  # same port, the machine as it was: its job still running
            await plant.wait_for(lambda e: e.data.get("recovered") is True, seconds=15)
            # Reports arrive again, by the new session's subscription: past the old progress.
            await controller.progress_above(before)
            machine.speed = 1000.0  # the job ends at the next scan
            done = await plant.wait_for(lambda e: e.kind == "step" and e.transition == "complete")
    finally:
        await sim.aclose()
        store.close()
    assert done.data["job_id"] == job_id
    assert [e.transition for e in plant.events if e.kind == "step"] == [
        "dispatch",
        "accept",
        "complete",
    ]
    assert machine.executed == [job_id]  # followed after the restart, never started again


# -- a machine commanded by writes, its points placed by the cell's node map --------------

PLC_LIKE: dict[str, Any] = {
    "states": "packml",
    "nodes": {"command": "Command", "job_id": "JobId", "state": "State"},
}


async def test_a_start_the_machine_refuses_by_writes_says_its_code() -> None:
    machine = SimMachine("plc-1", commands="writes", states="packml", speed=100.0)
    async with OpcuaSimServer([machine], scan_ms=5) as server:
        settings = OpcuaSettings(server.endpoint, NAMESPACE_URI, "plc-1", **PLC_LIKE)
        driver = OpcuaCell("plc-1", settings)
        await driver.connect()
        try:
            machine.reject_next(3)
            with pytest.raises(JobRejected, match=r"did not take job 41: error 3 \(.*bad recipe"):
                await driver.start_job(job(41))
            assert machine.executed == []
            await driver.start_job(job(42))  # the next one goes through
            assert isinstance((await follow(driver, 42))[-1], JobCompleted)
            assert machine.executed == [42]
        finally:
            await driver.aclose()


@pytest.mark.parametrize(
    ("nodes", "named"),
    [
        ({"state": "Status/StateCurrent"}, "state = 'Status/StateCurrent'"),
        ({"progress": "ns=2;s=plc-1.Nowhere"}, "progress = 'ns=2;s=plc-1.Nowhere'"),
        ({"error_code": "nsu=urn:unknown;i=5"}, "error_code = 'nsu=urn:unknown;i=5'"),
    ],
)
async def test_a_node_map_entry_the_server_lacks_is_named_on_connect(
    nodes: dict[str, str], named: str
) -> None:
    machine = SimMachine("plc-1")
    async with OpcuaSimServer([machine], scan_ms=5) as server:
        settings = OpcuaSettings(server.endpoint, NAMESPACE_URI, "plc-1", nodes=nodes)
        driver = OpcuaCell("plc-1", settings)
        with pytest.raises(DeviceUnavailable) as refused:
            await driver.connect()
        assert named in str(refused.value) and "docs/opcua.md" in str(refused.value)
