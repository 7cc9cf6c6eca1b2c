"""The Modbus driver against the simulated PLC over a real socket: the failures users hit.

A connection dropped mid-job, a stale heartbeat, values refused before anything is sent,
read-only mode, and several PLCs sharing one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from drivers.modbus.driver import ModbusCell, ModbusSettings
from drivers.modbus.link import Endpoint, ModbusLink
from drivers.modbus.plcmap import PlcMap
from drivers.sim.modbus_server import SimServer
from drivers.sim.plc import SimPlc
from mes.domain.job import JobCompleted
from mes.errors import DeviceUnavailable, JobRejected
from tests.drivers.test_contract import follow, job, rig_map, scanning

WRITES = {5, 6, 15, 16}


@contextlib.asynccontextmanager
async def served(
    plcs: dict[int, SimPlc],
) -> AsyncIterator[tuple[SimServer, ModbusLink]]:
    server = SimServer(plcs)
    await server.start_tcp("127.0.0.1", 0)
    assert server.port is not None
    link = ModbusLink(Endpoint("tcp", port=server.port), timeout_s=0.5, retries=0)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for plc in plcs.values():
                await stack.enter_async_context(scanning(plc))
            yield server, link
    finally:
        await server.aclose()


def cell(link: ModbusLink, plc_map: PlcMap | None = None, **settings: object) -> ModbusCell:
    options = ModbusSettings(poll_s=0.02, heartbeat_timeout_s=0.3)
    return ModbusCell("rig-1", link, plc_map or rig_map(), replace(options, **settings))  # type: ignore[arg-type]


async def test_a_connection_dropped_mid_job_is_reconnected_and_the_job_not_rerun() -> None:
    plc = SimPlc("rig-1", rig_map(), speed=100)
    async with served({1: plc}) as (server, link):
        driver = cell(link)
        await driver.connect()
        await driver.start_job(job(201, expected_s=60))
        assert server.drop_connections() == 1
        with pytest.raises(DeviceUnavailable):
            await follow(driver, 201)
        await driver.aclose()
        await driver.connect()  # reads state first: the job is still running
        assert (await driver.status()).job_id == 201
        assert isinstance((await follow(driver, 201))[-1], JobCompleted)
        await driver.aclose()
    assert plc.executed == [201]
    assert [r.function_code for r in plc.requests if r.function_code in WRITES] == [16]


async def test_a_stuck_heartbeat_makes_the_plc_stale() -> None:
    plc = SimPlc("rig-1", rig_map())
    async with served({1: plc}) as (_, link):
        driver = cell(link)
        await driver.connect()
        plc.heartbeat_stuck = True
        with pytest.raises(DeviceUnavailable, match=r"stale: heartbeat holding 109 stuck"):
            async with asyncio.timeout(5):
                await driver.link_lost()
        await driver.aclose()


async def test_a_value_outside_its_range_is_refused_and_nothing_is_sent() -> None:
    plc = SimPlc("rig-1", rig_map())
    async with served({1: plc}) as (_, link):
        driver = cell(link)
        await driver.connect()
        too_wide = job(202)
        too_wide = replace(too_wide, program=type(too_wide.program).recipe({"width_mm": 5000}))
        with pytest.raises(JobRejected, match=r"nothing sent: .*width_mm.*5000"):
            await driver.start_job(too_wide)
        await driver.aclose()
    assert plc.executed == []
    assert [r for r in plc.requests if r.function_code in WRITES] == []


async def test_a_point_not_declared_writable_is_never_written() -> None:
    base = rig_map()
    # A map that (wrongly) puts a recipe value on a read-only point: the driver refuses
    # to write it rather than trust the map.
    bad = replace(base.recipe["width_mm"], writable=False)  # same address, declared ro
    plc_map = replace(base, recipe={**base.recipe, "width_mm": bad})
    plc = SimPlc("rig-1", base)
    async with served({1: plc}) as (_, link):
        driver = cell(link, plc_map)
        await driver.connect()
        with pytest.raises(JobRejected, match=r"nothing sent: .*width_mm.*writable"):
            await driver.start_job(job(203))
        await driver.aclose()
    assert [r for r in plc.requests if r.function_code in WRITES] == []


async def test_read_only_mode_sends_no_write_at_all() -> None:
    plc = SimPlc("rig-1", rig_map())
    async with served({1: plc}) as (_, link):
        driver = cell(link, read_only=True)
        await driver.connect()
        with pytest.raises(JobRejected, match="read-only"):
            await driver.start_job(job(204))
        for command in (driver.hold, driver.resume, driver.abort):
            with pytest.raises(JobRejected, match="read-only"):
                await command()
        status = await driver.status()
        await driver.aclose()
    assert status.job_id is None
    assert plc.requests and all(r.function_code not in WRITES for r in plc.requests)


async def test_several_plcs_behind_one_gateway_share_one_connection() -> None:
    plcs = {unit: SimPlc(f"rig-{unit}", rig_map(), speed=200) for unit in (1, 2, 3)}
    async with served(plcs) as (_, link):
        drivers = [cell(link, device_id=unit, heartbeat_timeout_s=3.0) for unit in plcs]
        for driver in drivers:
            await driver.connect()
        for n, driver in enumerate(drivers):
            await driver.start_job(job(300 + n))
        ends = await asyncio.gather(*(follow(d, 300 + n) for n, d in enumerate(drivers)))
        for driver in drivers:
            await driver.aclose()
    assert [type(e[-1]) for e in ends] == [JobCompleted] * 3
    assert [p.executed for p in plcs.values()] == [[300], [301], [302]]
    assert not link.connected  # the last cell to close closed it


async def test_hold_resume_and_abort_reach_the_plc() -> None:
    plc = SimPlc("rig-1", rig_map(), speed=10)
    async with served({1: plc}) as (_, link):
        driver = cell(link, heartbeat_timeout_s=3.0)
        await driver.connect()
        await driver.start_job(job(205, expected_s=60))
        await driver.hold()
        assert (await driver.status()).state.value in ("holding", "held")
        await driver.resume()
        assert (await driver.status()).state.value in ("unholding", "execute")
        await driver.abort()
        end = (await follow(driver, 205))[-1]
        await driver.aclose()
    assert end.job_id == 205 and type(end).__name__ == "JobFaulted"
    assert end.code == "900"


async def test_a_plc_fault_code_becomes_an_alarm_in_the_plcs_own_words(tmp_path) -> None:
    from mes.service.controller import CellSetup, Controller
    from mes.store import Store
    from tests.service.conftest import FAST, release_units

    plc = SimPlc("rig-1", rig_map(), speed=1000, fault_rate=1.0)
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    async with served({1: plc}) as (_, link):
        setup = CellSetup("rig-1", frozenset({"cap.a", "cap.b"}), "modbus")
        controller = Controller(store, [setup], {"rig-1": cell(link)}, options=FAST)
        faulted = asyncio.Event()
        controller.recorder.subscribe(
            lambda events: any(e.transition == "fail" for e in events) and faulted.set()
        )
        release_units(store)
        task = asyncio.create_task(controller.run())
        async with asyncio.timeout(10):
            await faulted.wait()
        controller.stop()
        controller.stop()
        async with asyncio.timeout(10):
            await task
    alarm = next(a for a in store.alarms() if a["code"] not in ("offline",))
    store.close()
    texts = {"101": "fixture not closed", "102": "part not detected", "103": "load cell overrange"}
    assert alarm["code"] in texts and alarm["cell"] == "rig-1"
    assert texts[alarm["code"]] in alarm["text"]
    assert alarm["severity"] == "high"
