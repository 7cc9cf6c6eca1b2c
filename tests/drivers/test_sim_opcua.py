"""The simulated OPC UA machine: its program on fake time, then over a real asyncua server.

Model tests pass times into ``scan``. Socket tests talk to a real asyncua server with
asyncua's own ``Client``; asyncua servers take a second to start, so the module shares two
(one plain, one SignAndEncrypt with users) on a module-scoped event loop, each test using a
machine of its own. Waiting is for subscription notifications inside ``asyncio.timeout``,
never for fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.status_codes import StatusCodes as Status
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from drivers.sim.opcua_machine import Command, Reply, SimMachine, Value
from drivers.sim.opcua_server import NAMESPACE_URI, OpcuaSimServer
from drivers.sim.plant_sims import JobLog
from mes.certs import CONTROLLER_URI
from mes.domain.job import MachineState as S

V = ua.VariantType
RECIPE_TYPES = {
    "expected_s": V.Double,
    "width_mm": V.Float,
    "material": V.String,
    "passes": V.UInt16,
}
RECIPE: dict[str, Value] = {"expected_s": 1.0, "width_mm": 12.5, "material": "PLA", "passes": 2}
RESULTS = {"cycle_s": (0.0, 0.0), "load_n": (10.0, 20.0)}
FAULTS = {101: "spindle overload", 102: "door opened"}
module_loop = pytest.mark.asyncio(loop_scope="module")


def machine(name: str = "tester-2", **options: Any) -> SimMachine:
    return SimMachine(name, recipe=RECIPE_TYPES, results=RESULTS, faults=FAULTS, **options)


class Clock:
    """Fake scan times: each ``scan`` advances by ``step`` seconds."""

    def __init__(self, sim: SimMachine, step: float = 0.01) -> None:
        self.sim, self.step, self.now = sim, step, 0.0

    def scan(self, times: int = 1) -> None:
        for _ in range(times):
            self.now += self.step
            self.sim.scan(self.now)


def running(job_id: int = 7, **options: Any) -> tuple[SimMachine, Clock]:
    """A machine that accepted ``job_id`` (1 s recipe, 10 ms scans) and is in execute."""
    sim = machine(**options)
    clock = Clock(sim)
    assert sim.start(job_id, RECIPE) == Reply(True, 0)
    clock.scan()
    assert sim.state is S.EXECUTE
    return sim, clock


# -- the model, on fake time ---------------------------------------------------------


def test_power_up_is_idle_with_every_value_zero_in_push_order() -> None:
    assert machine().values() == {
        "Results/cycle_s": 0.0,
        "Results/load_n": 0.0,
        "LastOutcome": "",
        "LastJobId": 0,
        "CurrentJobId": 0,
        "ErrorCode": 0,
        "ErrorText": "",
        "Progress": 0.0,
        "State": "idle",
        "Heartbeat": 0,
    }
    assert list(machine().values())[-2:] == ["State", "Heartbeat"]


def test_an_accepted_start_latches_the_recipe_and_runs_on_the_next_scan() -> None:
    sim = machine()
    assert sim.start(7, RECIPE) == Reply(True, 0)
    assert (sim.state, sim.current_job_id, sim.executed, sim.recipe) == (S.STARTING, 7, [7], RECIPE)
    Clock(sim).scan()
    assert sim.state is S.EXECUTE


@pytest.mark.parametrize(
    ("job_id", "recipe", "code"),
    [
        (0, RECIPE, 2),
        (7, RECIPE, 2),  # started before
        (8, RECIPE | {"expected_s": 0.0}, 3),
        (8, RECIPE | {"expected_s": math.nan}, 3),
        (8, RECIPE | {"passes": 70_000}, 3),  # does not fit UInt16
        (8, RECIPE | {"passes": 2.0}, 3),
        (8, RECIPE | {"material": 5}, 3),
        (8, {}, 3),  # power-up values: expected_s 0.0
    ],
)
def test_a_refused_start_answers_its_code_and_changes_nothing(
    job_id: int, recipe: dict[str, Value], code: int
) -> None:
    sim = machine()
    sim.start(7, RECIPE)
    sim.abort()
    clock = Clock(sim)
    clock.scan()
    sim.clear()
    clock.scan()
    sim.reset()
    clock.scan()
    assert sim.state is S.IDLE
    before = sim.values()
    assert sim.start(job_id, recipe) == Reply(False, code)
    assert sim.values() == before
    assert sim.executed == [7]


def test_a_start_while_busy_is_refused_with_1_and_reject_next_with_its_code() -> None:
    sim, _ = running(7)
    assert sim.start(8, RECIPE) == Reply(False, 1)
    idle = machine()
    idle.reject_next(77)
    assert idle.start(8, RECIPE) == Reply(False, 77)
    assert idle.start(8, RECIPE) == Reply(True, 0)


def test_a_recipe_parameter_the_machine_does_not_have_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="colour"):
        machine().start(7, RECIPE | {"colour": "red"})


def test_progress_follows_elapsed_time_over_expected_time_and_speed() -> None:
    sim, clock = running(speed=2.0)  # 1 s recipe at speed 2: 0.5 s
    clock.scan(25)
    assert sim.values()["Progress"] == pytest.approx(50.0)


def test_completion_lands_in_one_scan_then_auto_resets() -> None:
    sim, clock = running(7)
    clock.scan(99)
    assert sim.state is S.EXECUTE
    clock.scan()
    values = sim.values()
    assert values | {"Heartbeat": 0, "Results/load_n": 0.0} == {
        "Results/cycle_s": 1.0,
        "Results/load_n": 0.0,
        "LastOutcome": "successful",
        "LastJobId": 7,
        "CurrentJobId": 0,
        "ErrorCode": 0,
        "ErrorText": "",
        "Progress": 100.0,
        "State": "complete",
        "Heartbeat": 0,
    }
    assert 10.0 <= float(values["Results/load_n"]) <= 20.0
    clock.scan()
    assert sim.state is S.IDLE


def test_without_auto_reset_complete_waits_for_reset() -> None:
    sim, clock = running(auto_reset=False)
    clock.scan(110)
    assert sim.state is S.COMPLETE
    assert sim.reset() == Reply(True, 0)
    assert sim.state is S.RESETTING
    clock.scan()
    assert sim.state is S.IDLE


def test_a_job_faults_part_way_at_fault_rate_1_with_a_code_and_text_of_its_faults() -> None:
    sim, clock = running(7, fault_rate=1.0)
    while sim.state is S.EXECUTE:
        clock.scan()
    assert sim.state is S.ABORTING
    code, text = sim.error
    assert FAULTS[code] == text
    assert 10.0 <= float(sim.values()["Progress"]) <= 90.0
    assert sim.current_job_id == 7  # the job's end lands with aborted
    clock.scan()
    assert sim.values() | {"Heartbeat": 0, "Progress": 0.0} == {
        "Results/cycle_s": 0.0,
        "Results/load_n": 0.0,
        "LastOutcome": "unsuccessful",
        "LastJobId": 7,
        "CurrentJobId": 0,
        "ErrorCode": code,
        "ErrorText": text,
        "Progress": 0.0,
        "State": "aborted",
        "Heartbeat": 0,
    }


def test_an_injected_fault_aborts_the_running_job_and_needs_a_job() -> None:
    sim, clock = running(7)
    sim.inject_fault(555)
    assert (sim.state, sim.error) == (S.ABORTING, (555, "fault 555"))
    clock.scan()
    assert sim.state is S.ABORTED
    with pytest.raises(RuntimeError, match="no job"):
        sim.inject_fault(101)


def test_time_does_not_advance_while_held() -> None:
    sim = machine()
    clock = Clock(sim, step=0.125)  # exact in binary: no rounding at the 1 s boundary
    sim.start(7, RECIPE)
    clock.scan(4)  # execute from the first scan: 3 steps run
    assert sim.hold() == Reply(True, 0)
    clock.scan(100)
    assert sim.state is S.HELD
    assert sim.resume() == Reply(True, 0)
    clock.scan()
    assert sim.state is S.EXECUTE
    clock.scan(4)
    assert (sim.state, sim.values()["Progress"]) == (S.EXECUTE, 87.5)
    clock.scan()
    assert sim.state is S.COMPLETE


def test_abort_then_clear_then_reset() -> None:
    sim, clock = running(7)
    assert sim.abort() == Reply(True, 0)
    assert (sim.state, sim.error, sim.current_job_id) == (S.ABORTING, (900, "job aborted"), 7)
    clock.scan()
    values = sim.values()
    assert (values["State"], values["LastJobId"], values["CurrentJobId"]) == ("aborted", 7, 0)
    assert values["LastOutcome"] == "unsuccessful"
    assert [sim.clear(), sim.state] == [Reply(True, 0), S.CLEARING]
    clock.scan()
    assert [sim.state, sim.error] == [S.STOPPED, (0, "")]
    assert [sim.reset(), sim.state] == [Reply(True, 0), S.RESETTING]
    clock.scan()
    assert sim.state is S.IDLE


def _machine_in(state: S) -> SimMachine:
    """A machine resting in ``state``, reached through the handshake."""
    sim = machine(auto_reset=False)
    clock = Clock(sim)
    steps: dict[S, list[Command | int]] = {
        S.IDLE: [],
        S.EXECUTE: [7],
        S.HELD: [7, "hold"],
        S.COMPLETE: [7, 0],
        S.ABORTED: [7, "abort"],
        S.STOPPED: [7, "abort", "clear"],
    }
    for step in steps[state]:
        if step == 7:
            sim.start(7, RECIPE)
        elif step == 0:
            clock.scan(120)
        else:
            assert isinstance(step, str)
            sim.command(step)
        clock.scan()
    assert sim.state is state
    return sim


ALLOWED = {
    ("hold", S.EXECUTE): S.HOLDING,
    ("resume", S.HELD): S.UNHOLDING,
    ("abort", S.EXECUTE): S.ABORTING,
    ("abort", S.HELD): S.ABORTING,
    ("clear", S.ABORTED): S.CLEARING,
    ("reset", S.COMPLETE): S.RESETTING,
    ("reset", S.STOPPED): S.RESETTING,
}


@pytest.mark.parametrize("state", [S.IDLE, S.EXECUTE, S.HELD, S.COMPLETE, S.ABORTED, S.STOPPED])
@pytest.mark.parametrize("command", ["hold", "resume", "abort", "reset", "clear"])
def test_every_command_in_every_resting_state(command: Command, state: S) -> None:
    sim = _machine_in(state)
    reply = sim.command(command)
    target = ALLOWED.get((command, state))
    assert reply == (Reply(True, 0) if target else Reply(False, 4))
    assert sim.state is (target or state)


def test_the_heartbeat_counts_scans_and_can_get_stuck() -> None:
    sim = machine()
    clock = Clock(sim)
    clock.scan(3)
    assert sim.values()["Heartbeat"] == 3
    sim.heartbeat_stuck = True
    clock.scan(3)
    assert sim.values()["Heartbeat"] == 3


def test_the_execution_log_has_one_json_line_per_accepted_job(tmp_path: Path) -> None:
    log = JobLog(tmp_path / "executed.jsonl")
    sim = machine(on_started=log)
    sim.start(7, RECIPE)
    sim.start(8, RECIPE)  # refused: not idle
    log.close()
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [(line["cell"], line["job_id"]) for line in lines] == [("tester-2", 7)]


@pytest.mark.parametrize(
    "options",
    [{"speed": 0.0}, {"fault_rate": 2.0}, {"faults": {900: "x"}}, {"recipe": {"x": V.Guid}}],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # each with its own message
        SimMachine("m", **options)


# -- over a real socket ----------------------------------------------------------------

NAMES = ("browse-1", "run-1", "abort-1", "refuse-1", "drop-1")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def plain() -> AsyncIterator[OpcuaSimServer]:
    async with OpcuaSimServer([machine(name) for name in NAMES]) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def client(plain: OpcuaSimServer) -> AsyncIterator[Client]:
    async with Client(plain.endpoint) as connected:
        yield connected


def node(client: Client, server: OpcuaSimServer, name: str, path: str = "") -> Node:
    return client.get_node(server.node_id(name, path))


class States:
    """A subscription handler that queues (path, value) per notification."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self.queue.put_nowait((str(node.nodeid.Identifier).split(".", 1)[1], val))

    async def until(self, path: str, value: Any, seen: list[Any] | None = None) -> None:
        async with asyncio.timeout(5):
            while True:
                got, got_value = await self.queue.get()
                if got == path and seen is not None:
                    seen.append(got_value)
                if (got, got_value) == (path, value):
                    return


