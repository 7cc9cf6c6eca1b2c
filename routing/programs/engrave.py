"""Text engraving with a single-stroke font, for a laser (GRBL) or a CNC router (GRBL).

Theory of operation. The text is laid out in Hershey Roman Simplex font units
(:mod:`routing.programs.hershey`): glyphs side by side at their advance widths, capitals
21 units tall. Its *ink* extent (where the pen actually goes, descenders and accents
included) is scaled to the largest size that fits the plate inside the margins, and no
larger than ``max_char_height_mm`` (the height of a capital). When the text has a space and
``two_lines`` is set, the split into two lines that balances their widths is tried too
(baselines 32 units apart, each line centred), and kept only if it allows a bigger size.
The block is centred on the plate. Below ``min_char_height_mm`` the text does not fit and
the generator raises :class:`ValueError`.

Each stroke of each glyph becomes one burn or cut: travel to its start with ``G0``, tool on
(laser: ``M4 S<power>``, GRBL's dynamic power; CNC: plunge ``G1 Z-<depth>``), follow the
polyline with ``G1``, tool off (laser: ``M5``; CNC: ``G0`` up to the safe height). The laser
is switched per stroke so the program is safe whether or not GRBL's laser mode (``$32=1``)
is set. The CNC starts its spindle once, dwells for spin-up, and engraves along the stroke
centre line (a V-bit or engraving cutter). Coordinates follow the envelope convention of
:mod:`routing.programs.gcode`: plate front-left corner at X0 Y0, plate surface at Z0.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from functools import lru_cache
from itertools import accumulate

from routing.programs.gcode import Box
from routing.programs.hershey import CAP_HEIGHT, GLYPHS, SUPPORTED_CHARS
from routing.programs.params import Param, Values, header, num, read_params

NAME = "engrave_text"
BOUNDS_SLACK_MM = 0.0
"""How much larger than the program's real motion :func:`bounds` may be, per side, in mm."""
LINE_PITCH = 32
"""Baseline-to-baseline distance of two lines, in font units (about 1.5 capital heights)."""

SPEC: dict[str, Param] = {
    "text": Param(str, "HELLO", max_length=200, help="text to engrave, printable ASCII"),
    "width_mm": Param(float, 100.0, 1.0, 2000.0, help="plate width (X)"),
    "height_mm": Param(float, 30.0, 1.0, 2000.0, help="plate height (Y)"),
    "margin_mm": Param(float, 3.0, 0.0, 500.0, help="free border on every side"),
    "mode": Param(str, "laser", choices=("laser", "cnc"), help="laser or CNC router"),
    "min_char_height_mm": Param(float, 2.0, 0.5, 500.0, help="smallest capital height"),
    "max_char_height_mm": Param(float, 50.0, 0.5, 2000.0, help="largest capital height"),
    "two_lines": Param(bool, True, help="break at a space when two lines are larger"),
    "feed_mm_min": Param(float, 1000.0, 1.0, 100000.0, help="engraving feed"),
    "power_percent": Param(float, 80.0, 0.1, 100.0, help="laser power"),
    "laser_max_s": Param(int, 1000, 1, 100000, help="S value of full laser power ($30)"),
    "spindle_rpm": Param(int, 10000, 100, 100000, help="CNC spindle speed"),
    "depth_mm": Param(float, 0.3, 0.01, 10.0, help="CNC engraving depth below the surface"),
    "plunge_feed_mm_min": Param(float, 200.0, 1.0, 100000.0, help="CNC plunge feed"),
    "safe_z_mm": Param(float, 3.0, 0.1, 100.0, help="CNC travel height above the surface"),
}

Polyline = list[tuple[float, float]]
Ink = tuple[float, float, int, int]
"""Extent of text in font units: ``(x_lo, x_hi, y_lo, y_hi)``, each line centred on x = 0."""

