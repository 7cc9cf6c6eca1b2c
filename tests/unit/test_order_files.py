"""Order files: TOML, JSON and CSV read into the same specs; every bad input an OrderError."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mes.errors import OrderError, Problem
from mes.service import order_files
from mes.service.order_files import OrderSpec, UnitSpec, parse_orders, read_order_file

TOML_TEXT = """\
# Two orders, as a planner writes them.
[[orders]]
id = "SO-1001"
priority = 2
due = 2026-12-01T17:00:00Z

[[orders.units]]
family = "nameplate"
[orders.units.options]
text = "ALICE"
width_mm = 160

[[orders.units]]
family = "phone-stand"
options = { angle_deg = 70, pad = false }

[[orders]]
id = "SO-1002"
due = 2026-12-02

[[orders.units]]
family = "sign"
options = { wood = "oak", width_mm = 600.5, text = "OPEN" }

[[orders.units]]
family = "nameplate"

[[orders.units]]
family = "phone-stand"
options.colour = "teal"
"""

JSON_TEXT = """\
{
  "orders": [
    {
      "id": "SO-1001",
      "priority": 2,
      "due": "2026-12-01T17:00:00Z",
      "units": [
        {"family": "nameplate", "options": {"text": "ALICE", "width_mm": 160}},
        {"family": "phone-stand", "options": {"angle_deg": 70, "pad": false}}
      ]
    },
    {
      "id": "SO-1002",
      "due": "2026-12-02",
      "units": [
        {"family": "sign", "options": {"wood": "oak", "width_mm": 600.5, "text": "OPEN"}},
        {"family": "nameplate"},
        {
          "family": "phone-stand",
          "options": {"colour": "teal"}
        }
      ]
    }
  ]
}
"""

CSV_TEXT = """\
order_id,family,priority,due,text,option.width_mm,angle_deg,pad,wood,colour
SO-1001,nameplate,2,2026-12-01T17:00:00Z,ALICE,160,,,,
SO-1001,phone-stand,,,,,70,false,,
SO-1002,sign,,2026-12-02,OPEN,600.5,,,oak,
SO-1002,nameplate,,,,,,,,
SO-1002,phone-stand,,,,,,,,teal
"""

Expected = tuple[str | None, int, datetime | None, list[tuple[str, dict[str, object]]]]

EXPECTED: list[Expected] = [
    (
        "SO-1001",
        2,
        datetime(2026, 12, 1, 17, tzinfo=UTC),
        [
            ("nameplate", {"text": "ALICE", "width_mm": 160}),
            ("phone-stand", {"angle_deg": 70, "pad": False}),
        ],
    ),
    (
        "SO-1002",
        0,
        datetime(2026, 12, 2, tzinfo=UTC),
        [
            ("sign", {"wood": "oak", "width_mm": 600.5, "text": "OPEN"}),
            ("nameplate", {}),
            ("phone-stand", {"colour": "teal"}),
        ],
    ),
]


def shape(orders: list[OrderSpec]) -> list[tuple[object, ...]]:
    return [(o.id, o.priority, o.due, [(u.family, u.options) for u in o.units]) for o in orders]


def as_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def problems_of(text: str, fmt: str, source: str = "orders.x") -> list[Problem]:
    with pytest.raises(OrderError) as caught:
        parse_orders(text, fmt, source)
    return caught.value.problems


def only_problem(text: str, fmt: str, source: str = "orders.x") -> Problem:
    problems = problems_of(text, fmt, source)
    assert len(problems) == 1, problems
    return problems[0]


# --- round trips ------------------------------------------------------------------------


def test_toml_file_reads_two_orders_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "orders.toml"
    path.write_text(TOML_TEXT, encoding="utf-8")
    orders = read_order_file(path)
    assert shape(orders) == EXPECTED
    assert [(o.where, o.line) for o in orders] == [("orders[0]", 2), ("orders[1]", 17)]
    assert [(u.where, u.line) for u in orders[0].units + orders[1].units] == [
        ("orders[0].units[0]", 7),
        ("orders[0].units[1]", 13),
        ("orders[1].units[0]", 21),
        ("orders[1].units[1]", 25),
        ("orders[1].units[2]", 28),
    ]


def test_json_file_reads_the_same_orders_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text(JSON_TEXT, encoding="utf-8")
    orders = read_order_file(path)
    assert shape(orders) == EXPECTED
    assert [o.line for o in orders] == [3, 12]
    assert [u.line for o in orders for u in o.units] == [8, 9, 16, 17, 18]
    assert orders[1].units[2].where == "orders[1].units[2]"


def test_csv_file_reads_the_same_orders_with_text_options(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    orders = read_order_file(path)
    as_csv = [
        (i, p, d, [(f, {k: as_text(v) for k, v in opts.items()}) for f, opts in units])
        for i, p, d, units in EXPECTED
    ]
    assert shape(orders) == as_csv
    assert [(o.where, o.line) for o in orders] == [
        ("order SO-1001 (rows 2-3)", 2),
        ("order SO-1002 (rows 4-6)", 4),
    ]
    assert [(u.where, u.line) for u in orders[1].units] == [
        ("row 4", 4),
        ("row 5", 5),
        ("row 6", 6),
    ]


def test_single_order_at_top_level_in_toml_and_json() -> None:
    toml = 'id = "SO-7"\npriority = -3\n\n[[units]]\nfamily = "sign"\n\n[[units]]\nfamily = "x"\n'
    orders = parse_orders(toml, "toml")
    assert [(o.id, o.priority, o.where, o.line) for o in orders] == [("SO-7", -3, "order", 1)]
    assert [(u.where, u.line) for u in orders[0].units] == [("units[0]", 4), ("units[1]", 7)]
    as_json = '{"id": "SO-7", "priority": -3,\n "units": [{"family": "sign"},\n {"family": "x"}]}'
    assert shape(parse_orders(as_json, "json")) == shape(orders)


def test_json_top_level_list_of_orders() -> None:
    orders = parse_orders(
        '[{"units": [{"family": "sign"}]},\n {"units": [{"family": "x"}]}]', "json"
    )
    assert [(o.id, o.where, o.line) for o in orders] == [(None, "[0]", 1), (None, "[1]", 2)]


def test_due_naive_is_utc_and_offsets_are_converted() -> None:
    text = (
        '[[orders]]\ndue = 2026-12-01T09:00:00\nunits = [{family = "a"}]\n'
        '[[orders]]\ndue = 2026-12-01T09:00:00+02:00\nunits = [{family = "a"}]\n'
        '[[orders]]\ndue = "2026-12-01 09:00"\nunits = [{family = "a"}]\n'
    )
    dues = [o.due for o in parse_orders(text, "toml")]
    assert dues == [
        datetime(2026, 12, 1, 9, tzinfo=UTC),
        datetime(2026, 12, 1, 7, tzinfo=UTC),
        datetime(2026, 12, 1, 9, tzinfo=UTC),
    ]
    assert all(d is not None and d.utcoffset() is not None for d in dues)


def test_byte_order_mark_is_ignored() -> None:
    assert parse_orders('\ufeff{"units": [{"family": "a"}]}', "json")[0].units[0].family == "a"


# --- CSV --------------------------------------------------------------------------------


def test_csv_groups_rows_by_order_id_in_file_order() -> None:
    text = "order_id,family\nA,x\nB,y\nA,z\n"
    orders = parse_orders(text, "csv")
    assert [(o.id, [u.family for u in o.units], o.where) for o in orders] == [
        ("A", ["x", "z"], "order A (rows 2, 4)"),
        ("B", ["y"], "order B (row 3)"),
    ]


def test_csv_empty_cells_are_not_given_and_option_prefix_names_the_option() -> None:
    text = "family,option.text,width_mm\nnameplate,BOB,\nnameplate, ,120\n"
    orders = parse_orders(text, "csv")
    assert [o.units[0].options for o in orders] == [{"text": "BOB"}, {"width_mm": "120"}]


def test_csv_rows_without_order_id_are_separate_orders() -> None:
    text = "order_id,family,priority\n,x,1\n,y,2\nA,z,\n"
    orders = parse_orders(text, "csv")
    assert [(o.id, o.priority, o.where, o.line) for o in orders] == [
        (None, 1, "row 2", 2),
        (None, 2, "row 3", 3),
        ("A", 0, "order A (row 4)", 4),
    ]
    no_column = parse_orders("family\nx\ny\n", "csv")
    assert [(o.id, o.units[0].family) for o in no_column] == [(None, "x"), (None, "y")]


def test_csv_conflicting_priority_names_the_rows() -> None:
    problem = only_problem("order_id,family,priority\nA,x,1\nA,y,\nA,z,3\n", "csv", "o.csv")
    assert (problem.file, problem.line, problem.path) == ("o.csv", 4, "priority")
    assert "rows 2 and 4" in problem.reason
    assert "'A'" in problem.reason


def test_csv_conflicting_due_names_the_rows_and_equal_values_agree() -> None:
    text = "order_id,family,due\nA,x,2026-12-01\nA,y,2026-12-01T00:00:00Z\nA,z,2026-12-03\n"
    problem = only_problem(text, "csv")
    assert (problem.line, problem.path) == (4, "due")
    assert "rows 2 and 4" in problem.reason


def test_csv_line_numbers_count_blank_lines_and_quoted_newlines() -> None:
    text = 'family,text\n\nnameplate,"TWO\nLINES"\nsign,\n'
    orders = parse_orders(text, "csv")
    assert [(o.line, o.units[0].options) for o in orders] == [
        (3, {"text": "TWO\nLINES"}),
        (5, {}),
    ]


def test_csv_header_and_row_shape_problems() -> None:
    text = "\ufefffamily,width_mm,option.width_mm,\nsign,1,2,\nsign,1,,x,y\n"
    problems = problems_of(text, "csv", "o.csv")
    assert [(p.line, p.path) for p in problems] == [(1, "option.width_mm"), (3, ""), (3, "")]
    assert "duplicate column" in problems[0].reason
    assert "5 cells but the header has 4" in problems[1].reason
    assert "no name in the header" in problems[2].reason


# --- bad input: each problem names file, line, path and reason ----------------------------


def test_toml_syntax_error_has_its_line() -> None:
    problem = only_problem('[[orders]]\nid = "SO-1"\npriority = \n', "toml", "o.toml")
    assert (problem.file, problem.line, problem.path) == ("o.toml", 3, "")
    assert "TOML syntax error" in problem.reason
    assert "column" in problem.reason


def test_toml_error_at_end_of_document_points_at_the_last_line() -> None:
    problem = only_problem('[[orders]]\nid = "SO-1', "toml")
    assert problem.line == 2
    assert "end of file" in problem.reason


def test_json_syntax_error_has_its_line() -> None:
    problem = only_problem('{"orders": [\n  {"id": "A",}\n]}', "json", "o.json")
    assert (problem.file, problem.line, problem.path) == ("o.json", 2, "")
    assert "JSON syntax error" in problem.reason


def test_csv_syntax_error_has_its_line() -> None:
    problem = only_problem('family,text\nsign,OK\nsign,"BAD"X\n', "csv", "o.csv")
    assert (problem.file, problem.line) == ("o.csv", 3)
    assert "CSV syntax error" in problem.reason


def test_unknown_order_key_lists_the_allowed_keys() -> None:
    text = '[[orders]]\nid = "SO-1"\nqty = 3\n[[orders.units]]\nfamily = "sign"\n'
    problem = only_problem(text, "toml", "o.toml")
    assert (problem.file, problem.line, problem.path) == ("o.toml", 3, "orders[0].qty")
    assert "'qty'" in problem.reason
    assert "id, priority, due, units" in problem.reason


def test_option_written_directly_in_a_unit_is_an_unknown_key() -> None:
    text = '{"orders": [{"units": [\n  {"family": "phone-stand",\n   "colour": "teal"}]}]}'
    problem = only_problem(text, "json", "o.json")
    assert (problem.line, problem.path) == (3, "orders[0].units[0].colour")
    assert "family, options" in problem.reason


def test_order_without_units() -> None:
    text = '[[orders]]\nid = "SO-1"\n\n[[orders]]\nid = "SO-2"\nunits = []\n'
    first, second = problems_of(text, "toml", "o.toml")
    assert (first.file, first.line, first.path) == ("o.toml", 1, "orders[0]")
    assert "no units" in first.reason
    assert (second.line, second.path) == (4, "orders[1]")


def test_unit_without_family() -> None:
    text = '{"orders": [{"units": [\n  {"family": "a"},\n  {"options": {"x": 1}}\n]}]}'
    problem = only_problem(text, "json", "o.json")
    assert (problem.file, problem.line, problem.path) == ("o.json", 3, "orders[0].units[1].family")
    assert "needs a family" in problem.reason


def test_csv_row_without_family() -> None:
    problem = only_problem("order_id,family,text\nA,sign,HI\nA,,HO\n", "csv", "o.csv")
    assert (problem.file, problem.line, problem.path) == ("o.csv", 3, "family")
    assert "needs a family" in problem.reason


def test_csv_header_without_family_column() -> None:
    problem = only_problem("order_id,text\nA,HI\n", "csv", "o.csv")
    assert (problem.line, problem.path) == (1, "family")
    assert "no 'family' column" in problem.reason


def test_bad_due_says_the_expected_format() -> None:
    text = '[[orders]]\ndue = "next tuesday"\n[[orders.units]]\nfamily = "a"\n'
    problem = only_problem(text, "toml", "o.toml")
    assert (problem.file, problem.line, problem.path) == ("o.toml", 2, "orders[0].due")
    assert "ISO-8601" in problem.reason
    assert "2026-12-01T17:00:00Z" in problem.reason
    csv_problem = only_problem("family,due\nsign,31/12/2026\n", "csv")
    assert (csv_problem.line, csv_problem.path) == (2, "due")
    assert "ISO-8601" in csv_problem.reason


@pytest.mark.parametrize("value", ["101", "1.5", '"2"', "true"])
def test_bad_priority(value: str) -> None:
    text = f'[[orders]]\n\npriority = {value}\n[[orders.units]]\nfamily = "a"\n'
    problem = only_problem(text, "toml", "o.toml")
    assert (problem.line, problem.path) == (3, "orders[0].priority")
    assert "whole number from -100 to 100" in problem.reason


def test_csv_bad_priority() -> None:
    problem = only_problem("family,priority\nsign,high\n", "csv")
    assert (problem.line, problem.path) == (2, "priority")
    assert "whole number" in problem.reason


def test_nested_option_value() -> None:
    text = (
        '[[orders]]\n[[orders.units]]\nfamily = "sign"\n[orders.units.options]\n'
        'text = "OK"\nsize = [200, 100]\n'
    )
    problem = only_problem(text, "toml", "o.toml")
    assert (problem.line, problem.path) == (6, "orders[0].units[0].options.size")
    assert "string, number or boolean, not array" in problem.reason


def test_options_not_a_table() -> None:
    problem = only_problem('{"units": [{"family": "a", "options": [1, 2]}]}', "json")
    assert problem.path == "units[0].options"
    assert "must be a table" in problem.reason


def test_duplicate_order_id() -> None:
    text = (
        '{"orders": [\n  {"id": "SO-1", "units": [{"family": "a"}]},\n'
        '  {"id": "SO-1", "units": [{"family": "b"}]}\n]}'
    )
    problem = only_problem(text, "json", "o.json")
    assert (problem.file, problem.line, problem.path) == ("o.json", 3, "orders[1].id")
    assert "duplicate order id 'SO-1'" in problem.reason
    assert "orders[0]" in problem.reason


@pytest.mark.parametrize("order_id", ["", "-lead", "has space", "x" * 65, "SO-1\n"])
def test_bad_order_id(order_id: str) -> None:
    problem = only_problem(json.dumps({"id": order_id, "units": [{"family": "a"}]}), "json")
    assert problem.path == "id"
    assert "letters, digits" in problem.reason


def test_every_problem_in_a_file_is_reported() -> None:
    text = (
        "[[orders]]\nid = 7\npriority = 500\ndue = 12\n"
        '[[orders.units]]\nsize = 3\n[[orders.units]]\nfamily = ""\noptions = 1\n'
    )
    paths = [(p.line, p.path) for p in problems_of(text, "toml")]
    assert paths == [
        (2, "orders[0].id"),
        (3, "orders[0].priority"),
        (4, "orders[0].due"),
        (6, "orders[0].units[0].size"),
        (5, "orders[0].units[0].family"),
        (8, "orders[0].units[1].family"),
        (9, "orders[0].units[1].options"),
    ]


def test_empty_files_have_no_orders() -> None:
    assert "no orders" in only_problem("", "toml").reason
    assert "no orders" in only_problem('{"orders": []}', "json").reason
    assert "header" in only_problem("", "csv").reason
    assert "no orders" in only_problem("family\n", "csv").reason
    assert "not string" in only_problem('"text"', "json").reason


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text("orders: []\n", encoding="utf-8")
    with pytest.raises(OrderError) as caught:
        read_order_file(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (str(path), None, "")
    assert "'.yaml'" in problem.reason
    assert ".toml, .json or .csv" in problem.reason


def test_unknown_format_name() -> None:
    assert "toml, json or csv" in only_problem("", "xml").reason


def test_oversize_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_files, "MAX_FILE_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"units": [{"family": "a" * 200}]}), encoding="utf-8")
    with pytest.raises(OrderError) as caught:
        read_order_file(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (str(path), None, "")
    assert "too large" in problem.reason
    assert "limit is 100 bytes" in problem.reason


def test_too_many_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_files, "MAX_UNITS_PER_FILE", 2)
    units = [{"family": "a"}] * 3
    assert "too many units (3" in only_problem(json.dumps({"units": units}), "json").reason
    assert "too many units (3" in only_problem("family\na\nb\nc\n", "csv").reason
    assert len(parse_orders(json.dumps({"units": units[:2]}), "json")[0].units) == 2


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(OrderError, match="cannot read"):
        read_order_file(tmp_path / "missing.toml")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(OrderError, match="cannot read"):
        read_order_file(tmp_path / "folder.json")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"family,text\nnameplate,J\xdcRGEN\n")
    with pytest.raises(OrderError) as caught:
        read_order_file(bad)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == (str(bad), 2)
    assert "not UTF-8" in problem.reason


def test_huge_integers_and_deep_nesting_are_order_errors() -> None:
    huge = "priority = 0x" + "f" * 5000 + "\n[[units]]\nfamily = 'a'\n"
    assert "whole number" in only_problem(huge, "toml").reason
    assert "digits" in only_problem("priority = " + "9" * 5000, "toml").reason
    assert "nested too deeply" in only_problem("[" * 100_000 + "]" * 100_000, "json").reason
    assert "nested too deeply" in only_problem("a = " + "[" * 5000 + "]" * 5000, "toml").reason


# --- property: nothing but OrderError ever escapes ----------------------------------------

ORDER_WORDS = ["orders", "units", "family", "options", "id", "priority", "due", "qty"]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["SO-1", "2026-12-01", "2026-12-01T17:00:00Z", "sign", ""]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(ORDER_WORDS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)
order_like = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "family": json_values,
            "options": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        },
    ),
    lambda units: (
        st.fixed_dictionaries(
            {"units": st.lists(units, max_size=3)},
            optional={"id": json_values, "priority": json_values, "due": json_values},
        )
        | st.fixed_dictionaries({"orders": st.lists(units, max_size=3)})
    ),
    max_leaves=8,
)
documents = order_like | json_values


def toml_value(value: object) -> str:
    if value is None:
        return "1979-05-27T07:32:00"  # TOML has no null: a local date-time instead
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def toml_document(value: Mapping[str, object], prefix: str = "") -> str:
    """TOML-ish text: scalars and inline tables first, arrays of tables as [[headers]]."""
    lines, tables = [], []
    for key, item in value.items():
        if isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
            tables.append((key, item))
        else:
            lines.append(f"{toml_key(key)} = {toml_value(item)}")
    for key, items in tables:
        name = f"{prefix}.{toml_key(key)}" if prefix else toml_key(key)
        for item in items:
            assert isinstance(item, dict)
            lines += [f"[[{name}]]", toml_document(item, name)]
    return "\n".join(lines) + "\n"


def check_outcome(text: str, fmt: str) -> None:
    """Either a list of specs or an OrderError whose every problem names the file."""
    refused: OrderError | None = None
    orders: list[OrderSpec] = []
    try:
        orders = parse_orders(text, fmt, "fuzz")
    except OrderError as exc:
        refused = exc
    if refused is not None:
        assert refused.problems
        assert all(p.file == "fuzz" and p.reason for p in refused.problems)
    assert isinstance(orders, list)
    assert all(isinstance(o, OrderSpec) for o in orders)
    assert all(isinstance(u, UnitSpec) for o in orders for u in o.units)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(text=st.text(max_size=200), fmt=st.sampled_from(["toml", "json", "csv"]))
def test_arbitrary_text_raises_only_order_error(text: str, fmt: str) -> None:
    check_outcome(text, fmt)


@FUZZ
@given(document=documents, indent=st.sampled_from([None, 1]))
def test_json_like_values_as_json_raise_only_order_error(document: object, indent: int) -> None:
    check_outcome(json.dumps(document, indent=indent), "json")


@FUZZ
@given(document=documents)
def test_json_like_values_as_toml_raise_only_order_error(document: object) -> None:
    text = toml_document(document) if isinstance(document, dict) else toml_value(document)
    check_outcome(text, "toml")


csv_cells = st.text(alphabet=st.sampled_from('ab1-,"\n\r '), max_size=5) | st.sampled_from(
    ["", "SO-1", "sign", "2", "2026-12-01", "101", "x"]
)
csv_headers = st.lists(
    st.sampled_from(["order_id", "family", "priority", "due", "option.x", "option.", "", "x"]),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(header=csv_headers, rows=st.lists(st.lists(csv_cells, max_size=7), max_size=6))
def test_csv_like_rows_raise_only_order_error(header: list[str], rows: list[list[str]]) -> None:
    lines = [",".join(header)] + [",".join(row) for row in rows]
    check_outcome("\n".join(lines) + "\n", "csv")


# --- property: valid orders round-trip through TOML and JSON, every unit with a line --------

option_values = st.one_of(
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet="ABC xyz-.'", max_size=8),
)
names = st.from_regex(r"[a-z][a-z_]{0,7}", fullmatch=True)
valid_orders = st.lists(
    st.fixed_dictionaries(
        {
            "units": st.lists(
                st.fixed_dictionaries(
                    {"family": names},
                    optional={"options": st.dictionaries(names, option_values, max_size=3)},
                ),
                min_size=1,
                max_size=3,
            )
        },
        optional={"priority": st.integers(-100, 100)},
    ),
    min_size=1,
    max_size=3,
)


@FUZZ
@given(orders=valid_orders)
def test_valid_orders_round_trip_through_toml_and_json(orders: list[dict[str, object]]) -> None:
    document = {"orders": orders}
    from_json = parse_orders(json.dumps(document, indent=2), "json")
    from_toml = parse_orders(toml_document(document), "toml")
    assert shape(from_json) == shape(from_toml)
    assert [len(o.units) for o in from_json] == [len(o["units"]) for o in orders]  # type: ignore[arg-type]
    for parsed in (from_json, from_toml):
        lines = [o.line for o in parsed] + [u.line for o in parsed for u in o.units]
        assert all(line is not None for line in lines)
