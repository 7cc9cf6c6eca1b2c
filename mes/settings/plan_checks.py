"""The process plan and rules of a family file: expressions parsed, names and graph checked.

Every expression is parsed where it is written and every name in it must be an option
of the family, so a typo is reported at its key (``steps[1].when: unknown option
'txt'``), never at release time. ``after`` must name other steps and form no cycle.
Finally the plan is tried once with the options' defaults, which catches type slips
(a condition that gives a number, a duration that gives text) before any order does.
"""

from __future__ import annotations

from collections.abc import Mapping

from mes.domain import ProgramKind
from mes.errors import OrderError
from mes.settings.issues import Issue
from mes.settings.schema import FamilyConfig, ParameterValue
from mes.settings.toml_lines import KeyPath
from routing.expr import Expression, ExpressionError
from routing.family import Family, OptionSpec, ProgramSpec, Rule, StepSpec
from routing.planner import check_generator_call, plan
from routing.programs import PARAMETERS


class _Parser:
    """Parses expressions, recording an issue at the key of each one that fails."""

    def __init__(self, options: Mapping[str, OptionSpec]) -> None:
        self.options = options
        self.issues: list[Issue] = []

    def parse(self, path: KeyPath, text: str) -> Expression | None:
        try:
            expr = Expression.parse(text)
        except ExpressionError as exc:
            self.issues.append(Issue(path, f"{exc} in {text!r}"))
            return None
        unknown = sorted(expr.names - self.options.keys())
        if unknown:
            known = ", ".join(self.options) or "none"
            self.issues.append(
                Issue(path, f"unknown option {', '.join(map(repr, unknown))} (family has: {known})")
            )
            return None
        return expr

    def value(self, path: KeyPath, value: ParameterValue) -> Expression | None:
        if isinstance(value, str):
            return self.parse(path, value)
        return Expression.parse(repr(value).lower() if isinstance(value, bool) else repr(value))


def build_plan(
    config: FamilyConfig, options: Mapping[str, OptionSpec]
) -> tuple[list[Issue], tuple[StepSpec, ...], tuple[Rule, ...]]:
    """The family's steps and rules, with an issue for each key at fault."""
    parser = _Parser(options)
    names = [step.name for step in config.steps]
    steps: list[StepSpec] = []
    for i, step in enumerate(config.steps):
        base: KeyPath = ("steps", i)
        duration_s, duration = (step.duration_s, None)
        if isinstance(step.duration_s, str):
            duration_s, duration = 0.0, parser.parse((*base, "duration_s"), step.duration_s)
        elif step.duration_s <= 0:
            parser.issues.append(
                Issue((*base, "duration_s"), f"Input should be greater than 0 (got {duration_s:g})")
            )
        when = parser.parse((*base, "when"), step.when) if step.when is not None else None
        attributes = {
            key: expr
            for key, text in step.attributes.items()
            if (expr := parser.parse((*base, "attributes", key), text)) is not None
        }
        program = None
        if step.program is not None and step.program.generator is not None:
            parser.issues += _generator_issues(
                base, step.program.generator, list(step.program.parameters)
            )
        if step.program is not None:
            program = ProgramSpec(
                {
                    key: expr
                    for key, value in step.program.parameters.items()
                    if (expr := parser.value((*base, "program", "parameters", key), value))
                },
                step.program.generator,
            )
        for j, name in enumerate(step.after or ()):
            if name not in names or name == step.name:
                others = ", ".join(n for n in names if n != step.name) or "none"
                parser.issues.append(
                    Issue((*base, "after", j), f"unknown step {name!r} (other steps: {others})")
                )
        steps.append(
            StepSpec(
                step.name,
                step.capability,
                float(duration_s),
                tuple(step.parameters),
                when=when,
                after=tuple(step.after) if step.after is not None else None,
                duration=duration,
                program=program,
                attributes=attributes,
                limits={k: (v[0], v[1]) for k, v in step.limits.items()},
                stage=step.stage or "",
            )
        )
    rules = []
    for i, rule in enumerate(config.rules):
        require = parser.parse(("rules", i, "require"), rule.require)
        when = parser.parse(("rules", i, "when"), rule.when) if rule.when is not None else None
        if require is not None:
            rules.append(Rule(require, rule.message, when))
    for i, step in enumerate(config.steps):
        for key, (low, high) in step.limits.items():
            if low > high:
                parser.issues.append(
                    Issue(("steps", i, "limits", key), f"low {low:g} is greater than high {high:g}")
                )
    rework = config.quality.rework_from
    if rework is not None and rework not in names:
        parser.issues.append(
            Issue(
                ("quality", "rework_from"), f"unknown step {rework!r} (steps: {', '.join(names)})"
            )
        )
    unique = len(set(names)) == len(names)  # duplicates are reported elsewhere
    issues = parser.issues + (_cycles(config) if unique else [])
    return issues, tuple(steps), tuple(rules)


def _generator_issues(base: KeyPath, generator: str, parameters: list[str]) -> list[Issue]:
    """An unknown generator, or parameters it does not take, at their keys."""
    if generator not in PARAMETERS:
        known = ", ".join(sorted(PARAMETERS))
        return [
            Issue(
                (*base, "program", "generator"), f"unknown generator {generator!r} (known: {known})"
            )
        ]
    takes = PARAMETERS[generator]
    return [
        Issue(
            (*base, "program", "parameters", name),
            f"{generator} takes no parameter {name!r} (it takes: {', '.join(sorted(takes))})",
        )
        for name in parameters
        if name not in takes
    ]


def _cycles(config: FamilyConfig) -> list[Issue]:
    """One issue at the first step whose ``after`` chain leads back to itself."""
    after: dict[str, list[str]] = {}
    for i, step in enumerate(config.steps):
        default = [config.steps[i - 1].name] if i > 0 else []
        after[step.name] = list(step.after) if step.after is not None else default
    for i, step in enumerate(config.steps):
        seen: set[str] = set()
        todo = list(after[step.name])
        while todo:
            name = todo.pop()
            if name == step.name:
                return [Issue(("steps", i, "after"), "the steps' order has a cycle")]
            if name not in seen:
                seen.add(name)
                todo.extend(after.get(name, []))
    return []


def try_defaults(family: Family) -> list[Issue]:
    """Plan one unit with every option at its default; report what fails, at its step."""
    if any(spec.default is None for spec in family.options.values()):
        return []
    try:
        values = family.configure({})
        planned = plan(family, values)
    except OrderError as exc:
        steps = {step.name: i for i, step in enumerate(family.steps)}
        issues = []
        for problem in exc.problems:
            name = problem.path.removeprefix("step ")
            path: KeyPath = ("steps", steps[name]) if name in steps else ("rules",)
            issues.append(Issue(path, f"with the default options: {problem.reason}"))
        return issues
    issues = []
    for i, step in enumerate(planned):
        if step.skipped or step.program.kind is not ProgramKind.GENERATOR:
            continue
        try:
            check_generator_call(step.program)
        except ValueError as exc:
            issues.append(Issue(("steps", i, "program"), f"with the default options: {exc}"))
    return issues