_ADVANCE = {char: glyph.advance for char, glyph in GLYPHS.items()}
_FAR = 10**9  # a glyph without ink (the space) extends nowhere
_INK_X_LO, _INK_X_HI, _INK_Y_LO, _INK_Y_HI = (
    {
        char: pick([coord[axis] for stroke in glyph.strokes for coord in stroke], default=far)
        for char, glyph in GLYPHS.items()
    }
    for pick, axis, far in ((min, 0, _FAR), (max, 0, -_FAR), (min, 1, _FAR), (max, 1, -_FAR))
)
# fmt: off
_WORDS = {
    "laser": frozenset({"G0", "G1", "G17", "G21", "G90", "G94", "M2", "M4", "M5"}),
    "cnc": frozenset({"G0", "G1", "G4", "G17", "G21", "G90", "G94", "M2", "M3", "M5"}),
}
# fmt: on


def _line_strokes(text: str, baseline: float) -> list[Polyline]:
    """Strokes of one line in font units, the line's ink centred on x = 0."""
    strokes: list[Polyline] = []
    cursor = 0.0
    for char in text:
        glyph = GLYPHS[char]
        strokes += [[(cursor + x, baseline + y) for x, y in stroke] for stroke in glyph.strokes]
        cursor += glyph.advance
    xs = [x for stroke in strokes for x, _ in stroke]
    if xs:
        mid = (min(xs) + max(xs)) / 2
        strokes = [[(x - mid, y) for x, y in stroke] for stroke in strokes]
    return strokes


def _widths(text: str) -> list[int]:
    """``widths[i]``: the advance of ``text[:i]`` in font units (``i`` from 0 to its length)."""
    return list(accumulate(map(_ADVANCE.__getitem__, text), initial=0))


def _split(text: str, widths: list[int]) -> int | None:
    """Where to break ``text`` in two: the space with ink on either side that minimises the
    wider part (the first of equals); ``None`` without such a space.

    Left widths grow and right widths shrink strictly from space to space (every advance
    is positive), so the best is one of the two spaces beside the balance point.
    """
    n, total = len(text), widths[-1]
    first, end = n - len(text.lstrip()), len(text.rstrip())  # spaces in first+1 .. end-2
    balance = bisect_left(range(n), True, key=lambda i: widths[i] + widths[i + 1] >= total)
    candidates = [
        text.rfind(" ", first + 1, min(balance, end - 1)),
        text.find(" ", max(balance, first + 1), end - 1),
    ]
    return min(
        (i for i in candidates if i >= 0),
        key=lambda i: (max(widths[i], total - widths[i + 1]), i),
        default=None,
    )


def _layouts(text: str, two_lines: bool) -> list[list[str]]:
    """One line, and the most balanced split at a space when allowed."""
    layouts = [[text]]
    if two_lines:
        best = _split(text, _widths(text))
        if best is not None:
            layouts.append([text[:best].rstrip(), text[best + 1 :].lstrip()])
    return layouts


def _fit(lines: list[str], avail_w: float, avail_h: float) -> tuple[float, list[Polyline]]:
    """Scale (mm per font unit) that fits ``lines`` in the free area, and their strokes."""
    strokes = [s for k, line in enumerate(lines) for s in _line_strokes(line, -LINE_PITCH * k)]
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    ink_w, ink_h = max(xs) - min(xs), max(ys) - min(ys)
    scale = min(avail_w / ink_w if ink_w else math.inf, avail_h / ink_h if ink_h else math.inf)
    return scale, strokes


def _inputs(v: Values) -> tuple[str, float, float]:
    """The text to engrave and the free area (width, height) it must fit in.

    Raises:
        ValueError: Empty text, characters the font lacks, margins that leave no room, or
            a minimum character height above the maximum.
    """
    text = v.s("text").strip()
    lacking = sorted(set(text) - SUPPORTED_CHARS)
    if lacking:
        raise ValueError(f"{NAME}: the font lacks {', '.join(map(repr, lacking))}")
    if not text:
        raise ValueError(f"{NAME}: text is empty")
    margin, width, height = v.f("margin_mm"), v.f("width_mm"), v.f("height_mm")
    avail_w, avail_h = width - 2 * margin, height - 2 * margin
    if avail_w <= 0 or avail_h <= 0:
        raise ValueError(f"{NAME}: margins of {margin:g} mm leave no room on the plate")
    low, high = v.f("min_char_height_mm"), v.f("max_char_height_mm")
    if low > high:
        raise ValueError(f"{NAME}: min_char_height_mm {low:g} is above max_char_height_mm")
    return text, avail_w, avail_h


