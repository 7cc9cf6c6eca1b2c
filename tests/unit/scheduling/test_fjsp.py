"""The flexible job-shop reader: the real instances, messy copies, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.scheduling.fjsp import Bounds, FjspError, parse_fjsp, read_bounds, read_fjsp

SMALL = "2 3 1.5\n2 1 1 4 2 2 3 3 5\n1 1 3 7\n"

# (instance, jobs, machines, operations), as the headers and job lines say.
SIZES = [("mk01", 10, 6, 55), ("mk02", 10, 6, 58), ("mk06", 10, 10, 150), ("mk10", 20, 15, 240)]


@pytest.mark.parametrize(("name", "jobs", "machines", "ops"), SIZES)
def test_the_brandimarte_instances_read(fjsp_dir: Path, name, jobs, machines, ops):
    problem = read_fjsp(fjsp_dir / f"{name}.fjs")
    assert (len(problem.jobs), len(problem.machines), len(problem.operations)) == (
        jobs,
        machines,
        ops,
    )
    assert problem.name == name


def test_all_ten_instances_read_and_have_bounds(fjsp_dir: Path):
    for i in range(1, 11):
        path = fjsp_dir / f"mk{i:02d}.fjs"
        assert read_fjsp(path).operations
        bounds = read_bounds(path)
        assert bounds is not None and 0 < bounds.lb <= bounds.ub
    assert read_bounds(fjsp_dir / "mk10.fjs") == Bounds(189, 193)


def test_operations_chain_per_job_with_their_alternatives():
    problem = parse_fjsp(SMALL)
    ops = problem.operation
    assert ops["J1.1"].durations == {"M1": 4}
    assert ops["J1.2"].durations == {"M2": 3, "M3": 5}
    assert ops["J1.2"].after == ("J1.1",)
    assert ops["J2.1"].durations == {"M3": 7} and ops["J2.1"].after == ()
    assert [m.name for m in problem.machines] == ["M1", "M2", "M3"]


def test_messy_whitespace_blank_lines_tabs_and_trailing_lines_are_fine():
    messy = "\n\n  2\t3   \n\n2  1 1\t4\t 2 2 3 3 5   \n\n\t1 1 3 7\r\n\n999 trailing data\n"
    assert parse_fjsp(messy).operations == parse_fjsp(SMALL).operations


def test_the_header_without_the_average_is_fine():
    assert len(parse_fjsp("1 1\n1 1 1 5\n").operations) == 1


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", None, "empty file"),
        ("2\n", 1, "found 1 fields"),
        ("2 3 1.5 9\n", 1, "found 4 fields"),
        ("two 3\n", 1, "must be integers"),
        ("2 3 x\n", 1, "must be a number"),
        ("0 3\n", 1, "at least 1"),
        ("2 3\n2 1 1 4 2 2 3 3 5\n", 2, "header (line 1) says 2 jobs, the file has 1"),
        ("2 3\n2 1 1 4 2 2 3 3\n1 1 3 7\n", 2, "line ends after 8 fields"),
        ("2 3\n2 1 1 4 2 2 3 3 5 9\n1 1 3 7\n", 2, "1 fields left over"),
        ("2 3\n2 1 1 4 2 2 3 3 5\n1 1 4 7\n", 3, "machine 4 is not in 1..3"),
        ("2 3\n2 1 1 4 2 2 3 3 5\n1 1 0 7\n", 3, "machine 0 is not in 1..3"),
        ("2 3\n2 1 1 4.5 2 2 3 3 5\n1 1 3 7\n", 2, "field 4 is not an integer: '4.5'"),
        ("2 3\n2 1 1 4 2 2 3 3 5\n1 1 3 -7\n", 3, "negative time"),
        ("2 3\n2 1 1 4 2 2 3 2 5\n1 1 3 7\n", 2, "machine 2 is listed twice"),
        ("2 3\n0\n1 1 3 7\n", 2, "at least 1, found 0"),
        ("2 3\n2 1 1 4 0\n1 1 3 7\n", 2, "machine count must be at least 1"),
    ],
)
def test_bad_files_name_the_file_the_line_and_the_reason(text, line, reason):
    with pytest.raises(FjspError) as caught:
        parse_fjsp(text, source="bad.fjs")
    problem = caught.value.problems[0]
    assert problem.file == "bad.fjs"
    assert problem.line == line
    assert reason in problem.reason
    assert str(problem).startswith(f"bad.fjs:{line}:" if line else "bad.fjs:")


def test_every_bad_job_line_is_reported_not_just_the_first():
    text = "3 2\n1 1 3 4\n1 1 1\n1 1 1 2 9\n"
    with pytest.raises(FjspError) as caught:
        parse_fjsp(text, source="f")
    assert [p.line for p in caught.value.problems] == [2, 3, 4]


def test_unreadable_files_are_fjsp_errors(tmp_path: Path):
    with pytest.raises(FjspError, match="cannot read"):
        read_fjsp(tmp_path / "missing.fjs")
    binary = tmp_path / "binary.fjs"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FjspError, match="not UTF-8"):
        read_fjsp(binary)


def test_bounds_are_optional_and_a_broken_bks_file_is_reported(tmp_path: Path):
    instance = tmp_path / "x.fjs"
    assert read_bounds(instance) is None
    (tmp_path / "bks.json").write_text(json.dumps({"y": {"lb": 1, "ub": 2}}))
    assert read_bounds(instance) is None
    (tmp_path / "bks.json").write_text(json.dumps({"x": {"lb": 1}}))
    with pytest.raises(FjspError, match="needs numbers"):
        read_bounds(instance)
    (tmp_path / "bks.json").write_text("{")
    with pytest.raises(FjspError, match="cannot read best-known bounds"):
        read_bounds(instance)


job_lines = st.lists(
    st.lists(
        st.lists(st.tuples(st.integers(1, 4), st.integers(0, 99)), min_size=1, max_size=4).map(
            lambda pairs: list({m: t for m, t in pairs}.items())
        ),
        min_size=1,
        max_size=5,
    ),
    min_size=1,
    max_size=6,
)
separators = st.sampled_from([" ", "  ", "\t", " \t "])


@settings(max_examples=60, deadline=None)
@given(jobs=job_lines, sep=separators, blank=st.sampled_from(["\n", "\n\n", "\n \t\n"]))
def test_any_whitespace_reads_the_same_problem(jobs, sep, blank):
    def line(job: list[list[tuple[int, int]]]) -> str:
        fields = [len(job)]
        for op in job:
            fields.append(len(op))
            for machine, time in op:
                fields += [machine, time]
        return sep.join(map(str, fields))

    text = blank.join([f"{len(jobs)}{sep}4", *map(line, jobs)]) + blank
    problem = parse_fjsp(text)
    assert len(problem.operations) == sum(len(job) for job in jobs)
    for j, job in enumerate(jobs, start=1):
        for o, alternatives in enumerate(job, start=1):
            assert problem.operation[f"J{j}.{o}"].durations == {f"M{m}": t for m, t in alternatives}
