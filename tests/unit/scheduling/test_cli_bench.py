"""``mes bench fjsp``: makespans by both schedulers, checked, with clear input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mes import cli_bench
from mes.cli_bench import bench_app
from routing.scheduling.fjsp import FjspError
from routing.scheduling.optimizer import available

runner = CliRunner()


def test_prints_both_schedulers_against_the_best_known_bounds(fjsp_dir: Path):
    result = runner.invoke(
        bench_app, ["fjsp", str(fjsp_dir / "mk01.fjs"), "--time-limit", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("mk01.fjs"))
    fields = row.split()
    assert fields[:4] == ["mk01.fjs", "55", "40", "40"]
    if available():
        assert fields[7] == "40*"  # the optimizer proves it


def test_json_output(fjsp_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli_bench, "available", lambda: False)  # dispatcher only: quick
    result = runner.invoke(bench_app, ["fjsp", str(fjsp_dir / "mk01.fjs"), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["best_known_lb"] == 40 and row["operations"] == 55
    assert row["dispatcher"]["makespan"] >= 40 and row["optimizer"] is None


def test_without_the_optimizer_it_says_so(fjsp_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli_bench, "available", lambda: False)
    result = runner.invoke(bench_app, ["fjsp", str(fjsp_dir / "mk01.fjs")])
    assert result.exit_code == 0
    assert "optimizer not installed" in result.output


def test_a_file_without_bounds_prints_dashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli_bench, "available", lambda: False)
    path = tmp_path / "tiny.fjs"
    path.write_text("2 2\n2 1 1 3 2 1 2 2 4\n1 1 2 5\n")
    result = runner.invoke(bench_app, ["fjsp", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[:4] == ["tiny.fjs", "3", "-", "-"]


def test_bad_files_refuse_the_whole_run_naming_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.fjs"
    bad.write_text("2 3\n2 1 1 4 2 2 3 3\n1 1 3 7\n")
    result = runner.invoke(bench_app, ["fjsp", str(bad), str(tmp_path / "missing.fjs")])
    assert isinstance(result.exception, FjspError)  # mes.cli.main turns it into exit code 2
    lines = str(result.exception).splitlines()
    assert lines[0].startswith(f"{bad}:2: job 1: line ends after 8 fields")
    assert lines[1].startswith(f"{tmp_path / 'missing.fjs'}: cannot read")
    assert result.output == ""  # nothing was scheduled


def test_an_infeasible_schedule_is_never_reported(fjsp_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from routing.scheduling.model import Schedule

    monkeypatch.setattr(cli_bench, "available", lambda: False)
    monkeypatch.setattr(cli_bench, "dispatch_schedule", lambda problem, **kw: Schedule({}))
    result = runner.invoke(bench_app, ["fjsp", str(fjsp_dir / "mk01.fjs")])
    assert result.exit_code == 1
    assert "this is a bug" in result.output + (result.stderr if result.stderr_bytes else "")
