"""Parameters of the program generators, and the small text helpers every generator shares.

Each generator declares its parameters once, as a mapping of name to :class:`Param` (type,
default, and limits). :func:`read_params` checks a caller's mapping against it: unknown
names, wrong types, non-finite numbers, out-of-range values and unknown choices are refused
with a :class:`ValueError` whose message names the generator, the parameter and the reason.
Nothing is repaired silently; missing parameters take their declared defaults.

The G-code text helpers (:func:`num`, :func:`header`) keep every generator's output
byte-identical for equal inputs: fixed decimal places, no trailing zeros, no ``-0``, and a
header comment that lists the parameters sorted by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

ParamType = type[float] | type[int] | type[str] | type[bool]
ParamValue = float | int | str | bool


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter of a generator.

    Attributes:
        type: ``float``, ``int``, ``str`` or ``bool``.
        default: Value used when the caller leaves the parameter out.
        minimum: Smallest allowed number (inclusive), for ``float`` and ``int``.
        maximum: Largest allowed number (inclusive), for ``float`` and ``int``.
        choices: Allowed values of a ``str`` parameter; empty means any text.
        max_length: Longest allowed ``str`` value.
        help: One line for a human: what the parameter means, with its unit.
    """

    type: ParamType
    default: ParamValue
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    help: str = ""


class Values:
    """A generator's checked parameters, read back with their types."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, ParamValue]) -> None:
        self._values = dict(values)

    def f(self, name: str) -> float:
        """Return the ``float`` parameter ``name``."""
        value = self._values[name]
        assert isinstance(value, float)
        return value

    def i(self, name: str) -> int:
        """Return the ``int`` parameter ``name``."""
        value = self._values[name]
        assert isinstance(value, int) and not isinstance(value, bool)
        return value

    def s(self, name: str) -> str:
        """Return the ``str`` parameter ``name``."""
        value = self._values[name]
        assert isinstance(value, str)
        return value

    def b(self, name: str) -> bool:
        """Return the ``bool`` parameter ``name``."""
        value = self._values[name]
        assert isinstance(value, bool)
        return value

    def items(self) -> list[tuple[str, ParamValue]]:
        """Return ``(name, value)`` pairs sorted by name."""
        return sorted(self._values.items())


def _coerce(name: str, param: Param, value: object) -> ParamValue:
    """Return ``value`` as ``param.type`` or raise ValueError saying why it is not."""
    if param.type is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false (got {value!r})")
        return value
    if param.type is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be text (got {value!r})")
        if param.choices and value not in param.choices:
            raise ValueError(f"{name} must be one of {', '.join(param.choices)} (got {value!r})")
        if param.max_length is not None and len(value) > param.max_length:
            raise ValueError(f"{name} is longer than {param.max_length} characters")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number (got {value!r})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    number: int | float
    if param.type is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{name} must be a whole number (got {value!r})")
        number = int(value)
    else:
        number = float(value)
    if param.minimum is not None and number < param.minimum:
        raise ValueError(f"{name} must be at least {param.minimum:g} (got {number:g})")
    if param.maximum is not None and number > param.maximum:
        raise ValueError(f"{name} must be at most {param.maximum:g} (got {number:g})")
    return number


def read_params(generator: str, spec: Mapping[str, Param], params: Mapping[str, object]) -> Values:
    """Check ``params`` against ``spec`` and fill in defaults.

    Args:
        generator: Generator name, for messages.
        spec: The generator's declared parameters.
        params: What the caller passed (option values of a unit, typically).

    Returns:
        Every declared parameter with its checked value.

    Raises:
        ValueError: ``"<generator>: <parameter> <reason>"`` for the first problem found
            (unknown names first, so a typo is not hidden behind a range error).
    """
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ValueError(
            f"{generator}: unknown parameter {unknown[0]!r} (known: {', '.join(sorted(spec))})"
        )
    values: dict[str, ParamValue] = {}
    for name, param in spec.items():
        try:
            values[name] = _coerce(name, param, params.get(name, param.default))
        except ValueError as exc:
            raise ValueError(f"{generator}: {exc}") from None
    return Values(values)


def num(value: float, digits: int = 3) -> str:
    """Format a coordinate: ``digits`` decimals at most, no trailing zeros, never ``-0``."""
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def header(generator: str, values: Values, notes: list[str]) -> list[str]:
    """Return the comment lines that open every generated program.

    Args:
        generator: Generator name.
        values: Its checked parameters (all of them, defaults included).
        notes: Figures the generator derived (character height, passes, layers...).
    """
    lines = [f"; generator: {generator} (routing.programs)"]
    lines += [f"; param {name} = {_safe(repr(value))}" for name, value in values.items()]
    lines += [f"; {_safe(note)}" for note in notes]
    return lines


#: Characters a comment must not carry: GRBL acts on ``!``, ``?`` and ``~`` wherever they
#: appear (feed hold, status, resume) and on bytes above 0x7E (overrides); Marlin's line
#: checksum starts at ``*``.
_UNSAFE = frozenset("!?~*")


def _safe(text: str) -> str:
    """``text`` with every character a machine could act on written as ``\\xNN``/``\\uNNNN``
    (a buyer's ``Hi!`` or ``José`` in a comment must never pause or override a machine)."""
    return "".join(
        c
        if " " <= c <= "~" and c not in _UNSAFE
        else (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")
        for c in text
    )
