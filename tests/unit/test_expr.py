"""The family expression language: what it computes, what it refuses, and that nothing
but ExpressionError ever comes out of it."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.expr import MAX_DEPTH, Expression, ExpressionError

ENV = {"wood": "walnut", "width_mm": 1700, "text": "ADA", "pad": True, "angle": 65, "d": 2.5}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("wood != 'walnut' or width_mm <= 1600", False),
        ("wood == 'oak' or width_mm > 1600", True),
        ("300 + 2.5 * len(text)", 307.5),
        ("600 if wood == 'petg' else 480", 480),
        ("text != ''", True),
        ("wood in ['oak', 'walnut']", True),
        ("wood not in ['oak']", True),
        ("'D' in text", True),
        ("50 < angle <= 70", True),
        ("50 < angle < 60", False),
        ("-angle + 1", -64),
        ("not pad", False),
        ("not not pad and true", True),
        ("max(1, 2, width_mm) / 100", 17.0),
        ("min(d, 3) * 2", 5.0),
        ("ceil(width_mm / 300)", 6),
        ("floor(d) + round(2.6) + abs(-1)", 6),
        ('"a" + text', "aADA"),
        ("width_mm % 7", 1700 % 7),
        ("1.5e2 + .5", 150.5),
        ("(1 + 2) * 3", 9),
        ("'it\\'s'", "it's"),
    ],
)
def test_evaluates(text, value):
    assert Expression.parse(text).evaluate(ENV) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("width_mm <=", "unexpected end of expression at column 12"),
        ("foo(1)", "unknown function 'foo' at column 1"),
        ("1 +* 2", "unexpected '*' at column 4"),
        ("(1 + 2", "expected ')' at column 7, found the end"),
        ("1 2", "unexpected '2' at column 3"),
        ("a.b", "unexpected '.' at column 2"),
        ("__import__('os')", "unknown function '__import__'"),
        ("width_mm = 3", "unexpected '=' at column 10"),
        ("", "is empty"),
        ("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), "nested too deeply"),
        ("1" * 3000, "longer than 2000 characters"),
    ],
)
def test_refuses_to_parse_with_the_place(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        Expression.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wood < 3", "cannot compare 'walnut' < 3"),
        ("nosuch + 1", "unknown name 'nosuch' at column 1"),
        ("1 / 0", "division by zero"),
        ("text * 3", "'*' needs numbers"),
        ("len(1)", "len()"),
        ("pad and 1", "'and' needs true or false"),
        ("3 if 1 else 4", "'if' needs true or false"),
        ("wood in 3", "'in' needs a list or text"),
    ],
)
def test_refuses_to_evaluate_with_the_reason(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        Expression.parse(text).evaluate(ENV)


def test_names_are_collected_for_config_checks():
    expr = Expression.parse("wood != 'walnut' or width_mm <= max(1600, d)")
    assert expr.names == {"wood", "width_mm", "d"}


def test_truth_and_number_insist_on_their_type():
    assert Expression.parse("pad").truth(ENV) is True
    with pytest.raises(ExpressionError, match="must be true or false"):
        Expression.parse("angle").truth(ENV)
    assert Expression.parse("angle * 2").number(ENV) == 130.0
    with pytest.raises(ExpressionError, match="must give a number"):
        Expression.parse("text").number(ENV)


ALPHABET = st.sampled_from(
    [
        *list("abdtwxy_0123456789.+-*/%<>=!()[],'\" "),
        " and ",
        " or ",
        " not ",
        " in ",
        " if ",
        " else ",
        "len(",
        "max(",
        "true",
        "false",
        "wood",
        "width_mm",
        "text",
        "pad",
        "angle",
    ]
)


@settings(max_examples=800, deadline=None)
@given(st.lists(ALPHABET, max_size=30).map("".join))
def test_any_text_gives_a_value_or_an_expression_error(text):
    with contextlib.suppress(ExpressionError):
        Expression.parse(text).evaluate(ENV)
