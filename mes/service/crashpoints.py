"""Named points where a test may have the controller die as if the power went.

Theory of operation: the crash test of the suite must kill the controller exactly at
each hand-off boundary (just before and just after a job is written to a cell, just
before and just after a completion is recorded), not only at random moments. The test
sets ``MES_CRASH_AT=<point>:<n>`` and the controller kills itself with SIGKILL the
``n``-th time it passes ``<point>``: no cleanup, no flush, like a power cut. Unset (as in
production), :func:`crash_point` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

#: Every point the controller passes, in the order a job meets them.
POINTS = (
    "dispatch.before-commit",
    "dispatch.after-commit",
    "handoff.before-write",
    "handoff.after-write",
    "finish.before-commit",
    "finish.after-commit",
)

_target: tuple[str, int] | None = None
_passes: dict[str, int] = {}


def arm(spec: str | None) -> None:
    """Arm from a ``point:n`` spec (``None`` or empty disarms).

    Raises:
        ValueError: an unknown point or a bad count.
    """
    global _target
    _passes.clear()
    if not spec:
        _target = None
        return
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r} (known: {', '.join(POINTS)})")
    _target = (point, int(count or "1"))


def crash_point(point: str) -> None:
    """Die here (SIGKILL) if armed for this point and this is the armed pass."""
    if _target is None or _target[0] != point:
        return
    _passes[point] = _passes.get(point, 0) + 1
    if _passes[point] == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


arm(os.environ.get("MES_CRASH_AT"))
