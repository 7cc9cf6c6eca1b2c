"""What the dashboard shows, computed from store rows: pure functions, no I/O, no clock.

Andon: one level per cell tile, from its row and its active alarms. Report by
exception (ISA-101): calm grey when idle, calm green when running, colour only for
what needs a look: amber (held, or running with an alarm), blue (needs an operator),
red (faulted, or its link is down with an alarm). Every level also has a word, so
colour is never the only signal.

Times: ``speed`` is the time scale of simulated cells (``mes demo --speed``): one wall
second is ``speed`` plant seconds. Durations shown as plant time are multiplied by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    """Andon levels, from calm to urgent; the value is the CSS class of a tile."""

    IDLE = "idle"
    RUN = "run"
    OFFLINE = "offline"
    WARN = "warn"
    HELP = "help"
    FAULT = "fault"


#: Level -> (colour name, meaning) for the help screen's legend.
LEGEND: dict[Level, tuple[str, str]] = {
    Level.RUN: ("green", "running a job"),
    Level.IDLE: ("grey", "idle: ready, nothing to do"),
    Level.WARN: ("amber", "held, paused, or running with an active alarm"),
    Level.HELP: ("blue", "needs an operator: do what it asks, then confirm (c)"),
    Level.FAULT: ("red", "faulted, or its link is down with an alarm"),
    Level.OFFLINE: ("grey, dimmed", "offline (controller stopped): values are stale"),
}

#: Alarm severity -> CSS colour class.
SEVERITY_CLASS = {"high": "fault", "medium": "warn", "low": "help"}

_RUNNING = ("starting", "execute", "complete")


@dataclass(frozen=True, slots=True)
class Andon:
    level: Level
    label: str
    """The state in words, upper case (shown beside the colour)."""
    detail: str = ""
    """What to know next: the hold reason, what it waits for, the newest alarm."""

    @property
    def stale(self) -> bool:
        """Whether the tile's other values are last known ones (the link is down)."""
        return self.level is Level.OFFLINE or self.label == "LINK DOWN"


def andon(cell: Mapping[str, Any], alarms: Sequence[str] = (), link_down: bool = False) -> Andon:
    """The andon of a cell row (``Store.cell_board``) with its active alarm texts;
    ``link_down``: the controller raised a lost-link alarm for it that is still active."""
    state = str(cell.get("state") or "offline")
    newest = alarms[0] if alarms else ""
    if state == "offline":
        if link_down:
            return Andon(Level.FAULT, "LINK DOWN", newest)
        return Andon(Level.OFFLINE, "OFFLINE", newest or "last known values")
    if cell.get("waiting_for"):
        return Andon(Level.HELP, "NEEDS OPERATOR", str(cell["waiting_for"]))
    if state in ("aborted", "stopped"):
        return Andon(Level.FAULT, "FAULT", newest or state)
    if state == "held":
        paused = cell.get("job_id") is not None
        reason = str(cell.get("hold") or "")
        return Andon(Level.WARN, "PAUSED" if paused else "HELD", reason or newest)
    if state in _RUNNING:
        if cell.get("hold"):
            return Andon(Level.WARN, "RUN, HOLD NEXT", str(cell["hold"]))
        if alarms:
            return Andon(Level.WARN, "RUN, ALARM", newest)
        return Andon(Level.RUN, "RUN", "")
    if alarms:
        return Andon(Level.WARN, state.upper(), newest)
    return Andon(Level.IDLE, state.upper(), "")


def duration(seconds: float) -> str:
    """A short duration: ``45s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m" + (f"{seconds % 60:02d}s" if seconds % 60 else "")
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def since(then: datetime | None, now: datetime, speed: float = 1.0) -> str:
    """Plant time from ``then`` to ``now`` as a short duration ("" when unknown)."""
    if then is None:
        return ""
    return duration((now - then).total_seconds() * speed)


def bar(fraction: float, width: int) -> str:
    """A progress bar of ``width`` characters, eighth-block precise."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width, "░")[:width]


@dataclass(frozen=True, slots=True)
class Lateness:
    """A unit's due date against now and the work it has left."""

    text: str
    level: str
    """``late``, ``risk`` (work left runs past due), ``ok`` or ``none`` (no due date)."""
    sort_key: float
    """Seconds of slack (negative: late); no due date sorts last."""


def lateness(due: datetime | None, left_s: float, now: datetime, speed: float = 1.0) -> Lateness:
    """How a unit stands against its due date (``left_s``: plant seconds of work left)."""
    if due is None:
        return Lateness("", "none", float("inf"))
    slack = (due - now).total_seconds() * speed
    if slack < 0:
        return Lateness(f"late {duration(-slack)}", "late", slack)
    if slack < left_s:
        return Lateness(f"at risk, due in {duration(slack)}", "risk", slack - left_s)
    return Lateness(f"due in {duration(slack)}", "ok", slack - left_s)


def matches(row: Mapping[str, Any], needle: str) -> bool:
    """Whether a WIP row matches a filter: every word found in one of its fields."""
    if not needle:
        return True
    haystack = " ".join(
        str(row.get(k) or "") for k in ("id", "order_id", "family", "state", "step", "cell")
    ).lower()
    return all(word in haystack for word in needle.lower().split())


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def readings(values: Mapping[str, Any] | None) -> str:
    """A cell's sensors in a line: ``hotend 209.8/210° bed 60/60°`` (value/set point;
    ``hotend 24°`` when it has none)."""
    if not values:
        return ""
    shown = []
    for name, reading in values.items():
        value, target = [*reading, None, None][:2]
        if value is None:
            continue
        text = f"{name} {float(value):g}"
        if target:
            text += f"/{float(target):g}"
        shown.append(text + "°")
    return " ".join(shown)
