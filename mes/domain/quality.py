"""Quality: a step's result checked against its limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def out_of_limits(
    limits: Mapping[str, Sequence[float]], measurements: Mapping[str, float]
) -> str | None:
    """Why ``measurements`` miss ``limits`` (name -> [low, high]), or None if they pass.

    A limit whose measurement is missing fails: an unmeasured part is not a good part.
    """
    problems = []
    for name, (low, high) in sorted(limits.items()):
        value = measurements.get(name)
        if value is None:
            problems.append(f"{name} not measured")
        elif not low <= value <= high:
            problems.append(f"{name} {value:g} outside {low:g}..{high:g}")
    return "; ".join(problems) or None
