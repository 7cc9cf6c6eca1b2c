"""The crash test: kill -9 the controller at every hand-off boundary and at 20 seeded
random moments, against simulated PLCs in another process that outlive it, and prove
that nothing is lost and no job id is ever executed twice.

The PLCs are `mes sim` (real Modbus TCP servers) with an execution log: every job id a
PLC started, one JSON line each. The controller is `mes run`, killed with SIGKILL either
by the test at a random moment or by itself at a named crash point
(``MES_CRASH_AT=point:n``, see mes/service/crashpoints.py), and restarted each time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from mes.service.crashpoints import POINTS
from mes.store import Store
from tests.conftest import REPO, demo_register_map, free_ports
from tests.e2e.conftest import mes, mes_command
from tests.e2e.test_run import Running, write_order

CELLS = {
    "printer-1": ["print.fdm"],
    "printer-2": ["print.fdm"],
    "laser-1": ["laser.engrave", "cnc.route"],
    "bench-1": ["assembly", "test"],
}
RANDOM_KILLS = 20
SEED = 20261123


def plc_plant(tmp_path: Path) -> Path:
    """The demo families on four PLC cells (the demo's test-rig map), 20 ms polling."""
    register_map = demo_register_map()
    text = f'[plant]\nname = "Crash plant"\nproducts = "{REPO / "config" / "products"}"\n'
    for (name, capabilities), port in zip(CELLS.items(), free_ports(len(CELLS)), strict=True):
        caps = ", ".join(f'"{c}"' for c in capabilities)
        text += (
            f'\n[[cells]]\nname = "{name}"\ncapabilities = [{caps}]\nrerun_interrupted = true\n'
            f'[cells.reconnect]\nfixed_s = 0.2\n[cells.driver]\nkind = "modbus"\n'
            f'register_map = "rig"\nport = {port}\npoll_ms = 20\nheartbeat_timeout_s = 2\n'
        )
    path = tmp_path / "plant.toml"
    path.write_text(text + "\n" + register_map)
    return path


class Sims:
    """`mes sim` serving the plant's PLCs, logging every job id they start."""

    def __init__(self, plant: Path, log: Path, speed: float) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            mes_command("sim", "--plant", str(plant), "--log", str(log), "--speed", str(speed)),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("Ctrl-C stops"):
                break
        else:
            raise AssertionError(f"mes sim did not start (exit {self.proc.wait()})")

    def executed(self) -> list[tuple[str, int]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [(e["cell"], e["job_id"]) for e in map(json.loads, lines)]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        finally:
            self.proc.kill()


def controller(plant: Path, db: str, crash_at: str | None = None) -> Running:
    env = {"MES_CRASH_AT": crash_at} if crash_at else {}
    return Running(plant, db, env=env)


@pytest.mark.slow
def test_kill_9_at_every_boundary_and_at_random_never_runs_a_job_twice(tmp_path: Path) -> None:
    plant = plc_plant(tmp_path)
    db = f"sqlite:///{tmp_path / 'mes.db'}"
    families = ["nameplate", "phone-stand", "sign", "nameplate"] * 4
    order = write_order(tmp_path / "o.toml", "SO-CRASH", families)
    assert mes("order", "release", str(order), "--plant", str(plant), db=db).returncode == 0
    sims = Sims(plant, tmp_path / "executed.jsonl", speed=600)
    rng = random.Random(SEED)
    kills: list[str] = []
    try:
        # At each hand-off boundary: the controller kills itself there (the 2nd time, so
        # some work is under way), and is restarted by the next round.
        for point in POINTS:
            run = controller(plant, db, crash_at=f"{point}:2")
            assert run.proc.wait(timeout=60) == -signal.SIGKILL, run.seen
            kills.append(point)
        # At random moments, seeded: somewhere in the first second of a run.
        for _ in range(RANDOM_KILLS):
            run = controller(plant, db)
            run.expect("controller running")
            with pytest.raises(subprocess.TimeoutExpired):
                run.proc.wait(timeout=rng.uniform(0.05, 1.0))
            run.proc.send_signal(signal.SIGKILL)
            run.proc.wait(timeout=10)
            kills.append("random")
        # And then let it finish.
        run = controller(plant, db)
        store = Store.open(db)
        try:
            run.expect("controller running")
            while any(s not in ("done", "scrapped", "held") for s in store.unit_states().values()):
                run.expect(r"unit SO-CRASH\.\d+ (done|scrapped|held)", timeout=90)
            run.proc.send_signal(signal.SIGTERM)
            assert run.proc.wait(timeout=30) == 0
        finally:
            run.proc.kill()
        executed = sims.executed()
    finally:
        sims.stop()

    assert len(kills) == len(POINTS) + RANDOM_KILLS
    # No job id was ever executed twice, on any PLC.
    twice = [job for job, n in Counter(j for _, j in executed).items() if n > 1]
    assert twice == [], twice
    # Every unit ended; each step has exactly one done job, and that job ran on a PLC.
    ran = set(executed)
    assert store.integrity_check() == "ok"
    assert set(store.unit_states().values()) <= {"done", "scrapped", "held"}
    step_events: dict[str, str] = {}
    for event in store.events(kind="step"):
        step_events[event["subject"]] = event["after"]
    for unit_id in store.unit_states():
        record = store.unit_record(unit_id)
        assert record is not None
        for step in record["steps"]:
            # The journal agrees with the step's state.
            assert step_events.get(step["id"], "pending") == step["state"], step
            if step["state"] != "done":
                continue
            done = [j for j in step["jobs"] if j["state"] == "done"]
            assert len(done) == 1, (unit_id, step["name"], step["jobs"])
            assert (done[0]["cell"], done[0]["id"]) in ran, done[0]
    # Recovery really was exercised: jobs found running were followed, and hand-offs
    # recorded but never delivered were delivered under their own id.
    data = [e["data"] or {} for e in store.events(kind="cell")]
    followed = sum(1 for d in data if d.get("recovered"))
    again = sum(1 for d in data if d.get("again"))
    jobs = [
        j for u in store.unit_states() for s in store.unit_record(u)["steps"] for j in s["jobs"]
    ]
    print(
        f"\n{len(kills)} kills; {len(executed)} jobs executed, none twice; "
        f"{followed} followed after a restart, {again} delivered again under the same id; "
        f"{sum(j['state'] == 'interrupted' for j in jobs)} interrupted"
    )
    # A hand-off recorded but never delivered (the kill after the dispatch commit) is
    # certain; a job still running when the controller is back depends on timing.
    assert again > 0
    store.close()
