"""The G-code side of the simulated GRBL: one line in, the actions it makes, or ``error:N``.

A subset of grbl 1.1's ``gc_execute_line``, close enough that a host meets the same
answers: words are a letter and a number (``error:1``/``error:2``), only GRBL's G and M
codes are known (``error:20``), one command per modal group (``error:21``), no repeated
word (``error:25``), a feed rate before the first feed move (``error:22``), value words a
command does not use are refused (``error:36``), ``G4`` needs ``P`` (``error:28``). Motion
is tracked in machine coordinates (work = machine - WCO, the WCO being the G54..G59
offset plus G92); G2/G3 arcs are taken as their chord (a simulator, not a CAM check).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

AXES = "XYZ"
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
_G_SUPPORTED = {
    0, 1, 2, 3, 4, 10, 17, 18, 19, 20, 21, 28, 28.1, 30, 30.1, 38.2, 38.3, 38.4, 38.5,
    40, 43.1, 49, 53, 54, 55, 56, 57, 58, 59, 61, 80, 90, 91, 91.1, 92, 92.1, 93, 94,
}  # fmt: skip
_G_GROUPS: dict[float, str] = {
    **dict.fromkeys((0, 1, 2, 3, 38.2, 38.3, 38.4, 38.5, 80), "motion"),
    **dict.fromkeys((17, 18, 19), "plane"),
    **dict.fromkeys((90, 91), "distance"),
    91.1: "arc",
    **dict.fromkeys((93, 94), "feed"),
    **dict.fromkeys((20, 21), "units"),
    40: "cutter",
    **dict.fromkeys((43.1, 49), "tlo"),
    **dict.fromkeys((54, 55, 56, 57, 58, 59), "wcs"),
    61: "control",
    **dict.fromkeys((4, 10, 28, 28.1, 30, 30.1, 53, 92, 92.1), "nonmodal"),
}
_M_GROUPS = {0: "stop", 1: "stop", 2: "stop", 30: "stop", 3: "spindle", 4: "spindle", 5: "spindle"}
_COOLANT = {7, 8, 9}
_VALUE_LETTERS = set("FIJKLNPRST")


class GcodeError(Exception):
    """GRBL refuses the line with ``error:<code>``; nothing of it was executed."""

    def __init__(self, code: int) -> None:
        super().__init__(f"error:{code}")
        self.code = code


@dataclass(frozen=True, slots=True)
class Move:
    """A straight move to ``target`` (machine coordinates) at ``feed`` mm/min (None: rapid)."""

    start: tuple[float, float, float]
    target: tuple[float, float, float]
    feed: float | None

    @property
    def length(self) -> float:
        return math.dist(self.start, self.target)


@dataclass(frozen=True, slots=True)
class Dwell:
    seconds: float


@dataclass(frozen=True, slots=True)
class Spindle:
    """M3/M4/M5 or a new S: GRBL waits for the moves before it (unless in laser mode)."""

    state: int
    speed: float


@dataclass(frozen=True, slots=True)
class Pause:
    """M0: wait for a cycle start after the moves before it."""


@dataclass(frozen=True, slots=True)
class ProgramEnd:
    """M2/M30: wait for the moves, stop spindle and coolant, ``[MSG:Pgm End]``."""


Action = Move | Dwell | Spindle | Pause | ProgramEnd


@dataclass
class Modal:
    """The parser state ``$G`` reports."""

    motion: float = 0
    plane: int = 17
    distance: int = 90
    feed_mode: int = 94
    units: int = 21
    wcs: int = 54
    spindle: int = 5
    coolant: set[int] = field(default_factory=set)
    feed: float = 0.0
    speed: float = 0.0
    tool: int = 0

    def describe(self) -> str:
        coolant = " ".join(f"M{c}" for c in sorted(self.coolant)) or "M9"
        motion = f"G{self.motion:g}"
        return (
            f"{motion} G{self.wcs} G{self.plane} G{self.units} G{self.distance} "
            f"G{self.feed_mode} M5 {coolant} T{self.tool} F{self.feed:g} S{self.speed:g}"
        ).replace(" M5 ", f" M{self.spindle} ")


class Interpreter:
    """Lines in, actions out; keeps the modal state and the planned position.

    Attributes:
        position: Where the last planned move ends (machine coordinates, mm).
        offsets: Work coordinate systems ``{54: (x, y, z), ...}`` (mm, machine).
        g92: The G92 offset.
    """

    def __init__(self) -> None:
        self.modal = Modal()
        self.position: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.offsets: dict[int, tuple[float, float, float]] = {
            w: (0.0, 0.0, 0.0) for w in range(54, 60)
        }
        self.g92: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.home_positions = {28: (0.0, 0.0, 0.0), 30: (0.0, 0.0, 0.0)}

    def reset(self) -> None:
        """GRBL re-initialises its parser on every reset (G92 and modes cleared)."""
        self.modal = Modal()
        self.g92 = (0.0, 0.0, 0.0)

    @property
    def wco(self) -> tuple[float, float, float]:
        w = self.offsets[self.modal.wcs]
        return (w[0] + self.g92[0], w[1] + self.g92[1], w[2] + self.g92[2])

    def execute(self, line: str) -> list[Action]:
        """Interpret one line (already upper case, no spaces or comments).

        Raises:
            GcodeError: GRBL's ``error:N`` for the line; the state is unchanged.
        """
        words = words_of(line)
        g_codes: list[float] = []
        m_codes: list[int] = []
        values: dict[str, float] = {}
        for letter, value in words:
            if letter == "G":
                if value not in _G_SUPPORTED:
                    raise GcodeError(20)
                if any(_G_GROUPS[value] == _G_GROUPS[g] for g in g_codes):
                    raise GcodeError(21)
                g_codes.append(value)
            elif letter == "M":
                if value != int(value):
                    raise GcodeError(20)
                code = int(value)
                if code not in _M_GROUPS and code not in _COOLANT:
                    raise GcodeError(20)
                group = _M_GROUPS.get(code, "coolant")
                if group != "coolant" and any(_M_GROUPS.get(m) == group for m in m_codes):
                    raise GcodeError(21)
                m_codes.append(code)
            elif letter in AXES or letter in _VALUE_LETTERS:
                if letter in values:
                    raise GcodeError(25)
                values[letter] = value
            else:
                raise GcodeError(20)
        return self._apply(g_codes, m_codes, values)

    def _apply(
        self, g_codes: list[float], m_codes: list[int], values: dict[str, float]
    ) -> list[Action]:
        modal = Modal(**{**self.modal.__dict__, "coolant": set(self.modal.coolant)})
        unit = 25.4 if modal.units == 20 else 1.0
        for g in g_codes:
            group = _G_GROUPS[g]
            if group == "units":
                modal.units = int(g)
                unit = 25.4 if g == 20 else 1.0
            elif group == "distance":
                modal.distance = int(g)
            elif group == "plane":
                modal.plane = int(g)
            elif group == "feed":
                modal.feed_mode = int(g)
            elif group == "wcs":
                modal.wcs = int(g)
            elif group == "motion":
                modal.motion = g
        used = {"N"}
        for letter in ("F", "S", "T"):
            if letter in values and values[letter] < 0:
                raise GcodeError(4)
        if "N" in values and not 0 <= values["N"] <= 9_999_999:
            raise GcodeError(27)
        if "F" in values:
            modal.feed = values["F"] * unit
            used.add("F")
        if "S" in values:
            modal.speed = values["S"]
            used.add("S")
        if "T" in values:
            modal.tool = int(values["T"])
            used.add("T")
        for m in m_codes:
            if m in (3, 4, 5):
                modal.spindle = m
            elif m == 9:
                modal.coolant.clear()
            elif m in (7, 8):
                modal.coolant.add(m)
        axes = {a: values[a] * unit for a in AXES if a in values}
        spindle_changed = modal.spindle != self.modal.spindle or (
            modal.spindle != 5 and modal.speed != self.modal.speed
        )
        nonmodal = [g for g in g_codes if _G_GROUPS[g] == "nonmodal"]
        explicit_motion = [g for g in g_codes if _G_GROUPS[g] == "motion"]
        if nonmodal and nonmodal[0] in (10, 28, 30, 92) and axes and explicit_motion:
            raise GcodeError(24)
        actions: list[Action] = []
        if spindle_changed:
            actions.append(Spindle(modal.spindle, modal.speed))
        position = self.position
        g92, offsets = self.g92, dict(self.offsets)
        wco = _add(offsets[modal.wcs], g92)
        axes_used = False
        for g in nonmodal:
            if g == 4:
                if "P" not in values:
                    raise GcodeError(28)
                if values["P"] < 0:
                    raise GcodeError(4)
                used.add("P")
                actions.append(Dwell(values["P"]))
            elif g == 10:
                if "L" not in values or "P" not in values:
                    raise GcodeError(28)
                used |= {"L", "P"}
                number = int(values["P"]) or modal.wcs - 53
                if not 1 <= number <= 6 or values["L"] not in (2, 20):
                    raise GcodeError(29 if number > 6 else 28)
                current = offsets[53 + number]
                if values["L"] == 2:
                    new = tuple(axes.get(a, current[i]) for i, a in enumerate(AXES))
                else:
                    new = tuple(
                        position[i] - g92[i] - axes[a] if a in axes else current[i]
                        for i, a in enumerate(AXES)
                    )
                offsets[53 + number] = (new[0], new[1], new[2])
                wco = _add(offsets[modal.wcs], g92)
                axes_used = True
            elif g in (28, 30):
                if axes:
                    via = self._target(position, axes, wco, modal.distance)
                    actions.append(Move(position, via, None))
                    position = via
                home = self.home_positions[int(g)]
                actions.append(Move(position, home, None))
                position = home
                axes_used = True
            elif g in (28.1, 30.1):
                self.home_positions[int(g)] = position
            elif g == 92:
                g92 = tuple(  # type: ignore[assignment]
                    position[i] - offsets[modal.wcs][i] - axes[a] if a in axes else g92[i]
                    for i, a in enumerate(AXES)
                )
                wco = _add(offsets[modal.wcs], g92)
                axes_used = True
            elif g == 92.1:
                g92 = (0.0, 0.0, 0.0)
                wco = offsets[modal.wcs]
            elif g == 53 and modal.motion not in (0, 1):
                raise GcodeError(30)
        motion = modal.motion
        if axes and not axes_used:
            if motion == 80:
                raise GcodeError(31)
            if motion in (1, 2, 3) and modal.feed <= 0:
                raise GcodeError(22)
            if motion in (2, 3):
                if not {"X", "Y"} & axes.keys():
                    raise GcodeError(32)
                if "R" in values:
                    used.add("R")
                elif not {"I", "J"} & values.keys():
                    raise GcodeError(35)
                used |= {"I", "J", "K"} & values.keys()
            frame = (0.0, 0.0, 0.0) if 53 in nonmodal else wco
            target = self._target(position, axes, frame, modal.distance, absolute=53 in nonmodal)
            actions.append(Move(position, target, None if motion == 0 else modal.feed))
            position = target
        elif motion in (2, 3) and explicit_motion and not axes:
            raise GcodeError(26)
        for m in m_codes:
            if m == 0:
                actions.append(Pause())
            elif m in (2, 30):
                actions.append(ProgramEnd())
        unused = set(values) - set(AXES) - used
        if unused:
            raise GcodeError(36)
        for m in m_codes:
            if m in (2, 30):
                modal.motion, modal.plane, modal.distance, modal.feed_mode = 1, 17, 90, 94
                modal.wcs, modal.spindle = 54, 5
                modal.coolant.clear()
        self.modal, self.position, self.g92, self.offsets = modal, position, g92, offsets
        return actions

    @staticmethod
    def _target(
        position: tuple[float, float, float],
        axes: dict[str, float],
        wco: tuple[float, float, float],
        distance: int,
        *,
        absolute: bool = False,
    ) -> tuple[float, float, float]:
        out = list(position)
        for i, a in enumerate(AXES):
            if a in axes:
                out[i] = axes[a] + wco[i] if distance == 90 or absolute else position[i] + axes[a]
        return (out[0], out[1], out[2])


def _add(
    a: tuple[float, float, float], b: tuple[float, float, float]
) -> tuple[float, float, float]:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def words_of(line: str) -> list[tuple[str, float]]:
    """``G1X10.5F300`` -> ``[("G", 1.0), ("X", 10.5), ("F", 300.0)]``.

    Raises:
        GcodeError: 1 (a character where a letter belongs) or 2 (a letter without a number).
    """
    out: list[tuple[str, float]] = []
    index = 0
    while index < len(line):
        letter = line[index]
        if not "A" <= letter <= "Z":
            raise GcodeError(1)
        number = _NUMBER.match(line, index + 1)
        if number is None:
            raise GcodeError(2)
        out.append((letter, round(float(number.group()), 6)))
        index = number.end()
    return out
