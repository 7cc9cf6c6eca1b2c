"""A simulated OPC UA machine's program: the job handshake as methods and variables, no server.

Theory of operation: :class:`SimMachine` is what runs inside the machine; the server glue
(:mod:`drivers.sim.opcua_server`) turns its methods into OPC UA methods and its
:meth:`SimMachine.values` into variables. Nothing here touches asyncua beyond its
``VariantType`` enum, which names the node model's types (:data:`VARIABLES`).

A method call (:meth:`SimMachine.start`, :meth:`SimMachine.command`) is decided at once and
returns a :class:`Reply` (accepted, error code); an accepted call changes the machine in the
same step, so the values a client reads after the call returns already show its effect. A
refused call changes nothing: its code travels in the reply only (there is no command
register to report it in, unlike the Modbus handshake).

Everything else happens in :meth:`SimMachine.scan`, called every scan cycle with the time,
never read here. A scan leaves a transient state for its successor (``NEXT``: ``starting ->
execute``, ``holding -> held``, ``unholding -> execute``, ``aborting -> aborted``,
``clearing -> stopped``, ``resetting -> idle``) or advances the running job: elapsed time
grows only in ``execute``; a job lasts ``expected_s / speed`` (1 s / speed when the recipe
has no ``expected_s``); with probability ``fault_rate`` it faults at a seeded random fraction
0.1..0.9. Completion lands in one scan, straight from ``execute``: results, outcome, last
job id, current job 0, error 0, progress 100, state ``complete``; with ``auto_reset`` the
next scan returns to ``idle``. A fault or abort writes its error on entering ``aborting``;
the job's end (last job id, current 0, outcome unsuccessful) lands with ``aborted``. Every
scan bumps the heartbeat unless :attr:`SimMachine.heartbeat_stuck`. Commands other than
Start are a transition table kept as data (``COMMANDS``).

Error codes: 1 Start while not idle, 2 job id 0 or already started, 3 bad recipe, 4 command
not allowed now, 900 aborted; faults use the codes of the ``faults`` argument.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Literal, NamedTuple

from asyncua import ua

from drivers.opcua.types import SCALARS, fits
from drivers.sim.packml import COMMANDS, JOB_STATES, NEXT
from mes.domain.job import REFUSALS, JobOutcome, MachineState

S = MachineState
V = ua.VariantType
NOT_IDLE, BAD_JOB_ID, BAD_RECIPE, NOT_ALLOWED = 1, 2, 3, 4
ABORTED_CODE = 900
ABORTED_TEXT = "job aborted"
DEFAULT_FAULTS: Mapping[int, str] = {100: "simulated fault"}
#: Result name whose value is the job's cycle time (``expected_s``), not a random draw.
CYCLE_RESULT = "cycle_s"

#: A value of a variable or recipe parameter, as Python holds it.
Value = bool | int | float | str
Command = Literal["hold", "resume", "abort", "reset", "clear"]

#: The machine object's own variables, in the order a change is pushed: a client that sees
#: ``State`` change has already been sent everything before it. ``Results/<name>`` (Double)
#: come first of all.
VARIABLES: dict[str, ua.VariantType] = {
    "LastOutcome": V.String,
    "LastJobId": V.UInt32,
    "CurrentJobId": V.UInt32,
    "ErrorCode": V.UInt16,
    "ErrorText": V.String,
    "Progress": V.Double,
    "State": V.String,
    "Heartbeat": V.UInt32,
}
RECIPE_TYPES = SCALARS


class Reply(NamedTuple):
    """A method's output arguments: ``Accepted`` (Boolean) and ``ErrorCode`` (UInt16)."""

    accepted: bool
    error_code: int


def default_value(vtype: ua.VariantType) -> Value:
    """What a recipe variable of ``vtype`` holds at power-up: False, 0, 0.0 or ""."""
    if vtype is V.Boolean:
        return False
    if vtype is V.String:
        return ""
    return 0.0 if vtype in (V.Float, V.Double) else 0


