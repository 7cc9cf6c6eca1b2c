"""``mes db``: the database's schema revision, and upgrading it.

A controller refuses to run on a database at another revision than the one it knows and
says to run ``mes db upgrade``; the upgrade runs every revision in one transaction (on
PostgreSQL, under an advisory lock, so two upgrades never interleave).
"""

from __future__ import annotations

import typer

from mes.cli_options import DbOption
from mes.store import Store, resolve_url

db_app = typer.Typer(help="The database: its schema revision and upgrades.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(db: DbOption = None) -> None:
    """Upgrade the database to the schema this version runs on (back it up first)."""
    before, after = Store.upgrade(db)
    where = Store.redact(resolve_url(db))
    if before == after:
        print(f"{where}: already at schema revision {after}")
    elif before is None:
        print(f"{where}: created at schema revision {after}")
    else:
        print(f"{where}: upgraded from schema revision {before} to {after}")


@db_app.command("status")
def status(db: DbOption = None) -> None:
    """Say whether the database is at the schema revision this version runs on."""
    store = Store.open(db)  # refuses any other revision, with what to do
    print(f"{store.url}: at schema revision {store.revision()}, the one this version runs on")
    store.close()
