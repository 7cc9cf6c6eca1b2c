"""The GRBL driver: its pure codec and streaming model, the simulator's firmware, then the
driver against the simulated GRBL over a real pty and over TCP (``socket://``).

The contract behaviours of ``test_contract.py`` are repeated here with G-code jobs (the
shared suite hands out recipes); "after a reconnect a running job is followed" holds for
a job whose every line reached GRBL, and its honest counterpart (a job cut off mid-stream
is interrupted, never re-run) is tested too. Then the failures hosts meet in the field
(docs/grbl.md, reference notes section 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.serial import grbl_codec as codec
from drivers.serial.grbl import GrblCell, GrblSettings
from drivers.serial.grbl_codes import ALARMS, ERRORS
from drivers.serial.grbl_job import TRANSITIONS, CharCounter, GrblRun, Phase
from drivers.sim.grbl import SimGrbl, SimGrblPort, serve
from drivers.sim.grbl.gcode import GcodeError, Interpreter, Move
from mes.domain.job import (
    Job,
    JobCompleted,
    JobFaulted,
    JobProgress,
    JobReport,
    MachineState,
    Program,
    ProgramKind,
)
from mes.errors import DeviceFault, DeviceUnavailable, InvalidTransition, JobRejected

SPEED = 40.0  # device seconds per real second
TIMEOUT = 10.0
FAST = {
    "poll_s": 0.05,
    "status_timeout_s": 0.5,
    "connect_timeout_s": 1.0,
    "reset_timeout_s": 1.0,
}

# -- the codec ------------------------------------------------------------------------------

GC = "G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0"
IDLE = codec.StatusReport("Idle", mpos=(0.0, 0.0, 0.0), feed=0.0, speed=0.0)


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("ok", codec.Ok()),
        ("error:20", codec.Error(20)),
        ("error: Unsupported command", codec.Error(0)),
        ("ALARM:1", codec.Alarm(1)),
        ("Grbl 1.1h ['$' for help]", codec.Welcome("Grbl 1.1h")),
        ("GrblHAL 1.1f ['$' or '$HELP' for help]", codec.Welcome("GrblHAL 1.1f")),
        ("[MSG:'$H'|'$X' to unlock]", codec.Feedback("MSG", "'$H'|'$X' to unlock")),
        ("[MSG:Reset to continue]", codec.Feedback("MSG", "Reset to continue")),
        ("[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]", codec.Feedback("GC", GC)),
        ("[VER:1.1h.20190825:]", codec.Feedback("VER", "1.1h.20190825:")),
        ("[OPT:VNM,15,128]", codec.Feedback("OPT", "VNM,15,128")),
        ("[PRB:0.000,0.000,0.000:0]", codec.Feedback("PRB", "0.000,0.000,0.000:0")),
        ("$110=500.000", codec.Setting("$110", "500.000")),
        ("$N0=G54", codec.Setting("$N0", "G54")),
        (">G54G20:ok", codec.StartupLine("G54G20", None)),
        (">G54G20:error:20", codec.StartupLine("G54G20", 20)),
        ("<Idle|MPos:0.000,0.000,0.000|FS:0,0>", codec.Status(IDLE)),
        ("<Idle|MPos:nonsense>", codec.Other("<Idle|MPos:nonsense>")),
        ("", codec.Other("")),
    ],
)
def test_every_line_grbl_says_is_sorted_by_its_kind(line: str, reply: codec.Reply) -> None:
    assert codec.parse(line) == reply


def test_a_full_status_report_is_read_field_by_field() -> None:
    report = codec.parse_status(
        "<Hold:0|MPos:-10.500,2.000,-1.250|Bf:14,127|Ln:42|FS:500,8000|Pn:XP|"
        "Ov:120,50,100|A:SF|WCO:-20.000,0.000,-1.000|Xx:1>"
    )
    assert report.state == "Hold" and report.substate == 0
    assert report.mpos == (-10.5, 2.0, -1.25) and report.wco == (-20.0, 0.0, -1.0)
    assert (report.planner_free, report.rx_free, report.line_number) == (14, 127, 42)
    assert (report.feed, report.speed) == (500.0, 8000.0)
    assert report.pins == "XP" and report.accessories == "SF"
    assert report.overrides == (120, 50, 100) and report.unknown == {"Xx": "1"}
    assert report.work_position(report.wco) == (9.5, 2.0, -0.25)
    assert not report.moving
    wpos = codec.parse_status("<Run|WPos:1.000,2.000,3.000|F:300>")
    assert wpos.work_position(None) == (1.0, 2.0, 3.0) and wpos.feed == 300.0 and wpos.moving


@pytest.mark.parametrize(
    "text", ["Idle|MPos:0,0,0", "<>", "<1dle|MPos:0,0,0>", "<Idle|Bf:15>", "<Idle|FS:1>"]
)
def test_a_malformed_status_report_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"status report|bad|no machine state"):
        codec.parse_status(text)


@pytest.mark.parametrize(("key", "state"), list(codec.STATES.items()))
def test_grbl_states_map_to_packml_names(key: tuple[str, int | None], state: MachineState) -> None:
    name, sub = key
    assert codec.machine_state(codec.StatusReport(name, sub)) is state
    assert codec.machine_state(codec.StatusReport("Bogus")) is MachineState.UNKNOWN


def test_error_and_alarm_tables_are_grbls_own() -> None:
    assert sorted(ERRORS) == [*range(1, 18), *range(20, 39)]
    assert sorted(ALARMS) == list(range(1, 11))
    assert codec.error_text(20) == (
        "error:20 (Unsupported command): Unsupported or invalid g-code command found in block."
    )
    assert codec.alarm_text(1).startswith("ALARM:1 (Hard limit): Hard limit has been triggered")
    assert "not in GRBL 1.1's error table" in codec.error_text(99)


def test_a_program_is_compacted_as_grbl_reads_it() -> None:
    body = "%\n(header)\ng21 g90 ; mm\n\nG0 X1.5 (to start) Y2\n  \n%\n"
    assert codec.program_lines(body) == [(3, "G21G90"), (5, "G0X1.5Y2")]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("G0 X1\nG1 X2 (why?) F100", r"line 2: '\?' would reach GRBL as a real-time command"),
        ("M3 S1000 ; go!", r"line 1: '!' would reach GRBL"),
        ("G0 X1 (\u00e9)", r"line 1: '\\xe9' would reach GRBL"),
        ("$H", r"line 1: '\$H' is a GRBL system command"),
        ("G0 X1 (open", r"line 1: a '\(' comment is not closed"),
        ("G1 " + "X1.000 " * 13 + "F100", r"line 1: 84 characters .* GRBL keeps 79 \(error:11"),
    ],
)
def test_a_program_grbl_would_misread_is_refused_naming_the_line(body: str, reason: str) -> None:
    with pytest.raises(codec.ProgramError, match=reason):
        codec.program_lines(body)


# -- character counting and the job model ------------------------------------------------


def test_character_counting_follows_the_interface_docs_example() -> None:
    counter: CharCounter[str] = CharCounter(128)
    for name, length in (("a", 25), ("b", 40), ("c", 31)):
        assert counter.fits(length)
        counter.sent(length, name)
    assert counter.used == 96 and not counter.fits(58 + 1)  # 96 + 59 > 128
    assert counter.answered() == "a" and counter.used == 71
    assert not counter.fits(58)  # 71 + 58 = 129: wait
    assert counter.answered() == "b" and counter.fits(58)
    with pytest.raises(ValueError, match="do not fit"):
        counter.sent(100, "d")
    assert counter.peak == 96 and counter.clear() == ["c"] and counter.answered() is None


def test_send_response_keeps_one_line_in_flight() -> None:
    counter: CharCounter[int] = CharCounter(128, send_response=True)
    counter.sent(5, 1)
    assert not counter.fits(1)
    assert counter.answered() == 1 and counter.fits(120)


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("event", sorted({event for _, event in TRANSITIONS}))
def test_job_phases_follow_the_table(phase: Phase, event: str) -> None:
    run = GrblRun(1, [(1, "G1X1F100")], check=True)
    run.phase = phase
    if (phase, event) in TRANSITIONS:
        assert run.handle(event) is TRANSITIONS[(phase, event)]
    else:
        with pytest.raises(InvalidTransition):
            run.handle(event)


def test_a_run_streams_markers_program_and_sync_and_counts_program_bytes() -> None:
    run = GrblRun(7, [(2, "G0X1"), (4, "G1X2F100")], check=False)
    sent = []
    while (item := run.next_line()) is not None:
        sent.append(item[0])
        run.line_sent()
    assert sent == ["(MES job 7 begin)", "G0X1", "G1X2F100", "G4P0.01", "(MES job 7 end)"]
    assert run.answered(0) == "accepted" and run.phase is Phase.EXECUTE
    fractions = [run.fraction]
    for index in range(1, 5):
        run.answered(index)
        fractions.append(run.fraction)
    assert fractions == [0.0, 5 / 14, 1.0, 1.0, 1.0] and run.all_answered
    assert run.source_of(2) == "program line 4" and "G4P0.01" in run.source_of(3)


# -- the simulator's G-code side ---------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("G1X", 2),
        ("G1X1..2", 1),
        ("5X1", 1),
        ("G5X1", 20),
        ("M6", 20),
        ("G0G1X1", 21),
        ("G1X1", 22),
        ("G0X1X2", 25),
        ("G4", 28),
        ("G0X1P5", 36),
        ("G2X1F100", 35),
        ("G80X1", 31),
    ],
)
def test_the_simulator_refuses_bad_gcode_with_grbls_codes(line: str, code: int) -> None:
    with pytest.raises(GcodeError) as caught:
        Interpreter().execute(line)
    assert caught.value.code == code


def test_the_simulator_moves_in_machine_coordinates_through_offsets() -> None:
    gcode = Interpreter()
    gcode.execute("G10L2P1X-100Y-50")
    (move,) = gcode.execute("G0X10Y5")
    assert isinstance(move, Move) and move.target == (-90.0, -45.0, 0.0) and move.feed is None
    (move,) = gcode.execute("G20G91G1X1F10")
    assert isinstance(move, Move) and move.target == pytest.approx((-64.6, -45.0, 0.0))
    assert move.feed == pytest.approx(254.0)


async def test_a_host_that_oversends_loses_bytes_in_the_simulator() -> None:
    sim = SimGrbl("raw", speed=1.0)
    await sim.start()
    try:
        sim.feed(b"G1X100F10\n")  # ten minutes of motion: the planner never drains
        for i in range(40):
            sim.feed(f"G1X{i}Y{i}\n".encode())
        async with asyncio.timeout(TIMEOUT):
            await sim.wait_for(lambda: len(sim.stepper.planner) == 15)
        assert sim.max_fill == 128 and sim.overflowed > 0  # a stream.py slip would do this
    finally:
        await sim.aclose()


# -- the driver against the simulated GRBL ---------------------------------------------------


@dataclass
class Rig:
    driver: GrblCell
    sim: SimGrbl
    port: SimGrblPort


@contextlib.asynccontextmanager
async def grbl(
    transport: str = "pty", sim: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[Rig]:
    machine = SimGrbl("cnc-1", **{"speed": SPEED, **(sim or {})})
    port = SimGrblPort(machine)
    where = await port.start_pty() if transport == "pty" else None
    if transport == "tcp":
        await port.start_tcp()
        where = port.url
    assert where is not None
    await machine.start()
    driver = GrblCell("cnc-1", GrblSettings(port=where, **{**FAST, **settings}))
    try:
        async with asyncio.timeout(TIMEOUT):
            await driver.connect()
        yield Rig(driver, machine, port)
    finally:
        await driver.aclose()
        await port.aclose()
        await machine.aclose()


@pytest.fixture(params=["pty", "tcp"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async with grbl(request.param) as made:
        yield made


def moves(count: int, feed: int = 3000) -> list[str]:
    return [f"G1 X{10 + i % 20} Y{10 + i % 7} F{feed}" for i in range(count)]


def job(job_id: int, lines: list[str] | None = None, *, bare: bool = False) -> Job:
    """A G-code job; unless ``bare``, with a header and M5/M2 (which wait for the moves)."""
    body = lines if lines is not None else moves(30)
    if not bare:
        body = ["G21 G90", "M3 S1000", *body, "M5", "M2"]
    text = "\n".join(body)
    return Job(job_id, f"U.1/{job_id}", "U.1", "cnc.route", Program(ProgramKind.GCODE, text), 30)


def long_job(job_id: int) -> Job:
    """Seconds of motion: 5 mm moves at 300 mm/min (1 device-s each), many lines."""
    return job(job_id, [f"G1 X{(i % 2) * 5} Y{i % 3} F300" for i in range(200)])


def program_of(j: Job) -> list[str]:
    return [text for _, text in codec.program_lines(j.program.body)]


async def follow(driver: GrblCell, job_id: int, until: float | None = None) -> list[JobReport]:
    """Reports of ``job_id`` to its end, or until progress reaches ``until``."""
    reports: list[JobReport] = []
    async with asyncio.timeout(TIMEOUT):
        async for report in driver.reports(job_id):
            reports.append(report)
            if until is not None and isinstance(report, JobProgress) and report.fraction >= until:
                break
    return reports


async def settle(driver: GrblCell, state: MachineState) -> None:
    async with asyncio.timeout(TIMEOUT):
        while (await driver.status()).state is not state:
            session = driver._session
            assert session is not None
            await session.changed.wait()


# -- contract behaviours ------------------------------------------------------------------


async def test_a_connected_grbl_is_idle_with_no_job_and_was_not_reset(rig: Rig) -> None:
    status = await rig.driver.status()
    assert status.state is MachineState.IDLE and status.job_id is None
    assert rig.driver.version == "Grbl 1.1h" and rig.driver.options == "VL,15,128"
    assert rig.sim.boots == 1  # answered '?': no soft reset on connect


async def test_a_job_runs_to_completion_with_progress_and_measurements(rig: Rig) -> None:
    j = job(101)
    await rig.driver.start_job(j)
    running = await rig.driver.status()
    assert running.job_id == 101 and running.state.running
    *progress, end = await follow(rig.driver, 101)
    assert isinstance(end, JobCompleted) and end.job_id == 101
    assert end.measurements["cycle_s"] > 0 and end.measurements["lines"] == 34
    fractions = [r.fraction for r in progress if isinstance(r, JobProgress)]
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
    assert fractions[-1] == 1.0
    status = await rig.driver.status()
    assert status.job_id is None and status.last_job_id == 101 and status.state is MachineState.IDLE
    assert isinstance(status.last_report, JobCompleted)
    assert rig.sim.executed == [101] and rig.sim.jobs[0].outcome == "done"
    assert rig.sim.checked == program_of(j)  # the $C pass first...
    assert rig.sim.taken == [*program_of(j), "G4P0.01"]  # ...then the real run, each line once
    assert rig.sim.state == "Idle" and rig.sim.position == (19.0, 11.0, 0.0)


async def test_a_job_id_is_never_executed_twice(rig: Rig) -> None:
    await rig.driver.start_job(job(102))
    await follow(rig.driver, 102)
    await rig.driver.start_job(job(102))  # the last job: ignored
    (end,) = [r for r in await follow(rig.driver, 102) if not isinstance(r, JobProgress)]
    assert isinstance(end, JobCompleted) and end.job_id == 102
    await rig.driver.start_job(job(103))
    await follow(rig.driver, 103)
    with pytest.raises(JobRejected, match=r"already ran job 102"):
        await rig.driver.start_job(job(102))
    assert rig.sim.executed == [102, 103]


async def test_a_busy_grbl_refuses_a_second_job(rig: Rig) -> None:
    await rig.driver.start_job(long_job(104))
    with pytest.raises(JobRejected, match=r"busy with job 104"):
        await rig.driver.start_job(job(105))
    assert rig.sim.executed == [104]


async def test_an_error_ends_the_job_with_its_meaning_and_stops_the_machine(rig: Rig) -> None:
    await rig.driver.start_job(long_job(106))
    await follow(rig.driver, 106, until=0.05)
    rig.sim.fail_next(20, after=3)
    end = (await follow(rig.driver, 106))[-1]
    assert isinstance(end, JobFaulted) and end.job_id == 106 and end.code == "error:20"
    assert "error:20 (Unsupported command): Unsupported or invalid g-code" in end.text
    assert "at program line" in end.text and "the machine was stopped" in end.text
    status = await rig.driver.status()
    assert status.last_job_id == 106 and isinstance(status.last_report, JobFaulted)
    assert status.state is MachineState.IDLE  # held, then reset: no alarm, position kept
    assert rig.sim.state == "Idle" and rig.sim.jobs[0].outcome == "lost"
    assert not rig.sim.stepper.planner  # the buffered lines did not run on


async def test_the_next_job_starts_after_one_ended_in_a_fault(rig: Rig) -> None:
    await rig.driver.start_job(long_job(107))
    await follow(rig.driver, 107, until=0.05)
    rig.sim.fail_next(2)
    assert isinstance((await follow(rig.driver, 107))[-1], JobFaulted)
    await rig.driver.start_job(job(108))
    assert isinstance((await follow(rig.driver, 108))[-1], JobCompleted)
    assert rig.sim.executed == [107, 108]


async def test_following_a_job_grbl_never_had_is_refused(rig: Rig) -> None:
    with pytest.raises(JobRejected, match=r"does not know job 999"):
        await follow(rig.driver, 999)


async def test_after_a_reconnect_a_job_grbl_holds_whole_is_followed_not_rerun(rig: Rig) -> None:
    # Three long moves fit in GRBL's buffers: once all are answered the host may go.
    j = job(109, ["G21 G90", "G1 X30 F200", "G1 Y30", "G1 X0"], bare=True)
    await rig.driver.start_job(j)
    await follow(rig.driver, 109, until=1.0)
    await rig.driver.aclose()
    assert rig.sim.state == "Run"  # the machine carries on alone
    await rig.driver.connect()
    status = await rig.driver.status()
    assert status.job_id == 109 and status.state is MachineState.EXECUTE
    end = (await follow(rig.driver, 109))[-1]
    assert isinstance(end, JobCompleted) and end.job_id == 109
    assert rig.sim.executed == [109] and rig.sim.boots == 2  # power-up, leaving $C
    assert rig.sim.taken == [*program_of(j), "G4P0.01"]


async def test_after_a_reconnect_a_job_cut_off_midstream_is_interrupted(rig: Rig) -> None:
    await rig.driver.start_job(long_job(110))
    await follow(rig.driver, 110, until=0.05)
    await rig.driver.aclose()
    await rig.driver.connect()
    status = await rig.driver.status()
    assert status.job_id is None and status.last_job_id == 110
    (end,) = await follow(rig.driver, 110)
    assert isinstance(end, JobFaulted) and end.code == "interrupted"
    assert "cannot resume and is never re-run" in end.text
    assert rig.sim.state == "Idle" and not rig.sim.stepper.planner  # stopped on the way out
    await rig.driver.start_job(job(111))
    assert isinstance((await follow(rig.driver, 111))[-1], JobCompleted)
    assert rig.sim.executed == [110, 111]


# -- streaming ------------------------------------------------------------------------------


async def test_character_counting_fills_but_never_overflows_grbls_buffer() -> None:
    async with grbl() as rig:
        j = job(201, [f"G1 X{i % 9}.5 Y{i % 4}.25 F1200" for i in range(150)])
        await rig.driver.start_job(j)
        assert isinstance((await follow(rig.driver, 201))[-1], JobCompleted)
        session = rig.driver._session
        assert session is not None
        assert session.counter.peak <= 128 and rig.sim.max_fill <= 128
        assert rig.sim.max_fill > 100  # the buffer was used, not just trickled into
        assert rig.sim.overflowed == 0 and rig.sim.taken == [*program_of(j), "G4P0.01"]


async def test_character_counting_beats_send_response() -> None:
    # Short fast moves: the link, not the motion, sets the pace.
    lines = [f"G1 X{i % 7}.1 Y{i % 5}.2 F6000" for i in range(250)]
    took: dict[str, float] = {}
    for mode in ("send_response", "counting"):
        async with grbl(sim={"speed": 1000.0}, streaming=mode, check_mode=False) as rig:
            started = time.monotonic()
            await rig.driver.start_job(job(202, lines))
            assert isinstance((await follow(rig.driver, 202))[-1], JobCompleted)
            took[mode] = time.monotonic() - started
            assert rig.sim.overflowed == 0
            if mode == "send_response":
                assert rig.sim.max_fill <= 32  # one line at a time
    assert took["counting"] < 0.75 * took["send_response"], took


async def test_settings_are_written_one_at_a_time() -> None:
    async with grbl(machine_settings={"$32": "1", "110": "6000", "$111": 4000}) as rig:
        # at connect: $110 already 6000.000, so only the two that differ were written
        assert [line for line, _ in rig.sim.settings_writes] == ["$32=1", "$111=4000"]
        await rig.driver.write_settings({"$100": 80, "$101": 80, "$102": 400, "$1": 255})
        writes = rig.sim.settings_writes
        assert [line for line, _ in writes][2:] == ["$100=80", "$101=80", "$102=400", "$1=255"]
        assert all(waiting == 0 for _, waiting in writes)  # nothing behind an EEPROM write
        assert rig.sim.eeprom_lost == 0
        current = await rig.driver.read_settings()
        assert current["$100"] == "80.000" and current["$32"] == "1" and current["$1"] == "255"
        with pytest.raises(DeviceFault, match=r"\$999=1: error:3 \(Invalid statement\)"):
            await rig.driver.write_settings({"$999": 1})


# -- check mode -------------------------------------------------------------------------------


async def test_check_mode_catches_bad_lines_before_any_motion() -> None:
    async with grbl() as rig:
        bad = job(301, ["G0 X5", "G1 X10", "G5 X1", "G1 X1..2 F100"])
        with pytest.raises(JobRejected, match=r"check mode.*nothing moved") as refused:
            await rig.driver.start_job(bad)
        text = str(refused.value)
        assert "line 4: 'G1X10': error:22 (Undefined feed rate)" in text
        assert "line 5: 'G5X1': error:20 (Unsupported command)" in text
        assert "line 6: 'G1X1..2F100': error:1 (Expected command letter)" in text
        assert rig.sim.blocks_done == 0 and rig.sim.taken == [] and rig.sim.executed == []
        assert (await rig.driver.status()).state is MachineState.IDLE
        await rig.driver.start_job(job(302))  # GRBL left check mode: the next job runs
        assert isinstance((await follow(rig.driver, 302))[-1], JobCompleted)


async def test_check_mode_catches_a_soft_limit_and_homing_clears_the_power_up_lock() -> None:
    sim = {"settings": {20: 1, 22: 1, 130: 100, 131: 100, 132: 50}}
    async with grbl(sim=sim, home="when_locked") as rig:
        assert rig.sim.state == "Idle" and "$H" not in rig.sim.taken  # homed at connect
        with pytest.raises(JobRejected, match=r"line 3: 'G0X10Y-10'.*ALARM:2 \(Soft limit\)"):
            await rig.driver.start_job(job(303, ["G0 X10 Y-10"]))
        assert rig.sim.blocks_done == 0 and rig.sim.executed == []
        await settle(rig.driver, MachineState.IDLE)  # unlocked: check mode moved nothing
        inside = ["G0 X-10 Y-10", "G1 X-20 F3000", "G0 Z-5"]
        await rig.driver.start_job(job(304, inside))
        assert isinstance((await follow(rig.driver, 304))[-1], JobCompleted)
        assert rig.sim.position == (-20.0, -10.0, -5.0)


# -- alarms, resets, silence ------------------------------------------------------------


async def test_a_hard_limit_faults_the_job_and_grbl_stays_locked_by_default() -> None:
    async with grbl() as rig:
        await rig.driver.start_job(long_job(401))
        await follow(rig.driver, 401, until=0.05)
        boots = rig.sim.boots
        rig.sim.inject_alarm(1)
        end = (await follow(rig.driver, 401))[-1]
        assert isinstance(end, JobFaulted) and end.code == "ALARM:1"
        assert "Hard limit has been triggered" in end.text
        await settle(rig.driver, MachineState.ABORTED)
        assert rig.sim.boots == boots + 1  # the driver reset GRBL out of its halt
        with pytest.raises(DeviceFault, match=r"locked in ALARM: ALARM:1 .*home it \(\$H\)"):
            await rig.driver.start_job(job(402))
        await rig.driver.unlock()  # an operator decided the machine is safe
        await rig.driver.start_job(job(403))
        assert isinstance((await follow(rig.driver, 403))[-1], JobCompleted)
        assert rig.sim.executed == [401, 403] and rig.sim.jobs[0].outcome == "alarm"


@pytest.mark.parametrize(
    ("policy", "alarm", "unlocked"),
    [("unless_hard_limit", 1, False), ("unless_hard_limit", 2, True), ("always", 1, True)],
)
async def test_the_unlock_policy_decides_after_an_alarm(
    policy: str, alarm: int, unlocked: bool
) -> None:
    async with grbl(unlock=policy) as rig:
        await rig.driver.start_job(long_job(404))
        await follow(rig.driver, 404, until=0.05)
        rig.sim.inject_alarm(alarm)
        end = (await follow(rig.driver, 404))[-1]
        assert isinstance(end, JobFaulted) and end.code == f"ALARM:{alarm}"
        assert end.text.startswith(codec.alarm_text(alarm))
        await settle(rig.driver, MachineState.IDLE if unlocked else MachineState.ABORTED)


async def test_a_grbl_reset_mid_job_faults_it_and_it_is_never_rerun() -> None:
    async with grbl("tcp") as rig:
        await rig.driver.start_job(long_job(405))
        await follow(rig.driver, 405, until=0.05)
        rig.sim.reset(power=True)  # power blip: the welcome line, nothing else
        end = (await follow(rig.driver, 405))[-1]
        assert isinstance(end, JobFaulted) and end.code == "reset"
        assert "GRBL reset during the job ('Grbl 1.1h')" in end.text
        await rig.driver.start_job(job(405))  # handed over again: it ended here, ignored
        assert (await rig.driver.status()).job_id is None
        assert rig.sim.executed == [405] and rig.sim.jobs[0].outcome == "lost"


async def test_the_reset_button_mid_job_is_an_alarm_3() -> None:
    async with grbl() as rig:
        await rig.driver.start_job(long_job(406))
        await follow(rig.driver, 406, until=0.05)
        rig.sim.reset()
        end = (await follow(rig.driver, 406))[-1]
        assert isinstance(end, JobFaulted) and end.code == "ALARM:3"
        assert "Reset while in motion" in end.text
        await settle(rig.driver, MachineState.ABORTED)


async def test_a_silent_grbl_fails_the_link_and_the_job() -> None:
    async with grbl() as rig:
        await rig.driver.start_job(long_job(407))
        rig.sim.go_silent()
        end = (await follow(rig.driver, 407))[-1]
        assert isinstance(end, JobFaulted) and end.code == "timeout"
        with pytest.raises(DeviceUnavailable, match=r"did not answer a status query \('\?'\)"):
            async with asyncio.timeout(TIMEOUT):
                await rig.driver.link_lost()


async def test_a_port_where_nothing_answers_is_unavailable_naming_it() -> None:
    sim = SimGrbl("mute", speed=SPEED)
    port = SimGrblPort(sim)
    path = await port.start_pty()
    sim.go_silent()
    driver = GrblCell("mute", GrblSettings(port=path, connect_timeout_s=0.2, reset_timeout_s=0.2))
    try:
        with pytest.raises(DeviceUnavailable, match=rf"no answer from GRBL on {path} at 115200"):
            await driver.connect()
        with pytest.raises(DeviceUnavailable, match=r"not connected|closed"):
            await driver.status()
    finally:
        await driver.aclose()
        await port.aclose()


async def test_a_grbl_that_boots_as_the_port_opens_is_met_by_its_welcome() -> None:
    sim = SimGrbl("dtr", speed=SPEED)
    port = SimGrblPort(sim)
    path = await port.start_pty()
    driver = GrblCell("dtr", GrblSettings(port=path, **FAST))
    try:
        connecting = asyncio.create_task(driver.connect())
        await sim.start()  # the board comes out of its bootloader only now
        async with asyncio.timeout(TIMEOUT):
            await connecting
        assert (await driver.status()).state is MachineState.IDLE and sim.boots == 1
    finally:
        await driver.aclose()
        await port.aclose()
        await sim.aclose()


# -- operator actions ---------------------------------------------------------------------


async def test_feed_hold_and_resume_continue_every_line_once() -> None:
    async with grbl() as rig:
        j = job(501, [f"G1 X{(i % 2) * 5} Y{i % 3} F600" for i in range(60)])
        await rig.driver.start_job(j)
        await follow(rig.driver, 501, until=0.2)
        await rig.driver.hold()
        assert (await rig.driver.status()).state is MachineState.HELD
        assert rig.sim.state == "Hold" and rig.sim.substate == 0
        where, done = rig.sim.position, rig.sim.blocks_done
        with pytest.raises(TimeoutError):  # nothing moves while held
            async with asyncio.timeout(0.2):
                await rig.sim.wait_for(lambda: rig.sim.blocks_done > done)
        assert rig.sim.position == where
        with pytest.raises(JobRejected, match=r"cannot hold now"):
            await rig.driver.hold()
        await rig.driver.resume()
        assert (await rig.driver.status()).state is MachineState.EXECUTE
        assert isinstance((await follow(rig.driver, 501))[-1], JobCompleted)
        assert rig.sim.taken == [*program_of(j), "G4P0.01"]


async def test_abort_holds_then_resets_without_losing_position() -> None:
    async with grbl() as rig:
        await rig.driver.start_job(long_job(502))
        await follow(rig.driver, 502, until=0.05)
        boots = rig.sim.boots
        await rig.driver.abort()
        end = (await follow(rig.driver, 502))[-1]
        assert end == JobFaulted(502, "900", "job aborted")
        assert rig.sim.boots == boots + 1
        assert rig.sim.state == "Idle"  # reset at Hold:0: no ALARM:3, position kept
        assert (await rig.driver.status()).state is MachineState.IDLE
        with pytest.raises(JobRejected, match=r"no job to abort"):
            await rig.driver.abort()


async def test_status_reports_are_followed_while_a_job_runs() -> None:
    async with grbl() as rig:
        await rig.driver.start_job(long_job(503))
        await follow(rig.driver, 503, until=0.05)
        session = rig.driver._session
        assert session is not None
        async with asyncio.timeout(TIMEOUT):
            await session.until(lambda: session.report is not None and session.report.feed == 300)
        report = rig.driver.report
        assert report is not None and report.state == "Run" and report.mpos is not None
        assert report.planner_free is not None and report.planner_free < 15
        assert session.wco == (0.0, 0.0, 0.0)
        await rig.driver.abort()


async def test_programs_that_cannot_be_streamed_are_refused_and_nothing_is_sent() -> None:
    async with grbl() as rig:
        recipe = Job(601, "s", "u", "cnc.route", Program.recipe({"width_mm": 1}), 1)
        with pytest.raises(JobRejected, match=r"recipe program; GRBL runs G-code"):
            await rig.driver.start_job(recipe)
        with pytest.raises(JobRejected, match=r"line 3: '!' would reach GRBL"):
            await rig.driver.start_job(job(602, ["M0 (stop!)"]))
        assert rig.sim.checked == [] and rig.sim.executed == []


async def test_a_jog_runs_until_it_is_cancelled() -> None:
    async with grbl() as rig:
        await rig.driver.jog(feed_mm_min=100, X=150)  # 90 device-s: cancelled long before
        session = rig.driver._session
        assert session is not None
        async with asyncio.timeout(TIMEOUT):
            await session.until(lambda: bool(session.report and (session.report.mpos or [0])[0]))
        assert (await rig.driver.status()).state in (MachineState.IDLE, MachineState.EXECUTE)
        await rig.driver.cancel_jog()
        x = rig.sim.position[0]
        assert rig.sim.state == "Idle" and 0 < x < 150
        assert (await rig.driver.status()).state is MachineState.IDLE
        with pytest.raises(JobRejected, match=r"needs an axis"):
            await rig.driver.jog(feed_mm_min=100)


async def test_a_grbl_left_in_check_mode_is_taken_out_of_it_on_connect() -> None:
    machine = SimGrbl("chk", speed=SPEED)
    port = SimGrblPort(machine)
    path = await port.start_pty()
    await machine.start()
    machine.feed(b"$C\n")  # a controller died in the middle of its check pass
    driver = GrblCell("chk", GrblSettings(port=path, **FAST))
    try:
        async with asyncio.timeout(TIMEOUT):
            await machine.wait_for(lambda: machine.check_mode)
            await driver.connect()
        assert machine.state == "Idle" and not machine.check_mode
        assert (await driver.status()).state is MachineState.IDLE
    finally:
        await driver.aclose()
        await port.aclose()
        await machine.aclose()


async def test_a_reset_during_the_check_refuses_the_job_which_may_come_again() -> None:
    async with grbl() as rig:
        j = job(701, moves(400))
        starting = asyncio.create_task(rig.driver.start_job(j))
        async with asyncio.timeout(TIMEOUT):
            await rig.sim.wait_for(lambda: len(rig.sim.checked) > 20)
        rig.sim.reset(power=True)
        with pytest.raises(JobRejected, match=r"not started: GRBL reset during the check"):
            await starting
        assert rig.sim.executed == [] and rig.sim.blocks_done == 0
        await rig.driver.start_job(j)  # it never ran: the same id may be handed over again
        assert isinstance((await follow(rig.driver, 701))[-1], JobCompleted)
        assert rig.sim.executed == [701]


async def test_a_read_only_cell_watches_and_never_unlocks() -> None:
    async with grbl(sim={"settings": {22: 1}}, read_only=True, unlock="always") as rig:
        session = rig.driver._session
        assert session is not None
        for _ in range(3):
            await session.refresh()
        assert rig.sim.state == "Alarm"
        assert (await rig.driver.status()).state is MachineState.ABORTED
        with pytest.raises(JobRejected, match=r"read-only"):
            await rig.driver.start_job(job(702))
        with pytest.raises(JobRejected, match=r"read-only"):
            await rig.driver.unlock()


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"rx_buffer": 64}, r"rx_buffer 64: .* must hold a whole line \(80 bytes\)"),
        ({"poll_s": 0}, r"poll_s must be more than 0"),
        ({"poll_s": 1.0, "status_timeout_s": 0.5}, r"longer than poll_s"),
        ({"machine_settings": {"$X": "1"}}, r"'\$X' is not a GRBL setting"),
        ({"machine_settings": {"$32": "on"}}, r"\$32 = 'on' is not a number"),
    ],
)
def test_settings_that_cannot_work_are_refused(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        GrblSettings(port="/dev/null", **values)


async def test_a_program_pause_holds_the_job_until_it_is_resumed() -> None:
    async with grbl() as rig:
        j = job(801, ["G1 X5 F3000", "M0", "G1 X0"])
        await rig.driver.start_job(j)
        await settle(rig.driver, MachineState.HELD)  # M0: GRBL held itself
        assert rig.sim.position == (5.0, 0.0, 0.0) and rig.sim.substate == 0
        await rig.driver.resume()
        assert isinstance((await follow(rig.driver, 801))[-1], JobCompleted)
        assert rig.sim.position == (0.0, 0.0, 0.0)


async def test_serve_powers_grbl_on_tcp_and_logs_each_job_it_begins() -> None:
    begun: list[tuple[str, int]] = []
    machine = SimGrbl(
        "served", speed=SPEED, on_job=lambda name, job_id: begun.append((name, job_id))
    )
    served = await serve(machine, host="127.0.0.1")
    driver = GrblCell("served", GrblSettings(port=served.url, **FAST))
    try:
        async with asyncio.timeout(TIMEOUT):
            await driver.connect()
        await driver.start_job(job(901))
        assert isinstance((await follow(driver, 901))[-1], JobCompleted)
        assert begun == [("served", 901)]
    finally:
        await driver.aclose()
        await served.aclose()
        await machine.aclose()
