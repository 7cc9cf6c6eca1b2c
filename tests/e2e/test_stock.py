"""Stock made ahead survives kill -9: ``mes run`` fills a stock target with idle cells, is
SIGKILLed while blanks are being made, and after a restart the target is met exactly
(the interrupted blank made, none lost, none extra); units released then start from
blanks, and ``mes order status`` tells their customer where they are without a cell's
name."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from mes.store import Store
from routing.family import variant_key
from tests.conftest import REPO
from tests.e2e.conftest import FAST_CELLS, mes
from tests.e2e.test_run import Running

KEY = ("coaster", variant_key({"material": "pla", "size": "large"}))
TARGET = 3
ORDER = """
[[orders]]
id = "SO-STOCK"
[[orders.units]]
family = "coaster"
options = { material = "pla", size = "large", text = "ADA" }
[[orders.units]]
family = "coaster"
options = { material = "pla", size = "large", text = "BOB" }
"""


@pytest.fixture
def stock_plant(tmp_path: Path) -> Path:
    """Four sim cells (printers slow enough to be caught printing) and a stock target."""
    text = f'[plant]\nname = "Stock plant"\nproducts = "{REPO / "config" / "products"}"\n'
    for name, capabilities in FAST_CELLS.items():
        speed = 600 if name.startswith("printer") else 3000
        caps = ", ".join(f'"{c}"' for c in capabilities)
        text += (
            f'\n[[cells]]\nname = "{name}"\ncapabilities = [{caps}]\nrerun_interrupted = true\n'
            f'[cells.driver]\nkind = "sim"\nspeed = {speed}\n'
        )
    text += (
        '\n[[stock]]\nfamily = "coaster"\nvariant = { material = "pla", size = "large" }\n'
        f"target = {TARGET}\n"
    )
    path = tmp_path / "plant.toml"
    path.write_text(text)
    return path


def levels(db: str) -> tuple[int, int]:
    store = Store.open(db)
    try:
        level = store.stock_levels().get(KEY)
    finally:
        store.close()
    return (level.in_stock, level.making) if level else (0, 0)


def wait_for(db: str, done: object, timeout: float = 30.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        now = levels(db)
        if done(now):  # type: ignore[operator]
            return now
        assert time.monotonic() < deadline, f"stock levels stuck at {now}"
        time.sleep(0.05)


def test_stock_survives_kill_9_and_units_start_from_it(tmp_path, stock_plant, db):
    run = Running(stock_plant, db)
    try:
        run.expect("controller running")
        in_stock, making = wait_for(db, lambda lv: lv[0] >= 1 and lv[1] >= 1)
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(timeout=10)
    finally:
        run.proc.kill()
    in_stock, making = levels(db)
    assert in_stock >= 1 and in_stock + making <= TARGET

    run = Running(stock_plant, db)
    try:
        run.expect("controller running")
        assert wait_for(db, lambda lv: lv[0] == TARGET) == (TARGET, 0)
        order = tmp_path / "order.toml"
        order.write_text(ORDER)
        released = mes("order", "release", str(order), "--plant", str(stock_plant), db=db)
        assert released.returncode == 0, released.stderr
        run.expect(r"unit SO-STOCK\.\d done")
        run.expect(r"unit SO-STOCK\.\d done")
        status = mes("order", "status", "SO-STOCK", "--json", "--plant", str(stock_plant), db=db)
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert [u["status"] for u in shown["units"]] == ["ready", "ready"]
        assert all(u["from_stock"] and u["lead_time_s"]["generic"] == 0 for u in shown["units"])
        for cell in FAST_CELLS:
            assert cell not in status.stdout
        unit = mes("unit", "show", "SO-STOCK.1", db=db)
        assert "started from blank STOCK-" in unit.stdout
        # The two blanks taken are made again, up to the target and no further.
        assert wait_for(db, lambda lv: lv == (TARGET, 0))
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=15) == 0
    finally:
        run.proc.kill()
    store = Store.open(db)
    try:
        blanks = store.blanks(states=("stock", "consumed", "scrapped"))
        states = store.unit_states()
    finally:
        store.close()
    taken = sorted(b["consumed_by"] for b in blanks if b["state"] == "consumed")
    assert taken == ["SO-STOCK.1", "SO-STOCK.2"]
    assert sum(1 for b in blanks if b["state"] == "stock") == TARGET
    assert len(blanks) == TARGET + 2  # made: the target, and one for each blank taken
    assert all(states[b["unit_id"]] == "done" for b in blanks)  # every stock unit made
