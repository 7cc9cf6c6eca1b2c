"""Analytic answers from parameters alone: ``bounds``, ``words`` and ``fits``.

Each is checked against the real thing, over parameters drawn by hypothesis from the
declared ranges (narrowed as in ``test_properties``, where a real part would be absurd or
slow) and over the golden cases:

- ``bounds`` refuses exactly what the generator refuses, with the same message;
- the motion box :func:`~routing.programs.gcode.analyse` finds in the program (work and
  travel together) is inside ``bounds`` (1e-6 mm) and at most ``BOUNDS_SLACK_MM`` smaller
  per side;
- the words the program uses are ``words`` (exactly: ``words`` never over-reports);
- ``fits`` agrees with :func:`~routing.programs.gcode.check` on envelopes and word sets
  drawn around the program's box: what ``check`` finds, ``fits`` finds; when ``fits`` finds
  nothing, neither does ``check``. ``fits`` alone may object to a side only where the
  analysed box is within the slack of the limit or beyond it: ``check`` looks at where
  moves end, so it misses the home position (X0 Y0 Z0) a printer's ``G28`` goes to, which
  ``analyse`` (a move's start) and ``bounds`` count.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from routing.programs import (
    BOUNDS_SLACK_MM,
    GENERATORS,
    PARAMETER_SPECS,
    SUPPORTED_CHARS,
    bounds,
    engrave,
    fdm,
    fits,
    generate,
    machine_class,
    words,
)
from routing.programs.gcode import (
    MARLIN_WORDS,
    WORDS_BY_MACHINE,
    Box,
    Envelope,
    analyse,
    check,
    check_bounds,
)
from routing.programs.hershey import GLYPHS
from tests.unit.programs.test_golden import CASES, Case
from tests.unit.programs.test_properties import _GARBAGE, _declared, _prints

TOLERANCE = 1e-6
Params = dict[str, Any]
_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- parameters: as in test_properties, narrowed to parts worth making here ---------------

_TEXT = st.text(st.sampled_from(sorted(SUPPORTED_CHARS)), min_size=1, max_size=40)
PLAUSIBLE: dict[str, st.SearchStrategy[Params]] = {
    "engrave_text": _declared(
        "engrave_text",
        text=_TEXT,
        width_mm=st.floats(10, 600),
        height_mm=st.floats(5, 300),
        margin_mm=st.floats(0, 10),
        min_char_height_mm=st.floats(0.5, 4),
    ),
    "profile_rect": st.builds(
        lambda params, room, higher, round_: (
            params
            | {  # mostly cuttable: room for the tool and lead-in, corners that fit, safe heights
                "margin_mm": params["tool_diameter_mm"] / 2 + params["lead_in_mm"] + room,
                "clearance_z_mm": params["safe_z_mm"] + higher,
                "corner_radius_mm": round_ * min(params["width_mm"], params["height_mm"]) / 2,
            }
        ),
        _declared(
            "profile_rect", thickness_mm=st.floats(0.1, 30), depth_per_pass_mm=st.floats(0.5, 50)
        ),
        st.floats(0, 100),
        st.floats(0, 100),
        st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0, 1.01),
    ),
    "fdm_part": _prints(),
}


def _generated(generator: str, params: Params) -> tuple[str, str]:
    try:
        return generate(generator, params), ""
    except ValueError as exc:
        return "", str(exc)


def _bounds_or_reason(generator: str, params: Params) -> tuple[Box | None, str]:
    try:
        return bounds(generator, params), ""
    except ValueError as exc:
        return None, str(exc)


def _extents(box: Box) -> list[tuple[str, tuple[float, float] | None]]:
    return list(zip("XYZ", (box.x, box.y, box.z), strict=True))


def assert_bounds_hold(generator: str, found: Box, claimed: Box) -> None:
    """``claimed`` holds ``found`` and is at most the generator's slack larger per side."""
    slack = BOUNDS_SLACK_MM[generator] + TOLERANCE
    for (axis, real), (_, bound) in zip(_extents(found), _extents(claimed), strict=True):
        if real is None:  # a laser never moves Z
            assert bound is None, f"{axis}: bounds claims {bound}, the program has no {axis}"
            continue
        assert bound is not None, f"{axis}: the program moves {real}, bounds claims none"
        assert bound[0] <= real[0] + TOLERANCE, f"{axis} low: bounds {bound} vs {real}"
        assert bound[1] >= real[1] - TOLERANCE, f"{axis} high: bounds {bound} vs {real}"
        assert real[0] - bound[0] <= slack, f"{axis} low: bounds {bound} loose vs {real}"
        assert bound[1] - real[1] <= slack, f"{axis} high: bounds {bound} loose vs {real}"


