"""Properties of every generator, over parameters drawn by hypothesis.

- Any parameter set drawn from the declared ranges (``PARAMETER_SPECS``) yields a program
  or a :class:`ValueError`, never another exception; so does any garbage mapping.
- Any *plausible* parameter set (declared ranges, narrowed where a real part would be
  absurd or slow: a 500 mm solid block is refused by size, not worth printing here)
  yields a program that reads without problems, stays inside the envelope it promises
  (the plate inside its margins; the part plus tool radius plus lead-in; the bed), and
  uses only the words its machine class accepts. Engraving may refuse text that does not
  fit; the box may refuse walls or floors that leave no box; with those reasons only.
- Printing: absolute E only grows, except retractions undone before the next extrusion.
- Routing: the tool never goes straight down into the stock; it ramps.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.programs import (
    GENERATORS,
    PARAMETER_SPECS,
    SUPPORTED_CHARS,
    Param,
    generate,
    machine_class,
)
from routing.programs.fdm import MATERIALS
from routing.programs.gcode import WORDS_BY_MACHINE, Envelope, check, moves

SLACK = 0.002  # coordinates are written to 0.001 mm
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Params = dict[str, Any]


def _strategy(param: Param) -> st.SearchStrategy[Any]:
    if param.type is bool:
        return st.booleans()
    if param.type is str:
        if param.choices:
            return st.sampled_from(param.choices)
        alphabet = st.sampled_from(sorted(SUPPORTED_CHARS))
        return st.text(alphabet, min_size=1, max_size=param.max_length or 50)
    low, high = param.minimum, param.maximum
    assert low is not None and high is not None
    if param.type is int:
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False)


def _declared(generator: str, **narrow: st.SearchStrategy[Any]) -> st.SearchStrategy[Params]:
    spec = PARAMETER_SPECS[generator]
    return st.fixed_dictionaries({k: narrow.get(k, _strategy(p)) for k, p in spec.items()})


def _run(generator: str, params: Params) -> tuple[str, str]:
    """``(program, "")``, or ``("", reason)`` when the generator refuses."""
    try:
        return generate(generator, params), ""
    except ValueError as exc:
        return "", str(exc)


def _words(generator: str, params: Params) -> frozenset[str]:
    return WORDS_BY_MACHINE[machine_class(generator, params)]


# --- anything in, a program or a ValueError out -------------------------------------------

_SMALL_PRINT = {"height_mm": st.floats(0.05, 3.0), "layer_height_mm": st.floats(0.1, 1.0)}


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@FAST
@given(data=st.data())
def test_declared_ranges_give_a_program_or_value_error(generator: str, data: st.DataObject) -> None:
    narrow = _SMALL_PRINT if generator == "fdm_part" else {}
    params = data.draw(_declared(generator, **narrow))
    program, reason = _run(generator, params)
    if reason:
        assert reason.startswith(f"{generator}: ")
        return
    assert program.endswith("\n")
    assert program == generate(generator, params)


_GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
)


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_garbage_gives_value_error_never_another_exception(
    generator: str, data: st.DataObject
) -> None:
    keys = st.sampled_from([*PARAMETER_SPECS[generator], "bogus", "width"])
    params = data.draw(st.dictionaries(keys, _GARBAGE, max_size=4))
    with contextlib.suppress(ValueError):
        generate(generator, params)


# --- engraving ------------------------------------------------------------------------------


@FAST
@given(
    _declared(
        "engrave_text",
        text=st.text(st.sampled_from(sorted(SUPPORTED_CHARS)), min_size=1, max_size=40),
        width_mm=st.floats(10, 600),
        height_mm=st.floats(5, 300),
        margin_mm=st.floats(0, 10),
        min_char_height_mm=st.floats(0.5, 4),
    )
)
def test_engraving_stays_on_the_plate_inside_its_margins(params: Params) -> None:
    program, reason = _run("engrave_text", params)
    if reason:
        expected = ("does not fit", "text is empty", "no room", "above max_char_height_mm")
        assert any(e in reason for e in expected), reason
        return
    margin, cnc = params["margin_mm"], params["mode"] == "cnc"
    envelope = Envelope(
        params["width_mm"] - margin + SLACK,
        params["height_mm"] - margin + SLACK,
        params["safe_z_mm"] + SLACK if cnc else 0.0,
        x_min_mm=margin - SLACK,
        y_min_mm=margin - SLACK,
        z_min_mm=-params["depth_mm"] - SLACK if cnc else 0.0,
    )
    assert check(program, envelope, _words("engrave_text", params)) == []


# --- profile --------------------------------------------------------------------------------


@FAST
@given(
    _declared(
        "profile_rect",
        thickness_mm=st.floats(0.1, 30),
        depth_per_pass_mm=st.floats(0.5, 50),
        margin_mm=st.floats(0, 200),
    )
)
def test_profile_stays_within_part_tool_and_lead_in(params: Params) -> None:
    program, reason = _run("profile_rect", params)
    if reason:
        expected = ("over half the smaller side", "below safe_z_mm", "less than the tool radius")
        assert any(e in reason for e in expected), reason
        return
    r, lead, m = params["tool_diameter_mm"] / 2, params["lead_in_mm"], params["margin_mm"]
    depth = params["thickness_mm"] + params["breakthrough_mm"]
    mid = m + params["width_mm"] / 2  # the lead-in starts lead_in_mm beside the front middle
    envelope = Envelope(
        max(m + params["width_mm"] + r, mid + lead) + SLACK,
        m + params["height_mm"] + r + SLACK,
        params["clearance_z_mm"] + SLACK,
        x_min_mm=min(m - r, mid - lead) - SLACK,
        y_min_mm=m - r - lead - SLACK,
        z_min_mm=-depth - SLACK,
    )
    assert check(program, envelope, _words("profile_rect", params)) == []
    found = moves(program)
    assert min(z for m in found if (z := m.end[2]) is not None) == pytest.approx(-depth, abs=1e-4)
    for move in found:  # never straight down into the stock
        start, end = move.start, move.end
        if end[2] is not None and end[2] < -1e-9 and start[2] is not None and end[2] < start[2]:
            assert move.length_mm > start[2] - end[2] + 1e-6, f"plunge at line {move.line}"


# --- printing -------------------------------------------------------------------------------


@st.composite
def _prints(draw: st.DrawFn) -> Params:
    material = draw(st.sampled_from(sorted(MATERIALS)))
    (hot_lo, hot_hi), (bed_lo, bed_hi) = MATERIALS[material]
    nozzle = draw(st.floats(0.25, 1.0))
    bed = draw(st.floats(150, 400))
    return draw(
        _declared(
            "fdm_part",
            material=st.just(material),
            hotend_c=st.integers(hot_lo, hot_hi),
            bed_c=st.integers(bed_lo, bed_hi),
            nozzle_mm=st.just(nozzle),
            layer_height_mm=st.floats(0.1, max(0.1, min(0.4, 0.8 * nozzle))),
            bed_x_mm=st.just(bed),
            bed_y_mm=st.just(bed),
            width_mm=st.floats(5, min(120, bed - 10)),
            depth_mm=st.floats(5, min(120, bed - 10)),
            height_mm=st.floats(0.1, 6),
            max_z_mm=st.floats(20, 1000),
            perimeters=st.integers(1, 4),
            solid_layers=st.integers(0, 5),
            wall_mm=st.floats(0.3, 3),
            floor_mm=st.floats(0.1, 2),
        )
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_prints())
def test_print_stays_on_the_bed_and_extrudes_forward(params: Params) -> None:
    program, reason = _run("fdm_part", params)
    if reason:
        expected = ("leave no box", "as thick as the box", "do not fit in the part")
        assert any(e in reason for e in expected), reason
        return
    top = max(1, round(params["height_mm"] / params["layer_height_mm"])) * params["layer_height_mm"]
    envelope = Envelope(params["bed_x_mm"], params["bed_y_mm"], top + 10 + SLACK)
    assert check(program, envelope, _words("fdm_part", params)) == []
    x0 = (params["bed_x_mm"] - params["width_mm"]) / 2
    y0 = (params["bed_y_mm"] - params["depth_mm"]) / 2
    x1, y1 = x0 + params["width_mm"], y0 + params["depth_mm"]
    retracted = 0.0
    for move in moves(program):
        assert move.e_absolute
        if move.length_mm == 0:  # retraction or its undoing
            retracted -= move.e_delta_mm
            assert -1e-4 <= retracted <= params["retract_mm"] + 1e-4
            continue
        if move.e_delta_mm > 0:  # extruding: never while retracted, only on the part or purge
            assert abs(retracted) < 1e-4, f"extrudes while retracted at line {move.line}"
            x, y, z = move.end
            assert x is not None and y is not None and z is not None
            on_part = x0 - SLACK <= x <= x1 + SLACK and y0 - SLACK <= y <= y1 + SLACK
            assert on_part or y < 5, f"extrudes off the part at line {move.line}"
            assert z <= top + SLACK
        else:
            assert move.e_delta_mm == 0


# --- impossible inputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generator", "params", "reason"),
    [
        ("engrave_text", {"text": "x" * 200, "width_mm": 20.0}, "does not fit"),
        ("engrave_text", {"text": "Grüße"}, "the font lacks 'ß', 'ü'"),
        ("engrave_text", {"text": "   "}, "text is empty"),
        ("engrave_text", {"margin_mm": 20.0}, "no room"),
        ("engrave_text", {"min_char_height_mm": 60.0}, "above max_char_height_mm"),
        ("engrave_text", {"mode": "plasma"}, "mode must be one of laser, cnc"),
        ("profile_rect", {"corner_radius_mm": 40.0}, "over half the smaller side"),
        ("profile_rect", {"margin_mm": 5.0}, "less than the tool radius 3 plus the lead-in 5"),
        ("profile_rect", {"thickness_mm": 100.0, "depth_per_pass_mm": 0.05}, "too many"),
        ("profile_rect", {"safe_z_mm": 20.0}, "clearance_z_mm is below safe_z_mm"),
        ("fdm_part", {"width_mm": 300.0}, "does not fit the bed"),
        ("fdm_part", {"height_mm": 245.0}, "too tall"),
        ("fdm_part", {"material": "ABS"}, "ABS prints at 230-270 C"),
        ("fdm_part", {"layer_height_mm": 0.4}, "over 0.8 x nozzle_mm"),
        ("fdm_part", {"shape": "box", "height_mm": 1.0}, "as thick as the box"),
        ("fdm_part", {"shape": "box", "wall_mm": 20.0, "depth_mm": 30.0}, "leave no box"),
        ("fdm_part", {"width_mm": 5.0, "perimeters": 10}, "do not fit in the part"),
        (
            "fdm_part",
            {
                "width_mm": 480.0,
                "depth_mm": 480.0,
                "height_mm": 400.0,
                "bed_x_mm": 500.0,
                "bed_y_mm": 500.0,
                "max_z_mm": 500.0,
                "layer_height_mm": 0.05,
            },
            "print it sliced",
        ),
        ("fdm_part", {"perimeters": 2.5}, "perimeters must be a whole number"),
        ("fdm_part", {"hotend_c": True}, "hotend_c must be a number"),
        ("fdm_part", {"width_mm": math.nan}, "must be a finite number"),
        ("fdm_part", {"width": 10.0}, "unknown parameter 'width'"),
    ],
)
def test_impossible_inputs_are_refused_with_a_reason(
    generator: str, params: Params, reason: str
) -> None:
    with pytest.raises(ValueError, match=f"^{generator}: .*{re.escape(reason)}"):
        generate(generator, params)
