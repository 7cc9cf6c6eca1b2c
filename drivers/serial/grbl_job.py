"""Character counting and one GRBL job's phases and progress. Pure: no I/O, no clock.

Theory of operation.

**Character counting** (grbl ``doc/script/stream.py``; interface.md "Streaming Protocol"):
GRBL's receive buffer holds ``size`` bytes (128). :class:`CharCounter` remembers the byte
length (newline included) of every line sent and not yet answered; a line may go out only
if it fits beside them. Each ``ok`` or ``error:N`` answers the *oldest* line in flight
(GRBL answers in order, one answer per line); push messages answer nothing. In
``send_response`` mode the window is one line: what ``$`` settings writes need (an EEPROM
write stops the AVR's serial interrupt; bytes arriving meanwhile are lost).

**A job** (:class:`GrblRun`) streams, in order: a begin marker ``(MES job <id> begin)``,
the program's lines, ``G4P0.01`` and an end marker ``(MES job <id> end)``. GRBL ignores
comments (a comment-only line is an empty line: ``ok``), so the markers cost nothing on a
real machine, and the simulator logs them. The begin marker's ``ok`` is the machine's
acceptance. ``G4`` waits for the planner to empty before it dwells, so its ``ok`` comes
only when every move has been made; the job is complete when the end marker is answered
and a status report asked for after that says ``Idle``.

Phases, as a table (:data:`TRANSITIONS`; :meth:`GrblRun.handle` raises
``InvalidTransition`` on a miss)::

    checking -checked-> starting -accepted-> execute -hold-> holding -held-> held
    held -resume-> unholding -running-> execute
    checking|starting|execute|holding|held|unholding -stop-> stopping -stopped-> ended
    checking|starting|execute|holding|held|unholding -end-> ended   (complete, alarm, reset)

``checking`` is the optional ``$C`` pass: the program streamed in GRBL's check mode,
every ``error:N`` collected against its line, before any motion. ``stopping`` is the
feed hold and soft reset after an abort or an ``error:N`` (GRBL keeps executing the
lines already in its buffer after an error, so the driver stops the machine).
Progress is the share of the program's bytes GRBL has answered.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from enum import StrEnum
from typing import Generic, TypeVar

from drivers.serial.grbl_codec import RX_BUFFER_SIZE
from mes.domain.job import MachineState
from mes.domain.machine import advance

T = TypeVar("T")

BEGIN = "(MES job {job_id} begin)"
END = "(MES job {job_id} end)"
#: The synchronisation point (interface.md): its ``ok`` means the planner is empty.
SYNC = "G4P0.01"


class CharCounter(Generic[T]):
    """Bytes in GRBL's receive buffer, line by line (see the module docstring).

    Attributes:
        size: GRBL's receive buffer in bytes.
        send_response: One line in flight at a time.
        peak: The most bytes ever in flight (a test checks it never passes ``size``).
    """

    def __init__(self, size: int = RX_BUFFER_SIZE, *, send_response: bool = False) -> None:
        if size < 2:
            raise ValueError(f"a receive buffer of {size} bytes cannot hold a line")
        self.size = size
        self.send_response = send_response
        self.peak = 0
        self._pending: deque[tuple[int, T]] = deque()
        self._used = 0

    def __repr__(self) -> str:
        return f"<CharCounter {self._used}/{self.size} in {len(self._pending)} lines>"

    @property
    def used(self) -> int:
        return self._used

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def fits(self, length: int) -> bool:
        """A line of ``length`` bytes (newline included) may go out now."""
        if self.send_response:
            return not self._pending
        return self._used + length <= self.size

    def sent(self, length: int, tag: T) -> None:
        """A line of ``length`` bytes went out.

        Raises:
            ValueError: it does not fit (a bug in the caller: GRBL would lose bytes).
        """
        if not self.fits(length):
            raise ValueError(f"{length} bytes do not fit beside {self._used} of {self.size}")
        self._pending.append((length, tag))
        self._used += length
        self.peak = max(self.peak, self._used)

    def answered(self) -> T | None:
        """An ``ok`` or ``error:N`` came: the oldest line's tag (None: nothing was in flight,
        an answer to no line of ours)."""
        if not self._pending:
            return None
        length, tag = self._pending.popleft()
        self._used -= length
        return tag

    def clear(self) -> list[T]:
        """GRBL reset: its buffer is empty and the lines in it will never be answered."""
        tags = [tag for _, tag in self._pending]
        self._pending.clear()
        self._used = 0
        return tags


class Phase(StrEnum):
    CHECKING = "checking"
    STARTING = "starting"
    EXECUTE = "execute"
    HOLDING = "holding"
    HELD = "held"
    UNHOLDING = "unholding"
    STOPPING = "stopping"
    ENDED = "ended"


LIVE = frozenset(
    {Phase.CHECKING, Phase.STARTING, Phase.EXECUTE, Phase.HOLDING, Phase.HELD, Phase.UNHOLDING}
)
TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (Phase.CHECKING, "checked"): Phase.STARTING,
    (Phase.STARTING, "accepted"): Phase.EXECUTE,
    (Phase.EXECUTE, "hold"): Phase.HOLDING,
    (Phase.HOLDING, "held"): Phase.HELD,
    (Phase.HELD, "resume"): Phase.UNHOLDING,
    (Phase.UNHOLDING, "running"): Phase.EXECUTE,
    **{(phase, "stop"): Phase.STOPPING for phase in LIVE},
    **{(phase, "end"): Phase.ENDED for phase in LIVE},
    (Phase.STOPPING, "stopped"): Phase.ENDED,
    (Phase.STOPPING, "end"): Phase.ENDED,
}
_STREAMING = frozenset({Phase.STARTING, Phase.EXECUTE, Phase.HOLDING, Phase.HELD, Phase.UNHOLDING})
#: What the cell reports while a job is in each phase.
STATES: dict[Phase, MachineState] = {
    Phase.CHECKING: MachineState.STARTING,
    Phase.STARTING: MachineState.STARTING,
    Phase.EXECUTE: MachineState.EXECUTE,
    Phase.HOLDING: MachineState.HOLDING,
    Phase.HELD: MachineState.HELD,
    Phase.UNHOLDING: MachineState.UNHOLDING,
    Phase.STOPPING: MachineState.ABORTING,
    Phase.ENDED: MachineState.IDLE,
}

_DWELL = re.compile(r"G0*4(?![\d.])")
_P_WORD = re.compile(r"P(\d+\.?\d*|\.\d+)")

#: What a streamed line is: ("check" | "job", index into the run's lines).
Tag = tuple[str, int]


class GrblRun:
    """The streaming state of one job (see the module docstring).

    Attributes:
        job_id: The controller's job id.
        phase: Where the job is.
        lines: What is streamed for the job: markers, program, sync.
        sources: The program line number in the job's G-code of each entry of ``lines``
            (0 for the lines the driver adds).
        check_errors: ``(program line number, error code, line)`` found by the ``$C`` pass.
        result: Code and text a stopped job ends with.
        detached: The link was closed after every line was sent; GRBL runs on alone.
    """

    def __init__(self, job_id: int, program: Sequence[tuple[int, str]], *, check: bool) -> None:
        self.job_id = job_id
        self.phase = Phase.CHECKING if check else Phase.STARTING
        self.program = list(program)
        self.lines = [
            BEGIN.format(job_id=job_id),
            *(text for _, text in self.program),
            SYNC,
            END.format(job_id=job_id),
        ]
        self.sources = [0, *(number for number, _ in self.program), 0, 0]
        self.check_errors: list[tuple[int, int, str]] = []
        self.result: tuple[str, str] | None = None
        self.detached = False
        self._upto = [0]  # program bytes answered once line i of self.lines is answered
        for text in self.lines[1:-2]:
            self._upto.append(self._upto[-1] + len(text) + 1)
        self._upto += [self._upto[-1]] * 2
        self.total_bytes = self._upto[-1]
        self._check_cursor = 0
        self._check_answered = 0
        self._cursor = 0
        self._answered = 0

    def __repr__(self) -> str:
        return f"<GrblRun {self.job_id} {self.phase.value} {self._answered}/{len(self.lines)}>"

    # -- phases -------------------------------------------------------------------------

    def handle(self, event: str) -> Phase:
        """Apply ``event`` by the table.

        Raises:
            InvalidTransition: the table has no such transition.
        """
        self.phase = advance(TRANSITIONS, f"job {self.job_id}", self.phase, event)
        return self.phase

    @property
    def state(self) -> MachineState:
        return STATES[self.phase]

    @property
    def live(self) -> bool:
        return self.phase in LIVE

    def stop(self, code: str, text: str) -> None:
        """Stop the machine, then end with ``code``/``text``. Raises InvalidTransition
        unless live."""
        self.handle("stop")
        self.result = (code, text)

    def end(self, code: str, text: str) -> None:
        """End now with ``code``/``text`` (GRBL already stopped: alarm, reset, lost link)."""
        self.handle("end")
        self.result = (code, text)

    # -- the $C pass ----------------------------------------------------------------------

    def next_check_line(self) -> tuple[str, Tag] | None:
        """The next program line to stream in check mode (not yet taken), or None."""
        if self.phase is not Phase.CHECKING or self._check_cursor >= len(self.program):
            return None
        return self.program[self._check_cursor][1], ("check", self._check_cursor)

    def check_line_sent(self) -> None:
        self._check_cursor += 1

    def check_answered(self, index: int, error: int | None) -> None:
        self._check_answered = max(self._check_answered, index + 1)
        if error is not None:
            number, text = self.program[index]
            self.check_errors.append((number, error, text))

    @property
    def check_done(self) -> bool:
        """Every program line was answered in check mode."""
        return self._check_answered >= len(self.program)

    # -- the real run -----------------------------------------------------------------------

    def next_line(self) -> tuple[str, Tag] | None:
        """The next line to stream (not yet taken: see :meth:`line_sent`), or None while
        there is nothing to send now."""
        if self.phase not in _STREAMING or self._cursor >= len(self.lines):
            return None
        return self.lines[self._cursor], ("job", self._cursor)

    def line_sent(self) -> None:
        self._cursor += 1

    def assume_answered(self) -> None:
        """The link was down while GRBL answered the lines in flight: take them as answered
        (only once every line was sent; the machine's state tells the rest)."""
        self._answered = self._cursor

    def answered(self, index: int) -> str | None:
        """GRBL answered line ``index`` with ``ok``; ``accepted`` for the begin marker."""
        self._answered = max(self._answered, index + 1)
        if index == 0 and self.phase is Phase.STARTING:
            self.handle("accepted")
            return "accepted"
        return None

    def source_of(self, index: int) -> str:
        """Which line of the job's G-code line ``index`` is, for a person."""
        number = self.sources[index]
        return f"program line {number}" if number else f"the driver's line {self.lines[index]!r}"

    def dwell_s(self) -> float:
        """Seconds of ``G4 P`` dwell in the lines sent and not yet answered: GRBL reports
        ``Idle`` while it dwells, so an idle report says nothing of them until then."""
        total = 0.0
        for text in self.lines[self._answered : self._cursor]:
            if _DWELL.search(text) and (seconds := _P_WORD.search(text)):
                total += float(seconds[1])
        return total

    @property
    def all_sent(self) -> bool:
        return self._cursor >= len(self.lines)

    @property
    def all_answered(self) -> bool:
        return self._answered >= len(self.lines)

    @property
    def fraction(self) -> float:
        """Share of the program's bytes GRBL has answered, 0..1."""
        if not self.total_bytes:
            return 1.0 if self.all_answered else 0.0
        return self._upto[max(self._answered - 1, 0)] / self.total_bytes

    @property
    def size(self) -> int:
        """Program lines (the driver's own lines not counted)."""
        return len(self.program)

    @property
    def lines_done(self) -> int:
        """Program lines GRBL answered."""
        return max(0, min(self._answered - 1, len(self.program)))