def _refuse_below_minimum(v: Values, text: str, scale: float) -> None:
    """Raise ValueError when the capital height at ``scale`` is below the minimum."""
    low = v.f("min_char_height_mm")
    if CAP_HEIGHT * scale < low:
        raise ValueError(
            f"{NAME}: {text!r} does not fit a {v.f('width_mm'):g} x {v.f('height_mm'):g} mm "
            f"plate with {v.f('margin_mm'):g} mm margins at the minimum character height "
            f"{low:g} mm (it fits at {CAP_HEIGHT * scale:.2f} mm)"
        )


def layout(v: Values) -> tuple[float, int, list[Polyline]]:
    """Fit the text to the plate.

    Returns:
        Capital height in mm, number of lines, and the strokes in plate mm.

    Raises:
        ValueError: Empty text, characters the font lacks, or no fit at the minimum size.
    """
    text, avail_w, avail_h = _inputs(v)
    width, height, high = v.f("width_mm"), v.f("height_mm"), v.f("max_char_height_mm")
    best: tuple[float, list[str], list[Polyline]] | None = None
    for lines in _layouts(text, v.b("two_lines")):
        scale, strokes = _fit(lines, avail_w, avail_h)
        scale = min(scale, high / CAP_HEIGHT)
        if best is None or scale > best[0] * (1 + 1e-9):
            best = (scale, lines, strokes)
    assert best is not None
    scale, lines, strokes = best
    _refuse_below_minimum(v, text, scale)
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    dx = width / 2 - (min(xs) + max(xs)) / 2 * scale
    dy = height / 2 - (min(ys) + max(ys)) / 2 * scale
    placed = [[(dx + x * scale, dy + y * scale) for x, y in stroke] for stroke in strokes]
    return CAP_HEIGHT * scale, len(lines), placed


def engrave_text(params: Mapping[str, object]) -> str:
    """Make the G-code that engraves ``text`` centred on a plate.

    Args:
        params: Parameters as declared in :data:`SPEC` (missing ones take defaults).

    Returns:
        The complete program, lines ending in ``\\n``.

    Raises:
        ValueError: Bad parameters, or text that does not fit (see :func:`layout`).
    """
    v = read_params(NAME, SPEC, params)
    char_height, line_count, strokes = layout(v)
    laser = v.s("mode") == "laser"
    feed = num(v.f("feed_mm_min"), 1)
    out = header(NAME, v, [f"capital height {char_height:.3f} mm on {line_count} line(s)"])
    out += ["G21", "G90", "G17", "G94", "M5"]
    safe, depth = num(v.f("safe_z_mm")), num(-v.f("depth_mm"))
    if laser:
        power = num(v.i("laser_max_s") * v.f("power_percent") / 100, 1)
    else:
        out += [f"G0 Z{safe}", f"M3 S{v.i('spindle_rpm')}", "G4 P2"]
    for stroke in strokes:
        xy = [f"X{num(x)} Y{num(y)}" for x, y in stroke]
        path = [p for i, p in enumerate(xy) if i == 0 or p != xy[i - 1]]
        out.append(f"G0 {path[0]}")
        if laser:
            out.append(f"M4 S{power}")
        else:
            out.append(f"G1 Z{depth} F{num(v.f('plunge_feed_mm_min'), 1)}")
        out += [f"G1 {p} F{feed}" if i == 0 else f"G1 {p}" for i, p in enumerate(path[1:])]
        out.append("M5" if laser else f"G0 Z{safe}")
    if not laser:
        out.append("M5")
    out.append("M2")
    return "\n".join(out) + "\n"


