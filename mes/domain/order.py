"""An order: what a planner releases; one or more custom units, each its own product."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Order:
    """A released order. Units refer to it by id; it never changes after release."""

    id: str
    released_at: datetime
    priority: int = 0
    due: datetime | None = None
    source: str = ""
    digest: str = ""

    def __repr__(self) -> str:
        return f"<Order {self.id}>"
