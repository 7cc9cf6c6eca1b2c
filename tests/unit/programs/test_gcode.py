"""The G-code reader: syntax, modal state, geometry, and the release checks."""

from __future__ import annotations

import functools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.programs import gcode
from routing.programs.gcode import GRBL_WORDS, MARLIN_WORDS, Envelope, analyse, check
from routing.programs.syntax import GcodeSyntaxError, parse_line


def _with_checksum(body: str) -> str:
    return f"{body}*{functools.reduce(lambda a, b: a ^ b, body.encode(), 0)}"


# --- syntax -----------------------------------------------------------------------------


def test_words_comments_and_case() -> None:
    line = parse_line("g1x10 Y-2.5 (inline) z.5 f1200 ; trailing", 7)
    assert line.number == 7
    assert [(w.letter, w.value) for w in line.words] == [
        ("G", 1.0),
        ("X", 10.0),
        ("Y", -2.5),
        ("Z", 0.5),
        ("F", 1200.0),
    ]
    assert line.commands == ["G1"]


def test_codes_are_normalised() -> None:
    assert parse_line("G01 G90 G38.2 M03").commands == ["G1", "G90", "G38.2", "M3"]


@pytest.mark.parametrize("text", ["", "   ", "; only a comment", "(only a comment)", "%"])
def test_empty_lines(text: str) -> None:
    assert parse_line(text).words == ()


def test_line_number_and_checksum_are_tolerated() -> None:
    line = parse_line(_with_checksum("N42 G1 X5 E1.2"))
    assert line.n == 42
    assert line.commands == ["G1"]
    assert [w.letter for w in line.words] == ["G", "X", "E"]


def test_wrong_checksum_is_refused() -> None:
    text = _with_checksum("N3 G1 X5")
    body, given = text.split("*")
    with pytest.raises(GcodeSyntaxError, match="checksum"):
        parse_line(f"{body}*{(int(given) + 1) % 256}")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("G1 X10 (never closed", "never closed"),
        ("G1 X1.2.3", "cannot read"),
        ("G1 F", "F needs a number"),
        ("G1 X5 N3", "line number"),
        ("G1 X5 *ab", "not a number"),
        ("hello", "needs a number"),
        ("G1 X5 #3", "cannot read"),
    ],
)
def test_unreadable_lines(text: str, reason: str) -> None:
    with pytest.raises(GcodeSyntaxError, match=reason):
        parse_line(text)


def test_marlin_text_and_bare_axes_grbl_system() -> None:
    message = parse_line("M117 Printing; now")
    assert message.commands == ["M117"]
    assert message.text == "Printing"
    home = parse_line("G28 X Y")
    assert [(w.letter, w.value) for w in home.words[1:]] == [("X", None), ("Y", None)]
    assert parse_line("$h").system == "$H"


# --- modal state and geometry -----------------------------------------------------------


def test_modal_motion_absolute_and_relative() -> None:
    program = "G90\nG0 X0 Y0 Z0\nG1 X10 F600\nY10\nG91\nX-5 Y-5\nG90\nG0 X0 Y0\n"
    moves = gcode.moves(program)
    assert [m.motion for m in moves] == ["G0", "G1", "G1", "G1", "G0"]
    assert moves[3].end == (5.0, 5.0, 0.0)
    result = analyse(program)
    assert result.travel_mm == pytest.approx(10 + 10 + math.hypot(5, 5) + math.hypot(5, 5))
    assert result.box.x == (0.0, 10.0)
    assert result.feed_time_s == pytest.approx((20 + math.hypot(5, 5)) / 600 * 60)


def test_inch_units_are_converted_to_mm() -> None:
    result = analyse("G20\nG0 X0 Y0\nM3 S1000\nG1 X1 Y1 F10\nG21\nG1 X10\n")
    assert result.work_box.x == pytest.approx((0.0, 25.4))
    assert result.work_mm == pytest.approx(25.4 * math.sqrt(2) + (25.4 - 10))
    assert result.feed_time_s == pytest.approx(25.4 * math.sqrt(2) / 254 * 60 + 15.4 / 254 * 60)


def test_spindle_and_laser_decide_what_is_work() -> None:
    program = "G0 X0 Y0 Z0\nG1 X10 F100\nM4 S0\nG1 X20\nS500\nG1 X30\nM5\nG1 X40\nM3\nG0 X50\n"
    result = analyse(program)
    assert result.work_mm == pytest.approx(10)  # only X20 -> X30: on, power not zero
    assert result.work_box.x == (20.0, 30.0)
    assert result.travel_mm == pytest.approx(40)  # G0 is travel even with the tool on


def test_extrusion_absolute_relative_and_g92() -> None:
    program = (
        "G28\nM82\nG92 E0\nG1 X10 E1 F1200\nG1 E0.2\nG0 X20\nG1 E1\nG1 X30 E2\n"
        "G92 E0\nM83\nG1 X40 E1.5\nG1 E-0.5\nG91\nG1 X5 E0.5\n"
    )
    moves = gcode.moves(program)
    assert [round(m.e_delta_mm, 6) for m in moves] == [1, -0.8, 0, 0.8, 1, 1.5, -0.5, 0.5]
    result = analyse(program)
    assert result.extruded_mm == pytest.approx(3.5)
    assert result.work_mm == pytest.approx(10 + 10 + 10 + 5)
    assert result.travel_box.x == (10.0, 20.0)


def test_g28_homes_named_axes_and_position_starts_unknown() -> None:
    moves = gcode.moves("G1 X5\nG91\nG1 Y3\nG90\nG28 Y\nG1 Y2\n")
    assert moves[0].start == (None, None, None)
    assert moves[1].end == (5.0, None, None)
    assert moves[2].start == (5.0, 0.0, None)
    assert "relative move on Y" in analyse("G91\nG1 Y3\n").problems[0]