@module_loop
async def test_the_machine_object_has_the_node_model(client: Client, plain: OpcuaSimServer) -> None:
    ns = await client.get_namespace_index(NAMESPACE_URI)
    assert ns == plain.namespace_index
    objects = client.nodes.objects
    obj = await objects.get_child(f"{ns}:browse-1")
    assert obj.nodeid == ua.NodeId.from_string(f"ns={ns};s=browse-1")
    children = {str((await c.read_browse_name()).Name): c for c in await obj.get_children()}
    methods = ["Start", "Hold", "Resume", "Abort", "Reset", "Clear"]
    assert set(children) == {
        *("State", "CurrentJobId", "LastJobId", "LastOutcome", "ErrorCode", "ErrorText"),
        *("Progress", "Heartbeat", "Results", "Recipe", *methods),
    }
    types = {
        "State": V.String,
        "CurrentJobId": V.UInt32,
        "LastJobId": V.UInt32,
        "LastOutcome": V.String,
        "ErrorCode": V.UInt16,
        "ErrorText": V.String,
        "Progress": V.Double,
        "Heartbeat": V.UInt32,
        "Results/cycle_s": V.Double,
        "Results/load_n": V.Double,
        **{f"Recipe/{name}": vtype for name, vtype in RECIPE_TYPES.items()},
    }
    for path, vtype in types.items():
        var = await obj.get_child([f"{ns}:{part}" for part in path.split("/")])
        assert var.nodeid == ua.NodeId.from_string(f"ns={ns};s=browse-1.{path.replace('/', '.')}")
        assert await var.read_data_type_as_variant_type() == vtype, path
        writable = ua.AccessLevel.CurrentWrite in await var.get_user_access_level()
        assert writable == path.startswith("Recipe/"), path
    start = children["Start"]
    (inputs,) = [await start.get_child("0:InputArguments")]
    assert [(a.Name, a.DataType) for a in await inputs.read_value()] == [
        ("JobId", ua.NodeId(ua.Int32(V.UInt32.value)))
    ]
    outputs = await (await children["Hold"].get_child("0:OutputArguments")).read_value()
    assert [(a.Name, a.DataType) for a in outputs] == [
        ("Accepted", ua.NodeId(ua.Int32(V.Boolean.value))),
        ("ErrorCode", ua.NodeId(ua.Int32(V.UInt16.value))),
    ]


