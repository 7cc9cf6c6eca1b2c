"""Process plans: conditions, the step graph, duration expressions, rules and programs,
from the family file through the planner; bad plans refused at their key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mes.domain import ProgramKind
from mes.errors import OrderError
from mes.settings import load_plant
from tests.unit.test_settings import FAMILY, only_problem, write

# A family with everything a plan can say. Lines matter for the error tests below.
PLAN = """\
[family]
name = "sign"

[options.wood]
type = "choice"
choices = ["oak", "walnut"]
default = "oak"

[options.width]
type = "integer"
min = 100
max = 2000
default = 400

[options.text]
type = "text"
default = ""

[[rules]]
when = "wood == 'walnut'"
require = "width <= 1600"
message = "walnut allows width <= 1600"

[[steps]]
name = "cut"
capability = "print.fdm"
duration_s = "100 + width / 10"
attributes = { material = "wood" }

[[steps]]
name = "engrave"
capability = "assembly"
when = "text != ''"
after = ["cut"]
duration_s = "30 + 2 * len(text)"
[steps.program]
generator = "engrave_text"
parameters = { text = "text", width_mm = "width", mode = "'laser'", power_percent = 80 }

[[steps]]
name = "hang"
capability = "assembly"
after = ["cut"]
duration_s = 45
[steps.program]
parameters = { hanger = "'hook'", spacing = "width - 40" }

[[steps]]
name = "inspect"
capability = "test"
after = ["engrave", "hang"]
duration_s = 60
"""


def family(tmp_path: Path, text: str = PLAN):
    write(tmp_path, families={"sign": text})
    return load_plant(tmp_path).families["sign"]


def test_plan_skips_by_condition_and_keeps_the_graph(tmp_path):
    from routing.planner import plan

    sign = family(tmp_path)
    steps = plan(sign, sign.configure({"width": 600}))
    assert [(s.name, s.skipped, s.after) for s in steps] == [
        ("cut", False, ()),
        ("engrave", True, (1,)),
        ("hang", False, (1,)),
        ("inspect", False, (2, 3)),
    ]
    assert steps[0].expected_s == 160.0
    assert dict(steps[0].attributes) == {"material": "oak"}
    hang = json.loads(steps[2].program.body)
    assert hang == {"hanger": "hook", "spacing": 560}


def test_generator_programs_are_calls_made_later_and_addressed_by_content(tmp_path):
    from routing.planner import plan

    sign = family(tmp_path)
    one = plan(sign, sign.configure({"text": "ADA", "width": 500}))[1]
    same = plan(sign, sign.configure({"text": "ADA", "width": 500}))[1]
    other = plan(sign, sign.configure({"text": "BOB", "width": 500}))[1]
    assert (one.skipped, one.expected_s) == (False, 36.0)
    assert one.program.kind is ProgramKind.GENERATOR
    assert json.loads(one.program.body) == {
        "generator": "engrave_text",
        "parameters": {"mode": "laser", "power_percent": 80, "text": "ADA", "width_mm": 500},
    }
    assert one.program.id == same.program.id != other.program.id


def test_a_broken_rule_names_the_options_and_the_rule(tmp_path):
    sign = family(tmp_path)
    sign.configure({"wood": "walnut", "width": 1600})
    with pytest.raises(OrderError) as err:
        sign.configure({"wood": "walnut", "width": 1700})
    (problem,) = err.value.problems
    assert problem.path == "options.width, options.wood"
    assert problem.reason == "walnut allows width <= 1600 (rule 1: width <= 1600)"


STEP_1 = 'name = "engrave"'


@pytest.mark.parametrize(
    ("old", "new", "anchor", "path", "reason"),
    [
        (
            "when = \"text != ''\"",
            'when = "text !="',
            'when = "text !="',
            "steps[1].when",
            "unexpected end of expression at column 8",
        ),
        (
            'duration_s = "100 + width / 10"',
            'duration_s = "100 + widht / 10"',
            "widht",
            "steps[0].duration_s",
            "unknown option 'widht' (family has: wood, width, text)",
        ),
        (
            'after = ["engrave", "hang"]',
            'after = ["engrave", "hung"]',
            "hung",
            "steps[3].after[1]",
            "unknown step 'hung'",
        ),
        (
            'after = ["cut"]\nduration_s = 45',
            'after = ["inspect"]\nduration_s = 45',
            'after = ["inspect"]',
            "steps[2].after",
            "the steps' order has a cycle",
        ),
        (
            'require = "width <= 1600"',
            'require = "wdth <= 1600"',
            "wdth",
            "rules[0].require",
            "unknown option 'wdth'",
        ),
        (
            'duration_s = "100 + width / 10"',
            "duration_s = \"wood + 's'\"",
            'name = "cut"',
            "steps[0]",
            "must give a number (got 'oaks')",
        ),
        (
            "when = \"text != ''\"",
            'when = "len(text)"',
            STEP_1,
            "steps[1]",
            "must be true or false",
        ),
    ],
)
def test_bad_plans_are_refused_at_their_key(tmp_path, old, new, anchor, path, reason):
    assert old in PLAN
    text = PLAN.replace(old, new)
    write(tmp_path, families={"sign": text})
    problem = only_problem(tmp_path)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if anchor in row)
    if path in ("steps[0]", "steps[1]"):
        line -= 1  # the [[steps]] header above the step's name
    assert (Path(problem.file).name, problem.line, problem.path) == ("sign.toml", line, path)
    assert reason in problem.reason


def test_a_family_without_rules_or_graph_is_still_a_sequence(tmp_path):
    write(tmp_path, families={"stand": FAMILY})
    stand = load_plant(tmp_path).families["stand"]
    assert [s.after for s in stand.steps] == [None, None]
    from routing.planner import plan

    assert [s.after for s in plan(stand, stand.configure({}))] == [(), (1,)]


def test_limits_and_quality_policy_are_read_and_checked(tmp_path):
    text = (
        PLAN.replace(
            'after = ["engrave", "hang"]\nduration_s = 60\n',
            'after = ["engrave", "hang"]\nduration_s = 60\nlimits = { width_mm = [99.5, 100.5] }\n',
        )
        + '\n[quality]\npolicy = "rework"\nmax_retries = 1\nrework_from = "hang"\n'
    )
    sign = family(tmp_path, text)
    assert sign.steps[3].limits == {"width_mm": (99.5, 100.5)}
    assert (sign.quality.policy, sign.quality.rework_from) == ("rework", "hang")
    from routing.planner import plan

    inspect = plan(sign, sign.configure({}))[3]
    assert inspect.quality == {
        "limits": {"width_mm": [99.5, 100.5]},
        "policy": "rework",
        "retries": 1,
        "rework_from": 3,
    }
    write(
        tmp_path,
        families={
            "sign": text.replace("[99.5, 100.5]", "[101, 100]").replace(
                'rework_from = "hang"', 'rework_from = "hung"'
            )
        },
    )
    from tests.unit.test_settings import problems_of

    reasons = sorted((p.path, p.reason) for p in problems_of(tmp_path))
    assert reasons == [
        ("quality.rework_from", "unknown step 'hung' (steps: cut, engrave, hang, inspect)"),
        ("steps[3].limits.width_mm", "low 101 is greater than high 100"),
    ]
