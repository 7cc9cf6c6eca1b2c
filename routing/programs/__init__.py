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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from routing.programs import engrave, fdm, profile
from routing.programs.hershey import SUPPORTED_CHARS
from routing.programs.params import Param, ParamType, ParamValue

__all__ = [
    "GENERATORS",
    "PARAMETERS",
    "PARAMETER_SPECS",
    "SUPPORTED_CHARS",
    "Generator",
    "Param",
    "generate",
    "machine_class",
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
