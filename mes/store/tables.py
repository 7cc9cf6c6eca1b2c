"""The database schema, as SQLModel tables. Only the store imports this module.

Times are stored as naive UTC (:class:`UtcDateTime`) and come back timezone-aware, so
SQLite and PostgreSQL give the same values. Job ids come from the ``counter`` table in
reserved blocks and are never reused, even across restarts.

The schema's history is in :mod:`mes.store.migrations` (Alembic): a change here needs a
revision there, and ``tests/store/test_migrations.py`` checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Index, Table, TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC, returned as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


class CounterRow(SQLModel, table=True):
    __tablename__ = "counter"

    name: str = Field(primary_key=True)
    value: int = 0


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"

    id: str = Field(primary_key=True)
    released_at: datetime = Field(sa_type=UtcDateTime)
    priority: int = 0
    due: datetime | None = Field(default=None, sa_type=UtcDateTime)
    source: str = ""
    digest: str = ""


class UnitRow(SQLModel, table=True):
    __tablename__ = "unit"
    __table_args__ = (Index("ix_unit_state", "state"), Index("ix_unit_custodian", "custodian"))

    id: str = Field(primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True)
    seq: int
    family: str
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    state: str
    released_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    custodian: str = ""
    """The controller that alone may change this unit now ("" : none; shared plants)."""
    variant: str = ""
    """The variant of its generic steps ("" : its family makes no blanks)."""


class ProgramRow(SQLModel, table=True):
    __tablename__ = "program"

    id: str = Field(primary_key=True)
    kind: str
    body: str


class StepRow(SQLModel, table=True):
    __tablename__ = "step"

    id: str = Field(primary_key=True)
    unit_id: str = Field(foreign_key="unit.id", index=True)
    seq: int
    name: str
    capability: str
    program_id: str = Field(foreign_key="program.id")
    expected_s: float
    after: list[int] = Field(default_factory=list, sa_type=JSON)
    attributes: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    cells: list[str] = Field(default_factory=list, sa_type=JSON)
    quality: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    stage: str = ""
    """What a customer reads while the unit is at this step."""
    generic: bool = False
    """Part of the family's generic stage (made ahead to stock, or by the unit itself)."""
    state: str
    cell: str | None = None
    job_id: int | None = None
    attempts: int = 0
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class JobRow(SQLModel, table=True):
    """One hand-off of a step to a cell: the as-built record keeps every attempt."""

    __tablename__ = "job"

    id: int = Field(primary_key=True)
    step_id: str = Field(foreign_key="step.id", index=True)
    unit_id: str = Field(index=True)
    cell: str
    program_id: str
    state: str
    dispatched_at: datetime = Field(sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class CellRow(SQLModel, table=True):
    __tablename__ = "cell"

    name: str = Field(primary_key=True)
    capabilities: list[str] = Field(default_factory=list, sa_type=JSON)
    driver_kind: str
    state: str
    job_id: int | None = None
    hold: str = ""
    waiting_for: str = ""
    progress: float = 0.0
    """Of the running job, 0..1, brought up to date about once a second."""
    readings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """The cell's sensors as last heard (name -> [value, target]), like progress."""
    updated_at: datetime = Field(sa_type=UtcDateTime)


class EventRow(SQLModel, table=True):
    """The append-only journal."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_subject", "kind", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime)
    actor: str
    kind: str
    subject: str
    transition: str
    before: str = ""
    after: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class RequestRow(SQLModel, table=True):
    """An operator's or planner's request, queued durably until the controller acts.

    Whoever asks (CLI, dashboard) inserts it; the controller carries it out and records
    the result in the same transaction as the change it made: the audit trail.
    """

    __tablename__ = "request"
    __table_args__ = (Index("ix_request_state", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime)
    actor: str
    source: str
    action: str
    target: str
    args: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    reason: str = ""
    state: str = "pending"
    result: str = ""
    done_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AlarmRow(SQLModel, table=True):
    """An alarm: active until cleared, unacknowledged until an operator acknowledges it."""

    __tablename__ = "alarm"
    __table_args__ = (Index("ix_alarm_open", "active", "acked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    raised_at: datetime = Field(sa_type=UtcDateTime)
    severity: str
    cell: str = ""
    subject: str = ""
    code: str = ""
    text: str
    active: bool = True
    cleared_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acked_by: str = ""


class ControllerRow(SQLModel, table=True):
    """A controller process, from start to stop: its heartbeat says it is alive."""

    __tablename__ = "controller"

    id: str = Field(primary_key=True)
    name: str
    host: str
    pid: int
    cells: list[str] = Field(default_factory=list, sa_type=JSON)
    """The cells it may drive (its ``--cells`` or area); empty: any."""
    started_at: datetime = Field(sa_type=UtcDateTime)
    heartbeat_at: datetime = Field(sa_type=UtcDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LeaseRow(SQLModel, table=True):
    """Who drives a cell: held while its owner's heartbeat is fresh. ``token`` (the
    fencing token) grows with every claim, so a controller that lost the lease cannot
    write as its owner any more."""

    __tablename__ = "lease"

    cell: str = Field(primary_key=True)
    owner: str = ""
    token: int = 0
    acquired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class OutboxRow(SQLModel, table=True):
    """A message to publish (MQTT), written in the transaction of the change it tells."""

    __tablename__ = "outbox"
    # AUTOINCREMENT on SQLite: ids never come back after the newest rows were deleted,
    # so a publisher that read up to an id misses nothing committed later.
    __table_args__ = (Index("ix_outbox_state", "state", "id"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_type=UtcDateTime)
    topic: str
    payload: str
    retain: bool = False
    qos: int = 1
    state: str = "pending"
    """pending, or dead (set aside after failing ``attempts`` times)."""
    attempts: int = 0
    error: str = ""


class BlankRow(SQLModel, table=True):
    """A blank: what a stock unit's generic steps make, in stock once the unit is done,
    until a released unit takes it (``consumed_by``) or an operator scraps it."""

    __tablename__ = "blank"
    __table_args__ = (Index("ix_blank_variant", "family", "variant", "state"),)

    unit_id: str = Field(primary_key=True, foreign_key="unit.id")
    family: str
    variant: str
    state: str = "stock"
    """stock (being made, or made: its unit says), consumed, scrapped."""
    consumed_by: str = ""
    changed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When it was consumed or scrapped."""


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


# Core handles, typed, for the repository's bulk statements.
META = _table(MetaRow)
COUNTER = _table(CounterRow)
ORDERS = _table(OrderRow)
UNITS = _table(UnitRow)
PROGRAMS = _table(ProgramRow)
STEPS = _table(StepRow)
JOBS = _table(JobRow)
CELLS = _table(CellRow)
EVENTS = _table(EventRow)
REQUESTS = _table(RequestRow)
ALARMS = _table(AlarmRow)
CONTROLLERS = _table(ControllerRow)
LEASES = _table(LeaseRow)
OUTBOX = _table(OutboxRow)
BLANKS = _table(BlankRow)
