"""Schedule a whole problem with the dispatcher: many simulated runs, then local search.

Theory of operation: a single greedy rule is myopic (on the Brandimarte set the plain
rules land 48-58% above the best-known makespans), so this runs the dispatcher
simulation (:mod:`routing.scheduling.construct`) once with every rule, then many more
times with randomised keys (seeded), keeps the best schedule, and improves it with the
critical-path tabu search (:mod:`routing.scheduling.tabu`). The amount of work is set
by ``effort`` (a count of runs and moves, not a time), so the result is deterministic
given the seed; a caller that needs a deadline passes ``stop``, and the result is then
as good as the work done before it fired. Nothing here reads a clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from routing.scheduling.compiled import Compiled, Solution, to_schedule
from routing.scheduling.construct import RULES, construct
from routing.scheduling.model import Problem, Schedule
from routing.scheduling.tabu import tabu_search

RESTARTS = 40  # randomised dispatcher runs per unit of effort
MOVES = 1000  # tabu moves per unit of effort
NOISE = 0.5


def dispatch_schedule(
    problem: Problem,
    *,
    seed: int = 0,
    effort: float = 1.0,
    stop: Callable[[], bool] | None = None,
) -> Schedule:
    """A good schedule for the whole problem, built by the dispatcher and improved.

    Args:
        problem: The problem; held and down machines are not used.
        seed: Seed for the randomised runs and the search; equal seeds, equal schedules.
        effort: Scales the number of runs and search moves (1.0: about a second for 200
            operations on one core; 0: the best plain rule only).
        stop: Polled now and then; when it returns True the best schedule so far is
            returned (the result then depends on timing).

    Raises:
        ProblemError: an operation none of whose eligible machines is usable.
    """
    compiled = Compiled(problem)
    return to_schedule(compiled, search(compiled, seed=seed, effort=effort, stop=stop))


def search(
    c: Compiled,
    *,
    seed: int = 0,
    effort: float = 1.0,
    stop: Callable[[], bool] | None = None,
) -> Solution:
    """:func:`dispatch_schedule` on a compiled problem, returning the solution form."""
    rng = random.Random(seed)
    best = min((construct(c, rule) for rule in RULES), key=lambda s: s.makespan)
    restarts = int(RESTARTS * effort)
    for i in range(restarts):
        if stop is not None and i % 8 == 0 and stop():
            return best
        candidate = construct(c, RULES[i % len(RULES)], rng, NOISE)
        if candidate.makespan < best.makespan:
            best = candidate
    moves = int(MOVES * effort)
    if moves > 0:
        best = tabu_search(c, best, moves, rng, stop=stop)
    return best
