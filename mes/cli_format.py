"""How the CLI prints: tables, times, job results and who drives a cell."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def result(job: dict[str, Any]) -> str:
    result = job.get("result") or {}
    if "code" in result:
        return f"{result['code']} {result.get('text', '')}"
    if "text" in result:
        return f"{result.get('outcome', '')}: {result['text']}"
    measurements = result.get("measurements") or {}
    text = " ".join(f"{k}={v}" for k, v in measurements.items())
    return f"{result.get('outcome', '')} {text}".strip()


def driven_by(cell: dict[str, Any], now: datetime) -> str:
    """The controller holding the cell's lease; "(silent 2m)" when its heartbeat is old
    (it died or stalled: the states shown are its last word)."""
    if not cell["controller"]:
        return "-"
    heard = cell.get("heard_at")
    if heard is None or (now - heard).total_seconds() < 15:
        return str(cell["controller"])
    return f"{cell['controller']} (silent {age(now - heard)})"


def age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    return f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
