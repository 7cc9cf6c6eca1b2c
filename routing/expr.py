"""A small, safe expression language for product families: rules, conditions, durations.

Theory of operation: the text is tokenised and parsed by our own precedence-climbing
parser into a tree of tuples; evaluation walks that tree with the unit's option values.
Nothing reaches Python's ``eval`` or attribute access, so a family file can only
compute, never act. Sizes are bounded (text length, nesting depth) and operations that
could blow up (string repetition, powers) do not exist.

Grammar, loosest binding first::

    expr    := or ['if' or 'else' expr]          # a if cond else b
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | compare
    compare := sum (('=='|'!='|'<'|'<='|'>'|'>='|'in'|'not' 'in') sum)*   # chains like a < b < c
    sum     := term (('+'|'-') term)*
    term    := unary (('*'|'/'|'%') unary)*
    unary   := '-' unary | primary
    primary := NUMBER | STRING | 'true' | 'false' | NAME | NAME '(' args ')'
             | '(' expr ')' | '[' [expr (',' expr)*] ']'

Functions: ``len min max abs round ceil floor``. ``+`` adds numbers or joins strings.
Examples: ``wood != 'walnut' or width_mm <= 1600``; ``text != ''``;
``300 + 2.5 * len(text)``; ``600 if material == 'petg' else 480``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Value = bool | int | float | str | list["Value"]
Node = tuple[Any, ...]  # (kind, operands...): small, checked by the parser

MAX_LENGTH = 2000
MAX_DEPTH = 40


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; the message says where and why."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|[-+*/%<>()\[\],])
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "if", "else", "true", "false"})
_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "ceil": math.ceil,
    "floor": math.floor,
}
_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    column: int


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            column = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise ExpressionError(f"unexpected {text[column - 1]!r} at column {column}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        column = match.start(kind) + 1
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        tokens.append(_Token(kind, value, column))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


@dataclass(slots=True)
class _Parser:
    tokens: list[_Token]
    pos: int = 0
    depth: int = 0
    names: set[str] = field(default_factory=set)

    @property
    def here(self) -> _Token:
        return self.tokens[self.pos]

    def take(self, text: str | None = None) -> _Token:
        token = self.here
        if text is not None and token.text != text:
            found = repr(token.text) if token.text else "the end"
            raise ExpressionError(f"expected {text!r} at column {token.column}, found {found}")
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        if self.here.text == text and self.here.kind in ("op", "keyword"):
            self.pos += 1
            return True
        return False

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested too deeply (more than {MAX_DEPTH} levels)")

    def expr(self) -> Node:
        self.nested()
        node = self.or_()
        if self.accept("if"):
            condition = self.or_()
            self.take("else")
            node = ("if", condition, node, self.expr())
        self.depth -= 1
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.accept("or"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept("and"):
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.accept("not"):
            self.nested()
            node = ("not", self.not_())
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        first = self.sum()
        pairs: list[tuple[str, Node]] = []
        while True:
            if self.here.text == "not" and self.tokens[self.pos + 1].text == "in":
                self.pos += 2
                op = "not in"
            elif self.here.text in _COMPARE and self.here.kind in ("op", "keyword"):
                op = self.take().text
            else:
                break
            pairs.append((op, self.sum()))
        return ("cmp", first, tuple(pairs)) if pairs else first

    def sum(self) -> Node:
        node = self.term()
        while self.here.text in ("+", "-") and self.here.kind == "op":
            op = self.take().text
            node = (op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.here.text in ("*", "/", "%") and self.here.kind == "op":
            op = self.take().text
            node = (op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.accept("-"):
            self.nested()
            node = ("neg", self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            number = float(token.text)
            is_int = number.is_integer() and re.fullmatch(r"\d+", token.text)
            return ("lit", int(token.text) if is_int else number)
        if token.kind == "string":
            return ("lit", _unescape(token.text[1:-1]))
        if token.kind == "keyword" and token.text in ("true", "false"):
            return ("lit", token.text == "true")
        if token.kind == "name":
            if self.accept("("):
                if token.text not in _FUNCTIONS:
                    known = ", ".join(sorted(_FUNCTIONS))
                    raise ExpressionError(
                        f"unknown function {token.text!r} at column {token.column} (known: {known})"
                    )
                args = self.items(")")
                return ("call", token.text, args)
            self.names.add(token.text)
            return ("name", token.text, token.column)
        if token.text == "(":
            node = self.expr()
            self.take(")")
            return node
        if token.text == "[":
            return ("list", self.items("]"))
        if token.kind == "end":
            raise ExpressionError(f"unexpected end of expression at column {token.column}")
        raise ExpressionError(f"unexpected {token.text!r} at column {token.column}")

    def items(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if not self.accept(close):
            items.append(self.expr())
            while self.accept(","):
                items.append(self.expr())
            self.take(close)
        return tuple(items)


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression; evaluate it with :meth:`evaluate`."""

    text: str
    tree: Node
    names: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Expression:
        """Parse ``text``.

        Raises:
            ExpressionError: with the column of the problem.
        """
        if not isinstance(text, str):
            raise ExpressionError(f"an expression must be text (got {type(text).__name__})")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"longer than {MAX_LENGTH} characters")
        if not text.strip():
            raise ExpressionError("is empty")
        parser = _Parser(_tokenise(text))
        tree = parser.expr()
        if parser.here.kind != "end":
            raise ExpressionError(f"unexpected {parser.here.text!r} at column {parser.here.column}")
        return cls(text, tree, frozenset(parser.names))

    def evaluate(self, values: Mapping[str, Value]) -> Value:
        """The value of the expression for these option values.

        Raises:
            ExpressionError: an unknown name, a type mismatch, a division by zero.
        """
        try:
            return _eval(self.tree, values)
        except ExpressionError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ExpressionError(f"cannot evaluate {self.text!r}: {exc}") from None

    def truth(self, values: Mapping[str, Value]) -> bool:
        """Evaluate a condition; it must give true or false.

        Raises:
            ExpressionError: the value is not a boolean, or evaluation failed.
        """
        value = self.evaluate(values)
        if not isinstance(value, bool):
            raise ExpressionError(f"{self.text!r} must be true or false (got {value!r})")
        return value

    def number(self, values: Mapping[str, Value]) -> float:
        """Evaluate a numeric expression (a duration, a parameter).

        Raises:
            ExpressionError: the value is not a number, or evaluation failed.
        """
        value = self.evaluate(values)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(f"{self.text!r} must give a number (got {value!r})")
        return float(value)

    def __str__(self) -> str:
        return self.text


