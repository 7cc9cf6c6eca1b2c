"""Tabu search on the critical path: move one critical operation per step.

Theory of operation. A solution is a disjunctive graph: precedence arcs plus, per
machine, an arc from each operation to the next (weighted by duration plus setup). Its
longest path is the makespan; only moving an operation on a longest (critical) path
can shorten it. A move takes a critical operation ``v`` out of its machine sequence and
reinserts it at another position, on the same machine or another eligible one (so the
neighbourhood covers both resequencing and reassignment, as in Mastrolilli and
Gambardella's FJSP search).

Every candidate is scored in O(1) from the current heads (earliest starts ``r``) and
tails (longest path from an operation's start to the end, ``q``)::

    estimate = max(end of v's predecessors, end of the new machine predecessor + setup)
               + duration on the new machine
               + max(tail of v's successors, setup + tail of the new machine successor)

that is, the longest path through ``v`` after the move. On ``v``'s own machine the heads
after its old position and the tails before it are recomputed along the machine chain
as the scan goes, since removing ``v`` shifts them. A position is only offered when
the heads prove it cannot close a cycle (no successor of ``v`` can reach the new
machine predecessor, no new machine successor can reach a predecessor of ``v``), and
the full evaluation of the chosen move checks again. The best non-tabu move is applied
even when it worsens the makespan. A moved operation may not move again for a random
tenure (about the square root of the operation count), nor return to the machine it
left for three tenures, unless the move beats the best makespan (aspiration); on the
Brandimarte set this scored far better than forbidding only the old position. After a
long run without improvement the search restarts from the best solution, perturbed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from routing.scheduling.compiled import Compiled, Solution, forward


def _times(
    c: Compiled, mach: list[int], seqs: list[list[int]]
) -> tuple[list[float], list[float], float] | None:
    """Heads, tails and makespan; None when the sequences make a cycle."""
    result = forward(c, mach, seqs)
    if result is None:
        return None
    n, start, end, order, mnext = c.n, result.start, result.end, result.order, result.mnext
    succs, dur, setup = c.succs, c.dur, c.setup
    tail = [0.0] * n
    for v in reversed(order):
        t = 0.0
        for w in succs[v]:
            if tail[w] > t:
                t = tail[w]
        w = mnext[v]
        if w >= 0:
            tw = setup(mach[v], v, w) + tail[w]
            if tw > t:
                t = tw
        tail[v] = t + dur[v][mach[v]]
    return start, tail, max(end, default=0.0)


def tabu_search(
    c: Compiled,
    initial: Solution,
    iterations: int,
    rng: random.Random,
    patience: int = 0,
    stop: Callable[[], bool] | None = None,
) -> Solution:
    """Improve ``initial`` for ``iterations`` moves; return the best solution seen.

    Args:
        c: The compiled problem.
        initial: A feasible solution (not modified).
        iterations: Number of moves (the search is deterministic given ``rng``).
        rng: Seeded source of tie-breaks, tenures and perturbations.
        patience: Moves without improvement before restarting from the best solution
            (0: a default from the problem size).
        stop: Polled every few moves; True ends the search early.
    """
    n = c.n
    if n == 0 or iterations <= 0:
        return initial.copy()
    mach = list(initial.mach)
    seqs = [list(s) for s in initial.seqs]
    times = _times(c, mach, seqs)
    if times is None:
        raise ValueError("initial solution has a cycle")
    start, tail, cmax = times
    best = Solution(list(mach), [list(s) for s in seqs], list(start), cmax)
    patience = patience or max(200, 4 * n)
    base_tenure = 2 + int(math.sqrt(n))
    moved_until = [-1] * n  # v may not move again before this iteration
    tabu: dict[tuple[int, int], int] = {}  # (v, machine it left) -> until
    stall = 0
    eps = 1e-9 * max(1.0, cmax)
    for it in range(iterations):
        if stop is not None and it % 16 == 0 and stop():
            break
        move = _best_move(
            c, mach, seqs, start, tail, cmax, best.makespan, moved_until, tabu, it, rng, eps
        )
        if move is None:
            stall = patience  # nothing to do: restart
        else:
            v, k, after = move
            k0 = mach[v]
            old_seq = seqs[k0]
            i0 = old_seq.index(v)
            del old_seq[i0]
            seq = seqs[k]
            seq.insert(seq.index(after) + 1 if after >= 0 else 0, v)
            mach[v] = k
            times = _times(c, mach, seqs)
            if times is None:  # cannot happen with the proof above; be safe anyway
                seq.remove(v)
                old_seq.insert(i0, v)
                mach[v] = k0
                moved_until[v] = it + base_tenure
                continue
            start, tail, cmax = times
            moved_until[v] = it + base_tenure + rng.randrange(base_tenure + 1)
            tabu[(v, k0)] = it + 3 * base_tenure
            if cmax < best.makespan - eps:
                best = Solution(list(mach), [list(s) for s in seqs], list(start), cmax)
                stall = 0
            else:
                stall += 1
        if stall >= patience:
            mach, seqs = list(best.mach), [list(s) for s in best.seqs]
            _perturb(c, mach, seqs, rng, max(2, n // 20))
            times = _times(c, mach, seqs)
            if times is None:
                mach, seqs = list(best.mach), [list(s) for s in best.seqs]
                times = _times(c, mach, seqs)
                assert times is not None
            start, tail, cmax = times
            tabu.clear()
            moved_until = [-1] * n
            stall = 0
    return best


def _best_move(
    c: Compiled,
    mach: list[int],
    seqs: list[list[int]],
    start: list[float],
    tail: list[float],
    cmax: float,
    best_cmax: float,
    moved_until: list[int],
    tabu: dict[tuple[int, int], int],
    it: int,
    rng: random.Random,
    eps: float,
) -> tuple[int, int, int] | None:
    """The best admissible move ``(v, machine, insert after)``, scored by estimate."""
    preds, succs, dur, avail, alts = c.preds, c.succs, c.dur, c.avail, c.alts
    setup = c.setup if c.has_setups else None
    best_est, found, ties = math.inf, None, 0
    for v in range(c.n):
        if abs(start[v] + tail[v] - cmax) > eps:
            continue  # not critical
        k0 = mach[v]
        # A successor of v reaches a only if a starts at or after that successor's end;
        # a reaches... symmetric for b and v's predecessors. See the module docstring.
        jpe, first_pred = 0.0, -math.inf
        for p in preds[v]:
            e = start[p] + dur[p][mach[p]]
            if e > jpe:
                jpe = e
            if start[p] > first_pred:
                first_pred = start[p]
        jst, first_succ_end = 0.0, math.inf
        for s in succs[v]:
            if tail[s] > jst:
                jst = tail[s]
            e = start[s] + dur[s][mach[s]]
            if e < first_succ_end:
                first_succ_end = e
        vsuccs, vpreds = succs[v], preds[v]
        for k, d in alts[v]:
            seq = seqs[k]
            if k == k0:
                # Heads after v's old place and tails before it shift once v leaves:
                # recompute them along the chain.
                i0 = seq.index(v)
                others = seq[:i0] + seq[i0 + 1 :]
                ends = _chain_ends(c, k, mach, start, others, i0)
                tails = _chain_tails(c, k, mach, tail, others, i0)
            else:
                i0 = -1
                others = seq
                ends = [start[x] + dur[x][k] for x in seq]
                tails = [tail[x] for x in seq]
            m_len = len(others)
            # Skip the leading positions whose next operation b could reach a predecessor.
            i = 0
            while i < m_len and (ends[i] <= first_pred or others[i] in vpreds):
                i += 1
            if i > 0 and (start[others[i - 1]] >= first_succ_end or others[i - 1] in vsuccs):
                continue  # the window is empty
            while i <= m_len:
                if i > 0:
                    a = others[i - 1]
                    if start[a] >= first_succ_end or a in vsuccs:
                        break  # a successor of v may reach a; later a's as well
                    r = ends[i - 1] + (setup(k, a, v) if setup is not None else 0.0)
                else:
                    a = -1
                    r = avail[k] + (setup(k, -1, v) if setup is not None else 0.0)
                if i == i0:
                    i += 1
                    continue  # v's current place
                if jpe > r:
                    r = jpe
                q = jst
                if i < m_len:
                    qb = tails[i] + (setup(k, v, others[i]) if setup is not None else 0.0)
                    if qb > q:
                        q = qb
                est = r + d + q
                i += 1
                if est > best_est + eps:
                    continue
                if est >= best_cmax - eps and (moved_until[v] > it or tabu.get((v, k), -1) > it):
                    continue  # tabu, and not better than the best (aspiration)
                if est < best_est - eps:
                    best_est, found, ties = est, (v, k, a), 1
                else:
                    ties += 1
                    if rng.randrange(ties) == 0:
                        found = (v, k, a)
    return found


def _chain_ends(
    c: Compiled, k: int, mach: list[int], start: list[float], others: list[int], i0: int
) -> list[float]:
    """Ends of ``others`` (machine ``k``'s sequence without v) with v gone: unchanged before
    v's old index ``i0``, recomputed along the chain from there."""
    dur, preds = c.dur, c.preds
    setup = c.setup if c.has_setups else None
    ends = [start[x] + dur[x][k] for x in others]
    prev = others[i0 - 1] if i0 > 0 else -1
    e_prev = ends[i0 - 1] if i0 > 0 else c.avail[k]
    for j in range(i0, len(others)):
        x = others[j]
        s = e_prev + setup(k, prev, x) if setup is not None else e_prev
        for p in preds[x]:
            ep = start[p] + dur[p][mach[p]]
            if ep > s:
                s = ep
        e_prev = s + dur[x][k]
        ends[j] = e_prev
        prev = x
    return ends


def _chain_tails(
    c: Compiled, k: int, mach: list[int], tail: list[float], others: list[int], i0: int
) -> list[float]:
    """Tails of ``others`` with v gone: unchanged from v's old index on, recomputed
    backwards along the chain before it."""
    dur, succs = c.dur, c.succs
    setup = c.setup if c.has_setups else None
    tails = [tail[x] for x in others]
    nxt = others[i0] if i0 < len(others) else -1
    t_next = tails[i0] if i0 < len(others) else 0.0
    for j in range(i0 - 1, -1, -1):
        x = others[j]
        t = t_next + (setup(k, x, nxt) if setup is not None else 0.0) if nxt >= 0 else 0.0
        for s in succs[x]:
            if tail[s] > t:
                t = tail[s]
        t_next = t + dur[x][k]
        tails[j] = t_next
        nxt = x
    return tails


def _perturb(
    c: Compiled, mach: list[int], seqs: list[list[int]], rng: random.Random, moves: int
) -> None:
    """Random changes that keep the graph acyclic: swap an operation with its machine
    successor, or move it to another eligible machine at the same relative place."""
    for _ in range(moves):
        v = rng.randrange(c.n)
        k0 = mach[v]
        seq0 = seqs[k0]
        i0 = seq0.index(v)
        others = [k for k, _ in c.alts[v] if k != k0]
        if others and rng.random() < 0.5:
            k = rng.choice(others)
            del seq0[i0]
            seq = seqs[k]
            j = int(i0 / max(1, len(seq0) + 1) * (len(seq) + 1))
            seq.insert(j, v)
            mach[v] = k
            if _times(c, mach, seqs) is None:
                del seq[j]
                seq0.insert(i0, v)
                mach[v] = k0
        elif i0 + 1 < len(seq0):
            seq0[i0], seq0[i0 + 1] = seq0[i0 + 1], seq0[i0]
            if _times(c, mach, seqs) is None:
                seq0[i0], seq0[i0 + 1] = seq0[i0 + 1], seq0[i0]