@module_loop
async def test_a_job_runs_from_typed_recipe_writes_to_complete(
    client: Client, plain: OpcuaSimServer
) -> None:
    states = States()
    subscription = await client.create_subscription(5, states)
    await subscription.subscribe_data_change([node(client, plain, "run-1", "State")])
    await states.until("State", "idle")
    for name, value in (RECIPE | {"expected_s": 0.2}).items():
        recipe_node = node(client, plain, "run-1", f"Recipe/{name}")
        await recipe_node.write_value(ua.Variant(value, RECIPE_TYPES[name]))
    obj = node(client, plain, "run-1")
    ns = plain.namespace_index
    assert await obj.call_method(f"{ns}:Start", ua.Variant(41, V.UInt32)) == [True, 0]
    seen: list[str] = []
    await states.until("State", "complete", seen)
    assert "execute" in seen
    assert seen.index("execute") < seen.index("complete")
    paths = ("LastJobId", "LastOutcome", "CurrentJobId", "ErrorCode", "Progress", "Results/cycle_s")
    values = await client.read_values([node(client, plain, "run-1", p) for p in paths])
    assert values == [41, "successful", 0, 0, 100.0, pytest.approx(0.2)]
    assert plain.machines["run-1"].recipe["width_mm"] == 12.5  # Float: 12.5 is exact
    await states.until("State", "idle")  # auto reset
    await subscription.delete()