@pytest.mark.parametrize(
    ("arc", "length", "x_range", "y_range"),
    [
        ("G2 X10 Y0 I5 J0", math.pi * 5, (0.0, 10.0), (0.0, 5.0)),  # over the top
        ("G3 X10 Y0 I5 J0", math.pi * 5, (0.0, 10.0), (-5.0, 0.0)),  # under
        ("G2 X10 Y0 R5", math.pi * 5, (0.0, 10.0), (0.0, 5.0)),
        ("G2 X0 Y0 I5 J0", 2 * math.pi * 5, (0.0, 10.0), (-5.0, 5.0)),  # full circle
        ("G2 X5 Y5 R5", math.pi * 5 / 2, (0.0, 5.0), (0.0, 5.0)),  # short quarter
        ("G2 X5 Y5 R-5", 3 * math.pi * 5 / 2, (-5.0, 5.0), (0.0, 10.0)),  # long way round
    ],
)
def test_arcs_length_and_extent(
    arc: str, length: float, x_range: tuple[float, float], y_range: tuple[float, float]
) -> None:
    result = analyse(f"G0 X0 Y0 Z0\nM3 S1000\n{arc} F100\n")
    assert result.problems == ()
    assert result.work_mm == pytest.approx(length)
    assert result.work_box.x == pytest.approx(x_range, abs=1e-9)
    assert result.work_box.y == pytest.approx(y_range, abs=1e-9)


def test_helical_arc_and_arc_problems() -> None:
    helix = analyse("G0 X0 Y0 Z0\nM3\nG2 X0 Y0 Z-2 I5 J0 F100\n")
    assert helix.work_mm == pytest.approx(math.hypot(10 * math.pi, 2))
    assert helix.work_box.z == (-2.0, 0.0)
    problems = analyse("G0 X0 Y0\nG2 X10 Y0 I4 J0\nG2 X0 Y0 R2\nG18\nG2 X5 Y0 I1\n").problems
    assert "off its circle" in problems[0]
    assert "too small" in problems[1]
    assert "XY plane" in problems[2]


# --- check ------------------------------------------------------------------------------

CNC = Envelope.cnc(300, 200, depth_mm=10, clearance_mm=50)


def test_a_good_program_has_no_problems() -> None:
    assert (
        check("G21\nG90\nG0 Z5\nG0 X10 Y10\nM3 S9000\nG1 Z-3\nG1 X20\nG0 Z5\nM5\n", CNC, GRBL_WORDS)
        == []
    )


def test_envelope_violation_names_axis_value_limit_and_line() -> None:
    program = "G0 Z5\nG0 X10 Y10\nG1 X310 F100\nG1 X320\nG1 X10\nG1 Z-12\n"
    problems = check(program, CNC, GRBL_WORDS)
    assert problems == [
        "line 3: X 310.000 mm is beyond the envelope's maximum 300.000 mm (1 more line too)",
        "line 6: Z -12.000 mm is below the envelope's minimum -10.000 mm",
    ]


def test_arc_bulge_beyond_the_envelope_is_caught() -> None:
    problems = check("G0 X0 Y1\nG2 X10 Y1 I5 J0 F100\n", Envelope(100, 5, 10), GRBL_WORDS)
    assert problems == ["line 2: Y 6.000 mm is beyond the envelope's maximum 5.000 mm"]


def test_disallowed_words_once_per_word_with_count() -> None:
    program = "G28\nM104 S200\nM3 S1000\nG1 X10 F100\nM3 S500\nM5\n"
    assert check(program, Envelope(200, 200, 200), MARLIN_WORDS) == [
        "line 3: M3 is not allowed on this machine (1 more line too)",
        "line 6: M5 is not allowed on this machine",
    ]


def test_unreadable_lines_are_reported_and_skipped() -> None:
    problems = check("G0 X1 Y1\nG1 X(oops\nG1 X2 F100\n", CNC, GRBL_WORDS)
    assert len(problems) == 1
    assert problems[0].startswith("line 2: cannot read")


def test_grbl_system_commands_are_checked_like_words() -> None:
    assert check("$H\nG0 X1\n", CNC, GRBL_WORDS) == ["line 1: $H is not allowed on this machine"]
    assert check("$H\nG0 X1\n", CNC, GRBL_WORDS | {"$H"}) == []


def test_envelope_must_be_a_range() -> None:
    with pytest.raises(ValueError, match="Z limits"):
        Envelope(10, 10, -1)
    assert CNC.limits("Z") == (-10, 50)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("GMNXYZEFIJRS0123456789.-+ ;()*$%\n"), max_size=120))
def test_any_text_is_read_without_crashing(text: str) -> None:
    result = analyse(text)
    problems = check(text, CNC, GRBL_WORDS)
    assert all(p.startswith("line ") for p in problems)
    assert set(result.problems) <= set(problems)


def test_huge_numbers_are_refused() -> None:
    with pytest.raises(GcodeSyntaxError, match="too large"):
        parse_line("G1 X" + "9" * 400)


def test_a_buyers_text_never_puts_a_machine_command_in_a_comment() -> None:
    """GRBL acts on ``!``, ``?``, ``~`` anywhere in a line (even a comment) and on bytes
    above 0x7E; Marlin's checksum starts at ``*``: the header escapes them."""
    from routing.programs.engrave import engrave_text

    program = engrave_text(
        {"text": "Hi! Jo?~*", "width_mm": 200.0, "height_mm": 60.0, "mode": "laser"}
    )
    assert all(c == "\n" or " " <= c <= "~" for c in program)
    assert not set("!?~*") & set(program)
    assert "Hi\\x21 Jo\\x3f" in program  # still readable
