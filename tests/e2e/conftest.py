"""Run the ``mes`` command as a user does: a subprocess, its output, its exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MES = shutil.which("mes", path=str(Path(sys.executable).parent))
COMMAND = [MES] if MES else [sys.executable, "-m", "mes.cli"]


def mes_command(*args: str) -> list[str]:
    return [*COMMAND, *args]


def mes(
    *args: str, db: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MES_DB": db} if db else dict(os.environ)
    return subprocess.run(
        mes_command(*args), capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout
    )


FAST_PLANT = """
[plant]
name = "Fast test plant"
products = "{products}"

[[cells]]
name = "printer-1"
capabilities = ["print.fdm"]
rerun_interrupted = true
[cells.driver]
kind = "sim"
speed = 3000

[[cells]]
name = "printer-2"
capabilities = ["print.fdm"]
rerun_interrupted = true
[cells.driver]
kind = "sim"
speed = 3000

[[cells]]
name = "laser-1"
capabilities = ["laser.engrave", "cnc.route"]
rerun_interrupted = true
[cells.driver]
kind = "sim"
speed = 3000

[[cells]]
name = "bench-1"
capabilities = ["assembly", "test"]
rerun_interrupted = true
[cells.driver]
kind = "sim"
speed = 3000
"""


@pytest.fixture
def fast_plant(tmp_path: Path) -> Path:
    """A plant of four sim cells running 3000x faster than real time, demo families."""
    path = tmp_path / "plant.toml"
    path.write_text(FAST_PLANT.format(products=REPO / "config" / "products"))
    return path


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mes.db'}"
