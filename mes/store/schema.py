"""Which schema a database has, creating a new one, and upgrading an old one.

A database with no tables is created from :mod:`mes.store.tables` and stamped with the
newest revision (:data:`HEAD`); that is what the embedded default needs to run with no
set-up. A database at an older revision is refused with the command that upgrades it
(``mes db upgrade``), and one made by a newer version is refused outright: a controller
never runs on a schema it does not know. Databases made before migrations existed carry
``meta.schema = 5``, which is revision ``0001``.

Alembic is imported only to upgrade, never on the way to opening a store.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, inspect, select, text
from sqlmodel import SQLModel

from mes.errors import StoreError
from mes.store.tables import COUNTER, META

#: Revisions this version knows, oldest first; the last is the one it runs on.
REVISIONS = ("0001", "0002", "0003")
HEAD = REVISIONS[-1]
_LOCK = 7_243_117  # the advisory lock key (PostgreSQL) that serialises schema changes
_COUNTERS = ("job_id", "fence", "stock")


@dataclass(frozen=True, slots=True)
class Revision:
    """What :func:`current` found."""

    revision: str | None
    """The Alembic revision, "0001" for a database from before migrations, None when
    the database has none of our tables."""
    empty: bool


def current(conn: Connection) -> Revision:
    """The revision of the database behind ``conn``.

    Raises:
        StoreError: the database holds tables, but not ours.
    """
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return Revision(None if found is None else str(found), empty=False)
    if "meta" in tables:
        schema = conn.execute(select(META.c.value).where(META.c.key == "schema")).scalar()
        if schema == "5":
            return Revision("0001", empty=False)
        raise StoreError(
            f"database has store schema version {schema}, from before version 5; no "
            "migration exists from it: keep it for the version that made it and start "
            "on a new database (--db or MES_DB)"
        )
    if tables & {"unit", "step", "orders"}:
        raise StoreError("database has tables named like ours but no schema revision")
    return Revision(None, empty=True)


def _lock(conn: Connection) -> None:
    """Serialise schema work between processes (SQLite: BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})


def prepare(engine: Engine, url: str) -> None:
    """Create a new database at :data:`HEAD`, or check that an existing one is at it.

    Raises:
        StoreError: the database is at another revision (with the command to upgrade),
            or is not ours.
    """
    with engine.begin() as conn:
        _lock(conn)
        found = current(conn)
        if found.empty:
            SQLModel.metadata.create_all(conn)
            _stamp(conn, HEAD)
            conn.execute(insert(COUNTER), [{"name": n, "value": 0} for n in _COUNTERS])
            return
    check(found.revision, url)


def check(revision: str | None, url: str) -> None:
    """Refuse any revision but :data:`HEAD`, saying what to do.

    Raises:
        StoreError: not at :data:`HEAD`.
    """
    if revision == HEAD:
        return
    if revision in REVISIONS:
        raise StoreError(
            f"database {url} is at schema revision {revision}; this controller needs "
            f"revision {HEAD}. Back it up, then run: mes db upgrade --db '{url}'"
        )
    raise StoreError(
        f"database {url} is at schema revision {revision!r}, which this controller does "
        f"not know (it knows {', '.join(REVISIONS)}): it was made or upgraded by a newer "
        "version. Run that version, or start this one on another database (--db)"
    )


def _stamp(conn: Connection, revision: str) -> None:
    conn.execute(
        text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    )
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision})


def upgrade(engine: Engine, target: str = HEAD) -> tuple[str | None, str]:
    """Run the revisions from the database's current one up to ``target``.

    Returns:
        The revision before (None for a new database) and after.

    Raises:
        StoreError: the database is newer than this version, or a revision failed.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "mes.store:migrations")
    with engine.begin() as conn:
        _lock(conn)
        found = current(conn)
        if found.revision is not None and found.revision not in REVISIONS:
            check(found.revision, str(engine.url))
        config.attributes["connection"] = conn
        try:
            if found.revision is not None and not _has_version_table(conn):
                _stamp(conn, found.revision)  # from before migrations: revision 0001
            command.upgrade(config, target)
        except Exception as exc:  # a failed revision: say which, roll everything back
            raise StoreError(f"upgrading the schema to {target} failed: {exc}") from exc
        after = current(conn).revision
    return found.revision, after or target


def _has_version_table(conn: Connection) -> bool:
    return "alembic_version" in inspect(conn).get_table_names()
