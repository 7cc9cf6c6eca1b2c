"""The one mechanism behind every state machine: a transition table kept as data.

Each machine (unit, step, cell) is a string enum of states, a string enum of events and
a dict ``(state, event) -> next state``. :func:`advance` looks the pair up and raises
:class:`~mes.errors.InvalidTransition` on a miss, so an illegal move is refused in one
place, and tests can walk the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from mes.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=str)  # an event enum, or a plain name


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change that happened: what it was, to what, and when."""

    kind: str
    subject: str
    event: str
    before: str
    after: str
    at: datetime


def table(rows: Iterable[tuple[Iterable[S] | S, E, S]]) -> dict[tuple[S, E], S]:
    """Build a transition table from rows of (from-state or states, event, to-state).

    Raises:
        ValueError: two rows give the same (state, event) pair different targets.
    """
    out: dict[tuple[S, E], S] = {}
    for sources, event, target in rows:
        for source in (sources,) if isinstance(sources, StrEnum) else sources:
            key = (source, event)
            if key in out and out[key] != target:
                raise ValueError(f"ambiguous transition {source}+{event}")
            out[key] = target
    return out


def advance(transitions: Mapping[tuple[S, E], S], subject: str, state: S, event: E) -> S:
    """Return the state that ``event`` leads to from ``state``.

    Raises:
        InvalidTransition: the table has no such transition.
    """
    try:
        return transitions[(state, event)]
    except KeyError:
        raise InvalidTransition(subject, state.value, str(event)) from None
