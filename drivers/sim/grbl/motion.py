"""The simulated GRBL's planner and stepper: blocks worked off in (scaled) device time.

A :class:`Block` is one straight move with its duration at 100 % override. The
:class:`Stepper` task runs the planner's first block while the controller is in ``Run``
or ``Jog``; a feed hold interrupts it, spends ``hold_decel_s`` of the block decelerating
(``Hold:1``) and then holds (``Hold:0``); a cycle start continues where it stopped.
Positions are interpolated on demand, so a status report shows the tool mid-move.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.sim.grbl.gcode import Move

if TYPE_CHECKING:
    from drivers.sim.grbl.firmware import SimGrbl


@dataclass
class Block:
    start: tuple[float, float, float]
    target: tuple[float, float, float]
    duration: float
    """Device seconds at 100 % override."""
    rapid: bool
    feed: float
    """mm/min."""
    done: float = 0.0
    queued_at: float = 0.0
    """Loop time it entered the planner."""

    @classmethod
    def of(cls, move: Move, grbl: SimGrbl) -> Block:
        rates = [float(grbl.settings[110 + i]) for i in range(3)]
        deltas = [abs(t - s) for s, t in zip(move.start, move.target, strict=True)]
        slowest = max((d / r * 60.0 for d, r in zip(deltas, rates, strict=True) if d), default=0.0)
        length = move.length
        if move.feed is None:
            duration = slowest
            feed = length / duration * 60.0 if duration else 0.0
        else:
            duration = max(length / move.feed * 60.0, slowest)
            feed = move.feed
        return cls(move.start, move.target, duration, move.feed is None, feed)

    def at(self, fraction: float) -> tuple[float, float, float]:
        f = min(max(fraction, 0.0), 1.0)
        s, t = self.start, self.target
        return (s[0] + (t[0] - s[0]) * f, s[1] + (t[1] - s[1]) * f, s[2] + (t[2] - s[2]) * f)


class Stepper:
    """Works the planner off (see the module docstring)."""

    def __init__(self, grbl: SimGrbl, *, hold_decel_s: float) -> None:
        self.grbl = grbl
        self.hold_decel_s = hold_decel_s
        self.planner: deque[Block] = deque()
        self.blocks_done = 0
        self._position: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._since: float | None = None  # loop time the first block started moving

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def interrupt(self) -> None:
        self._wake.set()

    def flush(self) -> None:
        """Stop dead (reset, alarm, jog cancel): the planner is emptied where it stands."""
        self._position = self.position()
        self.planner.clear()
        self._since = None
        self.interrupt()
        self.grbl.notify()

    def set_position(self, position: tuple[float, float, float]) -> None:
        self._position = position
        self.grbl.interpreter.position = position

    def position(self) -> tuple[float, float, float]:
        if not self.planner:
            return self._position
        block = self.planner[0]
        done = block.done
        if self._since is not None:
            done += (asyncio.get_running_loop().time() - self._since) * self._rate(block)
        return block.at(done / block.duration if block.duration else 1.0)

    def current_feed(self) -> float:
        if not self.planner or self._since is None:
            return 0.0
        block = self.planner[0]
        return block.feed * self._rate(block) / self.grbl.speed

    def _rate(self, block: Block) -> float:
        """Device seconds per real second for ``block`` (speed and override)."""
        feed, rapid, _ = self.grbl.overrides
        return self.grbl.speed * (rapid if block.rapid else feed) / 100.0

    async def plan(self, block: Block) -> None:
        """Queue a move; waits while the planner is full (the main loop blocks there)."""
        await self.grbl.wait_for(lambda: len(self.planner) < self.grbl.planner_blocks)
        block.queued_at = asyncio.get_running_loop().time()
        self.planner.append(block)
        if self.grbl.state == "Idle":
            self.grbl.state = "Run"
        self.interrupt()
        self.grbl.notify()

    async def synchronize(self) -> None:
        """Wait until every planned move is made (``G4``, ``M2``)."""
        await self.grbl.wait_for(lambda: not self.planner and self.grbl.state != "Hold")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        grbl = self.grbl
        while True:
            if not self.planner or grbl.state not in ("Run", "Jog"):
                self._wake.clear()
                await self._wake.wait()
                continue
            block = self.planner[0]
            rate = self._rate(block)
            self._since = loop.time()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout((block.duration - block.done) / rate):
                    await self._wake.wait()
            if self._since is None:
                continue  # flushed meanwhile
            now = loop.time()
            block.done += (now - self._since) * rate
            self._since = None
            if block.done >= block.duration - 1e-9:
                ended_at = now - (block.done - block.duration) / rate
                self._finish(block)
                self._carry(ended_at, now)
            if grbl.state == "Hold" and grbl.substate == 1:
                if self.planner:
                    await self._decelerate(self.planner[0])
                else:  # the hold came as the last block ended: stopped already
                    grbl.substate = 0
                    grbl.notify()

    def _carry(self, ended_at: float, now: float) -> None:
        """The next block began when the last one ended (or when it came, if later), not
        when this task woke: a sleeper wakes up to a millisecond late, and restarting
        the clock at each wake-up made short moves take twice their time."""
        if not self.planner or self.grbl.state not in ("Run", "Jog"):
            return
        following = self.planner[0]
        began = max(ended_at, following.queued_at)
        following.done += max(now - began, 0.0) * self._rate(following)

    def _finish(self, block: Block) -> None:
        self._position = block.target
        self.planner.popleft()
        self.blocks_done += 1
        if not self.planner and self.grbl.state in ("Run", "Jog"):
            self.grbl.state, self.grbl.substate = "Idle", None
        self.grbl.notify()

    async def _decelerate(self, block: Block) -> None:
        loop = asyncio.get_running_loop()
        rate = self._rate(block)
        spend = min(self.hold_decel_s, block.duration - block.done)
        self._since = loop.time()
        await asyncio.sleep(spend / rate)
        if self._since is None or not self.planner or self.planner[0] is not block:
            return  # flushed meanwhile
        block.done += spend
        self._since = None
        if block.done >= block.duration - 1e-9:
            self._position = block.target
            self.planner.popleft()
            self.blocks_done += 1
        if self.grbl.state == "Hold":
            self.grbl.substate = 0
        self.grbl.notify()
