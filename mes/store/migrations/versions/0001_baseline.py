"""The schema as it was before migrations existed (the store's schema version 5).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _time(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table("meta", _text("key"), _text("value"), sa.PrimaryKeyConstraint("key"))
    op.create_table(
        "counter",
        _text("name"),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "orders",
        _text("id"),
        _time("released_at"),
        sa.Column("priority", sa.Integer(), nullable=False),
        _time("due", nullable=True),
        _text("source"),
        _text("digest"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "program", _text("id"), _text("kind"), _text("body"), sa.PrimaryKeyConstraint("id")
    )
    op.create_table(
        "unit",
        _text("id"),
        _text("order_id"),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("family"),
        sa.Column("options", sa.JSON(), nullable=False),
        _text("state"),
        _time("released_at"),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_unit_order_id", "unit", ["order_id"])
    op.create_index("ix_unit_state", "unit", ["state"])
    op.create_table(
        "step",
        _text("id"),
        _text("unit_id"),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("name"),
        _text("capability"),
        _text("program_id"),
        sa.Column("expected_s", sa.Float(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("cells", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        _text("state"),
        _text("cell", nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["program.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_step_unit_id", "step", ["unit_id"])
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("step_id"),
        _text("unit_id"),
        _text("cell"),
        _text("program_id"),
        _text("state"),
        _time("dispatched_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["step_id"], ["step.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_step_id", "job", ["step_id"])
    op.create_index("ix_job_unit_id", "job", ["unit_id"])
    op.create_table(
        "cell",
        _text("name"),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        _text("driver_kind"),
        _text("state"),
        sa.Column("job_id", sa.Integer(), nullable=True),
        _text("hold"),
        _text("waiting_for"),
        sa.Column("progress", sa.Float(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        _time("at"),
        _text("actor"),
        _text("kind"),
        _text("subject"),
        _text("transition"),
        _text("before"),
        _text("after"),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_subject", "event", ["kind", "subject"])
    op.create_table(
        "request",
        sa.Column("id", sa.Integer(), nullable=False),
        _time("at"),
        _text("actor"),
        _text("source"),
        _text("action"),
        _text("target"),
        sa.Column("args", sa.JSON(), nullable=False),
        _text("reason"),
        _text("state"),
        _text("result"),
        _time("done_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_request_state", "request", ["state"])
    op.create_table(
        "alarm",
        sa.Column("id", sa.Integer(), nullable=False),
        _time("raised_at"),
        _text("severity"),
        _text("cell"),
        _text("subject"),
        _text("code"),
        _text("text"),
        sa.Column("active", sa.Boolean(), nullable=False),
        _time("cleared_at", nullable=True),
        _time("acked_at", nullable=True),
        _text("acked_by"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alarm_open", "alarm", ["active", "acked_at"])
    op.bulk_insert(
        sa.table("meta", sa.column("key", sa.String()), sa.column("value", sa.String())),
        [{"key": "schema", "value": "5"}],
    )
    op.bulk_insert(
        sa.table("counter", sa.column("name", sa.String()), sa.column("value", sa.Integer())),
        [{"name": "job_id", "value": 0}],
    )


def downgrade() -> None:
    for table in (
        "alarm",
        "request",
        "event",
        "cell",
        "job",
        "step",
        "unit",
        "program",
        "orders",
        "counter",
        "meta",
    ):
        op.drop_table(table)
