"""Product families: typed options a buyer chooses, and the process plan they expand into.

A family is plain data built by the config loader (``mes.settings``) from TOML. It checks
a unit's chosen options (:meth:`Family.configure`): every option known, of its type, in
range, defaults filled in. Problems are collected, not stopped at the first, so a planner
sees everything wrong with a unit at once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from mes.errors import OrderError, Problem
from routing.expr import Expression, ExpressionError

OptionValue = str | int | float | bool


class OptionKind(StrEnum):
    CHOICE = "choice"
    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    BOOLEAN = "boolean"


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option of a family, with its type and limits."""

    name: str
    kind: OptionKind
    default: OptionValue | None = None
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str = ""
    max_length: int | None = None
    allowed_chars: str | None = None

    def coerce(self, value: object) -> OptionValue:
        """Return ``value`` as this option's type, checked against its limits.

        Strings are accepted for numbers and booleans (CSV order files carry only text).

        Raises:
            ValueError: with a reason a planner understands.
        """
        if self.kind is OptionKind.CHOICE:
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)} (got {value!r})")
            return value
        if self.kind is OptionKind.BOOLEAN:
            return _boolean(value)
        if self.kind is OptionKind.TEXT:
            return self._text(value)
        return self._number(value)

    def _text(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be text (got {value!r})")
        # Leading and trailing blanks carry no meaning on a part (an engraving, a label)
        # and would make "only blanks" pass as text where a step needs some.
        value = value.strip()
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters (got {len(value)})")
        if self.allowed_chars is not None:
            bad = sorted({c for c in value if c not in self.allowed_chars})
            if bad:
                raise ValueError(f"has characters that are not allowed: {''.join(bad)!r}")
        return value

    def _number(self, value: object) -> int | float:
        integer = self.kind is OptionKind.INTEGER
        number = _parse_number(value, integer)
        if self.min is not None and number < self.min:
            raise ValueError(f"must be at least {_fmt(self.min)}{self.unit} (got {number})")
        if self.max is not None and number > self.max:
            raise ValueError(f"must be at most {_fmt(self.max)}{self.unit} (got {number})")
        if self.step:
            base = Decimal(str(self.min or 0))
            if (Decimal(str(number)) - base) % Decimal(str(self.step)) != 0:
                raise ValueError(
                    f"must be in steps of {_fmt(self.step)}{self.unit} from "
                    f"{_fmt(self.min or 0)} (got {number})"
                )
        return number

    def sample(self, rng: random.Random) -> OptionValue:
        """A random valid value (for demos and property tests)."""
        if self.kind is OptionKind.CHOICE:
            return rng.choice(self.choices)
        if self.kind is OptionKind.BOOLEAN:
            return rng.random() < 0.5
        if self.kind is OptionKind.TEXT:
            alphabet = self.allowed_chars or "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            size = rng.randint(0, min(self.max_length or 12, 12))
            return "".join(rng.choice(alphabet) for _ in range(size)).strip()
        low = self.min if self.min is not None else 0
        high = self.max if self.max is not None else low + 100
        if self.step:
            count = int((high - low) // self.step)
            value = low + self.step * rng.randint(0, count)
        else:
            value = rng.uniform(low, high)
        return int(value) if self.kind is OptionKind.INTEGER else round(value, 6)


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"must be true or false (got {value!r})")


def _parse_number(value: object, integer: bool) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number (got {value!r})")
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"must be a number (got {value!r})") from None
        if not parsed.is_finite():
            raise ValueError(f"must be a finite number (got {value!r})")
        value = int(parsed) if integer and parsed == parsed.to_integral_value() else float(parsed)
    if integer:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"must be a whole number (got {value!r})")
        return value
    if (
        not isinstance(value, int | float)
        or value != value
        or value in (float("inf"), -float("inf"))
    ):
        raise ValueError(f"must be a number (got {value!r})")
    return value


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """What a step's machine gets: G-code from a named generator, or a recipe.

    Each parameter is an expression of the unit's options.
    """

    parameters: Mapping[str, Expression]
    generator: str | None = None


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a family's process plan.

    ``after`` names the steps that must be done (or skipped) first; ``None`` means the
    step before it in the plan, so a plain list is a sequence. ``when`` skips the step
    for units whose options make it false. ``duration`` (an expression) overrides the
    constant ``duration_s``. ``attributes`` (e.g. material, colour) drive setup times.
    """

    name: str
    capability: str
    duration_s: float
    parameters: tuple[str, ...] = ()
    when: Expression | None = None
    after: tuple[str, ...] | None = None
    duration: Expression | None = None
    program: ProgramSpec | None = None
    attributes: Mapping[str, Expression] = field(default_factory=dict)
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: What a customer is told while this step is the unit's current one ("engraving");
    #: "" says only "in production".
    stage: str = ""


@dataclass(frozen=True, slots=True)
class Postponement:
    """The family's decoupling point: its leading ``generic`` steps make a blank that
    depends on the ``variant`` options alone, so blanks can be made ahead, to stock, and
    any unit of the same variant can start from one at its first custom step.

    The loader checks that the generic steps lead the plan and that their expressions
    name variant options only (:mod:`mes.settings.stock_checks`).
    """

    generic: tuple[str, ...]
    variant: tuple[str, ...]

    def values(self, options: Mapping[str, OptionValue]) -> dict[str, OptionValue]:
        """The variant part of a unit's (checked) options (whole numbers as integers)."""
        return {name: _canonical(options[name]) for name in self.variant}

    def key(self, options: Mapping[str, OptionValue]) -> str:
        """What makes two blanks interchangeable, as one canonical string."""
        return variant_key(self.values(options))


