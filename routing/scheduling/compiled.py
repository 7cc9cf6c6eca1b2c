"""A problem compiled to integer indices, and the solution form the search code shares.

Theory of operation: the constructive dispatcher simulation, the local search and the
optimizer's hint all work on lists indexed by operation and machine number instead of
dictionaries keyed by strings; that is most of what makes pure Python fast enough here.

Setups between two operations are taken pairwise and conservatively: an attribute the
next operation carries counts as a change unless the previous operation carried the same
value (the machine's true state may still hold it from earlier, in which case the real
setup is smaller). Before a machine's first operation its declared initial state is
used exactly. Pairwise setups are what a disjunctive graph and a CP-SAT model can carry;
being conservative keeps every schedule built on them feasible under the exact rule of
:mod:`routing.scheduling.check`.

A :class:`Solution` is a machine per operation plus each machine's sequence; ``evaluate``
computes earliest starts (heads) along the precedence and machine arcs and returns None
when the sequences make a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.scheduling.model import Problem, ProblemError, Schedule, Slot, setup_time


class Compiled:
    """Integer-indexed view of a :class:`Problem` (only usable machines are offered)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        order = problem.topological_order
        self.op_ids: list[str] = list(order)
        index = {op_id: i for i, op_id in enumerate(order)}
        self.machines: list[str] = [m.name for m in problem.machines]
        mindex = {name: k for k, name in enumerate(self.machines)}
        self.n, self.m = len(order), len(self.machines)
        ops = [problem.operation[op_id] for op_id in order]
        self.alts: list[list[tuple[int, float]]] = []
        for op in ops:
            alts = [
                (mindex[name], d)
                for name, d in op.durations.items()
                if problem.machine[name].usable
            ]
            if not alts:
                raise ProblemError(f"operation {op.id!r}: every eligible machine is held or down")
            self.alts.append(sorted(alts))
        self.dur: list[dict[int, float]] = [dict(a) for a in self.alts]
        self.preds: list[list[int]] = [sorted({index[p] for p in op.after}) for op in ops]
        self.succs: list[list[int]] = [[] for _ in ops]
        for v, ps in enumerate(self.preds):
            for p in ps:
                self.succs[p].append(v)
        self.avail: list[float] = [m.available_from for m in problem.machines]
        jobs = {j.id: j for j in problem.jobs}
        self.priority: list[int] = [jobs[op.job].priority for op in ops]
        self.due: list[float | None] = [jobs[op.job].due for op in ops]
        self.min_dur: list[float] = [min(d for _, d in a) for a in self.alts]
        # Longest chain of minimal durations from an operation's start to the end.
        self.work_after: list[float] = [0.0] * self.n
        for v in reversed(range(self.n)):
            tail = max((self.work_after[s] for s in self.succs[v]), default=0.0)
            self.work_after[v] = self.min_dur[v] + tail
        self.ops_after: list[int] = [0] * self.n
        for v in reversed(range(self.n)):
            self.ops_after[v] = 1 + max((self.ops_after[s] for s in self.succs[v]), default=0)
        self.has_setups = problem.has_setups
        # Operations with equal attributes share a class; setups are cached per class pair.
        classes: dict[tuple[tuple[str, str], ...], int] = {}
        self.cls: list[int] = []
        self._class_attrs: list[dict[str, str]] = []
        for op in ops:
            key = tuple(sorted(op.attributes.items()))
            if key not in classes:
                classes[key] = len(classes)
                self._class_attrs.append(dict(key))
            self.cls.append(classes[key])
        self._setup_cache: dict[tuple[int, int, int], float] = {}

    def setup(self, k: int, prev: int, v: int) -> float:
        """Setup on machine ``k`` before ``v`` when ``prev`` ran just before it (-1: the
        machine's initial state)."""
        if not self.has_setups:
            return 0.0
        a = self.cls[prev] if prev >= 0 else -1
        key = (k, a, self.cls[v])
        cached = self._setup_cache.get(key)
        if cached is None:
            machine = self.problem.machines[k]
            state = machine.state if a < 0 else self._class_attrs[a]
            cached = setup_time(machine.setup_s, state, self._class_attrs[self.cls[v]])
            self._setup_cache[key] = cached
        return cached

    def lower_bound(self) -> float:
        """A simple makespan lower bound: the longest chain of minimal durations, and the
        total minimal work spread over the usable machines."""
        chain = max(self.work_after, default=0.0)
        usable = sum(1 for m in self.problem.machines if m.usable) or 1
        return max(chain, sum(self.min_dur) / usable)


