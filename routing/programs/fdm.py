"""A 3D-printed plate or open box from our own layer generator (Marlin).

Theory of operation. The part is an axis-aligned block ``width_mm`` x ``depth_mm`` x
``height_mm``, centred on the bed (envelope convention of :mod:`routing.programs.gcode`:
bed front-left corner X0 Y0, bed surface Z0), sliced into layers of ``layer_height_mm``
(the height is rounded to whole layers). The line width is 1.125 x the nozzle.

- ``plate``: every layer has ``perimeters`` loops, then rectilinear infill inside them:
  solid (100 %) on the first and last ``solid_layers`` layers, ``infill_percent`` between.
- ``box`` (open top): the floor (``floor_mm``) is solid like a plate's bottom; above it the
  walls are concentric loops only, as many as make ``wall_mm``.

Loops are printed inner to outer, counter-clockwise from their front-left corner. Infill
lines run along X on even layers and along Y on odd ones, spaced ``line width / density``,
in a serpentine joined by extruded connectors along the infill's edge (no travel, no
retraction inside infill). Other travels longer than 2 mm retract first.

Extrusion is absolute (``M82``) and reset with ``G92 E0`` at every layer, so numbers stay
small and exact; within a layer E only grows, except a retraction, which is undone before
the next extrusion. Each extruding move pushes ``line width x layer height x length /
filament cross-section`` mm of filament (a rectangle-section bead).

Start: bed and hotend set (``M140``/``M104``), home (``G28``), wait for both
(``M190``/``M109``), purge line along the bed's front edge. Fan (``M106``) from the second
layer on. End: retract, lift 10 mm, park at the back-left, heaters and fan off, motors off
(``M84``). Parts whose program would pass :data:`MAX_MOVES` moves are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from routing.programs.gcode import Box
from routing.programs.params import Param, Values, header, num, read_params

NAME = "fdm_part"
MAX_MOVES = 200_000
"""Largest program we make (about 6 MB); beyond, a part needs a real slicer."""
RETRACT_MIN_TRAVEL_MM = 2.0
BOUNDS_SLACK_MM = 0.0
"""How much larger than the program's real motion :func:`bounds` may be, per side, in mm."""
MATERIALS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "PLA": ((180, 235), (0, 70)),
    "PETG": ((220, 260), (50, 100)),
    "ABS": ((230, 270), (80, 115)),
}
"""Hotend and bed temperature windows (deg C) per material; outside them a print fails."""

# fmt: off
_WORDS = frozenset({
    "G0", "G1", "G21", "G28", "G90", "G92", "M82", "M84", "M104", "M107", "M109", "M140",
})
# fmt: on
"""Words of every program; ``M190`` (bed wait) and ``M106`` (fan) are :func:`words`' to add."""

SPEC: dict[str, Param] = {
    "shape": Param(str, "plate", choices=("plate", "box"), help="solid plate or open box"),
    "width_mm": Param(float, 100.0, 5.0, 500.0, help="part size in X"),
    "depth_mm": Param(float, 50.0, 5.0, 500.0, help="part size in Y"),
    "height_mm": Param(float, 5.0, 0.05, 500.0, help="part size in Z"),
    "wall_mm": Param(float, 1.6, 0.1, 50.0, help="box wall thickness"),
    "floor_mm": Param(float, 1.2, 0.05, 50.0, help="box floor thickness"),
    "layer_height_mm": Param(float, 0.2, 0.05, 1.0, help="layer height"),
    "nozzle_mm": Param(float, 0.4, 0.1, 2.0, help="nozzle diameter"),
    "filament_mm": Param(float, 1.75, 1.0, 3.5, help="filament diameter"),
    "perimeters": Param(int, 2, 1, 20, help="loops around each plate layer"),
    "infill_percent": Param(float, 20.0, 0.0, 100.0, help="sparse infill density"),
    "solid_layers": Param(int, 3, 0, 100, help="solid layers at a plate's bottom and top"),
    "material": Param(str, "PLA", choices=tuple(MATERIALS), help="filament material"),
    "hotend_c": Param(int, 210, 150, 300, help="nozzle temperature"),
    "bed_c": Param(int, 60, 0, 120, help="bed temperature (0: unheated)"),
    "fan_percent": Param(int, 100, 0, 100, help="part fan from layer 2"),
    "feed_mm_min": Param(float, 2400.0, 60.0, 20000.0, help="print speed"),
    "first_layer_feed_mm_min": Param(float, 1200.0, 60.0, 20000.0, help="first layer speed"),
    "travel_feed_mm_min": Param(float, 9000.0, 60.0, 30000.0, help="travel speed"),
    "retract_mm": Param(float, 0.8, 0.0, 10.0, help="retraction length"),
    "retract_feed_mm_min": Param(float, 2100.0, 60.0, 10000.0, help="retraction speed"),
    "bed_x_mm": Param(float, 220.0, 50.0, 1000.0, help="bed size in X"),
    "bed_y_mm": Param(float, 220.0, 50.0, 1000.0, help="bed size in Y"),
    "max_z_mm": Param(float, 250.0, 10.0, 1000.0, help="printer height"),
}

