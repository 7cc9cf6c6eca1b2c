"""CNC profile cut of a (rounded) rectangle: the part cut free from its stock (GRBL).

Theory of operation. The part is a ``width_mm`` x ``height_mm`` rectangle with corners of
``corner_radius_mm``, its front-left corner at (``margin_mm``, ``margin_mm``) on the stock
(envelope convention of :mod:`routing.programs.gcode`: stock top at Z0). The tool runs
outside it, on the contour offset by the tool radius: straight sides, and corners as arcs of
radius ``corner_radius + tool radius`` (so a sharp part corner stays sharp). The default
direction is clockwise (``G2`` corners), which is climb milling with a clockwise spindle;
``climb = false`` mirrors the path (counter-clockwise, ``G3``).

Depth: ``thickness_mm + breakthrough_mm`` in equal passes of at most
``depth_per_pass_mm``. The tool never plunges on the contour. Each pass enters at the middle
of the front side from a point ``lead_in_mm`` away in the waste, along a quarter arc
tangent to the contour (``lead_in = "arc"``) or a straight 45-degree line (``"ramp"``),
descending from the previous pass depth to the new one while it goes; it then runs the
whole contour at depth and leaves along the lead-in path, still at depth, back to the
lead-in start. That trip out clears the lead-in to the pass depth, so the next pass starts
on cleared material: only the first pass starts at Z0, on the stock top, having come down
from the safe height at the plunge feed in the air.

Heights: ``clearance_z_mm`` before and after the job, ``safe_z_mm`` for the short approach.
The part is cut free at the last pass (no tabs): hold it down (vacuum, screws outside the
contour). The toolpath must stay at X, Y >= 0; a margin too small for the tool radius and
the lead-in is refused with :class:`ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from routing.programs.gcode import Box
from routing.programs.params import Param, Values, header, num, read_params

NAME = "profile_rect"
BOUNDS_SLACK_MM = 0.0025
"""How much larger than the program's real motion :func:`bounds` may be, per side, in mm."""
_ARC_PAD_MM = 0.002
"""Where an arc's extreme lands as the reader sees it: the written end (0.0005 off), the
centre as the written start plus written ``I``/``J`` (0.001 off), the radius from written
``I``/``J`` (0.0007 off); 0.0017 mm at most, padded to 0.002."""

SPEC: dict[str, Param] = {
    "width_mm": Param(float, 100.0, 1.0, 2000.0, help="part width (X)"),
    "height_mm": Param(float, 60.0, 1.0, 2000.0, help="part height (Y)"),
    "corner_radius_mm": Param(float, 5.0, 0.0, 1000.0, help="part corner radius"),
    "thickness_mm": Param(float, 6.0, 0.1, 100.0, help="stock thickness"),
    "breakthrough_mm": Param(float, 0.2, 0.0, 5.0, help="cut below the stock"),
    "tool_diameter_mm": Param(float, 6.0, 0.1, 50.0, help="end mill diameter"),
    "depth_per_pass_mm": Param(float, 2.0, 0.05, 50.0, help="largest depth of one pass"),
    "lead_in": Param(str, "arc", choices=("arc", "ramp"), help="entry path shape"),
    "lead_in_mm": Param(float, 5.0, 0.5, 100.0, help="lead-in size (arc radius)"),
    "margin_mm": Param(float, 15.0, 0.0, 1000.0, help="part corner from the stock corner"),
    "climb": Param(bool, True, help="climb milling (clockwise around the part)"),
    "feed_mm_min": Param(float, 1000.0, 1.0, 50000.0, help="cutting feed"),
    "plunge_feed_mm_min": Param(float, 300.0, 1.0, 50000.0, help="plunge and ramp feed"),
    "spindle_rpm": Param(int, 18000, 100, 100000, help="spindle speed"),
    "safe_z_mm": Param(float, 5.0, 0.1, 200.0, help="approach height above the stock"),
    "clearance_z_mm": Param(float, 15.0, 0.1, 500.0, help="height at start and end"),
}
_WORDS = frozenset({"G0", "G1", "G4", "G17", "G21", "G90", "G94", "M2", "M3", "M5"})
"""Words of every program; the arcs' ``G2``/``G3`` are :func:`words`' to add."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of tool path in XY: a line to ``end``, or an arc about ``centre``."""

    end: tuple[float, float]
    centre: tuple[float, float] | None = None
    clockwise: bool = True

    def mirrored(self, axis_x: float) -> Segment:
        """This segment reflected about the vertical line X = ``axis_x``."""
        end = (2 * axis_x - self.end[0], self.end[1])
        if self.centre is None:
            return Segment(end)
        return Segment(end, (2 * axis_x - self.centre[0], self.centre[1]), not self.clockwise)


