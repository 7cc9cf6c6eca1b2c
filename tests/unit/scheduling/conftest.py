"""Fixtures for the scheduling tests: the shared benchmark instances, small problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.scheduling.fjsp import read_fjsp
from routing.scheduling.model import Problem

# The Brandimarte instances live beside the repository, never inside it.
FJSP_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "fjsp"


@pytest.fixture
def fjsp_dir() -> Path:
    if not (FJSP_DIR / "mk01.fjs").is_file():
        pytest.skip(f"benchmark instances not found in {FJSP_DIR.resolve()}")
    return FJSP_DIR


@pytest.fixture
def mk01(fjsp_dir: Path) -> Problem:
    return read_fjsp(fjsp_dir / "mk01.fjs")