Rect = tuple[float, float, float, float]


class _Writer:
    """Emits moves, tracking position, absolute E, retraction and the modal feed rate."""

    def __init__(self, v: Values, line_width: float, layer: float) -> None:
        filament_area = math.pi * (v.f("filament_mm") / 2) ** 2
        self.e_per_mm = line_width * layer / filament_area
        self.retract, self.retract_f = round(v.f("retract_mm"), 5), v.f("retract_feed_mm_min")
        self.travel_f = v.f("travel_feed_mm_min")
        self.out: list[str] = []
        self.e = self.f = self.x = self.y = self.extruded = 0.0
        self.retracted = False

    def _feed(self, f: float) -> str:
        if f == self.f:
            return ""
        self.f = f
        return f" F{num(f, 0)}"

    def set_retracted(self, retracted: bool) -> None:
        """Retract or unretract the filament, if it is not so already."""
        if self.retract and retracted != self.retracted:
            self.e = round(self.e + (-self.retract if retracted else self.retract), 5)
            self.out.append(f"G1 E{num(self.e, 5)}{self._feed(self.retract_f)}")
        self.retracted = retracted

    def travel(self, x: float, y: float) -> None:
        """Go to ``x, y`` without extruding (retracting first when it is far)."""
        x, y = float(num(x)), float(num(y))  # where the machine will really be
        dist = math.hypot(x - self.x, y - self.y)
        if dist > RETRACT_MIN_TRAVEL_MM:
            self.set_retracted(True)
        if dist > 1e-9:
            self.out.append(f"G0 X{num(x)} Y{num(y)}{self._feed(self.travel_f)}")
        self.x, self.y = x, y
        self.set_retracted(False)

    def extrude(self, x: float, y: float, f: float, per_mm: float | None = None) -> None:
        """Print a line to ``x, y`` at feed ``f``, extruding for the length really moved."""
        x, y = float(num(x)), float(num(y))
        length = math.hypot(x - self.x, y - self.y)
        if length < 1e-9:
            return
        delta = length * (self.e_per_mm if per_mm is None else per_mm)
        self.e = round(self.e + delta, 5)  # as written: retractions then undo exactly
        self.extruded += delta
        self.out.append(f"G1 X{num(x)} Y{num(y)} E{num(self.e, 5)}{self._feed(f)}")
        self.x, self.y = x, y


def _inset(outline: Rect, d: float) -> Rect:
    return (outline[0] + d, outline[1] + d, outline[2] - d, outline[3] - d)


def _loops(outline: Rect, count: int, lw: float) -> list[Rect]:
    """Centre lines of ``count`` loops inside ``outline``, outermost first."""
    return [_inset(outline, lw / 2 + i * lw) for i in range(count)]


def _line_count(span: float, lw: float, density: float) -> int:
    """How many infill lines of width ``lw`` at ``density`` fit across ``span``."""
    if density <= 0 or span < lw:
        return 0
    return int((span - lw) * density / lw + 1e-9) + 1


def _infill(region: Rect, lw: float, density: float, along_x: bool) -> list[tuple[float, ...]]:
    """Serpentine infill lines ``(xa, ya, xb, yb)`` filling ``region`` (its outer edges)."""
    x0, y0, x1, y1 = region if along_x else (region[1], region[0], region[3], region[2])
    count = _line_count(y1 - y0, lw, density) if x1 - x0 >= lw else 0
    if count == 0:
        return []
    spacing = lw / density if count > 1 else 0.0  # one line: centred, whatever the density
    first = y0 + lw / 2 + ((y1 - y0 - lw) - (count - 1) * spacing) / 2
    a, b = x0 + 0.35 * lw, x1 - 0.35 * lw  # 15 % overlap onto the perimeter
    lines: list[tuple[float, ...]] = []
    for k in range(count):
        y = first + k * spacing
        xa, xb = (a, b) if k % 2 == 0 else (b, a)
        lines.append((xa, y, xb, y) if along_x else (y, xa, y, xb))
    return lines


@dataclass(frozen=True, slots=True)
class _Layers:
    """How the part is sliced: every layer's loops, and its infill density (0..1).

    Layers ``i < solid_below`` and ``i >= solid_from`` are solid, the others ``sparse``.
    """

    count: int
    loops: int
    solid_below: int
    solid_from: int
    sparse: float

    def density(self, i: int) -> float:
        """Infill density of layer ``i`` (from 0)."""
        return 1.0 if i < self.solid_below or i >= self.solid_from else self.sparse