@module_loop
async def test_abort_clear_and_reset_over_methods(client: Client, plain: OpcuaSimServer) -> None:
    states = States()
    subscription = await client.create_subscription(5, states)
    await subscription.subscribe_data_change([node(client, plain, "abort-1", "State")])
    await node(client, plain, "abort-1", "Recipe/expected_s").write_value(ua.Double(60.0))
    obj, ns = node(client, plain, "abort-1"), plain.namespace_index
    assert await obj.call_method(f"{ns}:Start", ua.Variant(51, V.UInt32)) == [True, 0]
    await states.until("State", "execute")
    assert await obj.call_method(f"{ns}:Hold") == [True, 0]
    await states.until("State", "held")
    assert await obj.call_method(f"{ns}:Reset") == [False, 4]
    assert await obj.call_method(f"{ns}:Abort") == [True, 0]
    await states.until("State", "aborted")
    paths = ("ErrorCode", "ErrorText", "LastJobId", "LastOutcome")
    values = await client.read_values([node(client, plain, "abort-1", p) for p in paths])
    assert values == [900, "job aborted", 51, "unsuccessful"]
    assert await obj.call_method(f"{ns}:Clear") == [True, 0]
    await states.until("State", "stopped")
    assert await obj.call_method(f"{ns}:Reset") == [True, 0]
    await states.until("State", "idle")
    await subscription.delete()