@dataclass(slots=True)
class Solution:
    """A machine per operation, each machine's sequence, and the resulting starts."""

    mach: list[int]
    seqs: list[list[int]]
    start: list[float]
    makespan: float

    def copy(self) -> Solution:
        """A deep copy (sequences are mutated by the local search)."""
        return Solution(
            list(self.mach), [list(s) for s in self.seqs], list(self.start), self.makespan
        )


@dataclass(frozen=True, slots=True)
class Pass:
    """One forward pass over the disjunctive graph: earliest starts and ends, the order
    the operations were reached in, and each operation's machine successor (-1: none)."""

    start: list[float]
    end: list[float]
    order: list[int]
    mnext: list[int]


def forward(c: Compiled, mach: list[int], seqs: list[list[int]]) -> Pass | None:
    """Earliest starts for an assignment and sequences, or None if they form a cycle."""
    n = c.n
    mprev, mnext = [-1] * n, [-1] * n
    indeg = [len(p) for p in c.preds]
    for seq in seqs:
        for i in range(1, len(seq)):
            a, b = seq[i - 1], seq[i]
            mprev[b], mnext[a] = a, b
            indeg[b] += 1
    preds, succs, dur, avail, setup = c.preds, c.succs, c.dur, c.avail, c.setup
    start, end = [0.0] * n, [0.0] * n
    order: list[int] = []
    stack = [v for v in range(n) if indeg[v] == 0]
    while stack:
        v = stack.pop()
        order.append(v)
        k, p = mach[v], mprev[v]
        s = end[p] + setup(k, p, v) if p >= 0 else avail[k] + setup(k, -1, v)
        for q in preds[v]:
            if end[q] > s:
                s = end[q]
        start[v], end[v] = s, s + dur[v][k]
        for w in succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                stack.append(w)
        w = mnext[v]
        if w >= 0:
            indeg[w] -= 1
            if indeg[w] == 0:
                stack.append(w)
    return Pass(start, end, order, mnext) if len(order) == n else None


def evaluate(c: Compiled, mach: list[int], seqs: list[list[int]]) -> list[float] | None:
    """Earliest starts for an assignment and sequences, or None if they form a cycle."""
    result = forward(c, mach, seqs)
    return None if result is None else result.start


def to_schedule(c: Compiled, sol: Solution) -> Schedule:
    """The solution as a :class:`Schedule`, slots listed machine by machine in sequence
    (which orders operations of zero duration that share an instant)."""
    slots = {}
    for k, seq in enumerate(sol.seqs):
        for v in seq:
            s = sol.start[v]
            slots[c.op_ids[v]] = Slot(c.machines[k], s, s + c.dur[v][k])
    return Schedule(slots)


def from_schedule(c: Compiled, schedule: Schedule) -> Solution | None:
    """A schedule as a solution (machines and sequences taken from it, starts recomputed
    as early as possible); None when it does not fit the problem."""
    mindex = {name: k for k, name in enumerate(c.machines)}
    index = {op_id: v for v, op_id in enumerate(c.op_ids)}
    mach = [-1] * c.n
    seqs: list[list[int]] = [[] for _ in range(c.m)]
    for name, op_ids in schedule.sequences().items():
        k = mindex.get(name, -1)
        for op_id in op_ids:
            v = index.get(op_id, -1)
            if v < 0 or k not in c.dur[v]:
                return None
            mach[v] = k
            seqs[k].append(v)
    if -1 in mach:
        return None
    start = evaluate(c, mach, seqs)
    if start is None:
        return None
    makespan = max((start[v] + c.dur[v][mach[v]] for v in range(c.n)), default=0.0)
    return Solution(mach, seqs, start, makespan)
