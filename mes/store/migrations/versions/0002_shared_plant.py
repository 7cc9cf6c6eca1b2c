"""Several controllers on one database, and the MQTT outbox (issue 10).

``controller`` (who runs, their heartbeat), ``lease`` (who drives each cell, with a
fencing token), ``unit.custodian`` (the one controller that may change a unit now), a
``fence`` counter for the tokens, and ``outbox`` (messages written in the transaction
of the change they tell). Also ``cell.readings``: a cell's sensors as last heard (a
printer's temperatures), for watchers.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("unit") as batch:
        batch.add_column(sa.Column("custodian", sa.String(), nullable=False, server_default=""))
    op.create_index("ix_unit_custodian", "unit", ["custodian"])
    with op.batch_alter_table("cell") as batch:
        batch.add_column(sa.Column("readings", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "controller",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("cells", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "lease",
        sa.Column("cell", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("cell"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("retain", sa.Boolean(), nullable=False),
        sa.Column("qos", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_state", "outbox", ["state", "id"])
    op.bulk_insert(
        sa.table("counter", sa.column("name", sa.String()), sa.column("value", sa.Integer())),
        [{"name": "fence", "value": 0}],
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_state", "outbox")
    for table in ("outbox", "lease", "controller"):
        op.drop_table(table)
    op.drop_index("ix_unit_custodian", "unit")
    with op.batch_alter_table("unit") as batch:
        batch.drop_column("custodian")
    with op.batch_alter_table("cell") as batch:
        batch.drop_column("readings")
    op.execute("DELETE FROM counter WHERE name = 'fence'")
