"""The plant's Unified Namespace: topic names and JSON payloads. Pure: no I/O, no clock.

The tree (docs/mqtt.md has it whole, with a payload of each kind)::

    <enterprise>/<site>/<area>/<line>/<cell>/state   retained: the cell now
    <enterprise>/<site>/<area>/<line>/<cell>/events  the cell's journal entries
    <enterprise>/<site>/units/<unit>/state           retained: the unit now
    <enterprise>/<site>/units/<unit>/events          the unit's and its steps' entries
    <enterprise>/<site>/alarms                       alarms raised, cleared, acknowledged
    <enterprise>/<site>/orders/in                    orders taken in (when enabled)
    <enterprise>/<site>/orders/results               what became of each order taken in
    <enterprise>/<site>/orders/<order>/status        retained: the order as its customer sees it
    <enterprise>/<site>/mes/status                   retained: the controller on/offline

Payloads are JSON objects with times as ISO 8601 UTC (``...Z``). A payload made from a
journal entry carries that entry's id as ``event``. Messages are made before their
transaction commits, when the journal ids are not known yet, so a payload carries a
``_mqtt`` object with directives for the publisher instead: ``journal`` (the entry to
look up: kind, subject, transition, at), ``alarm`` (likewise for an alarm's id),
``expire`` (a finished unit's retained state expires) and ``correlation`` (an MQTT 5
response's correlation data). The publisher fills in the ids and strips ``_mqtt``
(:func:`finish`) before publishing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mes.domain import Event, Unit

#: Key of the publisher's directives in a stored payload.
DIRECTIVES = "_mqtt"


def when(at: datetime | None) -> str | None:
    """``at`` as ISO 8601 UTC with a ``Z``, microseconds kept (they order the journal)."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_when(text: str) -> datetime:
    """The inverse of :func:`when`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def dumps(payload: Mapping[str, Any]) -> str:
    """Compact JSON; datetimes (in journal data) as :func:`when` gives them."""
    return json.dumps(payload, separators=(",", ":"), default=_default, ensure_ascii=False)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Namespace:
    """Where this plant's topics are: the root (enterprise, site) and each cell's place.

    Attributes:
        enterprise: first topic level.
        site: second topic level.
        places: cell name -> (area, line).
        default: (area, line) of a cell not in ``places``.
    """

    enterprise: str
    site: str
    places: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    default: tuple[str, str] = ("default", "default")

    @property
    def root(self) -> str:
        return f"{self.enterprise}/{self.site}"

    def place(self, cell: str) -> tuple[str, str]:
        """The (area, line) of ``cell``."""
        return self.places.get(cell, self.default)

    def cell(self, name: str, leaf: str) -> str:
        area, line = self.place(name)
        return f"{self.root}/{area}/{line}/{name}/{leaf}"

    def unit(self, unit_id: str, leaf: str) -> str:
        return f"{self.root}/units/{unit_id}/{leaf}"

    def order(self, order_id: str, leaf: str) -> str:
        return f"{self.root}/orders/{order_id}/{leaf}"

    @property
    def alarms(self) -> str:
        return f"{self.root}/alarms"

    @property
    def status(self) -> str:
        return f"{self.root}/mes/status"

    @property
    def orders_in(self) -> str:
        return f"{self.root}/orders/in"

    @property
    def orders_results(self) -> str:
        return f"{self.root}/orders/results"


def journal_ref(event: Event) -> list[str]:
    """The directive that asks the publisher for ``event``'s journal id."""
    return [event.kind, event.subject, event.transition, when(event.at) or ""]


def event_payload(event: Event, **extra: Any) -> dict[str, Any]:
    """A journal entry as published on an ``events`` topic."""
    return {
        "event": None,
        "at": when(event.at),
        "kind": event.kind,
        "subject": event.subject,
        "transition": event.transition,
        "before": event.before,
        "after": event.after,
        "actor": event.actor,
        **extra,
        "data": event.data,
        DIRECTIVES: {"journal": journal_ref(event)},
    }


@dataclass(slots=True)
class CellView:
    """What the namespace says about a cell now (the retained ``state`` payload)."""

    name: str
    state: str = "offline"
    job: int | None = None
    unit: str | None = None
    step: str | None = None
    progress: float = 0.0
    hold: str = ""
    waiting_for: str = ""
    since: datetime | None = None
    last: Event | None = None
    """The journal entry that last changed it (its ``since``)."""

    def payload(self, ns: Namespace, at: datetime) -> dict[str, Any]:
        area, line = ns.place(self.name)
        payload: dict[str, Any] = {
            "cell": self.name,
            "area": area,
            "line": line,
            "state": self.state,
            "job": self.job,
            "unit": self.unit,
            "step": self.step,
            "progress": round(self.progress, 3),
            "hold": self.hold,
            "waiting_for": self.waiting_for,
            "since": when(self.since),
            "transition": self.last.transition if self.last else None,
            "event": None,
            "at": when(at),
        }
        if self.last is not None:
            payload[DIRECTIVES] = {"journal": journal_ref(self.last)}
        return payload


