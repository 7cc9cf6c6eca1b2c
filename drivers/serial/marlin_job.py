"""One job streamed to a Marlin printer: its commands, its phase, its progress. Pure.

Theory of operation. A job is its program's commands between two markers the printer
echoes: ``M118 E1 MES job <id> begin`` first, ``M400`` and ``M118 E1 MES job <id> end``
last. ``M400`` waits until every move has been made, so the end marker's ``ok`` means the
part is done. The job is *accepted* when the printer confirms the begin marker and
*complete* when it confirms the end marker (confirmation: :mod:`marlin_flow`).

Phases, as a table (:data:`TRANSITIONS`; :meth:`JobRun.handle` raises
``InvalidTransition`` on a miss)::

    starting -accepted-> execute -hold-> holding -parked-> held -resume-> unholding
    unholding -unparked-> execute          (the job may end in any of these: complete)
    starting|execute|holding|held|unholding -stop-> stopping -stopped-> (ended)

* **Hold** sends no further program line (the line boundary is the safe point), queues
  the park code, and is *held* once the printer confirms its last line.
* **Resume** queues the unpark code, then puts back the modal state the program had
  reached (``G90``/``G91``, ``M82``/``M83``, the feed rate), since a park code usually
  moves in relative mode at its own feed rate; *execute* once that is confirmed.
* **Stop** (an abort, or a job fault while the printer still listens) drops whatever was
  not sent, asks the driver to renumber (``M110``: lines on the wire that the printer
  rejected are void, never sent again), queues the end code (heaters off, fan off,
  motors off) and ends the job with its code and text once that is confirmed.

Progress is the share of the program's bytes the printer has confirmed.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from enum import StrEnum

from drivers.serial.marlin_codec import word
from mes.domain.job import MachineState
from mes.domain.machine import advance

#: (kind, index): what a numbered line was, so its confirmation can be acted on.
Tag = tuple[str, int]

MARKER = "M118 E1 MES job {job_id} {what}"
"""The marker lines; the printer echoes them as ``echo:MES job <id> begin|end``."""


class Phase(StrEnum):
    STARTING = "starting"
    EXECUTE = "execute"
    HOLDING = "holding"
    HELD = "held"
    UNHOLDING = "unholding"
    STOPPING = "stopping"
    ENDED = "ended"


_LIVE = (Phase.STARTING, Phase.EXECUTE, Phase.HOLDING, Phase.HELD, Phase.UNHOLDING)
TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (Phase.STARTING, "accepted"): Phase.EXECUTE,
    (Phase.EXECUTE, "hold"): Phase.HOLDING,
    (Phase.HOLDING, "parked"): Phase.HELD,
    (Phase.HELD, "resume"): Phase.UNHOLDING,
    (Phase.UNHOLDING, "unparked"): Phase.EXECUTE,
    **{(phase, "stop"): Phase.STOPPING for phase in _LIVE},
    **{(phase, "complete"): Phase.ENDED for phase in _LIVE},
    (Phase.STOPPING, "stopped"): Phase.ENDED,
}
#: What the cell reports while a job is in each phase.
STATES: dict[Phase, MachineState] = {
    Phase.STARTING: MachineState.STARTING,
    Phase.EXECUTE: MachineState.EXECUTE,
    Phase.HOLDING: MachineState.HOLDING,
    Phase.HELD: MachineState.HELD,
    Phase.UNHOLDING: MachineState.UNHOLDING,
    Phase.STOPPING: MachineState.ABORTING,
    Phase.ENDED: MachineState.IDLE,
}
_FEED = re.compile(r"(?:^|\s)F(\d+(?:\.\d+)?)", re.IGNORECASE)


class JobRun:
    """The streaming state of one job (see the module docstring).

    Attributes:
        job_id: The controller's job id.
        phase: Where the job is.
        result: Code and text a stopped job ends with.
        wants_renumber: The driver must send ``M110`` before the next line (after a stop).
    """

    def __init__(
        self,
        job_id: int,
        program: Sequence[str],
        *,
        park: Sequence[str] = (),
        unpark: Sequence[str] = (),
        end_code: Sequence[str] = (),
    ) -> None:
        self.job_id = job_id
        self.phase = Phase.STARTING
        self.result: tuple[str, str] | None = None
        self.wants_renumber = False
        self._park, self._unpark, self._end = list(park), list(unpark), list(end_code)
        self.lines = [
            MARKER.format(job_id=job_id, what="begin"),
            *program,
            "M400",
            MARKER.format(job_id=job_id, what="end"),
        ]
        self._program_end = len(program)  # index of the last program line in self.lines
        # Bytes of the program up to each line of self.lines (the begin marker counts 0).
        self._upto = [0]
        for line in program:
            self._upto.append(self._upto[-1] + len(line) + 1)
        self.total_bytes = self._upto[-1]
        self._cursor = 0  # next line of self.lines to send
        self._done = 0  # lines of self.lines confirmed
        self._done_bytes = 0
        self._control: deque[tuple[str, Tag]] = deque()
        self._absolute, self._e_absolute, self._feed = True, True, ""

    def __repr__(self) -> str:
        return f"<JobRun {self.job_id} {self.phase.value} {self._done}/{len(self.lines)}>"

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
        """Not stopping and not ended: hold, resume and stop apply."""
        return self.phase in _LIVE

    def hold(self) -> None:
        """Stop feeding program lines; park. Raises InvalidTransition unless executing."""
        self.handle("hold")
        self._queue("park", self._park)
        if not self._park:
            self.handle("parked")

    def resume(self) -> None:
        """Unpark and restore the program's modes. Raises InvalidTransition unless held."""
        self.handle("resume")
        restore = ["G90" if self._absolute else "G91", "M82" if self._e_absolute else "M83"]
        if self._feed:
            restore.append(f"G1 F{self._feed}")
        self._queue("unpark", [*self._unpark, *restore])

    def stop(self, code: str, text: str) -> None:
        """End the job with ``code``/``text`` once the end code is confirmed.

        Raises:
            InvalidTransition: the job is already stopping or ended.
        """
        self.handle("stop")
        self.result = (code, text)
        self._control.clear()
        self.wants_renumber = True
        self._queue("end", self._end)
        if not self._end:
            self.handle("stopped")

    def _queue(self, kind: str, commands: Sequence[str]) -> None:
        for index, command in enumerate(commands):
            last = index == len(commands) - 1
            self._control.append((command, (kind, 1 if last else 0)))

    # -- sending and confirmations ------------------------------------------------------

    def next_command(self) -> tuple[str, Tag] | None:
        """The next command to send, or None while there is nothing to send now."""
        if self._control:
            return self._control.popleft()
        if self.phase not in (Phase.STARTING, Phase.EXECUTE) or self._cursor >= len(self.lines):
            return None
        if self.phase is Phase.STARTING and self._cursor > 0:
            return None  # the rest waits until the printer took the begin marker
        index = self._cursor
        self._cursor += 1
        command = self.lines[index]
        self._track_modes(command)
        return command, ("job", index)

    def _track_modes(self, command: str) -> None:
        code = word(command)
        if code == "G90":
            self._absolute = self._e_absolute = True
        elif code == "G91":
            self._absolute = self._e_absolute = False
        elif code == "M82":
            self._e_absolute = True
        elif code == "M83":
            self._e_absolute = False
        if code in ("G0", "G1", "G2", "G3") and (feed := _FEED.search(command)):
            self._feed = feed[1]

    def confirmed(self, tag: Tag) -> str | None:
        """The printer confirmed the line tagged ``tag``; the event it completes, if any:
        ``accepted``, ``complete``, ``parked``, ``unparked`` or ``stopped`` (the phase has
        moved on by then)."""
        kind, index = tag
        if kind == "job":
            self._done = max(self._done, index + 1)
            self._done_bytes = self._upto[min(self._done, self._program_end + 1) - 1]
            if index == 0 and self.phase is Phase.STARTING:
                self.handle("accepted")
                return "accepted"
            if index == len(self.lines) - 1 and self.live:
                self.handle("complete")
                return "complete"
            return None
        if index != 1:
            return None  # not the last line of its code
        event = {"park": "parked", "unpark": "unparked", "end": "stopped"}.get(kind)
        if event is None or (self.phase, event) not in TRANSITIONS:
            return None
        self.handle(event)
        return event

    @property
    def fraction(self) -> float:
        """Share of the program's bytes the printer has confirmed, 0..1."""
        return self._done_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def size(self) -> int:
        """Program lines (markers not counted)."""
        return self._program_end

    @property
    def lines_done(self) -> int:
        """Program lines confirmed (markers not counted)."""
        return max(0, min(self._done - 1, self._program_end))
