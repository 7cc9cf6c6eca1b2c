"""Per-unit routing from the demo families, property-tested: any valid option set gives a
routing whose programs are real G-code inside the envelope of every cell they may run
on; anything else is refused with OrderError, never another exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mes.domain import ProgramKind
from mes.errors import OrderError
from mes.service.order_files import OrderSpec, UnitSpec
from mes.service.release import prepare
from mes.settings import load_plant
from mes.settings.stations import stations
from routing.family import Family, OptionKind, OptionSpec
from routing.fit import place
from routing.planner import materialize, plan
from routing.programs.gcode import check
from tests.conftest import REPO

PLANT = load_plant(REPO / "config")
STATIONS = {s.name: s for s in stations(PLANT)}
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def valid_value(spec: OptionSpec) -> st.SearchStrategy[object]:
    if spec.kind is OptionKind.CHOICE:
        return st.sampled_from(spec.choices)
    if spec.kind is OptionKind.BOOLEAN:
        return st.booleans()
    if spec.kind is OptionKind.TEXT:
        alphabet = spec.allowed_chars or "ABC xyz"
        return st.text(alphabet=alphabet, max_size=spec.max_length or 12)
    low, high, step = spec.min or 0, spec.max or 100, spec.step
    if step:
        return st.integers(0, int((high - low) // step)).map(
            lambda n: (int if spec.kind is OptionKind.INTEGER else float)(low + n * step)
        )
    if spec.kind is OptionKind.INTEGER:
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False)


def options_of(family: Family) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({n: valid_value(s) for n, s in family.options.items()})


@pytest.mark.parametrize("name", sorted(PLANT.families))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_options_give_programs_inside_every_cell_they_may_run_on(name, data):
    family = PLANT.families[name]
    chosen = data.draw(options_of(family))
    try:
        values = family.configure(chosen)
    except OrderError as exc:
        assert all("rule" in p.reason for p in exc.problems)  # only the family's rules
        return
    for step in plan(family, values):
        if step.skipped or step.program.kind is not ProgramKind.GENERATOR:
            continue
        cells, reasons = place(step, list(STATIONS.values()))
        capable = [s for s in STATIONS.values() if step.capability in s.capabilities]
        eligible = [STATIONS[c] for c in cells] if cells else capable
        assert eligible, reasons
        gcode = materialize(step.program).body
        for station in eligible:
            assert station.envelope is not None
            assert check(gcode, station.envelope, station.words) == [], (station.name, step)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers()),
)


@pytest.mark.parametrize("name", sorted(PLANT.families))
@settings(max_examples=150, deadline=None)
@given(
    chosen=st.dictionaries(
        st.sampled_from(
            ["text", "width_mm", "wood", "angle_deg", "pad", "colour", "material", "x"]
        ),
        JUNK,
    )
)
def test_any_option_values_are_released_or_refused_with_order_error(name, chosen):
    spec = OrderSpec("P-1", 0, None, (UnitSpec(name, chosen, "units[0]", 3),), "orders[0]", 1)
    try:
        orders, units, _, _ = prepare(
            [spec], PLANT.families, NOW, source="f.toml", stations=list(STATIONS.values())
        )
    except OrderError as exc:
        assert all(p.file == "f.toml" and "order P-1" in p.path for p in exc.problems)
    else:
        assert [u.family for u in units] == [name] and orders[0].id == "P-1"


def release_one(family: str, **options: object):
    spec = OrderSpec("P-1", 0, None, (UnitSpec(family, options, "units[0]", 7),), "", 1)
    return prepare([spec], PLANT.families, NOW, source="f.toml", stations=list(STATIONS.values()))


def test_a_sign_too_big_for_the_laser_is_engraved_on_the_router_only():
    _, (unit,), _, _ = release_one("sign", width_mm=1000, height_mm=500, text="WELCOME HOME")
    steps = {s.name: s for s in unit.steps}
    assert steps["engrave-text"].cells == ("router-1",)
    _, (small,), _, _ = release_one("sign", width_mm=400, height_mm=200, text="HI")
    assert {s.name: s.cells for s in small.steps}["engrave-text"] == ()  # any capable cell


def test_a_part_that_fits_no_capable_cell_is_refused_with_each_cells_reason():
    narrow = [s for s in STATIONS.values() if s.name != "router-1"]
    spec = OrderSpec(
        "P-1",
        0,
        None,
        (UnitSpec("sign", {"width_mm": 1000, "height_mm": 500}, "units[0]", 7),),
        "",
        1,
    )
    with pytest.raises(OrderError) as err:
        prepare([spec], PLANT.families, NOW, source="f.toml", stations=narrow)
    (problem,) = err.value.problems
    assert problem.line == 7 and problem.path == "order P-1, units[0]"
    assert problem.reason.startswith("step engrave-text: the program fits no capable cell:")
    assert "laser-1: the program: X" in problem.reason and "beyond the envelope's maximum" in (
        problem.reason
    )


def test_text_the_font_lacks_is_refused_at_release_naming_the_step():
    family = PLANT.families["nameplate"]
    lax = Family(
        family.name,
        {**family.options, "text": OptionSpec("text", OptionKind.TEXT, default="X")},
        family.steps,
        rules=family.rules,
    )
    spec = OrderSpec("P-1", 0, None, (UnitSpec("nameplate", {"text": "ZOË"}, "u", 2),), "", 1)
    with pytest.raises(OrderError) as err:
        prepare([spec], {"nameplate": lax}, NOW, stations=list(STATIONS.values()))
    (problem,) = err.value.problems
    assert problem.reason.startswith("step engrave-name: engrave_text: ")
    assert "Ë" in problem.reason


def test_the_routing_records_programs_by_content_and_identical_units_share_them():
    _, units, programs, _ = prepare(
        [
            OrderSpec(
                "P-1",
                0,
                None,
                tuple(
                    UnitSpec("nameplate", {"text": "ADA", "width_mm": 160}, f"u{i}", None)
                    for i in range(3)
                ),
                "",
                None,
            )
        ],
        PLANT.families,
        NOW,
        stations=list(STATIONS.values()),
    )
    assert len({s.program_id for u in units for s in u.steps if s.name == "print-base"}) == 1
    assert len(programs) == len({p.id for p in programs})
    call = json.loads(
        next(
            p.body for p in programs if p.kind is ProgramKind.GENERATOR and "engrave_text" in p.body
        )
    )
    assert call["parameters"]["text"] == "ADA"
