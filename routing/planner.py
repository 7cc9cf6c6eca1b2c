"""Expand one configured unit into its own routing: steps, programs, expected durations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mes.domain.job import Program
from routing.family import Family, OptionValue


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step of one unit's routing before it is stored."""

    seq: int
    name: str
    capability: str
    expected_s: float
    program: Program


def plan(family: Family, options: Mapping[str, OptionValue]) -> list[PlannedStep]:
    """The routing of one unit whose options were already checked by ``family.configure``.

    Each step's program is a recipe: the step, the family, and the options the step
    declares (all options when it declares none).
    """
    steps: list[PlannedStep] = []
    for seq, spec in enumerate(family.steps, start=1):
        names = spec.parameters or tuple(options)
        parameters: dict[str, OptionValue] = {"step": spec.name, "family": family.name}
        parameters.update({name: options[name] for name in names})
        steps.append(
            PlannedStep(
                seq, spec.name, spec.capability, spec.duration_s, Program.recipe(parameters)
            )
        )
    return steps
