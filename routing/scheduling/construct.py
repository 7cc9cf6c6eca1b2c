"""The dispatcher simulated forward in time over a whole problem: one schedule per run.

Theory of operation (an active-schedule generator in the style of Giffler and
Thompson, extended to alternative machines and setups): at each decision every ready
operation (all predecessors placed) picks the machine on which it would complete first,
setup included; that is the dispatcher's earliest-completion-time view of the plant.
The earliest of those completions, ``c*`` on machine ``k*``, marks the next moment a
machine must decide. The operations that could start on ``k*`` before ``c*`` compete
for it (starting any other first could not make ``k*`` finish earlier), and the rule
picks the winner, the same way the real-time dispatcher picks a freed cell's next step.

Rules (lower key wins; a job's priority always comes first):

- ``ect``: earliest completion on the machine, setup included;
- ``slack``: least due-date slack (due minus completion minus remaining work); jobs
  without due date share one far due date, so this becomes most-work-remaining;
- ``mwkr``: most work remaining on the operation's longest successor chain;
- ``mopnr``: most operations remaining;
- ``spt``: shortest processing time, setup included.

``noise`` > 0 adds a random amount (proportional to the mean duration) to every key and
every machine choice, so repeated runs with one seeded :class:`random.Random` explore
different schedules; with ``noise == 0`` the run is deterministic.
"""

from __future__ import annotations

import math
import random

from routing.scheduling.compiled import Compiled, Solution

RULES = ("ect", "slack", "mwkr", "mopnr", "spt")


def construct(
    c: Compiled, rule: str = "ect", rng: random.Random | None = None, noise: float = 0.0
) -> Solution:
    """Simulate the dispatcher with ``rule`` and return the schedule it builds.

    Args:
        c: The compiled problem.
        rule: One of :data:`RULES`.
        rng: Source of randomness for ``noise`` (required when ``noise`` > 0).
        noise: Randomisation strength; 0 for the pure rule.

    Raises:
        ValueError: an unknown rule.
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")
    if noise > 0 and rng is None:
        raise ValueError("noise needs an rng")
    n, alts, setup = c.n, c.alts, c.setup
    mean = sum(c.min_dur) / n if n else 1.0
    scale = noise * mean
    rand = rng.random if rng is not None and scale > 0 else None
    far_due = 2.0 * sum(max(d for _, d in a) for a in alts) + max(c.avail, default=0.0)
    waiting = [len(p) for p in c.preds]
    ready_at = [0.0] * n
    ready = [v for v in range(n) if waiting[v] == 0]
    mfree = list(c.avail)
    last = [-1] * c.m
    mach = [-1] * n
    seqs: list[list[int]] = [[] for _ in range(c.m)]
    start = [0.0] * n
    makespan = 0.0
    for _ in range(n):
        # Each ready operation's machine by earliest completion (noisy when exploring).
        choice: list[tuple[int, int, float, float]] = []  # (v, k, start, end)
        best_end, best_k = math.inf, -1
        for v in ready:
            rv = ready_at[v]
            pick = (-1, 0.0, 0.0, math.inf)
            for k, d in alts[v]:
                s = mfree[k] + setup(k, last[k], v)
                if rv > s:
                    s = rv
                e = s + d
                score = e + scale * rand() if rand is not None else e
                if score < pick[3]:
                    pick = (k, s, e, score)
            k, s, e, _ = pick
            choice.append((v, k, s, e))
            if e < best_end or (e == best_end and k < best_k):
                best_end, best_k = e, k
        # Operations that could start on k* before c* compete; the rule picks one.
        winner, win_key, w_s, w_e = -1, (math.inf, math.inf), 0.0, 0.0
        for v, k, s, e in choice:
            if k != best_k or (s >= best_end and e != best_end):
                continue
            key = _key(c, rule, v, s, e, far_due, mean)
            if rand is not None:
                key += scale * rand()
            full = (-c.priority[v], key)
            if full < win_key or winner < 0:
                winner, win_key, w_s, w_e = v, full, s, e
        v = winner
        ready.remove(v)
        mach[v] = best_k
        seqs[best_k].append(v)
        start[v] = w_s
        mfree[best_k] = w_e
        last[best_k] = v
        makespan = max(makespan, w_e)
        for w in c.succs[v]:
            if w_e > ready_at[w]:
                ready_at[w] = w_e
            waiting[w] -= 1
            if waiting[w] == 0:
                ready.append(w)
    return Solution(mach, seqs, start, makespan)


def _key(c: Compiled, rule: str, v: int, s: float, e: float, far_due: float, mean: float) -> float:
    if rule == "ect":
        return e
    if rule == "mwkr":
        return -c.work_after[v]
    if rule == "slack":
        due = c.due[v]
        return (far_due if due is None else due) - e - (c.work_after[v] - c.min_dur[v])
    if rule == "mopnr":
        return -c.ops_after[v] * mean
    return e - s  # spt