def _plan(v: Values, lw: float, layers: int) -> _Layers:
    """Loops and infill of every layer."""
    layer, sparse = v.f("layer_height_mm"), v.f("infill_percent") / 100
    if v.s("shape") == "box":
        walls = max(1, round(v.f("wall_mm") / lw))
        floor = max(1, round(v.f("floor_mm") / layer))
        if floor >= layers:
            raise ValueError(f"{NAME}: the floor is as thick as the box; use shape 'plate'")
        if 2 * walls * lw >= min(v.f("width_mm"), v.f("depth_mm")) - lw:
            raise ValueError(f"{NAME}: walls of {v.f('wall_mm'):g} mm leave no box inside")
        return _Layers(layers, walls, floor, layers, 0.0)
    loops, solid = v.i("perimeters"), v.i("solid_layers")
    if 2 * loops * lw > min(v.f("width_mm"), v.f("depth_mm")):
        raise ValueError(f"{NAME}: {loops} perimeters do not fit in the part")
    return _Layers(layers, loops, solid, layers - solid, sparse)


def _with_parity(low: int, high: int, parity: int) -> int:
    """How many ``i`` in ``range(low, high)`` (``low >= 0``) have ``i % 2 == parity``."""
    return (high - parity + 1) // 2 - (low - parity + 1) // 2 if high > low else 0


def _move_count(layers: _Layers, outline: Rect, lw: float) -> int:
    """Moves of all layers (loops, travels, infill lines), summed in closed form."""
    x_lo, y_lo, x_hi, y_hi = _inset(outline, layers.loops * lw)
    sparse_low, sparse_high = layers.solid_below, min(layers.solid_from, layers.count)
    moves = 0
    for parity, span in ((0, y_hi - y_lo), (1, x_hi - x_lo)):  # infill along X on even layers
        every = _with_parity(0, layers.count, parity)
        sparse = _with_parity(sparse_low, sparse_high, parity)
        per_layer = 4 * layers.loops + 4
        moves += (every - sparse) * (per_layer + 2 * _line_count(span, lw, 1.0))
        moves += sparse * (per_layer + 2 * _line_count(span, lw, layers.sparse))
    return moves


def _check(v: Values) -> None:
    (hot_lo, hot_hi), (bed_lo, bed_hi) = MATERIALS[v.s("material")]
    if not hot_lo <= v.i("hotend_c") <= hot_hi or not bed_lo <= v.i("bed_c") <= bed_hi:
        raise ValueError(
            f"{NAME}: {v.s('material')} prints at {hot_lo}-{hot_hi} C on a {bed_lo}-{bed_hi} C "
            f"bed (got {v.i('hotend_c')} C and {v.i('bed_c')} C)"
        )
    if v.f("layer_height_mm") > 0.8 * v.f("nozzle_mm"):
        raise ValueError(f"{NAME}: layer_height_mm is over 0.8 x nozzle_mm")
    if v.f("width_mm") > v.f("bed_x_mm") - 10 or v.f("depth_mm") > v.f("bed_y_mm") - 10:
        raise ValueError(f"{NAME}: the part does not fit the bed with its 5 mm border")


@dataclass(frozen=True, slots=True)
class _Job:
    """A part checked as printable: its parameters and the figures derived from them."""

    v: Values
    lw: float
    layer: float
    layers: _Layers
    top: float
    outline: Rect


def _read(params: Mapping[str, object]) -> _Job:
    """Check ``params`` as :func:`fdm_part` does (every refusal, same words); slice the part.

    Raises:
        ValueError: Whatever :func:`fdm_part` refuses.
    """
    v = read_params(NAME, SPEC, params)
    _check(v)
    lw, layer = round(1.125 * v.f("nozzle_mm"), 4), v.f("layer_height_mm")
    count = max(1, round(v.f("height_mm") / layer))
    top = count * layer
    if top + 10 > v.f("max_z_mm"):
        raise ValueError(f"{NAME}: the part is too tall for the printer (with a 10 mm lift)")
    layers = _plan(v, lw, count)
    x0, y0 = (v.f("bed_x_mm") - v.f("width_mm")) / 2, (v.f("bed_y_mm") - v.f("depth_mm")) / 2
    outline: Rect = (x0, y0, x0 + v.f("width_mm"), y0 + v.f("depth_mm"))
    moves = _move_count(layers, outline, lw)
    if moves > MAX_MOVES:
        raise ValueError(f"{NAME}: about {moves} moves is over {MAX_MOVES}; print it sliced")
    return _Job(v, lw, layer, layers, top, outline)