# --- envelopes and word sets around a program -----------------------------------------------

_CUTTING = st.sampled_from([5.0, 0.01, 0.001, 1e-5, 0.0])  # into the box, or on its edge
_CLEARING = st.sampled_from([0.0, 1e-7, 1e-5, 0.001, 0.01, 5.0])  # off it, or on its edge


@st.composite
def _around(draw: st.DrawFn, box: Box) -> Envelope:
    """An envelope whose limits are near the box's edges: up to two cut into the box, the
    others clear it; all by amounts from far beyond the slack to within the tolerance."""
    cutting = draw(st.sets(st.integers(0, 5), max_size=2))
    limits: list[float] = []
    for axis, extent in enumerate((box.x, box.y, box.z)):
        if extent is None:
            limits += [-1.0, 1.0]
            continue
        for side, edge in enumerate(extent):
            inward = draw(_CUTTING) if 2 * axis + side in cutting else -draw(_CLEARING)
            limits.append(edge + inward if side == 0 else edge - inward)
    x_min, x_max, y_min, y_max, z_min, z_max = limits
    assume(x_min <= x_max and y_min <= y_max and z_min <= z_max)
    return Envelope(x_max, y_max, z_max, x_min_mm=x_min, y_min_mm=y_min, z_min_mm=z_min)


_ENVELOPE_PROBLEM = re.compile(r"([XYZ]) -?\d+\.\d+ mm is (below|beyond) the envelope's")
_WORD_PROBLEM = re.compile(r": (\S+) is not allowed on this machine")


def _sides(problems: list[str]) -> set[tuple[str, str]]:
    return {(m[1], m[2]) for p in problems if (m := _ENVELOPE_PROBLEM.search(p))}


def _words_refused(problems: list[str]) -> set[str]:
    return {m.group(1) for p in problems if (m := _WORD_PROBLEM.search(p))}


def assert_fits_agrees_with_check(
    generator: str, params: Params, program: str, envelope: Envelope, allowed: frozenset[str]
) -> None:
    found, claimed = check(program, envelope, allowed), fits(generator, params, envelope, allowed)
    assert all(p.startswith("the program: ") for p in claimed), claimed
    if not claimed:
        assert found == []
    assert _words_refused(found) == _words_refused(claimed)
    sides_found, sides_claimed = _sides(found), _sides(claimed)
    assert sides_found <= sides_claimed, (found, claimed)
    event("fits" if not claimed else "both object" if found else "only fits objects")
    event("same envelope problems" if sides_found == sides_claimed else "more from fits")
    slack = BOUNDS_SLACK_MM[generator] + 2 * TOLERANCE
    box = analyse(program).box
    for axis, side in sides_claimed - sides_found:  # where the real box is beyond or that close
        extent = dict(_extents(box))[axis]
        low, high = envelope.limits(axis)
        assert extent is not None
        assert (low - extent[0] if side == "below" else extent[1] - high) >= -slack, (axis, side)


# --- the properties -------------------------------------------------------------------------


def _check_against_program(generator: str, params: Params, data: st.DataObject) -> None:
    program, reason = _generated(generator, params)
    box, refusal = _bounds_or_reason(generator, params)
    assert refusal == reason
    event("refused" if reason else "made")
    if reason:
        return
    assert box is not None
    analysis = analyse(program)
    assert analysis.problems == ()
    assert_bounds_hold(generator, analysis.box, box)
    assert set(analysis.commands) == words(generator, params)
    class_words = WORDS_BY_MACHINE[machine_class(generator, params)]
    used = sorted(analysis.commands)
    for _ in range(2):
        envelope = data.draw(_around(box))
        refused = data.draw(st.sets(st.sampled_from(used), max_size=2))
        assert_fits_agrees_with_check(generator, params, program, envelope, class_words - refused)


