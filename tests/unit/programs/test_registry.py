"""The generator registry, parameter declarations and parameter checking."""

from __future__ import annotations

import pytest

from routing.programs import (
    GENERATORS,
    PARAMETER_SPECS,
    PARAMETERS,
    SUPPORTED_CHARS,
    generate,
    machine_class,
)
from routing.programs.params import num


def test_every_generator_is_declared_and_runs_on_its_defaults() -> None:
    assert set(GENERATORS) == set(PARAMETERS) == {"engrave_text", "profile_rect", "fdm_part"}
    for name in GENERATORS:
        program = generate(name, {})
        assert program.startswith(f"; generator: {name} (routing.programs)\n")
        for key, (kind, default) in PARAMETERS[name].items():
            assert isinstance(default, kind), (name, key)
            assert f"; param {key} = {default!r}\n" in program
            assert PARAMETER_SPECS[name][key].help


def test_unknown_generator_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown generator 'lathe' \(known: engrave_text, "):
        generate("lathe", {})
    with pytest.raises(ValueError, match="unknown generator"):
        machine_class("lathe", {})


def test_machine_class_follows_the_generator_and_mode() -> None:
    assert machine_class("fdm_part", {}) == "printer"
    assert machine_class("profile_rect", {}) == "cnc"
    assert machine_class("engrave_text", {}) == "laser"
    assert machine_class("engrave_text", {"mode": "cnc"}) == "cnc"


def test_supported_chars_are_printable_ascii() -> None:
    assert {chr(c) for c in range(32, 127)} == SUPPORTED_CHARS


def test_integral_floats_pass_for_integers_and_ints_for_floats() -> None:
    assert generate("fdm_part", {"perimeters": 3.0}) == generate("fdm_part", {"perimeters": 3})
    assert generate("profile_rect", {"width_mm": 80}) == generate(
        "profile_rect", {"width_mm": 80.0}
    )


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (9000.0, 0, "9000"),
        (1.23456, 3, "1.235"),
        (-0.0004, 3, "0"),
        (100.0, 3, "100"),
        (0.5, 3, "0.5"),
    ],
)
def test_numbers_are_written_short_and_without_minus_zero(
    value: float, digits: int, text: str
) -> None:
    assert num(value, digits) == text
