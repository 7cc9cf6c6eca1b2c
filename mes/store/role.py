"""A role one controller at a time plays for a plant: publishing its outbox, taking in
orders from a folder.

On PostgreSQL several controllers share the plant; the role is a session-level advisory
lock (``pg_try_advisory_lock``) held on a dedicated connection in autocommit (so it holds
no transaction open, which would hold back vacuum). A controller that dies, or whose
connection to the database dies, loses the lock with it, and another takes the role
over. The holder checks its connection (:meth:`Role.alive`) before each round of work,
so it stops soon after losing the role. On SQLite there is one controller: the role is
always its.

Every method is blocking: call it in a worker thread.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from mes.errors import StoreError

if TYPE_CHECKING:
    from mes.store.repository import Store

#: The lock's key: the role's name in this plant's schema (two plants in one database,
#: each in its own schema, have a role each).
_KEY = "hashtextextended('mes-batch-of-one:' || :name || ':' || current_schema(), 0)"


class Role:
    """The role ``name`` on ``store``'s database (see the module doc)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self.store.is_sqlite or self._conn is not None

    def try_take(self) -> bool:
        """Take the role if no one holds it.

        Raises:
            StoreError: the database cannot be reached.
        """
        if self.store.is_sqlite or self._conn is not None:
            return True
        try:
            conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = bool(
                conn.execute(
                    text(f"SELECT pg_try_advisory_lock({_KEY})"), {"name": self.name}
                ).scalar()
            )
        except (OperationalError, DBAPIError) as exc:
            raise StoreError(f"database {self.store.url}: {exc.orig}") from exc
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def alive(self) -> bool:
        """Whether the role is still held (its connection answers)."""
        if self.store.is_sqlite:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError):
            self._drop()
            return False
        return True

    def backend_pid(self) -> int | None:
        """The PostgreSQL backend holding the lock (None: not held, or SQLite)."""
        if self._conn is None:
            return None
        return int(self._conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    def give_up(self) -> None:
        """Release the role (closing its connection releases the lock too)."""
        if self._conn is None:
            return
        with contextlib.suppress(OperationalError, DBAPIError):
            self._conn.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"name": self.name})
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except (OperationalError, DBAPIError):
                conn.invalidate()