@module_loop
async def test_wrongly_typed_writes_and_arguments_are_refused(
    client: Client, plain: OpcuaSimServer
) -> None:
    passes = node(client, plain, "refuse-1", "Recipe/passes")
    with pytest.raises(UaStatusCodeError) as refused:
        await passes.write_value(3)  # a Python int travels as Int64
    assert refused.value.code == Status.BadTypeMismatch
    with pytest.raises(UaStatusCodeError) as refused:
        await node(client, plain, "refuse-1", "State").write_value("idle")
    assert refused.value.code == Status.BadUserAccessDenied
    obj, ns = node(client, plain, "refuse-1"), plain.namespace_index
    with pytest.raises(UaStatusCodeError) as refused:
        await obj.call_method(f"{ns}:Start", 5)  # Int64 again
    assert refused.value.code == Status.BadInvalidArgument
    with pytest.raises(UaStatusCodeError) as refused:
        await obj.call_method(f"{ns}:Start")
    assert refused.value.code == Status.BadArgumentsMissing
    with pytest.raises(UaStatusCodeError) as refused:
        await obj.call_method(f"{ns}:Hold", ua.Variant(1, V.UInt32))
    assert refused.value.code == Status.BadTooManyArguments
    # Recipe untouched: expected_s is still 0.0, so Start is refused with 3.
    assert await obj.call_method(f"{ns}:Start", ua.Variant(5, V.UInt32)) == [False, 3]
    assert plain.machines["refuse-1"].executed == []


@module_loop
async def test_drop_sessions_closes_client_connections(plain: OpcuaSimServer) -> None:
    async with Client(plain.endpoint) as connected:
        state = node(connected, plain, "drop-1", "State")
        assert await state.read_value() == "idle"
        assert await plain.drop_sessions() >= 1
        with pytest.raises(ConnectionError):
            await state.read_value()


@module_loop
async def test_a_restarted_server_keeps_its_port_and_the_machines_state() -> None:
    sim = machine("restart-1")
    server = OpcuaSimServer([sim])
    async with server:
        endpoint = server.endpoint
        async with Client(endpoint) as connected:
            recipe = node(connected, server, "restart-1", "Recipe/expected_s")
            await recipe.write_value(ua.Double(60.0))
            start = f"{server.namespace_index}:Start"
            obj = node(connected, server, "restart-1")
            assert await obj.call_method(start, ua.Variant(61, V.UInt32)) == [True, 0]
    async with server:
        assert server.endpoint == endpoint
        async with Client(endpoint) as connected:
            job = await node(connected, server, "restart-1", "CurrentJobId").read_value()
            assert (job, sim.current_job_id) == (61, 61)


# -- security --------------------------------------------------------------------------

CLIENT_URI = CONTROLLER_URI


@pytest.fixture(scope="module")
def certificates(pki: Path) -> Path:
    """server.der/.pem and client.der/.pem, self-signed (tests/drivers/conftest.py)."""
    return pki


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def secure(certificates: Path) -> AsyncIterator[OpcuaSimServer]:
    server = OpcuaSimServer(
        [machine("secure-1")],
        security="sign_encrypt",
        certificate=certificates / "server.der",
        private_key=certificates / "server.pem",
        users={"operator": "s3cret"},
    )
    async with server:
        yield server


async def secure_client(server: OpcuaSimServer, pki: Path, user: str | None, pw: str) -> Client:
    client = Client(server.endpoint)
    client.application_uri = CLIENT_URI
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        certificate=str(pki / "client.der"),
        private_key=str(pki / "client.pem"),
        server_certificate=str(pki / "server.der"),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    if user is not None:
        client.set_user(user)
        client.set_password(pw)
    return client


@module_loop
async def test_a_user_logs_in_over_sign_and_encrypt(
    secure: OpcuaSimServer, certificates: Path
) -> None:
    client = await secure_client(secure, certificates, "operator", "s3cret")
    async with client:
        assert await node(client, secure, "secure-1", "State").read_value() == "idle"
        obj, ns = node(client, secure, "secure-1"), secure.namespace_index
        assert await obj.call_method(f"{ns}:Start", ua.Variant(5, V.UInt32)) == [False, 3]


@module_loop
@pytest.mark.parametrize(
    ("user", "password", "status"),
    [
        ("operator", "wrong", Status.BadUserAccessDenied),
        ("nobody", "s3cret", Status.BadUserAccessDenied),
        (None, "", Status.BadIdentityTokenRejected),  # anonymous
    ],
)
async def test_a_wrong_password_or_anonymous_is_refused(
    secure: OpcuaSimServer, certificates: Path, user: str | None, password: str, status: int
) -> None:
    client = await secure_client(secure, certificates, user, password)
    with pytest.raises(UaStatusCodeError) as refused:
        await client.connect()
    assert refused.value.code == status


@module_loop
async def test_a_client_without_security_finds_no_endpoint(secure: OpcuaSimServer) -> None:
    with pytest.raises(UaError, match="No matching endpoints"):
        await Client(secure.endpoint).connect()
