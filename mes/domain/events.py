"""The journal: an append-only record of everything that happened, by whom and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mes.domain.machine import Transition


@dataclass(frozen=True, slots=True)
class Event:
    """One journal entry. ``transition`` is the event name; ``before``/``after`` the states."""

    at: datetime
    actor: str
    kind: str
    subject: str
    transition: str
    before: str = ""
    after: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, change: Transition, actor: str, **data: Any) -> Event:
        """The journal entry for a state change made by ``actor``."""
        return cls(
            at=change.at,
            actor=actor,
            kind=change.kind,
            subject=change.subject,
            transition=change.event,
            before=change.before,
            after=change.after,
            data=data,
        )
