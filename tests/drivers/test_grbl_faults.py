"""GRBL streaming under the issue's faults, through the simulated GRBL over a real pty.

GRBL has no line numbers, checksums or resends, so issue 8's soak (the executed lines
equal the program with 1 corrupted line in 1,000, a dropped ``ok`` in 5,000 and one
30-second stall) becomes, for GRBL: a corrupted line GRBL refuses (``error:N``) ends the
job as a fault with its meaning, the machine stopped, no line run twice; a lost ``ok``
and a stall shorter than the status timeout change nothing (the program arrives
exactly); a stall longer than it (status reports stop) ends the job without hanging, and
what ran is the program's beginning, nothing repeated or skipped.

Time is scaled as in ``test_grbl.py``: the machine runs ``SPEED`` (40) device seconds a
real second; the driver's poll and status timeout are its test values (0.05 s and
0.5 s, a tenth apart like the field's 0.2 s and 2 s).
"""

from __future__ import annotations

import asyncio

import pytest

from drivers.serial import grbl_codec as codec
from drivers.serial.grbl_job import GrblRun
from mes.domain.job import Job, JobCompleted, JobFaulted, JobReport, MachineState
from tests.drivers.test_grbl import FAST, SPEED, grbl, job, program_of, settle

SOAK_LINES = 5000


def short_moves(count: int) -> list[str]:
    """Short moves at a feed the link, not the motion, sets the pace for (~20 bytes)."""
    return [f"G1 X{10 + (i % 40) * 0.1:.1f} Y{10 + (i % 9) * 0.1:.1f} F3000" for i in range(count)]


async def run(driver: object, j: Job, limit_s: float = 60.0) -> list[JobReport]:
    reports: list[JobReport] = []
    async with asyncio.timeout(limit_s):  # never hangs
        await driver.start_job(j)  # type: ignore[attr-defined]
        async for report in driver.reports(j.job_id):  # type: ignore[attr-defined]
            reports.append(report)
    return reports


def is_prefix(taken: list[str], program: list[str]) -> bool:
    return taken == program[: len(taken)]


async def test_a_corrupted_line_ends_the_job_with_its_meaning_and_nothing_runs_twice() -> None:
    async with grbl(check_mode=True) as rig:
        j = job(501, short_moves(300), bare=True)
        program = program_of(j)
        rig.sim.corrupt(after=120)  # the check pass went clean: the noise hits the run
        end = (await run(rig.driver, j))[-1]
        assert isinstance(end, JobFaulted) and end.code == "error:20"
        assert "error:20 (Unsupported command)" in end.text
        assert f"at program line 121: {program[120]!r}" in end.text
        assert "the machine was stopped" in end.text
        taken = rig.sim.taken
        assert taken[:120] == program[:120]  # nothing lost or repeated before it
        assert taken[120] == "C" + program[120][1:]  # G1 arrived as C1: refused
        assert is_prefix(taken[121:], program[121:])  # what GRBL held ran on, in order
        await settle(rig.driver, MachineState.IDLE)
        assert not rig.sim.stepper.planner and rig.sim.jobs[0].outcome == "lost"


async def test_a_lost_ok_neither_hangs_the_job_nor_repeats_a_line() -> None:
    """The driver counts one line more in GRBL's buffer than there is (it streams a
    little more slowly, never over) and, at the end, takes GRBL idle with nothing more
    answered over two status reports as that line's answer."""
    async with grbl(check_mode=False) as rig:
        j = job(502, short_moves(200), bare=True)
        rig.sim.drop_ok(after=150)
        end = (await run(rig.driver, j))[-1]
        assert isinstance(end, JobCompleted), end
        assert rig.sim.taken == [*program_of(j), "G4P0.01"]
        assert rig.sim.overflowed == 0 and rig.sim.jobs[0].outcome == "done"


def test_the_dwell_left_unanswered_is_counted() -> None:
    run = GrblRun(1, [(1, "G1X1"), (2, "G4P5"), (3, "G04P0.5"), (4, "G40")], check=False)
    for _ in run.lines:
        run.line_sent()
    assert run.dwell_s() == pytest.approx(5.51)  # with the driver's own G4P0.01
    run.answered(2)
    assert run.dwell_s() == pytest.approx(0.51)


async def test_a_dwell_at_the_end_is_not_taken_for_lost_oks() -> None:
    """GRBL reports ``Idle`` while it dwells: a job ending in a long ``G4`` is complete
    when its last line is answered, not after two idle reports."""
    async with grbl(check_mode=False) as rig:
        j = job(505, [*short_moves(20), f"G4 P{FAST['status_timeout_s'] * 2 * SPEED:g}"], bare=True)
        end = (await run(rig.driver, j))[-1]
        assert isinstance(end, JobCompleted), end
        assert rig.sim.jobs[0].outcome == "done"  # the end marker ran before completion


@pytest.mark.parametrize("share", [0.5, 3.0])
async def test_a_stall_neither_loses_nor_repeats_a_line_nor_hangs(share: float) -> None:
    """GRBL's main loop freezes for ``share`` of the status timeout: answers and status
    reports stop. Shorter, the job goes on as if nothing happened; longer, the link is
    given up (a ``?`` unanswered) and the job ends ``timeout``: what ran is the program's
    beginning, and it is never streamed again."""
    stall_s = FAST["status_timeout_s"] * share
    async with grbl(check_mode=False) as rig:
        j = job(503, short_moves(400), bare=True)
        program = [*program_of(j), "G4P0.01"]
        rig.sim.stall(stall_s * SPEED, after=200)
        end = (await run(rig.driver, j))[-1]
        async with asyncio.timeout(stall_s + 5):
            await rig.sim.wait_for(lambda: bool(rig.sim.stalls))
        [(line, real_s)] = rig.sim.stalls
        assert line == program[200] and real_s >= stall_s
        if share < 1:
            assert isinstance(end, JobCompleted), end
            assert rig.sim.taken == program
        else:
            assert isinstance(end, JobFaulted) and end.code == "timeout"
            assert "did not answer a status query" in end.text and "never re-run" in end.text
            await rig.sim.wait_for(lambda: not rig.sim.stepper.planner)
            assert is_prefix(rig.sim.taken, program) and len(rig.sim.taken) > 200
            assert rig.sim.executed == [503]


async def test_a_long_stream_through_a_lost_ok_and_a_stall_arrives_exactly() -> None:
    """The soak's GRBL counterpart: 5,000 short moves, one lost ``ok`` and one stall
    (as long as GRBL may go quiet: under the status timeout), no check pass (it would
    stream the program twice). Every line runs once, in order, and the buffer never
    overflows."""
    async with grbl(check_mode=False) as rig:
        j = job(504, short_moves(SOAK_LINES), bare=True)
        rig.sim.drop_ok(after=2222)
        rig.sim.stall(FAST["status_timeout_s"] * 0.8 * SPEED, after=3333)
        end = (await run(rig.driver, j))[-1]
        assert isinstance(end, JobCompleted), end
        assert rig.sim.taken == [*program_of(j), "G4P0.01"]
        assert rig.sim.overflowed == 0 and rig.sim.max_fill <= codec.RX_BUFFER_SIZE
        assert len(rig.sim.stalls) == 1 and rig.sim.executed == [504]
