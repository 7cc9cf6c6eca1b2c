"""Modal state of a G-code machine: turns parsed lines into moves with their geometry.

Theory of operation. :class:`Machine` keeps the state a controller keeps between lines:
the motion mode (``G0``/``G1``/``G2``/``G3``, cancelled by ``G80``), absolute or relative
distances (``G90``/``G91``, which Marlin applies to the extruder too, overridden for E
alone by ``M82``/``M83``), units (``G20`` inch, ``G21`` mm; everything is reported in mm),
the feed rate, the spindle or laser (``M3``/``M4`` with ``S``, off by ``M5`` or ``S0``) and
the position. Within one line, settings apply before the motion (as in RS274/NGC).
``G92`` sets the position of the axes it names, ``G28`` homes the axes it names (all if
none) to 0, which is where our machines' home switches are.

The position starts unknown on every axis and becomes known when a move or ``G92``/``G28``
sets it; a relative move on an unknown axis leaves it unknown (and is reported). Geometry
uses only what is known: a move's length counts the axes known at both ends.

Arcs (``G2`` clockwise, ``G3`` counter-clockwise, XY plane only) take their centre from
``I``/``J`` (offsets from the start) or ``R`` (negative for more than half a turn). Their
length is exact (helical when Z changes) and so is their extent: the ends plus every
quadrant point (0, 90, 180, 270 degrees) the arc passes. An ``I``/``J`` arc whose end does
not lie on its circle (beyond 0.005 mm and 0.1 %, GRBL's tolerance) is reported.

A move *works* (cuts, burns or extrudes) when it extrudes (E grows while the head moves),
or when it is a feed move (not ``G0``) while the spindle or laser is on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from routing.programs.syntax import Line, Word

AXES = "XYZ"
INCH = 25.4
Position = tuple[float | None, float | None, float | None]
_MOTIONS = frozenset({"G0", "G1", "G2", "G3"})


@dataclass(frozen=True, slots=True)
class Move:
    """One move of the tool, in mm.

    Attributes:
        line: Line number (from 1) in the program.
        motion: ``"G0"``, ``"G1"``, ``"G2"`` or ``"G3"``.
        start: Position before the move (``None`` on an axis not known yet).
        end: Position after the move.
        length_mm: Path length (an arc's along its curve).
        e_delta_mm: Filament pushed (negative: retracted).
        e_mm: Extruder position after the move, as the machine counts it.
        e_absolute: Whether E was absolute for this move.
        work: Whether the move cuts, burns or extrudes (see the module docstring).
        extremes: Points of an arc that bound it besides its ends.
        feed_mm_min: Feed rate in force (``None`` before any ``F``).
    """

    line: int
    motion: str
    start: Position
    end: Position
    length_mm: float
    e_delta_mm: float
    e_mm: float
    e_absolute: bool
    work: bool
    extremes: tuple[Position, ...] = ()
    feed_mm_min: float | None = None

    def points(self) -> Iterable[Position]:
        """The positions that bound the move: its ends and arc extremes."""
        yield self.start
        yield self.end
        yield from self.extremes


class Machine:
    """The modal state of one controller; feed it lines with :meth:`execute`."""

    def __init__(self) -> None:
        self.position: list[float | None] = [None, None, None]
        self.e = 0.0
        self.absolute = True
        self.e_absolute = True
        self.inch = False
        self.motion: str | None = "G0"
        self.plane = "G17"
        self.feed: float | None = None
        self.spindle: str | None = None
        self.power: float | None = None
        self._warned_unknown: set[str] = set()

    def __repr__(self) -> str:
        return f"<Machine at {self.position} E{self.e:g} {self.motion}>"

    @property
    def tool_on(self) -> bool:
        """Whether the spindle or laser is on (``M3``/``M4``, and ``S`` is not 0)."""
        return self.spindle is not None and self.power != 0

    def execute(self, line: Line) -> tuple[Move | None, list[str]]:
        """Apply one line; return the move it made (if any) and problems found."""
        problems: list[str] = []
        args: dict[str, Word] = {}
        for word in line.words:
            if word.letter in "GM":
                continue
            if word.letter in args:
                problems.append(f"line {line.number}: {word.letter} is given twice")
            args[word.letter] = word
        commands = line.commands
        scale = INCH if "G20" in commands or ("G21" not in commands and self.inch) else 1.0
        for command in commands:
            self._set_mode(command)
        if "S" in args and args["S"].value is not None:
            self.power = args["S"].value
        if "F" in args and args["F"].value is not None:
            self.feed = args["F"].value * scale
        if "G92" in commands:
            self._set_position(line, args, scale, problems)
            return None, problems
        if "G28" in commands:
            named = [i for i, axis in enumerate(AXES) if axis in args] or [0, 1, 2]
            for i in named:
                self.position[i] = 0.0
            return None, problems
        if "G53" in commands:  # machine coordinates: where that is in ours is not known
            for i, axis in enumerate(AXES):
                if axis in args:
                    self.position[i] = None
            return None, problems
        if not any(k in args for k in "XYZEIJR") or {"G4", "G10"} & set(commands):
            return None, problems
        if self.motion is None:
            problems.append(f"line {line.number}: axis words without a motion mode (after G80)")
            return None, problems
        return self._move(line, args, scale, problems), problems

    def _set_mode(self, command: str) -> None:
        if command in _MOTIONS:
            self.motion = command
        elif command == "G80":
            self.motion = None
        elif command in ("G20", "G21"):
            self.inch = command == "G20"
        elif command in ("G90", "G91"):
            self.absolute = self.e_absolute = command == "G90"
        elif command in ("M82", "M83"):
            self.e_absolute = command == "M82"
        elif command in ("G17", "G18", "G19"):
            self.plane = command
        elif command in ("M3", "M4"):
            self.spindle = command
        elif command == "M5":
            self.spindle = None

    def _value(self, line: Line, word: Word, scale: float, problems: list[str]) -> float | None:
        if word.value is None:
            problems.append(f"line {line.number}: {word.letter} has no value")
            return None
        return word.value * scale

    def _set_position(
        self, line: Line, args: dict[str, Word], scale: float, problems: list[str]
    ) -> None:
        for i, axis in enumerate(AXES):
            if axis in args:
                self.position[i] = self._value(line, args[axis], scale, problems)
        if "E" in args:
            value = self._value(line, args["E"], scale, problems)
            self.e = self.e if value is None else value

    def _target(
        self, line: Line, args: dict[str, Word], scale: float, problems: list[str]
    ) -> list[float | None]:
        target = list(self.position)
        for i, axis in enumerate(AXES):
            if axis not in args:
                continue
            value = self._value(line, args[axis], scale, problems)
            current = self.position[i]
            if value is None:
                continue
            if self.absolute:
                target[i] = value
            elif current is None:
                target[i] = None
                if axis not in self._warned_unknown:
                    self._warned_unknown.add(axis)
                    problems.append(
                        f"line {line.number}: relative move on {axis} before its position is known"
                    )
            else:
                target[i] = current + value
        return target

    def _move(self, line: Line, args: dict[str, Word], scale: float, problems: list[str]) -> Move:
        motion = self.motion or "G0"
        start: Position = (self.position[0], self.position[1], self.position[2])
        t = self._target(line, args, scale, problems)
        end: Position = (t[0], t[1], t[2])
        e_delta = 0.0
        if "E" in args:
            value = self._value(line, args["E"], scale, problems)
            if value is not None:
                e_delta = value - self.e if self.e_absolute else value
                self.e += e_delta
        length = math.sqrt(
            sum(
                (b - a) ** 2
                for a, b in zip(start, end, strict=True)
                if a is not None and b is not None
            )
        )
        extremes: tuple[Position, ...] = ()
        if motion in ("G2", "G3"):
            arc = self._arc(line, args, scale, start, end, motion == "G2", problems)
            if arc is not None:
                length, extremes = arc
        self.position = list(end)
        work = length > 0 and (e_delta > 0 or (motion != "G0" and self.tool_on))
        return Move(
            line.number, motion, start, end, length, e_delta, self.e, self.e_absolute, work,
            extremes, self.feed,
        )  # fmt: skip

    def _arc(
        self,
        line: Line,
        args: dict[str, Word],
        scale: float,
        start: Position,
        end: Position,
        clockwise: bool,
        problems: list[str],
    ) -> tuple[float, tuple[Position, ...]] | None:
        where = f"line {line.number}"
        if self.plane != "G17":
            problems.append(f"{where}: arcs are read in the XY plane (G17) only")
            return None
        sx, sy, ex, ey = start[0], start[1], end[0], end[1]
        if sx is None or sy is None or ex is None or ey is None:
            problems.append(f"{where}: arc from a position that is not known")
            return None
        if "R" in args:
            radius = self._value(line, args["R"], scale, problems)
            if radius is None:
                return None
            centre = _centre_from_radius((sx, sy), (ex, ey), radius, clockwise)
            if centre is None:
                problems.append(f"{where}: arc radius {abs(radius):.3f} mm is too small")
                return None
        else:
            i_word, j_word = args.get("I"), args.get("J")
            i = self._value(line, i_word, scale, problems) if i_word else 0.0
            j = self._value(line, j_word, scale, problems) if j_word else 0.0
            if i is None or j is None or (i_word is None and j_word is None):
                problems.append(f"{where}: arc needs I/J or R")
                return None
            centre = (sx + i, sy + j)
        cx, cy = centre
        r0, r1 = math.hypot(sx - cx, sy - cy), math.hypot(ex - cx, ey - cy)
        if abs(r0 - r1) > 0.005 and abs(r0 - r1) > 0.001 * r0:
            problems.append(f"{where}: arc end is off its circle ({r0:.3f} vs {r1:.3f} mm)")
        a0, a1 = math.atan2(sy - cy, sx - cx), math.atan2(ey - cy, ex - cx)
        sweep = ((a0 - a1) if clockwise else (a1 - a0)) % math.tau
        if sweep < 1e-9:
            sweep = math.tau
        z0, z1 = start[2], end[2]
        dz = 0.0 if z0 is None or z1 is None else z1 - z0
        extremes: list[Position] = []
        for quarter in range(4):
            angle = quarter * math.pi / 2
            offset = ((a0 - angle) if clockwise else (angle - a0)) % math.tau
            if offset <= sweep:
                z = None if z0 is None or z1 is None else z0 + dz * offset / sweep
                extremes.append((cx + r0 * math.cos(angle), cy + r0 * math.sin(angle), z))
        return math.hypot(r0 * sweep, dz), tuple(extremes)


def _centre_from_radius(
    start: tuple[float, float], end: tuple[float, float], radius: float, clockwise: bool
) -> tuple[float, float] | None:
    """Centre of an ``R`` arc: right of the chord for a short clockwise arc."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    chord = math.hypot(dx, dy)
    if chord == 0 or abs(radius) < chord / 2 - 1e-9:
        return None
    h = math.sqrt(max(radius * radius - chord * chord / 4, 0.0))
    side = 1.0 if clockwise == (radius > 0) else -1.0
    mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
    return mx + side * h * dy / chord, my - side * h * dx / chord