def unit_payload(unit: Unit, last: Event | None, at: datetime, *, finished: bool) -> dict[str, Any]:
    """A unit now (the retained ``state`` payload); ``last`` is the entry that made it so."""
    payload: dict[str, Any] = {
        "unit": unit.id,
        "order": unit.order_id,
        "family": unit.family,
        "options": unit.options,
        "state": unit.state.value,
        "since": when(last.at if last else None),
        "transition": last.transition if last else None,
        "event": None,
        "at": when(at),
    }
    directives: dict[str, Any] = {}
    if last is not None:
        directives["journal"] = journal_ref(last)
    if finished:
        directives["expire"] = True
    if directives:
        payload[DIRECTIVES] = directives
    return payload


def alarm_raised(row: Mapping[str, Any]) -> dict[str, Any]:
    """An alarm raised (``row`` as :meth:`mes.store.Changes.alarm` makes it)."""
    at = when(row["raised_at"]) or ""
    return {
        "alarm": None,
        "change": "raised",
        "severity": row["severity"],
        "cell": row["cell"],
        "subject": row["subject"],
        "code": row["code"],
        "text": row["text"],
        "at": at,
        DIRECTIVES: {"alarm": [at, row["cell"], row["subject"], row["code"]]},
    }


def alarm_cleared(cell: str, subject: str, at: datetime) -> dict[str, Any]:
    """Every active alarm of ``cell`` about ``subject`` cleared ("" matches any)."""
    return {"change": "cleared", "cell": cell, "subject": subject, "at": when(at)}


def alarm_acknowledged(alarm_id: int, who: str, at: datetime) -> dict[str, Any]:
    return {"alarm": alarm_id, "change": "acknowledged", "by": who, "at": when(at)}


def status_payload(state: str, at: datetime, **extra: Any) -> str:
    """The controller's status (``online``, or ``offline`` as the will says it)."""
    return dumps({"state": state, "at": when(at), **extra})


def outcome_payload(
    source: str,
    at: datetime,
    *,
    released: Sequence[str] = (),
    unchanged: Sequence[str] = (),
    units: int = 0,
    problems: Sequence[Mapping[str, Any]] = (),
    correlation: bytes | None = None,
) -> dict[str, Any]:
    """What became of orders taken in: ``released``, ``unchanged`` (already released with
    the same content) or ``refused`` (with every problem; nothing was released)."""
    outcome = "refused" if problems else ("released" if released else "unchanged")
    payload: dict[str, Any] = {
        "outcome": outcome,
        "source": source,
        "released": list(released),
        "unchanged": list(unchanged),
        "units": units,
        "problems": [dict(p) for p in problems],
        "at": when(at),
    }
    if correlation is not None:
        payload["correlation"] = correlation.decode("utf-8", "replace")
        payload[DIRECTIVES] = {"correlation": base64.b64encode(correlation).decode("ascii")}
    return payload


@dataclass(frozen=True, slots=True)
class Finishing:
    """A stored payload's directives, read for the publisher (see :func:`finish`)."""

    journal: tuple[str, str, str, str] | None = None
    alarm: tuple[str, str, str, str] | None = None
    expire: bool = False
    correlation: bytes | None = None


def directives(payload: Mapping[str, Any]) -> Finishing:
    """The directives of a stored payload (none when it has none or is not an object)."""
    found = payload.get(DIRECTIVES)
    if not isinstance(found, dict):
        return Finishing()
    correlation = found.get("correlation")
    return Finishing(
        journal=_key(found.get("journal")),
        alarm=_key(found.get("alarm")),
        expire=found.get("expire") is True,
        correlation=base64.b64decode(correlation) if isinstance(correlation, str) else None,
    )


def _key(value: object) -> tuple[str, str, str, str] | None:
    if isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value):
        return (value[0], value[1], value[2], value[3])
    return None


def finish(payload: dict[str, Any], event_id: int | None, alarm_id: int | None) -> bytes:
    """The payload as published: directives stripped, the ids looked up filled in."""
    payload = {k: v for k, v in payload.items() if k != DIRECTIVES}
    if event_id is not None and "event" in payload:
        payload["event"] = event_id
    if alarm_id is not None and "alarm" in payload:
        payload["alarm"] = alarm_id
    return dumps(payload).encode("utf-8")
