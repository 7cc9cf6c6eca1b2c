"""Read-only mode over a whole demo run: the PLC is watched, never written."""

from __future__ import annotations

import io
import random
from pathlib import Path

from drivers.sim.plant_sims import serve
from mes.bootstrap import build_controller, machine_specs, serial_specs, sim_specs
from mes.service.demo import random_order, run_demo
from mes.settings import load_plant
from mes.settings.stations import stations
from mes.store import Store
from tests.conftest import REPO, free_ports

WRITES = {5, 6, 15, 16}


async def test_a_read_only_plc_cell_gets_no_write_during_a_whole_demo_run(
    tmp_path: Path,
) -> None:
    text = (REPO / "config" / "plant.toml").read_text()
    text = text.replace('products = "products"', f'products = "{REPO / "config" / "products"}"')
    port, ua_port, face, *serial = free_ports(6)
    text = text.replace("port = 15020", f"port = {port}\nread_only = true")
    text = text.replace("127.0.0.1:4841", f"127.0.0.1:{ua_port}")
    text = text.replace("127.0.0.1:4850", f"127.0.0.1:{face}")
    for fixed, free in zip((15031, 15032, 15033), serial, strict=True):
        text = text.replace(f"127.0.0.1:{fixed}", f"127.0.0.1:{free}")
    (tmp_path / "plant.toml").write_text(text)
    plant = load_plant(tmp_path / "plant.toml")
    store = Store.open(f"sqlite:///{tmp_path / 'mes.db'}")
    sims = await serve(
        sim_specs(plant, speed=2000),
        machine_specs(plant, speed=2000),
        serial_specs(plant, speed=2000),
    )
    try:
        controller = build_controller(plant, store, speed=2000, seed=3)
        spec = random_order(plant, 6, random.Random(3))
        summary = await run_demo(
            plant, store, controller, spec, stations(plant), speed=2000, out=io.StringIO()
        )
    finally:
        await sims.aclose()
        store.close()
    plc = sims.plcs["tester-1"]
    # Every unit was tested, on the bench (the PLC rig is only watched)...
    assert summary["done"] == 6
    assert summary["utilisation"]["tester-1"] == 0
    # ... and the rig's PLC was read all along but never written.
    assert plc.function_codes[3] > 0
    assert not any(plc.function_codes[code] for code in WRITES)
    assert plc.executed == []