@settings(_SETTINGS, max_examples=60)
@given(params=PLAUSIBLE["engrave_text"], data=st.data())
def test_engraving_bounds_words_and_fits(params: Params, data: st.DataObject) -> None:
    _check_against_program("engrave_text", params, data)


@settings(_SETTINGS, max_examples=60)
@given(params=PLAUSIBLE["profile_rect"], data=st.data())
def test_profile_bounds_words_and_fits(params: Params, data: st.DataObject) -> None:
    _check_against_program("profile_rect", params, data)


@settings(_SETTINGS, max_examples=25)
@given(params=PLAUSIBLE["fdm_part"], data=st.data())
def test_print_bounds_words_and_fits(params: Params, data: st.DataObject) -> None:
    _check_against_program("fdm_part", params, data)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_cases(case: Case) -> None:
    program = generate(case.generator, case.params)
    analysis = analyse(program)
    claimed = bounds(case.generator, case.params)
    assert_bounds_hold(case.generator, analysis.box, claimed)
    assert set(analysis.commands) == words(case.generator, case.params)
    allowed = WORDS_BY_MACHINE[machine_class(case.generator, case.params)]
    assert fits(case.generator, case.params, case.envelope, allowed) == []
    if BOUNDS_SLACK_MM[case.generator] == 0:
        assert claimed == analysis.box


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_bounds_refuses_what_the_generator_refuses(generator: str) -> None:
    keys = st.sampled_from([*PARAMETER_SPECS[generator], "bogus"])
    garbage = st.dictionaries(keys, _GARBAGE, max_size=3)
    narrow = {"height_mm": st.floats(0.05, 3.0)} if generator == "fdm_part" else {}

    @settings(max_examples=40, deadline=None)
    @given(params=st.one_of(garbage, _declared(generator, **narrow)))
    def run(params: Params) -> None:
        assert _bounds_or_reason(generator, params)[1] == _generated(generator, params)[1]

    run()


# --- pieces that bounds relies on -------------------------------------------------------------


def test_font_glyphs_stay_in_their_cells() -> None:
    """engrave's line ink is its first and last glyph's; splits rely on positive advances."""
    for char, glyph in GLYPHS.items():
        assert glyph.advance > 0, char
        xs = [x for stroke in glyph.strokes for x, _ in stroke]
        assert bool(xs) == (char != " "), char
        assert all(0 <= x <= glyph.advance for x in xs), char


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(["a", "W", "i", ".", " ", "m", "1"]), min_size=1, max_size=30))
def test_split_is_the_most_balanced_space(text: str) -> None:
    text = text.strip()
    assume(text)
    widths = engrave._widths(text)

    def width(part: str) -> int:
        return sum(GLYPHS[c].advance for c in part)

    splits = [i for i, c in enumerate(text) if c == " " and text[:i].strip()]
    splits = [i for i in splits if text[i + 1 :].strip()]
    expected = min(
        splits, key=lambda i: (max(width(text[:i]), width(text[i + 1 :])), i), default=None
    )
    assert engrave._split(text, widths) == expected


@settings(max_examples=60, deadline=None)
@given(_prints(), st.floats(0.05, 500.0), st.sampled_from(["plate", "box"]))
def test_print_move_count_in_closed_form_is_the_sum_over_layers(
    params: Params, height: float, shape: str
) -> None:
    params |= {"height_mm": height, "max_z_mm": 1000.0, "shape": shape}
    try:  # tall parts too: their moves are only counted, not made
        job = fdm._read(params)
    except ValueError as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        assert any(r in reason for r in ("print it sliced", "box", "perimeters")), reason
        event("sliced" if "sliced" in reason else "refused")
        return
    event("counted")
    lw, plan = job.lw, job.layers
    total = 0
    for i in range(plan.count):
        x_lo, y_lo, x_hi, y_hi = fdm._inset(job.outline, plan.loops * lw)
        span = (y_hi - y_lo) if i % 2 == 0 else (x_hi - x_lo)
        total += 4 * plan.loops + 4 + 2 * fdm._line_count(span, lw, plan.density(i))
    assert fdm._move_count(plan, job.outline, lw) == total


