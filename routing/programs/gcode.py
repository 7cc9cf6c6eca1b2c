"""Reading and checking G-code: what our generators make and what users send to Marlin/GRBL.

Theory of operation. A program is read line by line (:mod:`routing.programs.syntax`), each
line applied to the modal state of a :class:`~routing.programs.motion.Machine`, which turns
it into moves. :func:`analyse` sums them up: the extent of motion (working moves and
travel separately), path lengths, net extrusion and a feed-rate time estimate.
:func:`check` adds the two questions asked before a program is released to a cell: does
every move stay inside the cell's work :class:`Envelope`, and is every G/M word one the
cell's machine class accepts? The answers are sentences for a person, each naming the line.
:func:`check_bounds` asks the same of a program known only by the box of its motion and
its words (computed from a generator's parameters, before any G-code is made), naming "the
program" instead of a line.

Envelope convention (one for every machine class): X and Y from the front-left corner of
the bed, laser plate or stock, +X right, +Y to the back. Z = 0 is the bed surface (printer),
the plate surface in focus (laser), or the *top of the stock* (CNC). Printers and lasers
work at Z >= 0; a CNC cuts below zero, down to ``z_min_mm = -(deepest cut)``, and travels
above, up to ``z_mm`` (its highest clearance). :meth:`Envelope.cnc` builds that shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from routing.programs.motion import AXES, Machine, Move, Position
from routing.programs.syntax import GcodeSyntaxError, Line, parse_line

__all__ = [
    "GRBL_WORDS",
    "MARLIN_WORDS",
    "WORDS_BY_MACHINE",
    "Analysis",
    "Box",
    "Envelope",
    "GcodeSyntaxError",
    "Line",
    "Move",
    "analyse",
    "check",
    "check_bounds",
    "moves",
    "parse_line",
]

# fmt: off
MARLIN_WORDS = frozenset({
    "G0", "G1", "G2", "G3", "G4", "G20", "G21", "G28", "G29", "G90", "G91", "G92",
    "M17", "M18", "M82", "M83", "M84", "M104", "M105", "M106", "M107", "M109", "M114",
    "M117", "M140", "M190", "M220", "M221", "M400",
})
# fmt: on
"""Words a Marlin printer cell accepts from us: motion, temperatures, fan, steppers."""
# fmt: off
GRBL_WORDS = frozenset({
    "G0", "G1", "G2", "G3", "G4", "G17", "G20", "G21", "G28", "G30", "G53", "G54", "G55",
    "G56", "G57", "G58", "G59", "G80", "G90", "G91", "G91.1", "G92", "G93", "G94",
    "M0", "M1", "M2", "M3", "M4", "M5", "M7", "M8", "M9", "M30",
})
# fmt: on
"""Words GRBL 1.1 supports (CNC routers and, in laser mode, lasers)."""
WORDS_BY_MACHINE: dict[str, frozenset[str]] = {
    "printer": MARLIN_WORDS,
    "cnc": GRBL_WORDS,
    "laser": GRBL_WORDS,
}
"""Allowed words per machine class (the class of a generator's output: see ``machine_class``)."""

_TOLERANCE_MM = 1e-6


@dataclass(frozen=True, slots=True)
class Envelope:
    """The volume a cell's tool may reach, in mm (see the module docstring for axes).

    Attributes:
        x_mm: Largest X.
        y_mm: Largest Y.
        z_mm: Largest Z.
        x_min_mm: Smallest X.
        y_min_mm: Smallest Y.
        z_min_mm: Smallest Z (negative on a CNC: the deepest cut below the stock top).
    """

    x_mm: float
    y_mm: float
    z_mm: float
    x_min_mm: float = 0.0
    y_min_mm: float = 0.0
    z_min_mm: float = 0.0

    def __post_init__(self) -> None:
        for axis in AXES:
            low, high = self.limits(axis)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"envelope {axis} limits {low:g}..{high:g} are not a range")

    @classmethod
    def cnc(cls, x_mm: float, y_mm: float, depth_mm: float, clearance_mm: float) -> Envelope:
        """A CNC's envelope: Z from ``-depth_mm`` (below the stock top) to ``clearance_mm``."""
        return cls(x_mm, y_mm, clearance_mm, z_min_mm=-depth_mm)

    def limits(self, axis: str) -> tuple[float, float]:
        """Return ``(min, max)`` of ``axis`` (``"X"``, ``"Y"`` or ``"Z"``)."""
        index = AXES.index(axis)
        lows = (self.x_min_mm, self.y_min_mm, self.z_min_mm)
        highs = (self.x_mm, self.y_mm, self.z_mm)
        return lows[index], highs[index]


