"""Program generators: per-unit G-code made from a unit's options, and checks on G-code.

Every generator is a pure function ``(params) -> str`` that returns a complete program,
byte-identical for equal parameters (no clock, no randomness), opening with comment lines
that name the generator and every parameter. Impossible inputs raise :class:`ValueError`
with a reason a planner can act on, never another exception.

- ``engrave_text``: text in a single-stroke font, fitted to a plate; laser or CNC.
- ``profile_rect``: a rounded rectangle cut free from stock on a CNC router.
- ``fdm_part``: a printed plate or open box, from our own layer generator (Marlin).

Before release, a program is checked against the target cell with
:func:`routing.programs.gcode.check`, using the cell's envelope and the allowed words of
its machine class (:func:`machine_class`, :data:`~routing.programs.gcode.WORDS_BY_MACHINE`).

At order release, where thousands of units a second are placed and no G-code is made yet,
the same questions are answered from the parameters alone, in microseconds: :func:`bounds`
(the box of all motion, validating the parameters exactly as the generator does),
:func:`words` (the G/M words the program will contain) and :func:`fits` (the problems
:func:`~routing.programs.gcode.check` would find, worded alike, naming "the program").
The box is never smaller than the program's real motion and at most
:data:`BOUNDS_SLACK_MM` larger per side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from routing.programs import engrave, fdm, profile
from routing.programs.gcode import Box, Envelope, check_bounds
from routing.programs.hershey import SUPPORTED_CHARS
from routing.programs.params import Param, ParamType, ParamValue

__all__ = [
    "BOUNDS_SLACK_MM",
    "GENERATORS",
    "PARAMETERS",
    "PARAMETER_SPECS",
    "SUPPORTED_CHARS",
    "Generator",
    "Param",
    "bounds",
    "fits",
    "generate",
    "machine_class",
    "words",
]

Generator = Callable[[Mapping[str, object]], str]

GENERATORS: dict[str, Generator] = {
    engrave.NAME: engrave.engrave_text,
    profile.NAME: profile.profile_rect,
    fdm.NAME: fdm.fdm_part,
}
"""Every generator by name."""

PARAMETER_SPECS: dict[str, dict[str, Param]] = {
    engrave.NAME: engrave.SPEC,
    profile.NAME: profile.SPEC,
    fdm.NAME: fdm.SPEC,
}
"""Each generator's parameters with their limits (min, max, choices, max length, help)."""

PARAMETERS: dict[str, dict[str, tuple[ParamType, ParamValue]]] = {
    name: {key: (param.type, param.default) for key, param in spec.items()}
    for name, spec in PARAMETER_SPECS.items()
}
"""Each generator's parameters as ``{name: (type, default)}``, for config validation."""


_BOUNDS: dict[str, Callable[[Mapping[str, object]], Box]] = {
    engrave.NAME: engrave.bounds,
    profile.NAME: profile.bounds,
    fdm.NAME: fdm.bounds,
}
_WORDS: dict[str, Callable[[Mapping[str, object]], frozenset[str]]] = {
    engrave.NAME: engrave.words,
    profile.NAME: profile.words,
    fdm.NAME: fdm.words,
}
BOUNDS_SLACK_MM: dict[str, float] = {
    engrave.NAME: engrave.BOUNDS_SLACK_MM,
    profile.NAME: profile.BOUNDS_SLACK_MM,
    fdm.NAME: fdm.BOUNDS_SLACK_MM,
}
"""Per generator, how much larger than the real motion :func:`bounds` may be, per side (mm)."""


def _known() -> str:
    return ", ".join(sorted(GENERATORS))


def generate(name: str, params: Mapping[str, object]) -> str:
    """Run the generator ``name`` on ``params``.

    Args:
        name: A key of :data:`GENERATORS`.
        params: Its parameters; missing ones take their defaults.

    Returns:
        The complete G-code program.

    Raises:
        ValueError: Unknown generator (``"unknown generator 'x' (known: ...)"``), or the
            generator's own reason for refusing the parameters.
    """
    generator = GENERATORS.get(name)
    if generator is None:
        raise ValueError(f"unknown generator {name!r} (known: {_known()})")
    return generator(params)


def machine_class(name: str, params: Mapping[str, object]) -> str:
    """The machine class a generator's program is for: ``printer``, ``cnc`` or ``laser``.

    Raises:
        ValueError: Unknown generator.
    """
    if name == fdm.NAME:
        return "printer"
    if name == profile.NAME:
        return "cnc"
    if name == engrave.NAME:
        return "cnc" if params.get("mode", engrave.SPEC["mode"].default) == "cnc" else "laser"
    raise ValueError(f"unknown generator {name!r} (known: {_known()})")


def bounds(name: str, params: Mapping[str, object]) -> Box:
    """The box of all motion the program of ``name`` on ``params`` will make, without making it.

    Work and travel alike: purge line, parking, homing, safe and clearance heights,
    lead-ins, the tool radius. Never smaller than what :func:`~routing.programs.gcode.analyse`
    finds in the program, at most :data:`BOUNDS_SLACK_MM` larger per side.

    Raises:
        ValueError: Unknown generator, or exactly what the generator would raise for
            ``params`` (same message), so this also checks a generator call.
    """
    function = _BOUNDS.get(name)
    if function is None:
        raise ValueError(f"unknown generator {name!r} (known: {_known()})")
    return function(params)


def words(name: str, params: Mapping[str, object]) -> frozenset[str]:
    """The G/M words (``"G1"``, ``"M104"``) the program of ``name`` on ``params`` contains.

    Raises:
        ValueError: Unknown generator, or parameters its declaration refuses (names,
            types, ranges; the generator's further refusals are :func:`bounds`').
    """
    function = _WORDS.get(name)
    if function is None:
        raise ValueError(f"unknown generator {name!r} (known: {_known()})")
    return function(params)


def fits(
    name: str, params: Mapping[str, object], envelope: Envelope, allowed: frozenset[str]
) -> list[str]:
    """What would be wrong with running the program of ``name`` on ``params`` on a cell.

    Answers :func:`~routing.programs.gcode.check` from :func:`bounds` and :func:`words`
    (no G-code is made): words not allowed, then each axis and side the motion leaves
    ``envelope`` by (its extreme value and the limit), worded as ``check`` words them with
    "the program" for the line. Empty when the program fits. Whatever ``check`` finds on
    the envelope is found here too; the reverse may fail only within
    :data:`BOUNDS_SLACK_MM` of a limit.

    Raises:
        ValueError: As :func:`bounds`.
    """
    return check_bounds(bounds(name, params), words(name, params), envelope, allowed)