# --- wording ----------------------------------------------------------------------------------


def test_fits_words_problems_like_check() -> None:
    problems = fits("fdm_part", {}, Envelope(200.0, 200.0, 20.0), MARLIN_WORDS - {"M106", "G28"})
    assert problems == [
        "the program: G28 is not allowed on this machine",
        "the program: M106 is not allowed on this machine",
        "the program: Y 220.000 mm is beyond the envelope's maximum 200.000 mm",
    ]
    cnc = Envelope.cnc(100.0, 100.0, depth_mm=5.0, clearance_mm=10.0)
    assert fits("profile_rect", {}, cnc, WORDS_BY_MACHINE["cnc"]) == [
        "the program: X 118.002 mm is beyond the envelope's maximum 100.000 mm",
        "the program: Z -6.200 mm is below the envelope's minimum -5.000 mm",
        "the program: Z 15.000 mm is beyond the envelope's maximum 10.000 mm",
    ]


def test_a_laser_program_has_no_z_to_check() -> None:
    assert bounds("engrave_text", {}).z is None
    flat = Envelope(100.0, 30.0, 0.0)
    assert fits("engrave_text", {}, flat, WORDS_BY_MACHINE["laser"]) == []
    assert fits("engrave_text", {"mode": "cnc"}, flat, WORDS_BY_MACHINE["cnc"]) == [
        "the program: Z -0.300 mm is below the envelope's minimum 0.000 mm",
        "the program: Z 3.000 mm is beyond the envelope's maximum 0.000 mm",
    ]


def test_check_bounds_names_one_problem_per_side() -> None:
    box = Box((500.0, 600.0), (-1.0, 1.0), None)
    assert check_bounds(box, frozenset({"G1"}), Envelope(100.0, 100.0, 10.0), frozenset()) == [
        "the program: G1 is not allowed on this machine",
        "the program: X 600.000 mm is beyond the envelope's maximum 100.000 mm",
        "the program: Y -1.000 mm is below the envelope's minimum 0.000 mm",
    ]


def test_words_follow_the_parameters() -> None:
    assert "M4" in words("engrave_text", {}) and "M3" not in words("engrave_text", {})
    assert {"M3", "G4"} <= words("engrave_text", {"mode": "cnc"})
    assert {"G2", "G3"} <= words("profile_rect", {})
    assert "G3" not in words("profile_rect", {"lead_in": "ramp"})
    assert "G2" not in words("profile_rect", {"lead_in": "ramp", "climb": False})
    assert {"M190", "M106"} <= words("fdm_part", {})
    assert not {"M190", "M106"} & words("fdm_part", {"bed_c": 0, "fan_percent": 0})
    assert "M106" not in words("fdm_part", {"height_mm": 0.2})  # one layer: no fan


@pytest.mark.parametrize("function", [bounds, words])
def test_unknown_generator_names_the_known_ones(function: Any) -> None:
    with pytest.raises(ValueError, match=r"unknown generator 'lathe' \(known: engrave_text, "):
        function("lathe", {})
    with pytest.raises(ValueError, match="unknown generator"):
        fits("lathe", {}, Envelope(1.0, 1.0, 1.0), frozenset())


def test_bad_parameters_are_refused_with_the_generators_words() -> None:
    with pytest.raises(ValueError, match=r"^fdm_part: perimeters must be a whole number"):
        words("fdm_part", {"perimeters": 2.5})
    with pytest.raises(ValueError, match=r"^engrave_text: .* does not fit a 20 x 30 mm plate"):
        bounds("engrave_text", {"text": "x" * 200, "width_mm": 20.0})
