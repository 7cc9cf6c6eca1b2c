"""Shared fixtures: stores on SQLite (always) and PostgreSQL (when reachable)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 now (all held at once, then freed)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def demo_register_map(name: str = "rig") -> str:
    """The demo plant's ``[register_maps.NAME]`` tables, as TOML text, for test plants
    of PLC cells (only those tables: whatever follows them in the demo plant stays out)."""
    lines = (REPO / "config" / "plant.toml").read_text().splitlines()
    start = lines.index(f"[register_maps.{name}]")
    taken = [lines[start]]
    for line in lines[start + 1 :]:
        if line.startswith("[") and not line.startswith(f"[register_maps.{name}"):
            break
        taken.append(line)
    return "\n" + "\n".join(taken) + "\n"


PG_URL = os.environ.get("MES_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_unreachable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[pg]')"
    try:
        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).strip().splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    reason = _pg_unreachable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (on CI, .ci/run starts PostgreSQL first)")
        pytest.skip(reason)
    return PG_URL


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"mes_test_{uuid.uuid4().hex[:12]}"
    plain = pg_base_url.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{pg_base_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mes.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mes.db'}"
    return str(request.getfixturevalue("pg_url"))