def variant_key(values: Mapping[str, OptionValue]) -> str:
    """The canonical key of a variant: JSON with sorted names and whole numbers as
    integers, so ``160``, ``160.0`` and ``"160"`` (from a CSV) make the same key."""
    canonical = {name: _canonical(value) for name, value in sorted(values.items())}
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def variant_values(key: str) -> dict[str, OptionValue]:
    """The inverse of :func:`variant_key` ({} for "")."""
    if not key:
        return {}
    values: dict[str, OptionValue] = json.loads(key)
    return values


def describe_variant(key: str) -> str:
    """A variant for people: ``material=pla width_mm=160``."""
    return " ".join(f"{name}={value}" for name, value in variant_values(key).items())


def _canonical(value: OptionValue) -> OptionValue:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class QualityPolicy:
    """What a result out of its limits leads to: ``retry`` the step (up to
    ``max_retries`` more times), ``rework`` from step ``rework_from``, or ``scrap``."""

    policy: str = "retry"
    max_retries: int = 2
    rework_from: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A constraint across options: when ``when`` holds (or always), ``require`` must."""

    require: Expression
    message: str
    when: Expression | None = None

    def broken(self, values: Mapping[str, OptionValue]) -> bool:
        """Whether these option values break the rule.

        Raises:
            ExpressionError: the rule cannot be evaluated for these values.
        """
        if self.when is not None and not self.when.truth(values):
            return False
        return not self.require.truth(values)

    @property
    def names(self) -> frozenset[str]:
        return self.require.names | (self.when.names if self.when else frozenset())


@dataclass(frozen=True, slots=True)
class Family:
    """A product family: its options and its process plan."""

    name: str
    options: Mapping[str, OptionSpec]
    steps: tuple[StepSpec, ...]
    description: str = ""
    source: str = field(default="", compare=False)
    rules: tuple[Rule, ...] = ()
    quality: QualityPolicy = field(default_factory=QualityPolicy)
    postponement: Postponement | None = None

    def configure(self, chosen: Mapping[str, object]) -> dict[str, OptionValue]:
        """Check a unit's chosen options and fill in defaults.

        Raises:
            OrderError: one problem per bad option (``path`` is ``options.NAME``).
        """
        problems: list[Problem] = []
        for name in chosen:
            if name not in self.options:
                known = ", ".join(self.options) or "none"
                problems.append(
                    Problem(
                        f"unknown option (family {self.name!r} has: {known})",
                        path=f"options.{name}",
                    )
                )
        values: dict[str, OptionValue] = {}
        for name, spec in self.options.items():
            if name not in chosen:
                if spec.default is None:
                    problems.append(Problem("is required (no default)", path=f"options.{name}"))
                else:
                    values[name] = spec.default
                continue
            try:
                values[name] = spec.coerce(chosen[name])
            except ValueError as exc:
                problems.append(Problem(str(exc), path=f"options.{name}"))
        if problems:
            raise OrderError(problems)
        for number, rule in enumerate(self.rules, start=1):
            names = ", ".join(f"options.{n}" for n in sorted(rule.names))
            try:
                broken = rule.broken(values)
            except ExpressionError as exc:
                problems.append(Problem(f"rule {number} cannot be checked: {exc}", path=names))
                continue
            if broken:
                problems.append(
                    Problem(f"{rule.message} (rule {number}: {rule.require})", path=names)
                )
        if problems:
            raise OrderError(problems)
        return values

    def configure_variant(self, chosen: Mapping[str, object]) -> dict[str, OptionValue]:
        """Check the values of a blank's variant (stock plans, stock targets): each
        variant option given, of its type, in range, and the rules that name variant
        options only hold (a blank no unit may use is refused).

        Raises:
            OrderError: the family makes no blanks, or one problem per bad option.
        """
        if self.postponement is None:
            raise OrderError(
                [Problem(f"family {self.name!r} has no generic steps (no [postponement])")]
            )
        variant = self.postponement.variant
        problems = [
            Problem(f"not a variant option (variant: {', '.join(variant)})", path=f"{name}")
            for name in chosen
            if name not in variant
        ]
        values: dict[str, OptionValue] = {}
        for name in variant:
            if name not in chosen:
                problems.append(Problem("is required for a blank", path=name))
                continue
            try:
                values[name] = _canonical(self.options[name].coerce(chosen[name]))
            except ValueError as exc:
                problems.append(Problem(str(exc), path=name))
        if problems:
            raise OrderError(problems)
        for number, rule in enumerate(self.rules, start=1):
            if rule.names <= values.keys():
                try:
                    broken = rule.broken(values)
                except ExpressionError:
                    continue  # the rule needs what a whole unit has
                if broken:
                    names = ", ".join(sorted(rule.names))
                    problems.append(
                        Problem(f"{rule.message} (rule {number}: {rule.require})", path=names)
                    )
        if problems:
            raise OrderError(problems)
        return values

    def sample(self, rng: random.Random, tries: int = 200) -> dict[str, Any]:
        """Random options for one unit that pass the family's rules (for the demo and
        property tests); after ``tries`` misses, the last draw, which may not."""
        for _ in range(tries):
            values = {name: spec.sample(rng) for name, spec in self.options.items()}
            try:
                self.configure(values)
            except OrderError:
                continue
            return values
        return values

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(step.capability for step in self.steps)
