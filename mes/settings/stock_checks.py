"""Postponement in the config: a family's ``[postponement]`` and the plant's ``[[stock]]``
targets, each problem at its key.

A family's generic steps must lead its plan (no custom step before or beneath them) and
may depend on the variant options alone: every name in their conditions, durations,
setup attributes and program parameters must be a variant option, or two blanks of one
variant could differ and a unit could start from the wrong one. A stage name is what
customers read, so it must not name a cell. A stock target names a family with generic
steps and a whole, valid variant of it (checked by the family itself, as a blank
planned from it would be).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from mes.errors import OrderError
from mes.settings.issues import Issue
from mes.settings.schema import CellConfig, FamilyConfig, PlantConfig
from mes.settings.toml_lines import KeyLines, KeyPath
from routing.expr import Expression
from routing.family import Family, Postponement, StepSpec, variant_key
from routing.planner import plan_blank


def check_postponement(
    config: FamilyConfig, family: Family
) -> tuple[list[Issue], Postponement | None]:
    """The family's decoupling point, checked (None when it declares none).

    Args:
        config: the validated family file.
        family: the family built from it (its steps' expressions parsed).

    Returns:
        Every issue found, and the postponement (only meaningful when there are none).
    """
    section = config.postponement
    if section is None:
        return [], None
    base: KeyPath = ("postponement",)
    issues: list[Issue] = []
    names = [step.name for step in config.steps]
    for j, name in enumerate(section.generic):
        if name not in names:
            issues.append(
                Issue((*base, "generic", j), f"unknown step {name!r} (steps: {', '.join(names)})")
            )
        elif name in section.generic[:j]:
            issues.append(Issue((*base, "generic", j), f"step {name!r} is named twice"))
    for j, option in enumerate(section.variant):
        if option not in config.options:
            known = ", ".join(config.options) or "none"
            issues.append(
                Issue((*base, "variant", j), f"unknown option {option!r} (family has: {known})")
            )
        elif option in section.variant[:j]:
            issues.append(Issue((*base, "variant", j), f"option {option!r} is named twice"))
    if issues:
        return issues, None
    generic = set(section.generic)
    issues += _leading(config, generic)
    if issues:
        return issues, None  # which steps are generic is wrong: what they use is moot
    variant = set(section.variant)
    for i, spec in enumerate(family.steps):
        if spec.name in generic:
            issues += _variant_only(("steps", i), spec.name, _expressions(config, i, spec), variant)
    order = tuple(step.name for step in config.steps if step.name in generic)
    return issues, Postponement(order, tuple(section.variant))


def _leading(config: FamilyConfig, generic: set[str]) -> list[Issue]:
    """Generic steps come first in the plan and wait for no custom step."""
    issues: list[Issue] = []
    if len(generic) == len(config.steps):
        return [
            Issue(
                ("postponement", "generic"), "every step is generic: nothing is left to customise"
            )
        ]
    first_custom = next(s.name for s in config.steps if s.name not in generic)
    seen_custom = False
    for i, step in enumerate(config.steps):
        if step.name not in generic:
            seen_custom = True
            continue
        if seen_custom:
            issues.append(
                Issue(
                    ("postponement", "generic"),
                    f"generic steps must lead the plan: {step.name!r} comes after custom step "
                    f"{first_custom!r}",
                )
            )
            break
        for j, name in enumerate(step.after or ()):
            if name not in generic:
                issues.append(
                    Issue(
                        ("steps", i, "after", j),
                        f"generic step {step.name!r} cannot wait for custom step {name!r}",
                    )
                )
    return issues


def _expressions(
    config: FamilyConfig, i: int, spec: StepSpec
) -> list[tuple[KeyPath, frozenset[str]]]:
    """Where a step's expressions are, with the names each one uses."""
    base: KeyPath = ("steps", i)
    found: list[tuple[KeyPath, frozenset[str]]] = []
    pairs: list[tuple[KeyPath, Expression | None]] = [
        ((*base, "when"), spec.when),
        ((*base, "duration_s"), spec.duration),
    ]
    pairs += [((*base, "attributes", k), e) for k, e in spec.attributes.items()]
    if spec.program is not None:
        pairs += [
            ((*base, "program", "parameters", k), e) for k, e in spec.program.parameters.items()
        ]
    found += [(path, expr.names) for path, expr in pairs if expr is not None]
    found += [
        ((*base, "parameters", j), frozenset({name}))
        for j, name in enumerate(config.steps[i].parameters)
    ]
    return found


def _variant_only(
    base: KeyPath,
    step: str,
    expressions: Sequence[tuple[KeyPath, frozenset[str]]],
    variant: set[str],
) -> list[Issue]:
    allowed = ", ".join(sorted(variant))
    return [
        Issue(
            path,
            f"generic step {step!r} may depend on the variant only ({allowed}); "
            f"{', '.join(sorted(names - variant))} would make its blanks differ",
        )
        for path, names in expressions
        if names - variant
    ]


def check_stages(config: FamilyConfig, cells: Sequence[CellConfig]) -> list[Issue]:
    """No stage names a cell: customers read stages, never the plant's inner names."""
    issues = []
    for i, step in enumerate(config.steps):
        stage = (step.stage or "").lower()
        for cell in cells:
            if re.search(rf"(?<![\w-]){re.escape(cell.name.lower())}(?![\w-])", stage):
                issues.append(
                    Issue(
                        ("steps", i, "stage"),
                        f"names cell {cell.name!r}: customers read stages; say what is done",
                    )
                )
                break
    return issues


def check_stock_targets(
    config: PlantConfig, families: Mapping[str, Family], lines: KeyLines
) -> list[Issue]:
    """Each ``[[stock]]`` entry: a family with generic steps, a whole valid variant of it,
    one entry per variant.

    Args:
        config: the validated plant file.
        families: the plant's families, all loaded without problems.
        lines: the plant file's key lines, to say where a duplicate was first seen.
    """
    issues: list[Issue] = []
    seen: dict[tuple[str, str], KeyPath] = {}
    for i, entry in enumerate(config.stock):
        base: KeyPath = ("stock", i)
        family = families.get(entry.family)
        if family is None:
            known = ", ".join(sorted(families)) or "none"
            issues.append(
                Issue((*base, "family"), f"unknown family {entry.family!r} (known: {known})")
            )
            continue
        if family.postponement is None:
            issues.append(
                Issue(
                    (*base, "family"),
                    f"family {family.name!r} has no generic steps ([postponement] in its file)",
                )
            )
            continue
        try:
            values = family.configure_variant(entry.variant)
            if all(step.skipped for step in plan_blank(family, values)):
                issues.append(Issue((*base, "variant"), "no generic step applies to it"))
                continue
        except OrderError as exc:
            for problem in exc.problems:
                path: KeyPath = (*base, "variant")
                if problem.path in entry.variant:
                    path = (*path, problem.path)
                    issues.append(Issue(path, problem.reason))
                else:
                    issues.append(Issue(path, f"{problem.path}: {problem.reason}".lstrip(": ")))
            continue
        key = (family.name, variant_key(values))
        if key in seen:
            line = lines.exact(seen[key])
            where = f" (first at line {line})" if line is not None else ""
            issues.append(Issue((*base, "variant"), f"a second target for this variant{where}"))
        else:
            seen[key] = base
    return issues
