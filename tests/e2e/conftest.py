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


FAST_CELLS = {
    "printer-1": ["print.fdm"],
    "printer-2": ["print.fdm"],
    "laser-1": ["laser.engrave", "cnc.route"],
    "bench-1": ["assembly", "test"],
}


@pytest.fixture
def fast_plant(tmp_path: Path) -> Path:
    """A plant of four sim cells running 3000x faster than real time, demo families."""
    text = f'[plant]\nname = "Fast test plant"\nproducts = "{REPO / "config" / "products"}"\n'
    for name, capabilities in FAST_CELLS.items():
        text += (
            f'\n[[cells]]\nname = "{name}"\ncapabilities = {capabilities!r}\n'
            'rerun_interrupted = true\n[cells.driver]\nkind = "sim"\nspeed = 3000\n'
        ).replace("'", '"')
    path = tmp_path / "plant.toml"
    path.write_text(text)
    return path


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mes.db'}"
