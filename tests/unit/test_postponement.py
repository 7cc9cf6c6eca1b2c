"""Postponement in the config and the planner: generic steps lead the plan and depend on
the variant alone, stages never name a cell, stock targets name a whole valid variant,
each refused at its file:line:key; a unit's generic steps are exactly a blank's; a
variant's key does not depend on how its numbers were written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mes.settings import load_plant
from routing.family import variant_key, variant_values
from routing.planner import plan, plan_blank
from routing.scheduling.dispatch import IdleCell
from tests.conftest import REPO
from tests.unit.test_settings import PLANT, only_problem, problems_of, write

TAG = """\
[family]
name = "tag"

[options.material]
type = "choice"
choices = ["pla", "petg"]
default = "pla"

[options.size]
type = "integer"
min = 40
max = 80
default = 60

[options.text]
type = "text"
default = "HI"

[postponement]
generic = ["print"]
variant = ["material", "size"]

[[steps]]
name = "print"
capability = "print.fdm"
stage = "printing"
duration_s = "300 + size"
attributes = { material = "material" }

[[steps]]
name = "engrave"
capability = "assembly"
stage = "engraving"
duration_s = "30 + len(text)"
parameters = ["text"]

[[steps]]
name = "inspect"
capability = "test"
stage = "quality check"
duration_s = 20
"""

STOCK = """
[[stock]]
family = "tag"
variant = { material = "pla", size = 60 }
target = 3
"""


def line_of(text: str, anchor: str, occurrence: int = 1) -> int:
    lines = [n for n, row in enumerate(text.splitlines(), 1) if anchor in row]
    return lines[occurrence - 1]


def test_the_demo_plant_makes_blanks_of_its_coasters_and_nameplates() -> None:
    plant = load_plant(REPO / "config")
    coaster = plant.families["coaster"]
    assert coaster.postponement is not None
    assert coaster.postponement.generic == ("print-blank",)
    assert [s.stage for s in coaster.steps] == ["printing", "engraving", "quality check", "packing"]
    assert plant.families["nameplate"].postponement is not None
    assert plant.families["sign"].postponement is None
    assert {entry.family for entry in plant.config.stock} == {"coaster", "nameplate"}


def test_a_family_with_generic_steps_and_a_target_loads(tmp_path: Path) -> None:
    write(tmp_path, PLANT + STOCK, {"tag": TAG})
    plant = load_plant(tmp_path)
    tag = plant.families["tag"]
    assert tag.postponement is not None and tag.postponement.variant == ("material", "size")
    assert plant.config.stock[0].target == 3


@pytest.mark.parametrize(
    ("old", "new", "anchor", "path", "reason"),
    [
        (
            'generic = ["print"]',
            'generic = ["prnt"]',
            "generic =",
            "postponement.generic[0]",
            "unknown step 'prnt' (steps: print, engrave, inspect)",
        ),
        (
            'generic = ["print"]',
            'generic = ["engrave"]',
            "generic =",
            "postponement.generic",
            "generic steps must lead the plan: 'engrave' comes after custom step 'print'",
        ),
        (
            'generic = ["print"]',
            'generic = ["print", "engrave", "inspect"]',
            "generic =",
            "postponement.generic",
            "every step is generic: nothing is left to customise",
        ),
        (
            'variant = ["material", "size"]',
            'variant = ["material", "colour"]',
            "variant =",
            "postponement.variant[1]",
            "unknown option 'colour' (family has: material, size, text)",
        ),
        (
            'duration_s = "300 + size"',
            'duration_s = "300 + len(text)"',
            'duration_s = "300',
            "steps[0].duration_s",
            "generic step 'print' may depend on the variant only (material, size); text "
            "would make its blanks differ",
        ),
        (
            'stage = "engraving"',
            'stage = "on printer-1"',
            'stage = "on printer-1"',
            "steps[1].stage",
            "names cell 'printer-1': customers read stages; say what is done",
        ),
        (
            'stage = "engraving"',
            'stage = "engraving; fault 101"',
            'stage = "engraving;',
            "steps[1].stage",
            "is not a stage a customer reads",
        ),
    ],
)
def test_bad_postponement_is_refused_at_its_key(
    tmp_path: Path, old: str, new: str, anchor: str, path: str, reason: str
) -> None:
    text = TAG.replace(old, new)
    write(tmp_path, families={"tag": text})
    problem = only_problem(tmp_path)
    assert (Path(problem.file).name, problem.line, problem.path) == (
        "tag.toml",
        line_of(text, anchor),
        path,
    )
    assert reason in problem.reason


def test_a_generic_step_waiting_for_a_custom_one_is_refused(tmp_path: Path) -> None:
    text = TAG.replace(
        'name = "print"\ncapability = "print.fdm"',
        'name = "print"\ncapability = "print.fdm"\nafter = ["engrave"]',
    ).replace('name = "engrave"\n', 'name = "engrave"\nafter = []\n')
    write(tmp_path, families={"tag": text})
    reasons = {(p.path, p.reason) for p in problems_of(tmp_path)}
    assert reasons == {
        ("steps[0].after[0]", "generic step 'print' cannot wait for custom step 'engrave'")
    }


@pytest.mark.parametrize(
    ("old", "new", "anchor", "path", "reason"),
    [
        ('family = "tag"', 'family = "tog"', 'family = "tog"', "stock[0].family", "unknown family"),
        (
            'variant = { material = "pla", size = 60 }',
            'variant = { material = "gold", size = 60 }',
            "variant =",
            "stock[0].variant.material",
            "must be one of pla, petg (got 'gold')",
        ),
        (
            'variant = { material = "pla", size = 60 }',
            'variant = { material = "pla" }',
            "variant =",
            "stock[0].variant",
            "size: is required for a blank",
        ),
        (
            'variant = { material = "pla", size = 60 }',
            'variant = { material = "pla", size = 60, text = "HI" }',
            "variant =",
            "stock[0].variant.text",
            "not a variant option (variant: material, size)",
        ),
        ("target = 3", "target = 0", "target = 0", "stock[0].target", "greater than or equal to 1"),
    ],
)
def test_bad_stock_targets_are_refused_at_their_key(
    tmp_path: Path, old: str, new: str, anchor: str, path: str, reason: str
) -> None:
    plant = PLANT + STOCK.replace(old, new)
    write(tmp_path, plant, {"tag": TAG})
    problem = only_problem(tmp_path)
    assert (Path(problem.file).name, problem.line, problem.path) == (
        "plant.toml",
        line_of(plant, anchor),
        path,
    )
    assert reason in problem.reason


def test_a_second_target_for_one_variant_is_refused(tmp_path: Path) -> None:
    plant = PLANT + STOCK + STOCK.replace("size = 60", "size = 60.0")
    write(tmp_path, plant, {"tag": TAG})
    problem = only_problem(tmp_path)
    assert problem.path == "stock[1].variant"
    first = line_of(plant, "[[stock]]")
    assert f"a second target for this variant (first at line {first})" == problem.reason


def test_a_target_for_a_family_without_generic_steps_is_refused(tmp_path: Path) -> None:
    from tests.unit.test_settings import FAMILY

    write(tmp_path, PLANT + STOCK.replace('"tag"', '"stand"'), {"stand": FAMILY})
    assert "has no generic steps" in only_problem(tmp_path).reason


def test_a_units_generic_steps_are_exactly_a_blanks(tmp_path: Path) -> None:
    write(tmp_path, families={"tag": TAG.replace('parameters = ["text"]\n', "")})
    tag = load_plant(tmp_path).families["tag"]
    unit = plan(tag, tag.configure({"material": "petg", "size": 50, "text": "ADA"}))
    blank = plan_blank(tag, tag.configure_variant({"material": "petg", "size": "50"}))
    assert [s.name for s in blank] == ["print"] and blank[0].generic
    assert unit[0].generic and not unit[1].generic
    assert (unit[0].program.id, unit[0].expected_s) == (blank[0].program.id, blank[0].expected_s)
    assert unit[0].stage == "printing" and unit[1].stage == "engraving"
    # Without a program, a step's recipe names the options it sees: a generic step sees
    # the variant alone, a custom step every option.
    assert "text" not in unit[0].program.body and "ADA" in unit[1].program.body


def test_a_variants_key_does_not_depend_on_how_numbers_were_written() -> None:
    assert variant_key({"size": 160, "material": "pla"}) == variant_key(
        {"material": "pla", "size": 160.0}
    )
    assert variant_values(variant_key({"size": 160.5})) == {"size": 160.5}
    assert variant_values("") == {}


def test_a_cell_waiting_for_its_planned_step_is_not_idle_for_stock() -> None:
    from routing.scheduling.dispatch import Dispatcher, ReadyStep

    dispatcher = Dispatcher("rank")
    dispatcher.follow({"p1": ["A/print"], "p2": []})
    assert dispatcher.waits_for_plan("p1") and not dispatcher.waits_for_plan("p2")
    dispatcher.add(ReadyStep("A/print", "print.fdm", 60.0))
    assert dispatcher.pick(IdleCell("p1", frozenset({"print.fdm"}))) is not None
    assert not dispatcher.waits_for_plan("p1")  # dispatched: nothing planned is left


def test_a_stage_may_contain_a_cell_name_inside_a_word(tmp_path: Path) -> None:
    write(tmp_path, families={"tag": TAG.replace('stage = "engraving"', 'stage = "xbench-1s"')})
    assert load_plant(tmp_path).families["tag"].steps[1].stage == "xbench-1s"
