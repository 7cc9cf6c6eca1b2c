"""Postponement and order tracking (issue 11).

``unit.variant`` (what its generic steps depend on), ``step.stage`` (the customer's word
for it) and ``step.generic``, the ``blank`` table (blanks made ahead, in stock until a
unit takes one or an operator scraps it), and the ``stock`` counter (stock orders are
numbered by it; replenishing locks its row, so controllers never overshoot a target).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("unit") as batch:
        batch.add_column(sa.Column("variant", sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("step") as batch:
        batch.add_column(sa.Column("stage", sa.String(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("generic", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "blank",
        sa.Column("unit_id", sa.String(), nullable=False),
        sa.Column("family", sa.String(), nullable=False),
        sa.Column("variant", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("consumed_by", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("unit_id"),
    )
    op.create_index("ix_blank_variant", "blank", ["family", "variant", "state"])
    op.bulk_insert(
        sa.table("counter", sa.column("name", sa.String()), sa.column("value", sa.Integer())),
        [{"name": "stock", "value": 0}],
    )


def downgrade() -> None:
    op.drop_index("ix_blank_variant", "blank")
    op.drop_table("blank")
    with op.batch_alter_table("step") as batch:
        batch.drop_column("generic")
        batch.drop_column("stage")
    with op.batch_alter_table("unit") as batch:
        batch.drop_column("variant")
    op.execute("DELETE FROM counter WHERE name = 'stock'")
