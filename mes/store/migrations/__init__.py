"""The schema's history as Alembic revisions (``mes db upgrade`` runs them).

A new database is created from the tables at the newest revision directly and stamped
with it; an existing one is only ever changed by ``mes db upgrade``. Each revision moves
data as well as shape, and ``tests/store/test_migrations.py`` checks that the newest
revision and :mod:`mes.store.tables` agree.
"""