def _num(value: Value, op: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{op!r} needs numbers (got {value!r})")
    return value


def _eval(node: Node, env: Mapping[str, Value]) -> Value:
    kind = node[0]
    if kind == "lit":
        value: Value = node[1]
        return value
    if kind == "name":
        name = str(node[1])
        if name not in env:
            raise ExpressionError(f"unknown name {name!r} at column {node[2]}")
        return env[name]
    if kind == "and":
        return _bool(_eval(node[1], env), "and") and _bool(_eval(node[2], env), "and")
    if kind == "or":
        return _bool(_eval(node[1], env), "or") or _bool(_eval(node[2], env), "or")
    if kind == "not":
        return not _bool(_eval(node[1], env), "not")
    if kind == "if":
        chosen = node[2] if _bool(_eval(node[1], env), "if") else node[3]
        return _eval(chosen, env)
    if kind == "neg":
        return -_num(_eval(node[1], env), "-")
    if kind == "cmp":
        return _compare(node, env)
    if kind == "list":
        return [_eval(item, env) for item in node[1]]
    if kind == "call":
        args = [_eval(item, env) for item in node[2]]
        try:
            return _FUNCTIONS[str(node[1])](*args)
        except TypeError as exc:
            raise ExpressionError(f"{node[1]}(): {exc}") from None
    left, right = _eval(node[1], env), _eval(node[2], env)
    if kind == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    a, b = _num(left, str(kind)), _num(right, str(kind))
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if b == 0:
        raise ExpressionError(f"division by zero in {kind!r}")
    return a / b if kind == "/" else a % b


def _bool(value: Value, op: str) -> bool:
    if not isinstance(value, bool):
        raise ExpressionError(f"{op!r} needs true or false (got {value!r})")
    return value


def _compare(node: Node, env: Mapping[str, Value]) -> bool:
    left = _eval(node[1], env)
    for op, right_node in node[2]:
        right = _eval(right_node, env)
        if op in ("in", "not in"):
            if not isinstance(right, list | str):
                raise ExpressionError(f"{op!r} needs a list or text on the right (got {right!r})")
            ok = (left in right) == (op == "in")
        elif op in ("==", "!="):
            ok = (left == right) == (op == "==")
        else:
            if isinstance(left, str) != isinstance(right, str) or isinstance(left, list | bool):
                raise ExpressionError(f"cannot compare {left!r} {op} {right!r}")
            ok = _ORDER[op](left, right)
        if not ok:
            return False
        left = right
    return True
