"""The optimizer (extra ``opt``): CP-SAT, warm-started, then large-neighbourhood search.

Theory of operation. :func:`optimize` plans a whole problem within a time limit:

1. Start from the hint (the dispatcher's schedule) or, without one, run the
   dispatcher search (:mod:`routing.scheduling.heuristic`) for a fifth of the time.
2. Solve the whole CP-SAT model (:mod:`routing.scheduling.cpsat`) hinted with that
   schedule for a short share of the remaining time. Small problems are solved to
   optimality here and the optimizer stops.
3. Large-neighbourhood search for the rest: free a part of the schedule (the
   operations in a time window, those of some jobs, or those on some machines), keep
   every other operation's machine and order, and re-solve that part with a short
   limit, hinted with the current schedule; accept the result when it is no worse.
   Each kind of neighbourhood grows when its sub-problems are solved to optimality and
   shrinks when they time out. After ten rounds without improvement a burst of the
   critical-path tabu search (:mod:`routing.scheduling.tabu`) moves the schedule
   where the windows did not reach. It stops early when the makespan meets the proven
   lower bound.

On the Brandimarte set at 10 s: about +1.3% mean gap against +4.5% for the whole model
alone and +10% for the OR-Tools example's model; the shares above were set there, on
few runs (the differences between nearby settings are within run-to-run noise), and
checked on job-shop-like instances of another shape.

CP-SAT runs ``workers`` threads (2 by default: the machine this was sized for has two
cores). :class:`Planner` runs :func:`optimize` in a worker process (``spawn``: no
forked locks or event loops) so a caller's event loop never blocks; :func:`plan` and
:func:`plan_async` use a shared planner. OR-Tools is imported only in that process,
only when needed; without it, :func:`available` is False and everything else in
:mod:`routing.scheduling` works on the dispatcher alone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import multiprocessing
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from routing.scheduling.compiled import Compiled, Solution, from_schedule, to_schedule
from routing.scheduling.heuristic import search
from routing.scheduling.model import Problem, Schedule
from routing.scheduling.tabu import tabu_search

WORKERS = 2
SUB_LIMIT_S = 0.5  # time limit of one neighbourhood re-solve
KINDS = ("window", "jobs", "machines")
WHOLE_SHARE = 0.15  # of the time left after the warm start, for the whole model
TABU_EVERY = 10  # neighbourhood rounds without improvement before a tabu burst
TABU_MOVES = 1000


class OptimizerUnavailable(RuntimeError):
    """OR-Tools is not installed (``pip install 'mes-batch-of-one[opt]'``)."""


def available() -> bool:
    """True when OR-Tools can be imported."""
    return importlib.util.find_spec("ortools") is not None


@dataclass(frozen=True)
class Result:
    """What :func:`optimize` found.

    Attributes:
        schedule: The best schedule (never worse than the hint).
        lower_bound: The best proven lower bound on the makespan (0 if none).
        optimal: True when the schedule is proven optimal.
        rounds: Neighbourhood re-solves done.
        start_makespan: Makespan of the hint or the dispatcher schedule it started from.
    """

    schedule: Schedule
    lower_bound: float
    optimal: bool
    rounds: int
    start_makespan: float


def optimize(
    problem: Problem,
    time_limit_s: float = 10.0,
    hint: Schedule | None = None,
    *,
    workers: int = WORKERS,
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> Result:
    """Plan ``problem`` in this process, blocking for up to ``time_limit_s``.

    Args:
        problem: The problem.
        time_limit_s: Wall-time budget, everything included.
        hint: A feasible schedule to start from (ignored if it does not fit the problem).
        workers: CP-SAT threads.
        seed: Seed for the dispatcher search and the neighbourhood choice.
        clock: Monotonic clock in seconds (tests may pass their own).

    Raises:
        OptimizerUnavailable: OR-Tools is not installed.
        ProblemError: an operation none of whose eligible machines is usable.
    """
    if not available():
        raise OptimizerUnavailable("OR-Tools is not installed: pip install '.[opt]'")
    from routing.scheduling import cpsat  # the optional dependency, loaded on demand

    t0 = clock()
    deadline = t0 + time_limit_s
    c = Compiled(problem)
    current = from_schedule(c, hint) if hint is not None else None
    if current is None:
        current = search(c, seed=seed, stop=lambda: clock() >= t0 + 0.2 * time_limit_s)
    first = current.makespan
    if c.n == 0:
        return Result(to_schedule(c, current), 0.0, True, 0, first)
    ints = cpsat.Integral(c)
    rng = random.Random(seed)

    def left() -> float:
        return deadline - clock()

    # The whole model, hinted.
    limit = max(0.1, left() * WHOLE_SHARE)
    built = cpsat.build(ints, current, None, ints.makespan(current))
    solved, status, bound = cpsat.solve(
        built, ints, current, limit, workers, rng.randrange(1 << 30)
    )
    if solved is not None and solved.makespan <= current.makespan:
        current = solved
    if status == "OPTIMAL":  # with rounded (scaled) times, optimal for the rounded model
        return Result(to_schedule(c, current), bound, ints.exact, 0, first)

    # Large-neighbourhood search.
    jobs = sorted({problem.operation[op_id].job for op_id in c.op_ids})
    job_of = [problem.operation[op_id].job for op_id in c.op_ids]
    size = dict.fromkeys(KINDS, 0.3)
    rounds = stalled = 0
    while left() > 0.05 and current.makespan > bound:
        kind = rng.choice(KINDS)
        free = _neighbourhood(kind, size[kind], current, jobs, job_of, c.m, rng)
        if not free:
            continue
        built = cpsat.build(ints, current, free, ints.makespan(current))
        solved, status, _ = cpsat.solve(
            built, ints, current, min(SUB_LIMIT_S, left()), workers, rng.randrange(1 << 30)
        )
        rounds += 1
        if solved is not None and solved.makespan < current.makespan:
            stalled = 0
        else:
            stalled += 1
        if solved is not None and solved.makespan <= current.makespan:
            current = solved
        if stalled >= TABU_EVERY and left() > 1.0:  # change of neighbourhood structure
            stalled = 0
            burst = tabu_search(c, current, TABU_MOVES, rng, stop=lambda: left() < 0.5)
            if burst.makespan <= current.makespan:
                current = burst
        grow = status == "OPTIMAL"
        size[kind] = min(0.9, size[kind] * 1.1) if grow else max(0.05, size[kind] * 0.9)
    optimal = ints.exact and current.makespan <= bound
    return Result(to_schedule(c, current), bound, optimal, rounds, first)


def _neighbourhood(
    kind: str,
    size: float,
    current: Solution,
    jobs: list[str],
    job_of: list[str],
    machines: int,
    rng: random.Random,
) -> set[int]:
    """Operations to free: in a random time window, of random jobs, or on random machines."""
    n = len(current.mach)
    if kind == "window":
        width = size * current.makespan
        begin = rng.uniform(-width / 2, current.makespan - width / 2)
        return {v for v in range(n) if begin <= current.start[v] < begin + width}
    if kind == "jobs":
        chosen = set(rng.sample(jobs, max(1, round(size * len(jobs)))))
        return {v for v in range(n) if job_of[v] in chosen}
    picked = set(rng.sample(range(machines), max(1, round(size * machines))))
    return {v for v in range(n) if current.mach[v] in picked}


def _work(
    problem: Problem, time_limit_s: float, hint: Schedule | None, workers: int, seed: int
) -> Result:
    """What the worker process runs."""
    return optimize(problem, time_limit_s, hint, workers=workers, seed=seed)


class Planner:
    """Runs the optimizer in one worker process, started on first use.

    Use as a context manager, or call :meth:`close`. One plan runs at a time per planner
    (further calls queue); each uses ``workers`` CP-SAT threads.
    """

    def __init__(self, workers: int = WORKERS, seed: int = 0) -> None:
        self.workers = workers
        self.seed = seed
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        if not available():
            raise OptimizerUnavailable("OR-Tools is not installed: pip install '.[opt]'")
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            return self._pool

    def optimize(
        self, problem: Problem, time_limit_s: float = 10.0, hint: Schedule | None = None
    ) -> Result:
        """:func:`optimize` in the worker process; waits for the result.

        Raises:
            OptimizerUnavailable: OR-Tools is not installed.
        """
        future = self._executor().submit(
            _work, problem, time_limit_s, hint, self.workers, self.seed
        )
        return future.result()

    def plan(
        self, problem: Problem, time_limit_s: float = 10.0, hint: Schedule | None = None
    ) -> Schedule:
        """Plan in the worker process and wait for the schedule (see :func:`optimize`).

        Raises:
            OptimizerUnavailable: OR-Tools is not installed.
        """
        return self.optimize(problem, time_limit_s, hint).schedule

    async def plan_async(
        self, problem: Problem, time_limit_s: float = 10.0, hint: Schedule | None = None
    ) -> Schedule:
        """Plan in the worker process without blocking the event loop.

        Cancelling the awaiting task does not stop the worker early; it finishes within
        its time limit and its result is dropped.

        Raises:
            OptimizerUnavailable: OR-Tools is not installed.
        """
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            self._executor(), _work, problem, time_limit_s, hint, self.workers, self.seed
        )
        return result.schedule

    def close(self) -> None:
        """Stop the worker process (waits for a running plan)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Planner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: Planner | None = None
_default_lock = threading.Lock()


def _planner() -> Planner:
    global _default
    with _default_lock:
        if _default is None:
            _default = Planner()
        return _default


def plan(problem: Problem, time_limit_s: float = 10.0, hint: Schedule | None = None) -> Schedule:
    """:meth:`Planner.plan` on a shared planner (one worker process, started on first use).

    Raises:
        OptimizerUnavailable: OR-Tools is not installed.
    """
    return _planner().plan(problem, time_limit_s, hint)


async def plan_async(
    problem: Problem, time_limit_s: float = 10.0, hint: Schedule | None = None
) -> Schedule:
    """:meth:`Planner.plan_async` on a shared planner; the event loop never blocks.

    Raises:
        OptimizerUnavailable: OR-Tools is not installed.
    """
    return await _planner().plan_async(problem, time_limit_s, hint)
