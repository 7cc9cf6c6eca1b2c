"""Three controllers share one plant on PostgreSQL, and one of them is killed with
SIGKILL every few seconds and restarted: 30 simulated PLCs (``mes sim``, real Modbus
TCP, in a process of their own that outlives every controller) run 1,000 steps, no job
id is ever executed twice on any PLC, nothing is lost, and a dead controller's cells are
driven again within three heartbeats plus ten seconds."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from mes.store import Store
from tests.conftest import demo_register_map, free_ports
from tests.e2e.conftest import mes
from tests.e2e.test_crash import Sims
from tests.e2e.test_run import Running

PRESSES = CHECKS = 15
UNITS = 500  # two steps each: 1,000 steps
HEARTBEAT_S = 1.0
NAMES = ("hall-a", "hall-b", "hall-c")
SEED = 20261201

FAMILY = """\
[family]
name = "token"
description = "A pressed token, checked"

[options.size]
type = "integer"
min = 1
max = 9
default = 1

[[steps]]
name = "press"
capability = "press"
duration_s = "8 + size"

[[steps]]
name = "check"
capability = "check"
duration_s = 6
"""


def shared_plant(tmp_path: Path) -> Path:
    """30 PLC cells (the demo's test-rig register map), 20 ms polling, 1 s heartbeat."""
    products = tmp_path / "products"
    products.mkdir()
    (products / "token.toml").write_text(FAMILY)
    register_map = demo_register_map()
    text = (
        f'[plant]\nname = "Shared plant"\nproducts = "{products}"\n'
        f"heartbeat_s = {HEARTBEAT_S}\nlease_beats = 5\nhandoff_s = 2\n"
    )
    names = [f"press-{n:02}" for n in range(1, PRESSES + 1)]
    names += [f"check-{n:02}" for n in range(1, CHECKS + 1)]
    for name, port in zip(names, free_ports(len(names)), strict=True):
        text += (
            f'\n[[cells]]\nname = "{name}"\ncapabilities = ["{name.split("-")[0]}"]\n'
            f'[cells.reconnect]\nfixed_s = 0.2\n[cells.driver]\nkind = "modbus"\n'
            f'register_map = "rig"\nport = {port}\npoll_ms = 20\nheartbeat_timeout_s = 2\n'
        )
    path = tmp_path / "plant.toml"
    path.write_text(text + "\n" + register_map)
    return path


def order_file(path: Path) -> Path:
    units = "".join(
        f'\n[[orders.units]]\nfamily = "token"\n[orders.units.options]\nsize = {n % 9 + 1}\n'
        for n in range(UNITS)
    )
    path.write_text(f'[[orders]]\nid = "SO-SHARED"\n{units}')
    return path


def start(plant: Path, db: str, name: str) -> Running:
    run = Running(plant, db, args=("--name", name))
    run.expect("controller running", timeout=60)
    return run


def owned_by(store: Store, member: str) -> set[str]:
    return {cell for cell, row in store.leases().items() if row["owner"] == member}


def member_of(store: Store, name: str, run: Running) -> str:
    live = [m for m in store.members(5 * HEARTBEAT_S, "") if m.name == name]
    assert live, f"{name} is not running: " + "\n".join(run.seen[-30:])
    return max(live, key=lambda m: m.heartbeat_at).id


@pytest.mark.slow
@pytest.mark.pg
def test_three_controllers_one_killed_again_and_again_never_run_a_job_twice(
    tmp_path: Path, pg_url: str
) -> None:
    plant = shared_plant(tmp_path)
    order = order_file(tmp_path / "o.toml")
    assert mes("order", "release", str(order), "--plant", str(plant), db=pg_url).returncode == 0
    sims = Sims(plant, tmp_path / "executed.jsonl", speed=25)
    store = Store.open(pg_url)
    rng = random.Random(SEED)
    runs = {name: start(plant, pg_url, name) for name in NAMES}
    takeovers: list[float] = []
    kills = 0
    try:
        deadline = time.monotonic() + 240
        while any(s != "done" for s in store.unit_states().values()):
            assert time.monotonic() < deadline, "the plant did not finish in 4 minutes"
            time.sleep(rng.uniform(1.5, 3.0))  # the next kill, a few seconds on
            victim = rng.choice(NAMES)
            member = member_of(store, victim, runs[victim])
            held = owned_by(store, member)
            runs[victim].proc.send_signal(signal.SIGKILL)
            runs[victim].proc.wait(timeout=10)
            killed_at, kills = time.monotonic(), kills + 1
            # Its cells are driven again (leased by a live controller) in time.
            limit = 3 * HEARTBEAT_S + 10
            while held & owned_by(store, member):
                seen = "\n".join(f"{n}: " + "\n".join(r.seen[-15:]) for n, r in runs.items())
                assert time.monotonic() - killed_at < limit, f"not taken over:\n{seen}"
                time.sleep(0.1)
            takeovers.append(time.monotonic() - killed_at)
            runs[victim] = start(plant, pg_url, victim)
        for run in runs.values():
            run.proc.send_signal(signal.SIGTERM)
        for run in runs.values():
            assert run.proc.wait(timeout=60) == 0, run.seen[-20:]
        executed = sims.executed()
    finally:
        for run in runs.values():
            run.proc.kill()
        sims.stop()

    assert kills >= 3
    # No job id was ever executed twice, on any PLC.
    twice = [job for job, n in Counter(j for _, j in executed).items() if n > 1]
    assert twice == [], twice
    # Nothing lost: every unit done; each step has exactly one done job, run on a PLC.
    ran = set(executed)
    states = store.unit_states()
    assert len(states) == UNITS and set(states.values()) == {"done"}
    for unit_id in states:
        record = store.unit_record(unit_id)
        assert record is not None
        for step in record["steps"]:
            done = [j for j in step["jobs"] if j["state"] == "done"]
            assert len(done) == 1, (unit_id, step["name"], step["jobs"])
            assert (done[0]["cell"], done[0]["id"]) in ran, done[0]
    actors = Counter(e["actor"] for e in store.events(kind="step") if e["transition"] == "complete")
    print(
        f"\n{kills} kills; {len(executed)} jobs executed, none twice; takeovers in "
        f"{min(takeovers):.1f}-{max(takeovers):.1f} s; steps completed by {dict(actors)}"
    )
    assert set(actors) == set(NAMES)
    store.close()
