"""``mes run`` as a long-lived process: picks up released orders, stops gracefully on
SIGTERM, and after kill -9 resumes so that every unit is done and no job is lost."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mes.store import Store
from tests.conftest import REPO
from tests.e2e.conftest import mes, mes_command

ORDER = """
[[orders]]
id = "{id}"
{units}
"""
UNIT = """
[[orders.units]]
family = "{family}"
"""


class Running:
    """A ``mes run`` subprocess whose output lines are read as they come."""

    def __init__(
        self,
        plant: Path,
        db: str,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.proc = subprocess.Popen(
            mes_command("run", "--plant", str(plant), "--db", db, "--headless", *args),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r}; got:\n" + "\n".join(self.seen))
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line


def write_order(path: Path, order_id: str, families: list[str]) -> Path:
    units = "".join(UNIT.format(family=f) for f in families)
    path.write_text(ORDER.format(id=order_id, units=units))
    return path


def test_run_picks_up_a_release_and_stops_gracefully_on_sigterm(tmp_path, fast_plant, db):
    run = Running(fast_plant, db)
    try:
        run.expect("controller running")
        order = write_order(tmp_path / "o.toml", "SO-RUN", ["nameplate", "sign"])
        assert (
            mes("order", "release", str(order), "--plant", str(fast_plant), db=db).returncode == 0
        )
        run.expect(r"unit SO-RUN\.\d done")
        run.expect(r"unit SO-RUN\.\d done")
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=15) == 0
    finally:
        run.proc.kill()
    store = Store.open(db)
    assert store.unit_states() == {"SO-RUN.1": "done", "SO-RUN.2": "done"}
    assert {c["state"] for c in store.cells()} == {"offline"}  # no longer driven
    store.close()


@pytest.mark.slow
def test_kill_9_mid_run_then_restart_finishes_every_unit_once(tmp_path, fast_plant, db):
    families = ["nameplate", "phone-stand", "sign"] * 4
    order = write_order(tmp_path / "o.toml", "SO-KILL", families)
    assert mes("order", "release", str(order), "--plant", str(fast_plant), db=db).returncode == 0

    for _ in range(3):
        run = Running(fast_plant, db)
        try:
            run.expect(r"unit SO-KILL\.\d+ done")
        finally:
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(timeout=10)
    run = Running(fast_plant, db)
    try:
        store = Store.open(db)
        while set(store.unit_states().values()) != {"done"}:
            run.expect(r"unit SO-KILL\.\d+ done", timeout=60)
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=15) == 0
    finally:
        run.proc.kill()

    assert store.integrity_check() == "ok"
    for unit_id in store.unit_states():
        record = store.unit_record(unit_id)
        for step in record["steps"]:
            done = [j for j in step["jobs"] if j["state"] == "done"]
            assert len(done) == 1, (unit_id, step["name"], step["jobs"])
            others = {j["state"] for j in step["jobs"] if j["state"] != "done"}
            assert others <= {"interrupted", "failed", "rejected"}, step["jobs"]
    store.close()


def test_operator_commands_reach_the_running_controller_and_queue_without_one(
    tmp_path, fast_plant, db
):
    queued = mes("cell", "hold", "printer-1", "--reason", "nozzle clog", "--wait", "0.5", db=db)
    assert queued.returncode == 3
    assert "is queued: no controller has taken it yet" in queued.stdout
    run = Running(fast_plant, db)
    try:
        run.expect("controller running")
        # The queued hold is carried out as soon as the controller runs.
        held = mes("cell", "resume", "printer-1", "--actor", "bob", db=db)
        assert held.returncode == 0, held.stdout + held.stderr
        assert held.stdout.strip() == "cell.resume printer-1: resumed"
        again = mes("cell", "resume", "printer-1", db=db)
        assert again.returncode == 1
        assert "cell printer-1 is not held (it is idle)" in again.stdout
        missing = mes("unit", "scrap", "NOPE.1", db=db)
        assert missing.returncode == 1 and "no unfinished unit 'NOPE.1'" in missing.stdout
        alarms = mes("alarm", "list", db=db)
        assert alarms.returncode == 0 and "no alarms" in alarms.stdout
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=15) == 0
    finally:
        run.proc.kill()
    store = Store.open(db)
    audit = [
        (e["actor"], e["transition"], e["after"], e["data"]["reason"])
        for e in store.events(kind="request")
    ]
    store.close()
    assert audit[0][1:] == ("cell.hold", "done", "nozzle clog")
    assert audit[1][:3] == ("bob", "cell.resume", "done")
    assert audit[2][1:3] == ("cell.resume", "refused")