def _ink(text: str, widths: list[int], start: int, stop: int) -> Ink:
    """Ink extent of the line ``text[start:stop]`` (inked at both ends), centred as drawn.

    Every glyph's ink lies within its cell (``0 <= x <= advance``), so the line's ink
    starts in its first glyph and ends in its last; y is the extent of its characters.
    """
    x_lo = _INK_X_LO[text[start]]
    x_hi = widths[stop - 1] - widths[start] + _INK_X_HI[text[stop - 1]]
    mid = (x_lo + x_hi) / 2
    chars = set(text[start:stop])
    return (
        x_lo - mid,
        x_hi - mid,
        min(map(_INK_Y_LO.__getitem__, chars)),
        max(map(_INK_Y_HI.__getitem__, chars)),
    )


@lru_cache(maxsize=4096)
def _layout_inks(text: str, two_lines: bool) -> tuple[Ink, ...]:
    """The ink of each layout :func:`_layouts` tries, in its order, without making strokes.

    ``text`` is stripped and in the font (as :func:`_inputs` returns it).
    """
    widths = _widths(text)
    inks = [_ink(text, widths, 0, len(text))]
    best = _split(text, widths) if two_lines else None
    if best is not None:
        a = _ink(text, widths, 0, len(text[:best].rstrip()))
        b = _ink(text, widths, len(text) - len(text[best + 1 :].lstrip()), len(text))
        inks.append((min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2] - LINE_PITCH),
                     max(a[3], b[3] - LINE_PITCH)))  # fmt: skip
    return tuple(inks)


def bounds(params: Mapping[str, object]) -> Box:
    """The extent of all the program's motion, from the parameters alone (no G-code made).

    The placed text's ink box (burning and travel alike stay inside it), found from
    per-glyph extents with the generator's own choice of one line or two; Z from the
    engraving depth to the safe height on a CNC, none on a laser. Exact, as written
    (:data:`BOUNDS_SLACK_MM` is 0).

    Raises:
        ValueError: Whatever :func:`engrave_text` refuses, with the same message.
    """
    v = read_params(NAME, SPEC, params)
    text, avail_w, avail_h = _inputs(v)
    high = v.f("max_char_height_mm")
    best: tuple[float, Ink] | None = None
    for ink in _layout_inks(text, v.b("two_lines")):  # as layout() and _fit() choose
        ink_w, ink_h = ink[1] - ink[0], ink[3] - ink[2]
        scale = min(avail_w / ink_w if ink_w else math.inf, avail_h / ink_h if ink_h else math.inf)
        scale = min(scale, high / CAP_HEIGHT)
        if best is None or scale > best[0] * (1 + 1e-9):
            best = (scale, ink)
    assert best is not None
    scale, (x_lo, x_hi, y_lo, y_hi) = best
    _refuse_below_minimum(v, text, scale)
    dx = v.f("width_mm") / 2 - (x_lo + x_hi) / 2 * scale
    dy = v.f("height_mm") / 2 - (y_lo + y_hi) / 2 * scale
    z = None
    if v.s("mode") == "cnc":
        z = (float(num(-v.f("depth_mm"))), float(num(v.f("safe_z_mm"))))
    return Box(
        (float(num(dx + x_lo * scale)), float(num(dx + x_hi * scale))),
        (float(num(dy + y_lo * scale)), float(num(dy + y_hi * scale))),
        z,
    )


def words(params: Mapping[str, object]) -> frozenset[str]:
    """The G/M words the program contains: ``M4`` on a laser, ``M3`` and a dwell on a CNC.

    Raises:
        ValueError: Parameters the declaration refuses (names, types, ranges); text that
            cannot be engraved is :func:`bounds`' to refuse.
    """
    return _WORDS[read_params(NAME, SPEC, params).s("mode")]
