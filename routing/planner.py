"""Expand one configured unit into its own routing: steps, programs, durations, precedence.

Each step of the family's plan is kept or skipped by its condition, gets its expected
duration from its expression, its precedence as sequence numbers, its setup attributes,
and its program: a recipe of named parameters for a PLC cell, or a call of a G-code
generator with this unit's parameters. A generator call is stored as such (and
content-addressed); the G-code itself is made when the step is dispatched, so releasing
thousands of units never waits for toolpaths.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mes.domain.job import Program, ProgramKind
from mes.errors import OrderError, Problem
from routing.expr import ExpressionError, Value
from routing.family import Family, OptionValue, StepSpec
from routing.programs import bounds, generate


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step of one unit's routing before it is stored."""

    seq: int
    name: str
    capability: str
    expected_s: float
    program: Program
    skipped: bool = False
    after: tuple[int, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: Limits on the result and the family's policy when they are missed (empty: none).
    quality: Mapping[str, Any] = field(default_factory=dict)
    #: The customer's word for this step ("" : in production).
    stage: str = ""
    #: Part of the family's generic (made-ahead) stage.
    generic: bool = False


def generator_program(generator: str, parameters: Mapping[str, Value]) -> Program:
    """The program that asks ``generator`` for G-code with these parameters."""
    body = json.dumps(
        {"generator": generator, "parameters": dict(parameters)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return Program(ProgramKind.GENERATOR, body)


def materialize(program: Program) -> Program:
    """The G-code program a generator call stands for; other programs as they are.

    Raises:
        ValueError: the generator refused the parameters.
    """
    if program.kind is not ProgramKind.GENERATOR:
        return program
    call = json.loads(program.body)
    return Program(ProgramKind.GCODE, generate(call["generator"], call["parameters"]))


def check_generator_call(program: Program) -> None:
    """Check a generator call's parameters without making the G-code.

    Raises:
        ValueError: the generator would refuse them (its own reason).
    """
    call = json.loads(program.body)
    bounds(call["generator"], call["parameters"])


def plan(family: Family, options: Mapping[str, OptionValue]) -> list[PlannedStep]:
    """The routing of one unit whose options were already checked by ``family.configure``.

    Generic steps (the family's ``postponement``) see the variant options only, so a
    unit's generic steps are exactly those of a blank of its variant (same programs).

    Raises:
        OrderError: the family's plan cannot be evaluated for these options (a step's
            duration is not positive, a parameter expression fails); names the step.
    """
    generic = family.postponement.generic if family.postponement else ()
    variant = dict(family.postponement.values(options)) if family.postponement else {}
    return _plan(family, dict(options), variant, generic, family.steps)


def plan_blank(family: Family, variant: Mapping[str, OptionValue]) -> list[PlannedStep]:
    """The routing of a blank: the family's generic steps alone, for a variant already
    checked by ``family.configure_variant``. Steps keep their place (``seq``) in the
    family's plan.

    Raises:
        OrderError: the family has no generic steps, or they cannot be evaluated.
    """
    if family.postponement is None:
        raise OrderError([Problem(f"family {family.name!r} has no generic steps")])
    generic = family.postponement.generic
    specs = tuple(s for s in family.steps if s.name in generic)
    return _plan(family, dict(variant), dict(variant), generic, specs)


def _plan(
    family: Family,
    env: Mapping[str, Value],
    variant: Mapping[str, Value],
    generic: tuple[str, ...],
    specs: tuple[StepSpec, ...],
) -> list[PlannedStep]:
    seqs = {spec.name: seq for seq, spec in enumerate(family.steps, start=1)}
    steps: list[PlannedStep] = []
    problems: list[Problem] = []
    for spec in specs:
        seq = seqs[spec.name]
        try:
            if spec.name in generic:
                steps.append(replace(_plan_step(family, spec, seq, seqs, variant), generic=True))
            else:
                steps.append(_plan_step(family, spec, seq, seqs, env))
        except ExpressionError as exc:
            problems.append(Problem(str(exc), path=f"step {spec.name}"))
    if problems:
        raise OrderError(problems)
    return steps


def _plan_step(
    family: Family, spec: StepSpec, seq: int, seqs: Mapping[str, int], env: Mapping[str, Value]
) -> PlannedStep:
    after: tuple[int, ...] = (seq - 1,) if spec.after is None and seq > 1 else ()
    if spec.after is not None:
        after = tuple(seqs[name] for name in spec.after)
    if spec.when is not None and not spec.when.truth(env):
        # Nothing else of a skipped step is evaluated: its expressions may only make
        # sense for the units it applies to.
        program = Program.recipe({"step": spec.name, "family": family.name, "skipped": True})
        return PlannedStep(
            seq, spec.name, spec.capability, 0.0, program, True, after, stage=spec.stage
        )
    expected = spec.duration.number(env) if spec.duration is not None else spec.duration_s
    if expected <= 0:
        raise ExpressionError(f"expected duration must be positive (got {expected:g})")
    attributes = {key: str(expr.evaluate(env)) for key, expr in spec.attributes.items()}
    if spec.program is not None:
        parameters = {key: expr.evaluate(env) for key, expr in spec.program.parameters.items()}
        if spec.program.generator is not None:
            program = generator_program(spec.program.generator, parameters)
        else:
            program = Program.recipe(parameters)
    else:
        names = spec.parameters or tuple(env)
        recipe: dict[str, Value] = {"step": spec.name, "family": family.name}
        recipe.update({name: env[name] for name in names})
        program = Program.recipe(recipe)
    quality: dict[str, Any] = {}
    if spec.limits:
        policy = family.quality
        quality = {
            "limits": {name: list(bounds) for name, bounds in spec.limits.items()},
            "policy": policy.policy,
            "retries": policy.max_retries,
            "rework_from": seqs.get(policy.rework_from or "", seq),
        }
    return PlannedStep(
        seq,
        spec.name,
        spec.capability,
        expected,
        program,
        False,
        after,
        attributes,
        quality,
        stage=spec.stage,
    )