@dataclass(frozen=True, slots=True)
class Box:
    """Extent of motion per axis, ``(min, max)`` in mm, ``None`` where nothing was seen."""

    x: tuple[float, float] | None = None
    y: tuple[float, float] | None = None
    z: tuple[float, float] | None = None

    def include(self, point: Position) -> Box:
        """Return this box grown to hold the known coordinates of ``point``."""
        ranges = [self.x, self.y, self.z]
        for i, value in enumerate(point):
            if value is None:
                continue
            old = ranges[i]
            ranges[i] = (value, value) if old is None else (min(old[0], value), max(old[1], value))
        return Box(ranges[0], ranges[1], ranges[2])


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a program does, in mm.

    Attributes:
        lines: Lines in the program.
        moves: Moves made (including zero-length ones such as a retraction).
        box: Extent of all motion.
        work_box: Extent of working moves (cutting, burning, extruding).
        travel_box: Extent of the other moves.
        work_mm: Path length of working moves.
        travel_mm: Path length of the other moves.
        extruded_mm: Net filament pushed (retractions subtracted).
        feed_time_s: Sum of length / feed over feed moves (no acceleration; ``G0`` excluded).
        commands: Every G/M word used, mapped to the first line that uses it.
        problems: Lines that cannot be read or executed, as sentences.
    """

    lines: int
    moves: int
    box: Box
    work_box: Box
    travel_box: Box
    work_mm: float
    travel_mm: float
    extruded_mm: float
    feed_time_s: float
    commands: dict[str, int]
    problems: tuple[str, ...]


def _lines(program: str, problems: list[str]) -> Iterator[Line]:
    for number, text in enumerate(program.splitlines(), start=1):
        try:
            yield parse_line(text, number)
        except GcodeSyntaxError as exc:
            problems.append(f"line {number}: cannot read {text.strip()[:60]!r}: {exc}")


def _run(program: str) -> tuple[list[Move], list[str], dict[str, list[int]]]:
    problems: list[str] = []
    machine = Machine()
    result: list[Move] = []
    uses: dict[str, list[int]] = {}
    for line in _lines(program, problems):
        for command in line.commands + ([line.system] if line.system else []):
            uses.setdefault(command, []).append(line.number)
        move, found = machine.execute(line)
        problems += found
        if move is not None:
            result.append(move)
    return result, problems, uses


def moves(program: str) -> list[Move]:
    """Return the moves of ``program`` in order (lines that cannot be read are skipped)."""
    return _run(program)[0]


def analyse(program: str) -> Analysis:
    """Read ``program`` and sum up its motion.

    Args:
        program: G-code text, lines separated by ``\\n`` (or ``\\r\\n``).

    Returns:
        Extents, lengths, extrusion and problems; never raises on bad G-code.
    """
    found, problems, uses = _run(program)
    box = work_box = travel_box = Box()
    work_mm = travel_mm = extruded = time_min = 0.0
    for move in found:
        extruded += move.e_delta_mm
        if move.length_mm == 0:
            continue
        if move.motion != "G0" and move.feed_mm_min:
            time_min += move.length_mm / move.feed_mm_min
        for point in move.points():
            box = box.include(point)
            if move.work:
                work_box = work_box.include(point)
            else:
                travel_box = travel_box.include(point)
        if move.work:
            work_mm += move.length_mm
        else:
            travel_mm += move.length_mm
    return Analysis(
        lines=len(program.splitlines()),
        moves=len(found),
        box=box,
        work_box=work_box,
        travel_box=travel_box,
        work_mm=work_mm,
        travel_mm=travel_mm,
        extruded_mm=extruded,
        feed_time_s=time_min * 60,
        commands={command: lines[0] for command, lines in uses.items()},
        problems=tuple(problems),
    )


def _more(count: int) -> str:
    return f" ({count} more line{'s' if count > 1 else ''} too)" if count else ""


def _word_problem(where: str, command: str, more: int = 0) -> str:
    return f"{where}: {command} is not allowed on this machine{_more(more)}"


def _beyond(value: float, low: float, high: float) -> int:
    """-1 below ``low``, 1 above ``high``, 0 within (both with the reader's tolerance)."""
    return -1 if value < low - _TOLERANCE_MM else 1 if value > high + _TOLERANCE_MM else 0


def _envelope_problem(
    where: str, axis: str, value: float, side: int, envelope: Envelope, more: int = 0
) -> str:
    low, high = envelope.limits(axis)
    what = f"below the envelope's minimum {low:.3f}" if side < 0 else (
        f"beyond the envelope's maximum {high:.3f}"
    )  # fmt: skip
    return f"{where}: {axis} {value:.3f} mm is {what} mm{_more(more)}"


def check(program: str, envelope: Envelope, allowed_words: frozenset[str]) -> list[str]:
    """List what is wrong with running ``program`` on a cell.

    Args:
        program: G-code text.
        envelope: The cell's work envelope.
        allowed_words: G/M words (and GRBL ``$`` commands) the cell accepts, as
            normalised codes (``"G1"``, ``"M104"``); see :data:`WORDS_BY_MACHINE`.

    Returns:
        One sentence per problem, each naming a line: unreadable lines, moves that cannot
        be followed, words not allowed (once per word, with the first line and a count),
        and moves outside the envelope (once per axis and side: the axis, the value, the
        limit, the first line, and how many more lines go beyond it). Empty when fine.
    """
    found, problems, uses = _run(program)
    for command, lines in sorted(uses.items(), key=lambda item: item[1][0]):
        if command not in allowed_words:
            problems.append(_word_problem(f"line {lines[0]}", command, len(lines) - 1))
    beyond: dict[tuple[int, int], tuple[int, float, list[int]]] = {}
    for move in found:
        for point in (move.end, *move.extremes):  # a start is the previous move's end
            for axis, value in enumerate(point):
                if value is None:
                    continue
                side = _beyond(value, *envelope.limits(AXES[axis]))
                if side == 0:
                    continue
                first = beyond.setdefault((axis, side), (move.line, value, []))
                if move.line != first[0] and move.line not in first[2][-1:]:
                    first[2].append(move.line)
    for (axis, side), (line, value, more) in sorted(beyond.items(), key=lambda i: i[1][0]):
        problems.append(
            _envelope_problem(f"line {line}", AXES[axis], value, side, envelope, len(more))
        )
    return problems


def _word_order(word: str) -> tuple[str, float, str]:
    try:
        return word[:1], float(word[1:]), ""
    except ValueError:
        return word[:1], math.inf, word


def check_bounds(
    box: Box,
    words: frozenset[str],
    envelope: Envelope,
    allowed_words: frozenset[str],
    where: str = "the program",
) -> list[str]:
    """:func:`check` for a program known only by its extent and its words.

    Args:
        box: Extent of all the program's motion (e.g. ``routing.programs.bounds``).
        words: G/M words the program may contain (e.g. ``routing.programs.words``).
        envelope: The cell's work envelope.
        allowed_words: G/M words the cell accepts.
        where: What the sentences name instead of a line.

    Returns:
        One sentence per word not allowed (in G/M number order), then one per axis and
        side where ``box`` leaves the envelope (beyond the reader's 1e-6 mm tolerance),
        worded as :func:`check` words them with ``where`` for the line. Empty when fine.
    """
    problems = [
        _word_problem(where, word)
        for word in sorted(words - allowed_words, key=_word_order)
    ]  # fmt: skip
    for axis, extent in zip(AXES, (box.x, box.y, box.z), strict=True):
        if extent is None:
            continue
        low, high = envelope.limits(axis)
        for side, value in ((-1, extent[0]), (1, extent[1])):
            if _beyond(value, low, high) == side:
                problems.append(_envelope_problem(where, axis, value, side, envelope))
    return problems