def contour(
    x0: float, y0: float, x1: float, y1: float, radius: float
) -> tuple[tuple[float, float], list[Segment]]:
    """A clockwise rounded rectangle starting and ending at the middle of its front side."""
    xm = (x0 + x1) / 2
    r = radius
    path = [
        Segment((x0 + r, y0)),
        Segment((x0, y0 + r), (x0 + r, y0 + r)),
        Segment((x0, y1 - r)),
        Segment((x0 + r, y1), (x0 + r, y1 - r)),
        Segment((x1 - r, y1)),
        Segment((x1, y1 - r), (x1 - r, y1 - r)),
        Segment((x1, y0 + r)),
        Segment((x1 - r, y0), (x1 - r, y0 + r)),
        Segment((xm, y0)),
    ]
    return (xm, y0), path


def _emit(seg: Segment, start: tuple[float, float], z: str) -> str:
    """One G-code line for ``seg`` from ``start``, ending at height ``z`` if given."""
    xy = f"X{num(seg.end[0])} Y{num(seg.end[1])}{z}"
    if seg.centre is None:
        return f"G1 {xy}"
    i, j = seg.centre[0] - start[0], seg.centre[1] - start[1]
    return f"{'G2' if seg.clockwise else 'G3'} {xy} I{num(i)} J{num(j)}"


def _read(params: Mapping[str, object]) -> tuple[Values, int]:
    """Check ``params`` as :func:`profile_rect` does; return them and the number of passes."""
    v = read_params(NAME, SPEC, params)
    width, height, radius = v.f("width_mm"), v.f("height_mm"), v.f("corner_radius_mm")
    tool_r, lead, margin = v.f("tool_diameter_mm") / 2, v.f("lead_in_mm"), v.f("margin_mm")
    if radius > min(width, height) / 2:
        raise ValueError(f"{NAME}: corner_radius_mm {radius:g} is over half the smaller side")
    if v.f("clearance_z_mm") < v.f("safe_z_mm"):
        raise ValueError(f"{NAME}: clearance_z_mm is below safe_z_mm")
    if margin < tool_r + lead:
        raise ValueError(
            f"{NAME}: margin_mm {margin:g} is less than the tool radius {tool_r:g} plus the "
            f"lead-in {lead:g} mm (the tool path would go below X0 or Y0)"
        )
    total = v.f("thickness_mm") + v.f("breakthrough_mm")
    passes = math.ceil(total / v.f("depth_per_pass_mm") - 1e-9)
    if passes > 500:
        raise ValueError(f"{NAME}: {passes} passes are too many; raise depth_per_pass_mm")
    return v, passes


