"""The plant configuration loader: the demo loads, and every bad file names file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mes.errors import ConfigError, NotFound, Problem
from mes.settings import DEFAULT_PLANT_PATH, Plant, SimDriverConfig, load_plant
from mes.settings.toml_lines import render_path, scan
from routing.family import OptionKind

REPO = Path(__file__).resolve().parents[2]

# Line numbers below are relied on by the tests: edit with care.
PLANT = """\
[plant]
name = "Test plant"

[[cells]]
name = "printer-1"
capabilities = ["print.fdm"]
[cells.driver]
kind = "sim"

[[cells]]
name = "bench-1"
capabilities = ["assembly", "test"]
[cells.driver]
kind = "sim"
"""

FAMILY = """\
[family]
name = "stand"

[options.colour]
type = "choice"
choices = ["black", "white"]
default = "black"

[options.angle]
type = "integer"
min = 50
max = 80
default = 65

[[steps]]
name = "print"
capability = "print.fdm"
duration_s = 600
parameters = ["colour", "angle"]

[[steps]]
name = "inspect"
capability = "test"
duration_s = 60
"""


def write(root: Path, plant: str = PLANT, families: dict[str, str] | None = None) -> None:
    """A plant file in ``root`` and its family files in ``root/products``."""
    (root / "plant.toml").write_text(plant, encoding="utf-8")
    products = root / "products"
    products.mkdir(exist_ok=True)
    for name, text in (families if families is not None else {"stand": FAMILY}).items():
        (products / f"{name}.toml").write_text(text, encoding="utf-8")


def problems_of(root: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_plant(root)
    return caught.value.problems


def only_problem(root: Path) -> Problem:
    problems = problems_of(root)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def swap(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


# -- good configs -------------------------------------------------------------------


def test_demo_plant_loads() -> None:
    plant = load_plant(REPO / DEFAULT_PLANT_PATH)

    assert plant.path == REPO / "config" / "plant.toml"
    assert plant.config.plant.name == "Demo plant"
    assert len(plant.cells) == 7
    assert sorted(plant.families) == ["coaster", "nameplate", "phone-stand", "sign"]
    assert plant.family_files["phone-stand"].name == "phone_stand.toml"
    router = plant.cell("router-1")
    assert router.capabilities == ["cnc.route", "laser.engrave"]
    assert router.duration_factor("laser.engrave") == 1.5
    assert router.duration_factor("cnc.route") == 1.0
    kinds = {c.name: c.driver.kind for c in plant.cells}
    assert kinds == {
        "printer-1": "marlin",
        "printer-2": "marlin",
        "printer-3": "sim",
        "router-1": "grbl",
        "laser-1": "sim",
        "bench-1": "opcua",
        "tester-1": "modbus",
    }
    assert isinstance(plant.cell("laser-1").driver, SimDriverConfig)

    nameplate = plant.families["nameplate"]
    assert nameplate.options["material"].kind is OptionKind.CHOICE
    assert nameplate.options["material"].choices == ("pla", "petg", "wood-pla")
    assert nameplate.options["width_mm"].kind is OptionKind.INTEGER
    assert nameplate.options["width_mm"].step == 10
    assert nameplate.options["text"].max_length == 24
    assert plant.families["sign"].options["width_mm"].kind is OptionKind.DECIMAL
    assert plant.families["phone-stand"].options["pad"].kind is OptionKind.BOOLEAN
    assert plant.families["phone-stand"].options["pad"].default is True
    engrave = nameplate.steps[1]
    assert (engrave.name, engrave.capability) == ("engrave-name", "laser.engrave")
    assert engrave.program is not None and engrave.program.generator == "engrave_text"
    assert str(engrave.when) == "text != ''"
    assert str(engrave.duration) == "60 + 5 * len(text)"
    assert nameplate.configure({})["width_mm"] == 160
    assert [s.after for s in plant.families["sign"].steps] == [
        None,
        ("route-profile",),
        ("route-profile",),
        ("engrave-text", "fit-hanger"),
    ]
    assert len(plant.families["sign"].rules) == 2


def test_directory_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path)
    monkeypatch.chdir(tmp_path)

    plant = load_plant(".")

    assert isinstance(plant, Plant)
    assert plant.path == Path("plant.toml")
    assert plant.family_files == {"stand": Path("products/stand.toml")}
    assert plant.families["stand"].source == "products/stand.toml"


def test_unknown_cell_is_not_found(tmp_path: Path) -> None:
    write(tmp_path)
    with pytest.raises(NotFound, match="no cell 'mill-1'"):
        load_plant(tmp_path).cell("mill-1")


# -- bad plant files ----------------------------------------------------------------


# Each case swaps one snippet of PLANT: (old, new, line, path, reason).
PLANT_CASES = {
    "TOML syntax error": (
        'name = "Test plant"',
        'name = = "Test plant"',
        2,
        "",
        "TOML syntax error: Invalid value (column 8)",
    ),
    "missing plant name": (
        'name = "Test plant"',
        'products = "products"',
        1,
        "plant.name",
        "is required",
    ),
    "unknown cell key": (
        'name = "bench-1"',
        'name = "bench-1"\narea = "east"\ncolour = "red"',
        13,
        "cells[1].colour",
        "unknown key (allowed: name, capabilities, area, line, rerun_interrupted, "
        "confirm_after_job, duration_factors, setup_s, machine, reconnect, driver)",
    ),
    "capabilities of the wrong type": (
        '["print.fdm"]',
        '"print.fdm"',
        6,
        "cells[0].capabilities",
        "must be an array (got a string 'print.fdm')",
    ),
    "bad capability inside a multi-line array": (
        '["assembly", "test"]',
        '[\n  "assembly",\n  "Test",\n]',
        14,
        "cells[1].capabilities[1]",
        "'Test' is not a valid capability (dotted lowercase words, e.g. 'print.fdm')",
    ),
    "fault rate out of range": (
        'kind = "sim"\n',
        'kind = "sim"\nfault_rate = 1.5\n',
        9,
        "cells[0].driver.fault_rate",
        "Input should be less than or equal to 1 (got 1.5)",
    ),
    "missing driver kind": (
        '"test"]\n[cells.driver]\nkind = "sim"',
        '"test"]\n[cells.driver]\nspeed = 2.0',
        13,
        "cells[1].driver",
        "driver kind is required (known: sim, modbus, opcua, marlin, grbl)",
    ),
    "duplicate cell names": (
        'name = "bench-1"',
        'name = "printer-1"',
        11,
        "cells[1].name",
        "duplicate cell name 'printer-1' (first at line 5)",
    ),
    "duration factor for a capability the cell lacks": (
        '"]\n[cells.driver]',
        '"]\n[cells.duration_factors]\n"cnc.route" = 1.2\n[cells.driver]',
        8,
        'cells[0].duration_factors["cnc.route"]',
        "'cnc.route' is not a capability of this cell (it has: print.fdm)",
    ),
    "products directory missing": (
        'name = "Test plant"',
        'name = "Test plant"\nproducts = "nowhere"',
        3,
        "plant.products",
        "products directory not found: {root}/nowhere",
    ),
}


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "reason"), PLANT_CASES.values(), ids=PLANT_CASES.keys()
)
def test_bad_plant_file(
    tmp_path: Path, old: str, new: str, line: int, path: str, reason: str
) -> None:
    write(tmp_path, swap(PLANT, old, new))
    problem = only_problem(tmp_path)
    assert problem.file == str(tmp_path / "plant.toml")
    assert (problem.line, problem.path) == (line, path)
    assert problem.reason == reason.format(root=tmp_path)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    write(tmp_path, 'owner = "me"\n' + PLANT)
    problem = only_problem(tmp_path)
    assert (problem.line, problem.path) == (1, "owner")
    assert (
        problem.reason
        == "unknown key (allowed: plant, cells, register_maps, opcua_server, mqtt, intake, stock)"
    )


def test_unknown_driver_kind(tmp_path: Path) -> None:
    write(tmp_path, PLANT.replace('kind = "sim"', 'kind = "profibus"'))
    problems = problems_of(tmp_path)
    assert [(p.line, p.path) for p in problems] == [
        (8, "cells[0].driver.kind"),
        (14, "cells[1].driver.kind"),
    ]
    assert (
        problems[0].reason
        == "unknown driver kind 'profibus' (known: sim, modbus, opcua, marlin, grbl)"
    )


def test_missing_driver_table(tmp_path: Path) -> None:
    write(tmp_path, swap(PLANT, '[cells.driver]\nkind = "sim"\n\n', ""))
    problem = only_problem(tmp_path)
    assert (problem.line, problem.path, problem.reason) == (4, "cells[0].driver", "is required")


def test_plant_file_missing(tmp_path: Path) -> None:
    problem = only_problem(tmp_path)
    assert (problem.file, problem.line) == (str(tmp_path / "plant.toml"), None)
    assert problem.reason == "cannot read: No such file or directory"


def test_products_directory_without_family_files(tmp_path: Path) -> None:
    write(tmp_path, swap(PLANT, 'name = "Test plant"', 'name = "Test plant"\nproducts = "p"'), {})
    (tmp_path / "p").mkdir()
    problem = only_problem(tmp_path)
    assert (problem.line, problem.path) == (3, "plant.products")
    assert problem.reason.startswith("no product family files (*.toml) in")


# -- bad family files ---------------------------------------------------------------


# Each case swaps one line of FAMILY: (old, new, line, path, reason).
FAMILY_CASES = {
    "capability no cell offers": (
        'capability = "test"',
        'capability = "laser.engrave"',
        23,
        "steps[1].capability",
        "no cell offers 'laser.engrave' (cells offer: assembly, print.fdm, test)",
    ),
    "default out of range": (
        "default = 65",
        "default = 95",
        13,
        "options.angle.default",
        "must be at most 80 (got 95)",
    ),
    "default of the wrong TOML type": (
        "default = 65",
        'default = "65"',
        13,
        "options.angle.default",
        "must be an integer (got a string '65')",
    ),
    "choice default not in choices": (
        'default = "black"',
        'default = "red"',
        7,
        "options.colour.default",
        "must be one of black, white (got 'red')",
    ),
    "min greater than max": (
        "min = 50",
        "min = 90",
        11,
        "options.angle.min",
        "min (90) is greater than max (80)",
    ),
    "key not allowed for the option type": (
        'choices = ["black", "white"]',
        'choices = ["black", "white"]\nmin = 1',
        7,
        "options.colour.min",
        "not allowed for a choice option",
    ),
    "unknown option type": (
        'type = "integer"',
        'type = "int"',
        10,
        "options.angle.type",
        "must be 'choice', 'integer', 'decimal', 'text' or 'boolean' (got a string 'int')",
    ),
    "step parameter naming an unknown option": (
        '"colour", "angle"',
        '"colour", "size"',
        19,
        "steps[0].parameters[1]",
        "unknown option 'size' (family has: colour, angle)",
    ),
    "duplicate step names": (
        'name = "inspect"',
        'name = "print"',
        22,
        "steps[1].name",
        "duplicate step name 'print' (first at line 16)",
    ),
    "step duration not positive": (
        "duration_s = 60\n",
        "duration_s = 0\n",
        24,
        "steps[1].duration_s",
        "Input should be greater than 0 (got 0)",
    ),
}


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "reason"), FAMILY_CASES.values(), ids=FAMILY_CASES.keys()
)
def test_bad_family_file(
    tmp_path: Path, old: str, new: str, line: int, path: str, reason: str
) -> None:
    write(tmp_path, families={"stand": swap(FAMILY, old, new)})
    problem = only_problem(tmp_path)
    assert problem.file == str(tmp_path / "products" / "stand.toml")
    assert (problem.line, problem.path, problem.reason) == (line, path, reason)


def test_choice_without_choices(tmp_path: Path) -> None:
    write(tmp_path, families={"stand": swap(FAMILY, 'choices = ["black", "white"]\n', "")})
    problems = problems_of(tmp_path)
    assert [(p.line, p.path, p.reason) for p in problems] == [
        (4, "options.colour.choices", "is required for a choice option")
    ]


def test_duplicate_family_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, families={"a": FAMILY, "b": FAMILY})
    problem = only_problem(tmp_path)
    assert (problem.file, problem.line, problem.path) == (
        str(tmp_path / "products" / "b.toml"),
        2,
        "family.name",
    )
    first = tmp_path / "products" / "a.toml"
    assert problem.reason == f"duplicate family name 'stand' (first in {first}:2)"


def test_all_problems_across_files_are_reported(tmp_path: Path) -> None:
    plant = swap(PLANT, '["print.fdm"]', '"print.fdm"')
    plant = swap(plant, 'name = "bench-1"', 'name = "Bench 1"')
    family = swap(FAMILY, "min = 50", "min = 90")
    family = swap(family, 'name = "inspect"', 'name = "print"')
    broken = "[family]\nname = 'x'\nsteps = [\n"
    write(tmp_path, plant, {"stand": family, "zz": broken})

    problems = problems_of(tmp_path)

    where = [(Path(p.file).name, p.line, p.path) for p in problems]
    assert where == [
        ("plant.toml", 6, "cells[0].capabilities"),
        ("plant.toml", 11, "cells[1].name"),
        ("stand.toml", 11, "options.angle.min"),
        ("stand.toml", 22, "steps[1].name"),
        ("zz.toml", 3, ""),
    ]
    assert len(problems) == 5
    assert problems[-1].reason == "TOML syntax error: Invalid value (at end of file)"


def test_messages_read_as_file_line_path_reason(tmp_path: Path) -> None:
    write(tmp_path, swap(PLANT, 'name = "bench-1"', 'name = "printer-1"'))
    with pytest.raises(ConfigError) as caught:
        load_plant(tmp_path / "plant.toml")
    assert str(caught.value) == (
        f"{tmp_path / 'plant.toml'}:11: cells[1].name: "
        "duplicate cell name 'printer-1' (first at line 5)"
    )


# -- toml_lines ---------------------------------------------------------------------


def lines_of(text: str) -> dict[str, int]:
    return {render_path(path): line for path, line in scan(text).lines.items()}


def test_scan_indexes_arrays_of_tables_and_their_sub_tables() -> None:
    lines = lines_of(PLANT)
    assert lines["cells[0]"] == 4
    assert lines["cells[1]"] == 10
    assert lines["cells[1].name"] == 11
    assert lines["cells[0].driver"] == 7
    assert lines["cells[1].driver.kind"] == 14


def test_scan_nested_arrays_of_tables_restart_per_parent() -> None:
    text = "[[a]]\n[[a.b]]\n[[a.b]]\n[[a]]\n[[a.b]]\nx = 1\n"
    lines = lines_of(text)
    assert lines["a[0].b[1]"] == 3
    assert lines["a[1].b[0]"] == 5
    assert lines["a[1].b[0].x"] == 6


def test_scan_quoted_keys_with_dots_are_one_segment() -> None:
    text = "[t]\n\"print.fdm\" = 1.3\nplain.dotted = 2\n'lit.key' = 3\n"
    keys = scan(text).lines
    assert keys[("t", "print.fdm")] == 2
    assert keys[("t", "plain", "dotted")] == 3
    assert keys[("t", "lit.key")] == 4
    assert render_path(("t", "print.fdm")) == 't["print.fdm"]'
    assert render_path(("cells", 2, "plain")) == "cells[2].plain"


def test_scan_skips_inside_multiline_strings_and_arrays() -> None:
    text = (
        'a = """\n'
        "[fake]\n"
        'x = 1 """\n'
        "b = [\n"
        "  1, # y = 2\n"
        '  "]",\n'
        "  { z = 3 },\n"
        "]\n"
        "c = '''\n"
        "d = 4'''\n"
        "e = 5 # f = 6\n"
    )
    lines = lines_of(text)
    assert lines == {
        "a": 1,
        "b": 4,
        "b[0]": 5,
        "b[1]": 6,
        "b[2]": 7,
        "b[2].z": 7,
        "c": 9,
        "e": 11,
    }


def test_scan_falls_back_to_nearest_ancestor() -> None:
    keys = scan(PLANT)
    assert keys.line_of(("cells", 1, "driver", "fault_rate")) == 13
    assert keys.line_of(("cells", 1, "area")) == 10
    assert keys.line_of(("nothing", "here")) is None
    assert keys.line_of(()) is None


@pytest.mark.parametrize("text", ['a = "unterminated\n[b', "[[\n", "x = [1, {y = \n", '"""'])
def test_scan_never_raises_on_malformed_text(text: str) -> None:
    scan(text)