class SimMachine:
    """A machine running the job handshake (see the module docstring).

    Attributes:
        executed: Every job id this machine accepted, in order.
        heartbeat_stuck: Fault injection: the heartbeat stops changing while True.
    """

    def __init__(
        self,
        name: str,
        *,
        recipe: Mapping[str, ua.VariantType] | None = None,
        results: Mapping[str, tuple[float, float]] | None = None,
        faults: Mapping[int, str] | None = None,
        speed: float = 1.0,
        fault_rate: float = 0.0,
        seed: int | str = 0,
        auto_reset: bool = True,
        on_started: Callable[[str, int], None] | None = None,
        commands: Literal["methods", "writes"] = "methods",
        states: Literal["names", "packml"] = "names",
    ) -> None:
        """Power up: idle, no job, every result 0.

        Args:
            name: The machine's name: its object's browse name and node id prefix.
            recipe: Recipe parameter name -> its variant type (the ``Recipe`` variables).
            results: Result name -> (low, high) of the simulated measurement (the
                ``Results`` variables); ``cycle_s`` is the job's ``expected_s`` instead.
                Default: just ``cycle_s``.
            faults: Fault code -> text, drawn from when a job faults (default 100).
            speed: Jobs last ``expected_s / speed`` seconds.
            fault_rate: Probability that a job faults part-way.
            seed: With ``name``, seeds the RNG: same seed, same faults and results.
            auto_reset: Go from ``complete`` back to ``idle`` on the next scan.
            on_started: Called with (name, job id) as a job is accepted, before anything
                changes (``plant_sims.JobLog`` writes the JSON-lines execution log).
            commands: ``methods`` (Start, Hold...), or ``writes``: a ``Command`` variable
                (PackML CntrlCmd numbers) and a ``JobId`` variable the server reads
                every scan, setting ``Command`` back to 0 once taken.
            states: ``State`` as a PackML name (String) or a PackML number (Int32).

        Raises:
            ValueError: a bad name, speed, fault rate or fault code, or a recipe type
                outside :data:`RECIPE_TYPES`.
        """
        if not name or any(c in name for c in "./;"):
            raise ValueError(f"machine name {name!r}: empty, or has '.', '/' or ';'")
        if speed <= 0 or not 0.0 <= fault_rate <= 1.0:
            raise ValueError("speed must be > 0 and fault_rate within 0..1")
        self.recipe_types = dict(recipe or {})
        if bad := [n for n, t in self.recipe_types.items() if t not in RECIPE_TYPES]:
            raise ValueError(f"machine {name}: recipe parameters of unsupported type: {bad}")
        self.faults = dict(faults or DEFAULT_FAULTS)
        if not self.faults or any(not 0 < c < 65536 or c == ABORTED_CODE for c in self.faults):
            raise ValueError(f"machine {name}: fault codes must be 1..65535 and not 900")
        self.name = name
        self.ranges = dict(results) if results is not None else {CYCLE_RESULT: (0.0, 0.0)}
        self.speed = speed
        self.fault_rate = fault_rate
        self.auto_reset = auto_reset
        self.on_started = on_started
        self.commands = commands
        self.states = states
        self.executed: list[int] = []
        self.heartbeat_stuck = False
        self._rng = random.Random(f"{seed}:{name}")
        self._state = S.IDLE
        self._started: set[int] = set()
        self._job = 0
        self._last_job = 0
        self._outcome = ""
        self._error = (0, "")
        self._progress = 0.0
        self._heartbeat = 0
        self._results = dict.fromkeys(self.ranges, 0.0)
        self._recipe: dict[str, Value] = {}
        self._expected_s = 1.0
        self._elapsed = 0.0
        self._mark: float | None = None
        self._fault_at: float | None = None
        self._reject: int | None = None

    def __repr__(self) -> str:
        return f"<SimMachine {self.name} {self._state.value} job={self._job}>"

    # -- what tests and the server see -------------------------------------------

    @property
    def state(self) -> MachineState:
        return self._state

    @property
    def current_job_id(self) -> int:
        return self._job

    @property
    def error(self) -> tuple[int, str]:
        """(ErrorCode, ErrorText)."""
        return self._error

    @property
    def recipe(self) -> dict[str, Value]:
        """The recipe latched by the last accepted Start."""
        return dict(self._recipe)

    def default_recipe(self) -> dict[str, Value]:
        """The Recipe variables' power-up values."""
        return {name: default_value(vtype) for name, vtype in self.recipe_types.items()}

    def values(self) -> dict[str, Value]:
        """Every variable by its path below the machine object, in push order.

        ``Results/<name>`` first, then :data:`VARIABLES` in order (``State`` near the end).
        """
        results: dict[str, Value] = {f"Results/{n}": v for n, v in self._results.items()}
        return results | {
            "LastOutcome": self._outcome,
            "LastJobId": self._last_job,
            "CurrentJobId": self._job,
            "ErrorCode": self._error[0],
            "ErrorText": self._error[1],
            "Progress": self._progress,
            "State": self._state.value,
            "Heartbeat": self._heartbeat,
        }

    # -- methods -----------------------------------------------------------------

    def start(self, job_id: int, recipe: Mapping[str, Value] | None = None) -> Reply:
        """The Start method: accept ``job_id`` with the Recipe variables' current values.

        Args:
            job_id: The job, 1..2**32-1, never started here before.
            recipe: The Recipe variables' values; parameters left out keep their power-up
                value (0, 0.0, "", False).

        Returns:
            (True, 0) and the machine in ``starting``; or (False, code): 1 not idle, 2 job
            id 0 or already started, 3 a value does not fit its type or ``expected_s`` is
            not > 0, or the code given to :meth:`reject_next`.

        Raises:
            KeyError: ``recipe`` names a parameter the machine does not have.
        """
        if unknown := set(recipe or {}) - set(self.recipe_types):
            raise KeyError(f"machine {self.name} has no recipe parameters {sorted(unknown)}")
        values = self.default_recipe() | dict(recipe or {})
        reject, self._reject = self._reject, None
        if reject is None and self._state is not S.IDLE:
            reject = NOT_IDLE
        elif reject is None and (job_id <= 0 or job_id in self._started):
            reject = BAD_JOB_ID
        elif reject is None and not self._valid(values):
            reject = BAD_RECIPE
        if reject is not None:
            return Reply(False, reject)
        if self.on_started is not None:  # first: if logging fails, nothing has started
            self.on_started(self.name, job_id)
        self._started.add(job_id)
        self.executed.append(job_id)
        self._recipe = values
        expected = values.get("expected_s", 1.0)
        assert isinstance(expected, int | float)  # what _valid checked
        self._expected_s = float(expected)
        self._job, self._elapsed, self._mark = job_id, 0.0, None
        faults = self._rng.random() < self.fault_rate
        self._fault_at = self._rng.uniform(0.1, 0.9) if faults else None
        self._error, self._progress = (0, ""), 0.0
        self._state = S.STARTING
        return Reply(True, 0)

    def command(self, name: Command) -> Reply:
        """Hold, Resume, Abort, Reset or Clear: (True, 0) if the state allows it, else (False, 4).

        Abort leaves ErrorCode 900 "job aborted"; the others clear the error.
        """
        target = COMMANDS.get(("unhold" if name == "resume" else name, self._state))
        if target is None:
            return Reply(False, NOT_ALLOWED)
        self._error = (ABORTED_CODE, ABORTED_TEXT) if name == "abort" else (0, "")
        self._state = target
        return Reply(True, 0)

    def refused(self, reply: Reply) -> None:
        """A command written to the ``Command`` variable was refused: show its code in
        ``ErrorCode``/``ErrorText`` (a written command has no reply to carry it)."""
        if not reply.accepted:
            self._error = (reply.error_code, REFUSALS.get(reply.error_code, "refused"))

    def hold(self) -> Reply:
        """``execute -> holding -> held``; see :meth:`command`."""
        return self.command("hold")

    def resume(self) -> Reply:
        """``held -> unholding -> execute``; see :meth:`command`."""
        return self.command("resume")

    def abort(self) -> Reply:
        """A running state ``-> aborting -> aborted``, outcome unsuccessful; see :meth:`command`."""
        return self.command("abort")

    def reset(self) -> Reply:
        """``complete`` or ``stopped -> resetting -> idle``; see :meth:`command`."""
        return self.command("reset")

    def clear(self) -> Reply:
        """``aborted -> clearing -> stopped``; see :meth:`command`."""
        return self.command("clear")

    # -- fault injection ---------------------------------------------------------

    def inject_fault(self, code: int | None = None) -> None:
        """Fault the running job now (``aborting``; ``aborted`` on the next scan).

        Args:
            code: The error code (its text from ``faults``, else "fault <code>"); a random
                one of ``faults`` if None.

        Raises:
            RuntimeError: no job is running.
            ValueError: ``code`` is not 1..65535 (ErrorCode is a UInt16).
        """
        if code is not None and not 0 < code < 65536:
            raise ValueError(f"fault code {code} is not 1..65535")
        if self._job == 0 or self._state not in JOB_STATES:
            raise RuntimeError(f"machine {self.name} runs no job to fault ({self._state.value})")
        self._fault(self._pick_fault() if code is None else code)

    def reject_next(self, code: int) -> None:
        """Refuse the next Start with ``code`` (checked before anything else)."""
        if not 0 < code < 65536:
            raise ValueError("a rejection needs an error code 1..65535")
        self._reject = code

    # -- the scan ----------------------------------------------------------------

    def scan(self, now: float) -> None:
        """Run one scan cycle at time ``now`` (seconds, monotonic)."""
        if self._state in NEXT:
            self._advance(now)
        elif self._state is S.EXECUTE:
            self._run(now)
        elif self._state is S.COMPLETE and self.auto_reset:
            self._state = S.IDLE
        if not self.heartbeat_stuck:
            self._heartbeat = (self._heartbeat + 1) % 2**32

    def _advance(self, now: float) -> None:
        left = self._state
        if left is S.ABORTING and self._job:
            self._end(JobOutcome.UNSUCCESSFUL)
        self._state = NEXT[left]
        if self._state is S.EXECUTE:
            self._mark = now

    def _run(self, now: float) -> None:
        if self._mark is not None:
            self._elapsed += max(0.0, now - self._mark)
        self._mark = now
        fraction = self._elapsed / (self._expected_s / self.speed)
        if self._fault_at is not None and fraction >= self._fault_at:
            self._fault(self._pick_fault())
        elif fraction >= 1.0:
            self._complete()
        else:
            self._progress = fraction * 100.0

    def _pick_fault(self) -> int:
        return self._rng.choice(sorted(self.faults))

    def _fault(self, code: int) -> None:
        self._error = (code, self.faults.get(code, f"fault {code}"))
        self._state = S.ABORTING

    def _complete(self) -> None:
        for name, (low, high) in self.ranges.items():
            value = self._expected_s if name == CYCLE_RESULT else self._rng.uniform(low, high)
            self._results[name] = value
        self._error, self._progress = (0, ""), 100.0
        self._end(JobOutcome.SUCCESSFUL)
        self._state = S.COMPLETE

    def _end(self, outcome: JobOutcome) -> None:
        self._outcome = outcome.value
        self._last_job, self._job = self._job, 0

    def _valid(self, values: Mapping[str, Value]) -> bool:
        if not all(fits(self.recipe_types[n], v) for n, v in values.items()):
            return False
        expected = values.get("expected_s", 1.0)
        return isinstance(expected, int | float) and not isinstance(expected, bool) and expected > 0