def profile_rect(params: Mapping[str, object]) -> str:
    """Make the G-code that cuts a rounded rectangle free from its stock.

    Args:
        params: Parameters as declared in :data:`SPEC` (missing ones take defaults).

    Returns:
        The complete program, lines ending in ``\\n``.

    Raises:
        ValueError: Bad parameters, a corner radius over half the smaller side, heights
            in the wrong order, or a margin too small for the tool radius and lead-in.
    """
    v, passes = _read(params)
    width, height, radius = v.f("width_mm"), v.f("height_mm"), v.f("corner_radius_mm")
    tool_r, lead, margin = v.f("tool_diameter_mm") / 2, v.f("lead_in_mm"), v.f("margin_mm")
    total = v.f("thickness_mm") + v.f("breakthrough_mm")
    start, loop = contour(
        margin - tool_r, margin - tool_r, margin + width + tool_r, margin + height + tool_r,
        radius + tool_r,
    )  # fmt: skip
    entry = (start[0] + lead, start[1] - lead)
    lead_in = Segment(start, (start[0], start[1] - lead), False)
    if v.s("lead_in") == "ramp":
        lead_in = Segment(start)
    lead_out = Segment(entry, lead_in.centre, True)
    if not v.b("climb"):
        loop = [seg.mirrored(start[0]) for seg in loop]
        lead_in, lead_out = lead_in.mirrored(start[0]), lead_out.mirrored(start[0])
        entry = lead_out.end
    feed, plunge = num(v.f("feed_mm_min"), 1), num(v.f("plunge_feed_mm_min"), 1)
    clear, safe = num(v.f("clearance_z_mm")), num(v.f("safe_z_mm"))
    out = header(NAME, v, [f"{passes} pass(es) of {total / passes:.4f} mm to Z{num(-total)}"])
    out += ["G21", "G90", "G17", "G94", f"G0 Z{clear}", f"M3 S{v.i('spindle_rpm')}", "G4 P3"]
    out += [f"G0 X{num(entry[0])} Y{num(entry[1])}", f"G0 Z{safe}", f"G1 Z0 F{plunge}"]
    for k in range(1, passes + 1):
        z = f" Z{num(-total * k / passes, 4)}"
        out.append(f"; pass {k} of {passes}")
        out.append(f"{_emit(lead_in, entry, z)} F{plunge}")
        here, first = start, True
        for seg in loop:
            if math.dist(seg.end, here) > 1e-9:
                line = _emit(seg, here, "")
                out.append(f"{line} F{feed}" if first else line)
                first = False
            here = seg.end
        out.append(_emit(lead_out, start, ""))
    out += [f"G0 Z{clear}", "M5", "M2"]
    return "\n".join(out) + "\n"


def bounds(params: Mapping[str, object]) -> Box:
    """The extent of all the program's motion, from the parameters alone (no G-code made).

    The contour offset by the tool radius, the lead-in start beside the front middle (left
    of it when not climbing), from the last pass depth up to the clearance height. X and
    Y are padded by 0.002 mm for how the reader places arc extremes from rounded numbers,
    so the box is at most :data:`BOUNDS_SLACK_MM` larger than the real one; Z is exact.

    Raises:
        ValueError: Whatever :func:`profile_rect` refuses, with the same message.
    """
    v, passes = _read(params)
    tool_r, lead, margin = v.f("tool_diameter_mm") / 2, v.f("lead_in_mm"), v.f("margin_mm")
    x0, x1 = margin - tool_r, margin + v.f("width_mm") + tool_r
    middle = (x0 + x1) / 2
    entry = middle + lead if v.b("climb") else middle - lead
    total = v.f("thickness_mm") + v.f("breakthrough_mm")
    pad = _ARC_PAD_MM
    return Box(
        (min(x0, entry) - pad, max(x1, entry) + pad),
        (margin - tool_r - lead - pad, margin + v.f("height_mm") + tool_r + pad),
        (float(num(-total * passes / passes, 4)), float(num(v.f("clearance_z_mm")))),
    )


def words(params: Mapping[str, object]) -> frozenset[str]:
    """The G/M words the program contains: arcs one way or both, by ``lead_in`` and ``climb``.

    Raises:
        ValueError: Parameters the declaration refuses (names, types, ranges); a part that
            cannot be cut is :func:`bounds`' to refuse.
    """
    v = read_params(NAME, SPEC, params)
    if v.s("lead_in") == "arc":
        return _WORDS | {"G2", "G3"}
    return _WORDS | {"G2" if v.b("climb") else "G3"}
