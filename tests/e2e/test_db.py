"""The database's schema from the command line: a controller refuses a database at an
older revision and says how to upgrade it; ``mes db upgrade`` does, keeping its data."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from mes.store.schema import HEAD, REVISIONS, upgrade
from tests.e2e.conftest import mes
from tests.e2e.test_run import write_order


def test_an_old_database_is_refused_until_mes_db_upgrade(tmp_path: Path, fast_plant: Path) -> None:
    db = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(db)
    upgrade(engine, REVISIONS[0])  # as the version before shared plants left it
    engine.dispose()

    refused = mes("run", "--plant", str(fast_plant), "--headless", db=db)
    assert refused.returncode == 1
    assert f"revision {REVISIONS[0]}" in refused.stderr
    assert f"mes db upgrade --db '{db}'" in refused.stderr
    assert "Traceback" not in refused.stderr

    upgraded = mes("db", "upgrade", db=db)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded from schema revision {REVISIONS[0]} to {HEAD}" in upgraded.stdout
    assert mes("db", "status", db=db).returncode == 0
    order = write_order(tmp_path / "o.toml", "SO-DB", ["nameplate"])
    released = mes("order", "release", str(order), "--plant", str(fast_plant), db=db)
    assert released.returncode == 0, released.stderr
