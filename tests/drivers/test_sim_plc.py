"""The simulated PLC: its handshake on fake time, then over real Modbus TCP and RTU on a pty.

The map is the demo plant's ``rig`` (the reference map). Model tests pass times into
``scan``; socket tests talk to a real pymodbus server with pymodbus's own clients and wait
for conditions (``until``) inside ``asyncio.timeout``, never for fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType

from drivers.modbus.codec import Point, Table, plan_write
from drivers.modbus.plcmap import PlcMap, Value
from drivers.sim.modbus_server import SimServer, serve_rtu, serve_tcp
from drivers.sim.plant_sims import JobLog, SimSpec, Simulators, scan_forever, serve, until
from drivers.sim.plc import AddressError, SimPlc
from mes.domain.job import MachineState as S
from mes.settings import DEFAULT_PLANT_PATH, load_plant
from mes.settings.modbus import plc_map

RIG: PlcMap = plc_map(load_plant(DEFAULT_PLANT_PATH).config.register_maps["rig"])
RECIPE: dict[str, Value] = {"expected_s": 1.0, "width_mm": 12.5, "material": "PLA"}


def command_block(
    plc_map: PlcMap, command: str, sequence: int, job_id: int = 0, **recipe: Value
) -> tuple[int, list[int]]:
    """The one FC16 write a controller sends: start address and registers."""
    values: dict[Point, Value] = {
        plc_map.point("command"): plc_map.commands[command],
        plc_map.point("sequence"): sequence,
        plc_map.point("job_id"): job_id,
    }
    values.update({plc_map.recipe[n]: v for n, v in (RECIPE | recipe).items()})
    return plan_write(values)


def send(plc: SimPlc, command: str, job_id: int = 0, **recipe: Value) -> None:
    """Write a command block with the next sequence number straight into the model."""
    sequence = (int(plc.value("ack")) + 1) % 65536
    plc.write(Table.HOLDING, *command_block(plc.map, command, sequence, job_id, **recipe))


def status(plc: SimPlc) -> dict[str, Value]:
    roles = ("state", "ack", "current_job_id", "last_job_id", "outcome", "error", "heartbeat")
    return {role: plc.value(role) for role in roles}


def code(state: S) -> int:
    return RIG.code_of(state)


class Clock:
    """Fake scan times: each ``scan`` advances by ``step`` seconds."""

    def __init__(self, plc: SimPlc, step: float = 0.01) -> None:
        self.plc, self.step, self.now = plc, step, 0.0

    def scan(self, times: int = 1) -> None:
        for _ in range(times):
            self.now += self.step
            self.plc.scan(self.now)


def running(
    job_id: int = 7,
    *,
    speed: float = 1.0,
    fault_rate: float = 0.0,
    seed: int = 0,
    results: dict[str, tuple[float, float]] | None = None,
    auto_reset: bool = True,
) -> tuple[SimPlc, Clock]:
    """A PLC that accepted ``job_id`` (1 s recipe, 10 ms scans) and is in execute."""
    plc = SimPlc(
        "rig-1",
        RIG,
        speed=speed,
        fault_rate=fault_rate,
        seed=seed,
        results=results,
        auto_reset=auto_reset,
    )
    clock = Clock(plc)
    send(plc, "start", job_id)
    clock.scan()
    assert plc.state is S.EXECUTE
    return plc, clock


# -- the model, on fake time ---------------------------------------------------------


def test_power_up_is_idle_with_every_status_register_zero() -> None:
    plc = SimPlc("rig-1", RIG)
    assert status(plc) == {
        "state": code(S.IDLE),
        "ack": 0,
        "current_job_id": 0,
        "last_job_id": 0,
        "outcome": 0,
        "error": 0,
        "heartbeat": 0,
    }
    assert plc.value("progress") == 0
    assert plc.read(Table.HOLDING, 0, 114) == [0] * 100 + [code(S.IDLE)] + [0] * 13


def test_a_start_is_acknowledged_with_its_outcome_in_the_same_write() -> None:
    plc = SimPlc("rig-1", RIG)
    send(plc, "start", 7, expected_s=2.5)
    assert status(plc) | {"heartbeat": None} == {
        "state": code(S.STARTING),
        "ack": 1,
        "current_job_id": 7,
        "last_job_id": 0,
        "outcome": 0,
        "error": 0,
        "heartbeat": None,
    }
    assert plc.executed == [7]
    assert plc.recipe == {"expected_s": 2.5, "width_mm": 12.5, "material": "PLA"}
    plc.scan(0.0)
    assert plc.state is S.EXECUTE


def test_a_second_start_while_busy_is_refused_with_error_1() -> None:
    plc, _ = running(7)
    send(plc, "start", 8)
    assert (plc.state, plc.value("current_job_id"), plc.value("error")) == (S.EXECUTE, 7, 1)
    assert plc.value("ack") == 2
    assert plc.executed == [7]


@pytest.mark.parametrize("job_id", [0, 7])
def test_a_job_id_of_0_or_one_already_started_is_refused_with_error_2(job_id: int) -> None:
    plc, clock = running(7, auto_reset=True)
    plc.inject_fault(101)
    clock.scan()
    for command in ("clear", "reset"):
        send(plc, command)
        clock.scan()
    assert plc.state is S.IDLE
    send(plc, "start", job_id)
    assert (plc.state, plc.value("error"), plc.executed) == (S.IDLE, 2, [7])


def test_a_recipe_with_a_zero_cycle_time_is_refused_with_error_3() -> None:
    plc = SimPlc("rig-1", RIG)
    send(plc, "start", 7, expected_s=0.0)
    assert (plc.state, plc.value("current_job_id"), plc.value("error")) == (S.IDLE, 0, 3)


def test_a_recipe_that_is_not_a_number_is_refused_with_error_3() -> None:
    plc = SimPlc("rig-1", RIG)
    start, registers = command_block(RIG, "start", 1, 7)
    nan = [0x0000, 0x7FC0]  # float32 NaN, CDAB
    at = RIG.recipe["expected_s"].address - start
    registers[at : at + 2] = nan
    plc.write(Table.HOLDING, start, registers)
    assert (plc.state, plc.value("error"), plc.value("ack")) == (S.IDLE, 3, 1)


def test_reject_next_refuses_one_start_with_the_given_code() -> None:
    plc = SimPlc("rig-1", RIG)
    plc.reject_next(102)
    send(plc, "start", 7)
    assert (plc.state, plc.value("error"), plc.executed) == (S.IDLE, 102, [])
    send(plc, "start", 7)  # the id was not used by the refused start
    assert (plc.state, plc.value("error"), plc.executed) == (S.STARTING, 0, [7])


def test_progress_follows_elapsed_time_over_expected_time_and_speed() -> None:
    plc, clock = running(speed=2.0)  # 1 s recipe at speed 2: 0.5 s
    clock.scan(10)  # 0.1 s
    assert plc.value("progress") == pytest.approx(20.0)
    clock.scan(10)
    assert plc.value("progress") == pytest.approx(40.0)


def test_completion_writes_results_outcome_and_last_job_in_one_scan_then_resets() -> None:
    plc, clock = running(7, results={"load_n": (35.0, 140.0)})
    clock.scan(99)
    assert plc.state is S.EXECUTE
    clock.scan()
    assert plc.state is S.COMPLETING
    clock.scan()
    assert status(plc) | {"heartbeat": None} == {
        "state": code(S.COMPLETE),
        "ack": 1,
        "current_job_id": 0,
        "last_job_id": 7,
        "outcome": RIG.successful,
        "error": 0,
        "heartbeat": None,
    }
    assert plc.value("progress") == 100
    assert plc.result("cycle_s") == 1.0
    assert 35.0 <= float(plc.result("load_n")) <= 140.0
    clock.scan()
    assert plc.state is S.IDLE  # auto_reset


def test_without_auto_reset_a_reset_command_returns_to_idle() -> None:
    plc, clock = running(7, auto_reset=False)
    clock.scan(110)
    assert plc.state is S.COMPLETE
    send(plc, "reset")
    assert (plc.state, plc.value("error")) == (S.RESETTING, 0)
    clock.scan()
    assert plc.state is S.IDLE


def test_the_same_seed_gives_the_same_results() -> None:
    loads = []
    for _ in range(2):
        plc, clock = running(7, seed=3, results={"load_n": (35.0, 140.0)})
        clock.scan(110)
        loads.append(plc.result("load_n"))
    assert loads[0] == loads[1]


def test_a_job_faults_part_way_at_fault_rate_1() -> None:
    plc, clock = running(7, fault_rate=1.0)
    scans = 0
    while plc.state is S.EXECUTE:
        clock.scan()
        scans += 1
    assert 10 <= scans <= 90  # between 10 % and 90 % of 100 scans
    assert plc.state is S.ABORTING
    assert plc.value("error") in (101, 102, 103)  # the map's faults, never 900/901
    clock.scan()
    assert (plc.state, plc.value("current_job_id"), plc.value("last_job_id")) == (S.ABORTED, 0, 7)
    assert plc.value("outcome") == RIG.unsuccessful


def test_an_injected_fault_aborts_the_running_job() -> None:
    plc, clock = running(7)
    plc.inject_fault(103)
    assert (plc.state, plc.value("error"), plc.value("current_job_id")) == (S.ABORTING, 103, 7)
    clock.scan()
    assert (plc.state, plc.value("last_job_id"), plc.value("outcome")) == (S.ABORTED, 7, 2)
    with pytest.raises(RuntimeError, match="no job"):
        plc.inject_fault()


def test_time_does_not_advance_while_held() -> None:
    plc, clock = running(7)
    clock.scan(30)
    send(plc, "hold")
    assert plc.state is S.HOLDING
    clock.scan()
    assert plc.state is S.HELD
    clock.scan(500)
    assert plc.value("progress") == pytest.approx(30.0)
    send(plc, "unhold")
    assert plc.state is S.UNHOLDING
    clock.scan()
    assert plc.state is S.EXECUTE
    clock.scan(69)
    assert plc.state is S.EXECUTE
    clock.scan(2)
    assert plc.state is S.COMPLETING


def test_abort_then_clear_then_reset() -> None:
    plc, clock = running(7)
    send(plc, "abort")
    assert (plc.state, plc.value("error"), plc.value("current_job_id")) == (S.ABORTING, 900, 7)
    clock.scan()
    assert status(plc) | {"heartbeat": None} == {
        "state": code(S.ABORTED),
        "ack": 2,
        "current_job_id": 0,
        "last_job_id": 7,
        "outcome": RIG.unsuccessful,
        "error": 900,
        "heartbeat": None,
    }
    send(plc, "clear")
    assert (plc.state, plc.value("error")) == (S.CLEARING, 0)
    clock.scan()
    assert plc.state is S.STOPPED
    send(plc, "reset")
    clock.scan()
    assert plc.state is S.IDLE
    send(plc, "start", 8)
    assert plc.executed == [7, 8]


def test_stop_ends_the_job_like_abort_with_error_901() -> None:
    plc, clock = running(7)
    send(plc, "stop")
    assert (plc.state, plc.value("error")) == (S.STOPPING, 901)
    clock.scan()
    assert (plc.state, plc.value("last_job_id"), plc.value("outcome")) == (S.STOPPED, 7, 2)


def _bring_to(state: S) -> tuple[SimPlc, Clock]:
    """A PLC in ``state``, reached by commands and scans as a controller would."""
    plc = SimPlc("rig-1", RIG, auto_reset=False)
    clock = Clock(plc)
    plans: dict[S, list[str | int]] = {
        S.IDLE: [],
        S.STARTING: ["start"],
        S.EXECUTE: ["start", 1],
        S.HOLDING: ["start", 1, "hold"],
        S.HELD: ["start", 1, "hold", 1],
        S.UNHOLDING: ["start", 1, "hold", 1, "unhold"],
        S.COMPLETE: ["start", 110],
        S.ABORTED: ["start", "abort", 1],
        S.STOPPED: ["start", 1, "stop", 1],
    }
    for step in plans[state]:
        if isinstance(step, int):
            clock.scan(step)
        else:
            send(plc, step, 7 if step == "start" else 0)
    assert plc.state is state
    return plc, clock


#: What each command does in each state the controller can find (the spec, written out).
ALLOWED = {
    ("hold", S.EXECUTE): S.HOLDING,
    ("unhold", S.HELD): S.UNHOLDING,
    **{("abort", s): S.ABORTING for s in (S.STARTING, S.EXECUTE, S.HOLDING, S.HELD, S.UNHOLDING)},
    ("stop", S.EXECUTE): S.STOPPING,
    ("stop", S.HELD): S.STOPPING,
    ("clear", S.ABORTED): S.CLEARING,
    ("reset", S.COMPLETE): S.RESETTING,
    ("reset", S.STOPPED): S.RESETTING,
}
STATES = [S.IDLE, S.STARTING, S.EXECUTE, S.HOLDING, S.HELD, S.UNHOLDING]
STATES += [S.COMPLETE, S.ABORTED, S.STOPPED]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("command", ["hold", "unhold", "abort", "stop", "clear", "reset"])
def test_every_command_in_every_state(command: str, state: S) -> None:
    plc, _ = _bring_to(state)
    before = plc.value("ack")
    send(plc, command)
    assert plc.value("ack") == int(before) + 1
    expected = ALLOWED.get((command, state))
    if expected is None:
        assert (plc.state, plc.value("error")) == (state, 4)
    else:
        assert plc.state is expected
        assert plc.value("error") == {"abort": 900, "stop": 901}.get(command, 0)


def test_an_unknown_command_code_is_refused_with_error_4() -> None:
    plc = SimPlc("rig-1", RIG)
    plc.write(Table.HOLDING, 0, [77, 1])
    assert (plc.state, plc.value("error"), plc.value("ack")) == (S.IDLE, 4, 1)


def test_the_heartbeat_counts_scans_and_can_get_stuck() -> None:
    plc = SimPlc("rig-1", RIG)
    clock = Clock(plc)
    clock.scan(3)
    assert plc.value("heartbeat") == 3
    plc.heartbeat_stuck = True
    clock.scan(5)
    assert plc.value("heartbeat") == 3


def test_writes_outside_writable_points_and_reads_outside_the_map_are_refused() -> None:
    plc = SimPlc("rig-1", RIG)
    with pytest.raises(AddressError):
        plc.write(Table.HOLDING, RIG.point("state").address, [6])
    with pytest.raises(AddressError):
        plc.write(Table.HOLDING, 15, [0, 0])  # 15 is material's last register, 16 is unmapped
    with pytest.raises(AddressError):
        plc.read(Table.HOLDING, 110, 5)  # the map ends at 113
    with pytest.raises(AddressError):
        plc.read(Table.INPUT, 0, 1)
    assert plc.state is S.IDLE


def test_the_execution_log_has_one_json_line_per_accepted_job(tmp_path: Path) -> None:
    log = JobLog(tmp_path / "executed.jsonl")
    plc = SimPlc("rig-1", RIG, on_started=log)
    send(plc, "start", 7)
    send(plc, "start", 8)  # refused: busy
    log.close()
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [(line["cell"], line["job_id"]) for line in lines] == [("rig-1", 7)]
    assert lines[0]["at"].endswith("+00:00")


# -- over real Modbus ----------------------------------------------------------------


@pytest.fixture
async def rig_sims(tmp_path: Path) -> AsyncIterator[Simulators]:
    """Two PLCs behind one TCP port (a gateway: device ids 1 and 2), scanning every 5 ms."""
    log = tmp_path / "executed.jsonl"
    specs = [
        SimSpec("rig-1", RIG, port=0, device_id=1, scan_ms=5, results={"load_n": (35, 140)}),
        SimSpec("rig-2", RIG, port=0, device_id=2, scan_ms=5, log_path=log),
    ]
    sims = await serve(specs)
    yield sims
    await sims.aclose()


@pytest.fixture
async def client(rig_sims: Simulators) -> AsyncIterator[AsyncModbusTcpClient]:
    port = rig_sims.servers["rig-1"].port
    assert port
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, reconnect_delay=0)
    assert await client.connect()
    yield client
    client.close()


async def read_status(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient, device: int
) -> dict[str, Value]:
    (block,) = RIG.status_reads()
    reply = await client.read_holding_registers(block.start, count=block.count, device_id=device)
    assert not reply.isError()
    return block.decode(reply.registers)


async def test_a_job_over_tcp_is_acknowledged_then_completes_with_results(
    rig_sims: Simulators, client: AsyncModbusTcpClient
) -> None:
    start, registers = command_block(RIG, "start", 1, 41, expected_s=0.05)
    reply = await client.write_registers(start, registers, device_id=1)
    assert not reply.isError()
    seen = await read_status(client, 1)
    assert (seen["ack"], seen["current_job_id"], seen["error"]) == (1, 41, 0)
    plc = rig_sims.plcs["rig-1"]
    async with asyncio.timeout(2):
        await until(plc, lambda p: p.value("last_job_id") == 41)
    seen = await read_status(client, 1)
    assert (seen["current_job_id"], seen["last_job_id"], seen["outcome"]) == (0, 41, 1)
    (results,) = RIG.result_reads()
    reply = await client.read_holding_registers(results.start, count=results.count, device_id=1)
    values = results.decode(reply.registers)
    assert values["results.cycle_s"] == pytest.approx(0.05)
    assert 35 <= float(values["results.load_n"]) <= 140
    other = rig_sims.plcs["rig-2"]
    assert (other.state, [r.function_code for r in other.requests]) == (S.IDLE, [])
    assert [r.function_code for r in plc.requests] == [16, 3, 3, 3]


async def test_jobs_accepted_over_tcp_go_to_the_execution_log(
    rig_sims: Simulators, client: AsyncModbusTcpClient, tmp_path: Path
) -> None:
    for sequence, job_id in ((1, 51), (2, 51), (3, 0)):  # then a duplicate, then id 0
        start, registers = command_block(RIG, "start", sequence, job_id, expected_s=0.01)
        await client.write_registers(start, registers, device_id=2)
        async with asyncio.timeout(2):
            await until(rig_sims.plcs["rig-2"], lambda p: p.state is S.IDLE)
    lines = (tmp_path / "executed.jsonl").read_text().splitlines()
    assert [json.loads(line)["job_id"] for line in lines] == [51]
    assert rig_sims.plcs["rig-2"].value("error") == 2


async def test_a_reading_client_never_sends_a_write_and_a_refused_write_is_logged(
    rig_sims: Simulators, client: AsyncModbusTcpClient
) -> None:
    plc = rig_sims.plcs["rig-2"]
    for _ in range(3):
        await read_status(client, 2)
    assert [r.function_code for r in plc.requests] == [3, 3, 3]
    assert plc.writes == [] and not plc.ever_written
    reply = await client.write_register(RIG.point("state").address, 6, device_id=2)
    assert reply.isError() and reply.exception_code == 2  # ILLEGAL_ADDRESS
    reply = await client.read_holding_registers(124, count=1, device_id=2)
    assert reply.isError() and reply.exception_code == 2
    assert [(r.function_code, r.values) for r in plc.writes] == [(6, (6,))]
    assert plc.ever_written and plc.function_codes == {3: 4, 6: 1}
    assert plc.state is S.IDLE


async def test_an_unknown_device_id_gets_a_gateway_exception(client: AsyncModbusTcpClient) -> None:
    reply = await client.read_holding_registers(100, count=1, device_id=9)
    assert reply.isError() and reply.exception_code == 11  # GATEWAY_NO_RESPONSE


async def test_slow_replies_arrive_after_the_injected_delay(
    rig_sims: Simulators, client: AsyncModbusTcpClient
) -> None:
    rig_sims.plcs["rig-1"].reply_delay_s = 0.2
    loop = asyncio.get_running_loop()
    began = loop.time()
    await read_status(client, 1)
    assert loop.time() - began >= 0.2
    began = loop.time()
    await read_status(client, 2)  # the other PLC behind the gateway is not slow
    assert loop.time() - began < 0.2


async def test_dropped_connections_can_reconnect(rig_sims: Simulators) -> None:
    server = rig_sims.servers["rig-1"]
    lost = asyncio.Event()
    client = AsyncModbusTcpClient(
        "127.0.0.1",
        port=server.port or 0,
        reconnect_delay=0,
        trace_connect=lambda up: None if up else lost.set(),
    )
    assert await client.connect()
    try:
        assert server.drop_connections() == 1
        async with asyncio.timeout(2):
            await lost.wait()
        assert await client.connect()
        assert (await read_status(client, 1))["state"] == code(S.IDLE)
    finally:
        client.close()


async def test_a_stuck_heartbeat_stops_changing_on_the_wire(
    rig_sims: Simulators, client: AsyncModbusTcpClient
) -> None:
    plc = rig_sims.plcs["rig-1"]
    plc.heartbeat_stuck = True
    stuck = (await read_status(client, 1))["heartbeat"]
    scans = [0]
    unsubscribe = plc.subscribe(lambda: scans.__setitem__(0, scans[0] + 1))
    async with asyncio.timeout(1):
        await until(plc, lambda _: scans[0] >= 3)
    unsubscribe()
    assert (await read_status(client, 1))["heartbeat"] == stuck


async def test_a_broadcast_write_reaches_every_plc_behind_the_gateway(
    rig_sims: Simulators, client: AsyncModbusTcpClient
) -> None:
    start, registers = command_block(RIG, "hold", 1)  # not allowed in idle: error 4 everywhere
    await client.write_registers(start, registers, device_id=0, no_response_expected=True)
    plcs = list(rig_sims.plcs.values())
    async with asyncio.timeout(2):
        for plc in plcs:
            await until(plc, lambda p: p.value("ack") == 1)
    assert [p.value("error") for p in plcs] == [4, 4]
    assert [[r.device_id for r in p.requests] for p in plcs] == [[0], [0]]


async def test_a_job_over_rtu_on_a_pty_behind_a_fixed_link(tmp_path: Path) -> None:
    plc = SimPlc("rig-rtu", RIG)
    link = tmp_path / "mes-rtu-0"
    server = await serve_rtu({3: plc}, link=link)
    scans = asyncio.create_task(scan_forever(plc, 0.005))
    client = AsyncModbusSerialClient(str(link), framer=FramerType.RTU, timeout=2)
    try:
        assert server.serial_port == str(link)
        assert await client.connect()
        start, registers = command_block(RIG, "start", 1, 5, expected_s=0.05)
        assert not (await client.write_registers(start, registers, device_id=3)).isError()
        assert (await read_status(client, 3))["ack"] == 1
        async with asyncio.timeout(2):
            await until(plc, lambda p: p.value("last_job_id") == 5)
        seen = await read_status(client, 3)
        assert (seen["last_job_id"], seen["outcome"]) == (5, 1)
        assert [r.function_code for r in plc.requests] == [16, 3, 3]
    finally:
        client.close()
        scans.cancel()
        await server.aclose()
    assert not link.is_symlink()


async def test_a_server_on_port_0_reports_its_port_and_closes_twice() -> None:
    server: SimServer = await serve_tcp({1: SimPlc("rig-1", RIG)})
    assert server.port and server.port > 0
    await server.aclose()
    await server.aclose()


async def test_specs_sharing_a_device_id_on_one_port_are_refused() -> None:
    specs = [SimSpec("a", RIG, port=5020), SimSpec("b", RIG, port=5020)]
    with pytest.raises(ValueError, match="both use device id 1"):
        await serve(specs)


async def test_rtu_cells_naming_one_serial_port_share_a_bus(tmp_path: Path) -> None:
    link = tmp_path / "bus"
    specs = [
        SimSpec("a", RIG, transport="rtu", serial_port=str(link), device_id=1, scan_ms=5),
        SimSpec("b", RIG, transport="rtu", serial_port=str(link), device_id=2, scan_ms=5),
    ]
    sims = await serve(specs)
    client = AsyncModbusSerialClient(str(link), timeout=1)
    try:
        assert sims.servers["a"] is sims.servers["b"]
        assert await client.connect()
        for device in (1, 2):
            assert (await read_status(client, device))["state"] == code(S.IDLE)
        assert [r.function_code for r in sims.plcs["b"].requests] == [3]
    finally:
        client.close()
        await sims.aclose()


async def test_a_link_never_replaces_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "taken"
    path.write_text("not a pty")
    with pytest.raises(FileExistsError):
        await serve_rtu({1: SimPlc("rig-1", RIG)}, link=path)
    assert path.read_text() == "not a pty"
