"""Golden tests: each generator on fixed parameter sets, byte for byte and by its figures.

The programs are stored in ``golden/<case>.gcode``. After an intended change of output,
regenerate them and review the diff before committing::

    MES_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/programs/test_golden.py

The figures (extent of working moves, cutting path length, line counts, key lines) are
checked independently of the stored bytes, against values worked out from the geometry
where that is practical (profile lengths, font stroke lengths, extrusion per mm).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from routing.programs import PARAMETERS, generate, machine_class
from routing.programs.gcode import WORDS_BY_MACHINE, Envelope, analyse, check
from routing.programs.hershey import CAP_HEIGHT, GLYPHS

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("MES_REGEN_GOLDEN") == "1"


@dataclass(frozen=True)
class Case:
    name: str
    generator: str
    params: dict[str, Any]
    envelope: Envelope
    lines: tuple[int, int]
    key_lines: tuple[str, ...] = field(default=())


CASES = [
    Case(
        "engrave_laser",
        "engrave_text",
        {"text": "Batch of One", "width_mm": 120.0, "height_mm": 30.0, "margin_mm": 4.0},
        Envelope(120, 30, 0),
        (150, 250),
        ("G21", "G90", "M5", "G0 X", "M4 S800", "G1 X", "M5", "M2"),
    ),
    Case(
        "engrave_cnc",
        "engrave_text",
        {
            "text": "MES-42",
            "mode": "cnc",
            "width_mm": 60.0,
            "height_mm": 20.0,
            "depth_mm": 0.5,
            "max_char_height_mm": 6.0,
        },
        Envelope.cnc(60, 20, depth_mm=0.5, clearance_mm=3),
        (80, 150),
        ("G0 Z3", "M3 S10000", "G4 P2", "G0 X", "G1 Z-0.5 F200", "G1 X", "G0 Z3", "M5", "M2"),
    ),
    Case(
        "engrave_two_lines",
        "engrave_text",
        {
            "text": "Made for Ada Lovelace",
            "width_mm": 80.0,
            "height_mm": 40.0,
            "power_percent": 60.0,
        },
        Envelope(80, 40, 0),
        (250, 400),
        ("; capital height 7.731 mm on 2 line(s)", "M4 S600", "M5", "M2"),
    ),
    Case(
        "profile_default",
        "profile_rect",
        {},
        Envelope.cnc(130, 90, depth_mm=6.2, clearance_mm=15),
        (70, 90),
        (
            "G0 Z15",
            "M3 S18000",
            "G0 X70 Y7",
            "G0 Z5",
            "G1 Z0 F300",
            "G3 X65 Y12 Z-1.55 I-5 J0 F300",
            "G2 X12 Y20 I0 J8",
            "G2 X70 Y7 I0 J-5",
            "G3 X65 Y12 Z-6.2 I-5 J0 F300",
            "G0 Z15",
            "M5",
            "M2",
        ),
    ),
    Case(
        "profile_square_ramp",
        "profile_rect",
        {
            "width_mm": 40.0,
            "height_mm": 40.0,
            "corner_radius_mm": 0.0,
            "lead_in": "ramp",
            "climb": False,
            "tool_diameter_mm": 3.175,
            "thickness_mm": 3.0,
            "depth_per_pass_mm": 1.0,
            "lead_in_mm": 3.0,
            "margin_mm": 8.0,
        },
        Envelope.cnc(60, 60, depth_mm=3.2, clearance_mm=15),
        (70, 90),
        ("M3 S18000", "G1 X28 Y6.412 Z-0.8 F300", "G3 X49.587 Y8 I0 J1.588", "G1 X25 Y3.412", "M2"),
    ),
    Case(
        "profile_stadium",
        "profile_rect",
        {
            "width_mm": 80.0,
            "height_mm": 30.0,
            "corner_radius_mm": 15.0,
            "thickness_mm": 12.0,
            "depth_per_pass_mm": 2.5,
        },
        Envelope.cnc(110, 60, depth_mm=12.2, clearance_mm=15),
        (70, 90),
        (
            "; 5 pass(es) of 2.4400 mm to Z-12.2",
            "G2 X12 Y30 I0 J18",
            "G3 X55 Y12 Z-12.2 I-5 J0 F300",
        ),
    ),
    Case(
        "fdm_plate",
        "fdm_part",
        {},
        Envelope(220, 220, 250),
        (3000, 4000),
        (
            "M140 S60",
            "M104 S210",
            "M82",
            "G28",
            "M190 S60",
            "M109 S210",
            "G92 E0",
            "M106 S255",
            "M104 S0",
            "M140 S0",
            "M107",
            "M84",
        ),
    ),
    Case(
        "fdm_box",
        "fdm_part",
        {"shape": "box", "width_mm": 60.0, "depth_mm": 40.0, "height_mm": 20.0},
        Envelope(220, 220, 250),
        (3400, 4400),
        ("M190 S60", "M109 S210", "; layer 100 of 100", "M84"),
    ),
    Case(
        "fdm_petg_tag",
        "fdm_part",
        {
            "width_mm": 80.0,
            "depth_mm": 30.0,
            "height_mm": 1.8,
            "layer_height_mm": 0.3,
            "nozzle_mm": 0.6,
            "material": "PETG",
            "hotend_c": 240,
            "bed_c": 80,
            "fan_percent": 40,
            "perimeters": 3,
            "infill_percent": 0.0,
            "solid_layers": 2,
        },
        Envelope(220, 220, 250),
        (600, 900),
        ("M140 S80", "M104 S240", "M190 S80", "M109 S240", "M106 S102", "; layer 6 of 6", "M84"),
    ),
]
BY_NAME = {case.name: case for case in CASES}


def _program(case: Case) -> str:
    return generate(case.generator, case.params)


def _params(case: Case) -> dict[str, Any]:
    """The case's parameters with the generator's defaults filled in."""
    return {k: default for k, (_, default) in PARAMETERS[case.generator].items()} | case.params


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_program_matches_golden_file(case: Case) -> None:
    path = GOLDEN / f"{case.name}.gcode"
    program = _program(case)
    if REGENERATE:
        path.write_bytes(program.encode())
    assert path.exists(), f"{path.name} missing: run with MES_REGEN_GOLDEN=1"
    assert program.encode() == path.read_bytes()
    assert program == _program(case)  # deterministic within one run too


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_program_passes_its_release_checks(case: Case) -> None:
    program = _program(case)
    words = WORDS_BY_MACHINE[machine_class(case.generator, case.params)]
    assert check(program, case.envelope, words) == []
    lines = program.splitlines()
    assert case.lines[0] <= len(lines) <= case.lines[1]
    assert lines[0] == f"; generator: {case.generator} (routing.programs)"
    position = 0
    for key in case.key_lines:  # in this order
        found = [i for i, line in enumerate(lines[position:]) if line.startswith(key)]
        assert found, f"{key!r} not found after line {position + 1}"
        position += found[0] + 1


def _stroke_length(text: str) -> float:
    return sum(
        math.dist(a, b)
        for char in text
        for stroke in GLYPHS[char].strokes
        for a, b in itertools.pairwise(stroke)
    )


@pytest.mark.parametrize(
    ("name", "height", "tight"),
    [
        ("engrave_laser", 11.529, "x"),
        ("engrave_cnc", 6.0, "cap"),
        ("engrave_two_lines", 7.731, "x"),
    ],
)
def test_engraving_figures(name: str, height: float, tight: str) -> None:
    case = BY_NAME[name]
    result = analyse(_program(case))
    p = _params(case)
    width, plate_h, margin = p["width_mm"], p["height_mm"], p["margin_mm"]
    x, y = result.work_box.x, result.work_box.y
    assert x is not None and y is not None
    assert (x[0] + x[1]) / 2 == pytest.approx(width / 2, abs=1e-3)  # centred
    assert (y[0] + y[1]) / 2 == pytest.approx(plate_h / 2, abs=1e-3)
    assert x[0] >= margin - 1e-3 and y[0] >= margin - 1e-3
    if tight == "x":  # the largest size that fits: the text fills the width
        assert x == pytest.approx((margin, width - margin), abs=1e-3)
    else:  # capped at max_char_height_mm: room to spare
        assert x[0] > margin + 1 and height == p["max_char_height_mm"]
    capital = f"; capital height {height:.3f} mm"
    assert any(line.startswith(capital) for line in _program(case).splitlines())
    burned = _stroke_length(p["text"]) * height / CAP_HEIGHT
    plunges = 0.0
    if p["mode"] == "cnc":  # each stroke plunges from the safe height 3 to -depth
        strokes = sum(len(GLYPHS[c].strokes) for c in p["text"])
        plunges = strokes * (p["safe_z_mm"] + p["depth_mm"])
    assert result.work_mm == pytest.approx(burned + plunges, rel=1e-3)


def _profile_length(case: Case, passes: int, arc: bool) -> float:
    p = _params(case)
    w, h, r = float(p["width_mm"]), float(p["height_mm"]), float(p["corner_radius_mm"])
    tool, lead = float(p["tool_diameter_mm"]) / 2, float(p["lead_in_mm"])
    depth = float(p["thickness_mm"] + p["breakthrough_mm"]) / passes
    loop = 2 * (w - 2 * r) + 2 * (h - 2 * r) + 2 * math.pi * (r + tool)
    lead_path = math.pi * lead / 2 if arc else lead * math.sqrt(2)
    entry = math.hypot(lead_path, depth)
    return passes * (loop + entry + lead_path) + 5  # + the feed from Z5 down to the stock top


@pytest.mark.parametrize(
    ("name", "passes", "arc", "x_range", "y_range"),
    [
        ("profile_default", 4, True, (12.0, 118.0), (7.0, 78.0)),
        ("profile_square_ramp", 4, False, (6.4125, 49.5875), (3.4125, 49.5875)),
        ("profile_stadium", 5, True, (12.0, 98.0), (7.0, 48.0)),
    ],
)
def test_profile_figures(
    name: str, passes: int, arc: bool, x_range: tuple[float, float], y_range: tuple[float, float]
) -> None:
    case = BY_NAME[name]
    result = analyse(_program(case))
    assert result.work_mm == pytest.approx(_profile_length(case, passes, arc), abs=0.05)
    assert result.work_box.x == pytest.approx(x_range, abs=1e-3)
    assert result.work_box.y == pytest.approx(y_range, abs=1e-3)
    total = _params(case)["thickness_mm"] + 0.2
    assert result.work_box.z == pytest.approx((-total, 5.0))


@pytest.mark.parametrize(
    ("name", "part", "line_width", "layer", "work_mm", "max_bytes"),
    [
        ("fdm_plate", (60, 85, 160, 135, 5.0), 0.45, 0.2, 120021.7, 150_000),
        ("fdm_box", (80, 90, 140, 130, 20.0), 0.45, 0.2, 104586.8, 150_000),
        ("fdm_petg_tag", (70, 95, 150, 125, 1.8), 0.675, 0.3, 15658.0, 40_000),
    ],
)
def test_print_figures(
    name: str,
    part: tuple[float, float, float, float, float],
    line_width: float,
    layer: float,
    work_mm: float,
    max_bytes: int,
) -> None:
    case = BY_NAME[name]
    program = _program(case)
    assert len(program.encode()) < max_bytes
    result = analyse(program)
    _, _, x1, y1, top = part
    half = line_width / 2  # outer loop centre line; the purge line starts at X10 Y2
    assert result.work_box.x == pytest.approx((10.0, x1 - half), abs=1e-3)
    assert result.work_box.y == pytest.approx((2.0, y1 - half), abs=1e-3)
    assert result.work_box.z == pytest.approx((layer, top))
    assert result.work_mm == pytest.approx(work_mm, abs=0.1)
    filament = _params(case)["filament_mm"]
    per_mm = line_width * layer / (math.pi * (filament / 2) ** 2)
    purge = 100 + line_width + 100  # printed at twice the rate
    expected = (result.work_mm + purge) * per_mm - 0.8  # ends retracted
    assert result.extruded_mm == pytest.approx(expected, rel=1e-5)  # E is written to 1e-5