def fdm_part(params: Mapping[str, object]) -> str:
    """Make the Marlin G-code that prints a plate or open box.

    Args:
        params: Parameters as declared in :data:`SPEC` (missing ones take defaults).

    Returns:
        The complete program, lines ending in ``\\n``.

    Raises:
        ValueError: Bad parameters, temperatures outside the material's window, a part
            that does not fit the bed or the printer, or one too big for :data:`MAX_MOVES`.
    """
    job = _read(params)
    v, lw, layer, top, outline, plan = job.v, job.lw, job.layer, job.top, job.outline, job.layers
    layers = plan.count
    w = _Writer(v, lw, layer)
    hot, bed, travel = v.i("hotend_c"), v.i("bed_c"), num(v.f("travel_feed_mm_min"), 0)
    w.out = header(NAME, v, [f"{layers} layers, line width {lw:g} mm, top at Z{num(top)}"])
    w.out += [f"M140 S{bed}"] * (bed > 0) + [f"M104 S{hot}", "G21", "G90", "M82", "G28"]
    w.out += [f"M190 S{bed}"] * (bed > 0) + [f"M109 S{hot}", "M107", "G92 E0"]
    purge = min(100.0, v.f("bed_x_mm") - 20)
    w.out += [f"G0 Z5 F{travel}", "G0 X10 Y2", f"G0 Z{num(layer)}"]
    w.f, w.x, w.y = v.f("travel_feed_mm_min"), 10.0, 2.0
    w.extrude(10 + purge, 2, 1500, 2 * w.e_per_mm)
    w.extrude(10 + purge, 2 + lw, 1500, 2 * w.e_per_mm)
    w.extrude(10, 2 + lw, 1500, 2 * w.e_per_mm)
    for i in range(layers):
        loops, density = plan.loops, plan.density(i)
        feed = v.f("first_layer_feed_mm_min") if i == 0 else v.f("feed_mm_min")
        w.out.append(f"; layer {i + 1} of {layers}")
        w.set_retracted(True)
        w.out += [f"G0 Z{num((i + 1) * layer)}", "G92 E0"]
        w.e = 0.0
        if i == 1 and v.i("fan_percent"):
            w.out.append(f"M106 S{round(255 * v.i('fan_percent') / 100)}")
        for rx0, ry0, rx1, ry1 in reversed(_loops(outline, loops, lw)):
            w.travel(rx0, ry0)
            for x, y in ((rx1, ry0), (rx1, ry1), (rx0, ry1), (rx0, ry0)):
                w.extrude(x, y, feed)
        infill = _infill(_inset(outline, loops * lw), lw, density, i % 2 == 0)
        for n, (xa, ya, xb, yb) in enumerate(infill):
            if n:
                w.extrude(xa, ya, feed)
            else:
                w.travel(xa, ya)
            w.extrude(xb, yb, feed)
    w.set_retracted(True)
    w.out += [f"G0 Z{num(top + 10)} F{travel}", f"G0 X0 Y{math.floor(v.f('bed_y_mm'))}"]
    w.out += ["M104 S0", "M140 S0", "M107", "M84"]
    w.out.append(f"; filament used {w.extruded:.1f} mm")
    return "\n".join(w.out) + "\n"


def bounds(params: Mapping[str, object]) -> Box:
    """The extent of all the program's motion, from the parameters alone (no G-code made).

    Exact (:data:`BOUNDS_SLACK_MM` is 0): from home (X0 Y0 Z0, where ``G28`` puts the head)
    to the purge line's end or the outer loop's right side in X, to the back-left parking
    spot in Y, to the 10 mm lift above the top in Z; coordinates rounded as written.

    Raises:
        ValueError: Whatever :func:`fdm_part` refuses, with the same message.
    """
    job = _read(params)
    v, lw = job.v, job.lw
    outer = _inset(job.outline, lw / 2)  # the outermost loop (_loops' first)
    purge_end = 10 + min(100.0, v.f("bed_x_mm") - 20)
    return Box(
        (0.0, max(float(num(purge_end)), float(num(outer[2])))),
        (0.0, max(float(math.floor(v.f("bed_y_mm"))), float(num(outer[3])), float(num(2 + lw)))),
        (0.0, max(5.0, float(num(job.top + 10)))),
    )


def words(params: Mapping[str, object]) -> frozenset[str]:
    """The G/M words the program contains: ``M190`` on a heated bed, ``M106`` from layer 2.

    The bed wait only when ``bed_c`` is above 0, the fan only when ``fan_percent`` is and
    the part has a second layer.

    Raises:
        ValueError: Parameters the declaration refuses (names, types, ranges); a part that
            cannot be printed is :func:`bounds`' to refuse.
    """
    v = read_params(NAME, SPEC, params)
    found = _WORDS | {"M190"} if v.i("bed_c") > 0 else _WORDS
    if v.i("fan_percent") and round(v.f("height_mm") / v.f("layer_height_mm")) > 1:
        found |= {"M106"}
    return found
