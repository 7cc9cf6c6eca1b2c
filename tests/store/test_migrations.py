"""Schema migrations: the newest revision is the tables, old databases are refused with
the command that upgrades them, and an upgrade keeps what the database held."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from mes.errors import StoreError
from mes.store import Store
from mes.store.schema import HEAD, REVISIONS, upgrade

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def old_database(url: str, revision: str) -> None:
    """A database as the version that ran ``revision`` left it, with an order in it."""
    engine = create_engine(url)
    upgrade(engine, revision)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orders (id, released_at, priority, source, digest) "
                "VALUES ('SO-1', :at, 0, 'test', 'd1')"
            ),
            {"at": NOW.replace(tzinfo=None)},
        )
        conn.execute(
            text(
                "INSERT INTO unit (id, order_id, seq, family, options, state, released_at) "
                "VALUES ('SO-1.1', 'SO-1', 1, 'nameplate', '{}', 'released', :at)"
            ),
            {"at": NOW.replace(tzinfo=None)},
        )
    engine.dispose()


def test_the_newest_revision_builds_exactly_the_tables(db_url: str) -> None:
    engine = create_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_a_new_database_is_created_at_the_newest_revision(db_url: str) -> None:
    store = Store.open(db_url)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        counters = dict(conn.execute(text("SELECT name, value FROM counter")).all())
    store.close()
    assert counters == {"job_id": 0, "fence": 0, "stock": 0}


@pytest.mark.parametrize("revision", REVISIONS[:-1])
def test_an_old_database_is_refused_with_the_command_that_upgrades_it(
    db_url: str, revision: str
) -> None:
    old_database(db_url, revision)
    with pytest.raises(StoreError, match=f"revision {revision}.*mes db upgrade --db"):
        Store.open(db_url)


def test_an_upgrade_keeps_what_the_database_held(db_url: str) -> None:
    old_database(db_url, REVISIONS[0])
    engine = create_engine(db_url)
    assert upgrade(engine) == (REVISIONS[0], HEAD)
    engine.dispose()
    store = Store.open(db_url)
    assert [u.id for u in store.load_units()] == ["SO-1.1"]
    assert store.reserve_job_ids(2) == range(1, 3)
    store.close()


def test_a_database_from_before_migrations_upgrades_from_the_baseline(sqlite_url: str) -> None:
    old_database(sqlite_url, REVISIONS[0])
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:  # what the store made before Alembic: no version table
        conn.execute(text("DROP TABLE alembic_version"))
    assert upgrade(engine) == ("0001", HEAD)
    engine.dispose()
    Store.open(sqlite_url).close()


def test_a_database_from_a_newer_version_is_refused(db_url: str) -> None:
    Store.open(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(StoreError, match="'0099', which this controller does not know"):
        Store.open(db_url)
