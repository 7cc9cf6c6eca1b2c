"""A simulated PLC program: the job handshake run on a register image, with no sockets.

Theory of operation: :class:`SimPlc` owns one register image per Modbus table, sized to
cover its :class:`~drivers.modbus.plcmap.PlcMap`, and is the PLC's program. A client writes
the command block (command, sequence, job id, recipe) through :meth:`SimPlc.write`; a write
that touches ``sequence`` is a *new command* when ``sequence`` then differs from ``ack``,
and is processed at once: the outcome (state, current job, error) and ``ack = sequence``
land in the image in the same step, so a reader that sees the new ack sees the result too.

Everything else happens in :meth:`SimPlc.scan`, called every scan cycle with the time
(``loop.time()``), never read here. A scan leaves a transient state for its successor
(``starting -> execute``, ``holding -> held``, ``aborting -> aborted``, ``completing ->
complete``...: ``NEXT``), or advances the running job: elapsed time grows only while in
``execute``; a job lasts ``expected_s / speed``; with probability ``fault_rate`` it faults
at a seeded random fraction. Completion writes the results, outcome, last job id and
progress 100 in one scan; with ``auto_reset`` the next scan returns to ``idle``. Every scan
bumps the heartbeat unless :attr:`SimPlc.heartbeat_stuck`. Commands other than ``start``
are a transition table kept as data (``COMMANDS``). A state the map gives no code is
skipped if transient; a command whose resting state has no code is refused (error 4).

Error codes: 1 start while not idle, 2 job id 0 or already started, 3 bad recipe, 4 command
unknown or not allowed now, 900 aborted, 901 stopped; faults use the map's own codes. An
accepted command sets error 0 (abort 900, stop 901), a refused one its code. A fault, abort
or stop writes its error on entering ``aborting``/``stopping``; the job's end (last job id,
current 0, outcome) lands with ``aborted``/``stopped``/``complete``, all in one scan.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from drivers.modbus.codec import CodecError, DataType, Point, Table, decode, encode
from drivers.modbus.plcmap import PlcMap, Value
from drivers.sim.packml import COMMANDS, JOB_STATES, NEXT
from mes.domain.job import MachineState

S = MachineState
NOT_IDLE, BAD_JOB_ID, BAD_RECIPE, BAD_COMMAND = 1, 2, 3, 4
ABORTED_CODE, STOPPED_CODE, DEFAULT_FAULT = 900, 901, 100
#: Requests a log keeps (the oldest go first); ``function_codes`` counts them all.
REQUEST_LOG = 10_000
#: Function codes that write (single/multiple coils and registers, mask write, read/write).
WRITE_CODES = frozenset({5, 6, 15, 16, 22, 23})

#: Error code a command leaves when accepted (the rest leave 0).
_ACCEPTED_ERROR = {"abort": ABORTED_CODE, "stop": STOPPED_CODE}
#: States the job flow rests in: the map must name their codes.
_REQUIRED = (S.IDLE, S.EXECUTE, S.COMPLETE, S.ABORTED)


class AddressError(LookupError):
    """A read or write outside the map, or a write to a register no writable point covers."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request a server received for a PLC, as the request log keeps it.

    Attributes:
        values: What a write carried (registers, or bits as 0/1); empty for a read.
        at: Event loop time of receipt.
    """

    device_id: int
    function_code: int
    address: int
    count: int
    values: tuple[int, ...] = ()
    at: float = 0.0

    @property
    def is_write(self) -> bool:
        """True for a function code that writes (5, 6, 15, 16, 22, 23)."""
        return self.function_code in WRITE_CODES


class SimPlc:
    """A PLC running the job handshake on a register image (see the module docstring).

    Attributes:
        executed: Every job id this PLC accepted, in order.
        requests: The last ``REQUEST_LOG`` requests a server received for this PLC.
        function_codes: How many requests of each function code it ever received.
        reply_delay_s: Fault injection: a server waits this long before answering.
        heartbeat_stuck: Fault injection: the heartbeat stops changing while True.
    """

    def __init__(
        self,
        name: str,
        plc_map: PlcMap,
        *,
        speed: float = 1.0,
        fault_rate: float = 0.0,
        seed: int | str = 0,
        results: Mapping[str, tuple[float, float]] | None = None,
        auto_reset: bool = True,
        on_started: Callable[[str, int], None] | None = None,
    ) -> None:
        """Power up: idle, every status register 0.

        Args:
            name: The cell's name (seeds the RNG and names log lines).
            plc_map: Where the job contract's points live.
            speed: Jobs last ``expected_s / speed`` seconds.
            fault_rate: Probability that a job faults part-way.
            seed: With ``name``, seeds the RNG: same seed, same faults and results.
            results: Result name -> (low, high) for simulated measurements (default 0..1).
            auto_reset: Go from ``complete`` back to ``idle`` on the next scan.
            on_started: Called with (name, job id) as a job is accepted, before the ack.

        Raises:
            ValueError: bad speed or fault rate, or a state the job flow needs has no code.
        """
        if speed <= 0 or not 0.0 <= fault_rate <= 1.0:
            raise ValueError("speed must be > 0 and fault_rate within 0..1")
        self._codes: dict[MachineState, int] = {}
        for code, state in plc_map.states.items():
            self._codes.setdefault(state, code)
        if missing := [s.value for s in _REQUIRED if s not in self._codes]:
            raise ValueError(f"PLC {name}: the register map names no code for {missing}")
        self.name = name
        self.map = plc_map
        self.speed = speed
        self.fault_rate = fault_rate
        self.auto_reset = auto_reset
        self.ranges = dict(results or {})
        self.on_started = on_started
        self.executed: list[int] = []
        self.requests: deque[Request] = deque(maxlen=REQUEST_LOG)
        self.function_codes: Counter[int] = Counter()
        self.reply_delay_s = 0.0
        self.heartbeat_stuck = False
        self._rng = random.Random(f"{seed}:{name}")
        self._command_names = {code: name for name, code in plc_map.commands.items()}
        self._image: dict[Table, list[int]] = {table: [] for table in Table}
        self._writable: dict[Table, set[int]] = {table: set() for table in Table}
        for point in plc_map.all_points():
            image = self._image[point.table]
            image.extend([0] * max(0, point.end - len(image)))
            if point.writable:
                self._writable[point.table].update(range(point.address, point.end))
        self._state = S.IDLE
        self._put_role("state", self._codes[S.IDLE])
        self._started: set[int] = set()
        self._job = 0
        self._recipe: dict[str, Value] = {}
        self._expected_s = 1.0
        self._elapsed = 0.0
        self._mark: float | None = None
        self._fault_at: float | None = None
        self._reject: int | None = None
        self._heartbeat = 0
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"<SimPlc {self.name} {self._state.value} job={self._job}>"

    # -- what tests and the server see -------------------------------------------

    @property
    def state(self) -> MachineState:
        return self._state

    @property
    def recipe(self) -> dict[str, Value]:
        """The recipe latched by the last accepted start."""
        return dict(self._recipe)

    def value(self, role: str) -> Value:
        """The engineering value of a role's point (``state`` as its code), read from the image."""
        return self._get(self.map.point(role))

    def result(self, name: str) -> Value:
        """The engineering value of a result point."""
        return self._get(self.map.results[name])

    @property
    def writes(self) -> list[Request]:
        """The requests in the log that used a write function code."""
        return [r for r in self.requests if r.is_write]

    @property
    def ever_written(self) -> bool:
        """Whether any request with a write function code ever arrived (even out of the log)."""
        return any(self.function_codes[code] for code in WRITE_CODES)

    def log(self, request: Request) -> None:
        """Add a request a server received to the request log."""
        self.requests.append(request)
        self.function_codes[request.function_code] += 1

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every scan and write; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def read(self, table: Table, address: int, count: int) -> list[int] | list[bool]:
        """Read ``count`` registers (bits as bools) of ``table`` from ``address``.

        Raises:
            AddressError: any of them lies outside the image (beyond the map's last point).
        """
        image = self._image[Table(table)]
        if count < 1 or address < 0 or address + count > len(image):
            raise AddressError(f"{table} {address}..{address + count - 1} is outside the map")
        values = image[address : address + count]
        return [bool(v) for v in values] if Table(table).bits else values

    def write(self, table: Table, address: int, values: Sequence[int]) -> None:
        """Store a client's write; process a new command at once if it touched ``sequence``.

        Raises:
            AddressError: a register (bit) it touches is not covered by a writable point.
            ValueError: a value is not a register (0..65535) or, for a coil, not 0/1.
        """
        table = Table(table)
        span = range(address, address + len(values))
        if not values or not set(span) <= self._writable[table]:
            where = f"{table} {address}..{address + len(values) - 1}"
            raise AddressError(f"{where} is not covered by writable points")
        limit = 1 if table.bits else 0xFFFF
        if any(not 0 <= int(v) <= limit for v in values):
            raise ValueError(f"values {list(values)} do not fit {table}")
        self._image[table][address : address + len(values)] = [int(v) for v in values]
        sequence = self.map.point("sequence")
        if sequence.table == table and sequence.address < span.stop and span.start < sequence.end:
            self._check_command()
        self._notify()

    # -- fault injection ---------------------------------------------------------

    def inject_fault(self, code: int | None = None) -> None:
        """Fault the running job now (``aborting``; ``aborted`` on the next scan).

        Args:
            code: The error code; a random one of the map's faults if None.

        Raises:
            RuntimeError: no job is running.
        """
        if self._job == 0 or self._state not in (*JOB_STATES, S.COMPLETING):
            raise RuntimeError(f"PLC {self.name} runs no job to fault ({self._state.value})")
        self._fault(self._pick_fault() if code is None else code)
        self._notify()

    def reject_next(self, code: int) -> None:
        """Refuse the next start command with ``code`` (checked before anything else)."""
        if code == 0:
            raise ValueError("a rejection needs a non-zero error code")
        self._reject = code

    # -- the scan ----------------------------------------------------------------

    def scan(self, now: float) -> None:
        """Run one scan cycle at time ``now`` (seconds, monotonic)."""
        if self._state in NEXT:
            self._advance(now)
        elif self._state is S.EXECUTE:
            self._run(now)
        elif self._state is S.COMPLETE and self.auto_reset:
            self._enter(S.IDLE, now)
        if not self.heartbeat_stuck:
            self._heartbeat = (self._heartbeat + 1) % 65536
            if (point := self.map.points.get("heartbeat")) is not None:
                self._put(point, _beat(point, self._heartbeat))
        self._notify()

    def _run(self, now: float) -> None:
        if self._mark is not None:
            self._elapsed += max(0.0, now - self._mark)
        self._mark = now
        fraction = self._elapsed / (self._expected_s / self.speed)
        if self._fault_at is not None and fraction >= self._fault_at:
            self._fault(self._pick_fault())
            return
        self._put_role("progress", min(100.0, fraction * 100.0))
        if fraction >= 1.0:
            self._enter(S.COMPLETING, now)

    def _advance(self, now: float | None) -> None:
        """Leave a transient state for its successor, with that step's effects."""
        left = self._state
        if left in (S.ABORTING, S.STOPPING) and self._job:
            self._end(self.map.unsuccessful)
        elif left is S.COMPLETING:
            self._complete()
        self._enter(NEXT[left], now)

    def _enter(self, state: MachineState, now: float | None) -> None:
        self._state = state
        if state is S.EXECUTE:
            self._mark = now
        if state not in self._codes:  # only transient states may lack one (see _rests_in)
            self._advance(now)
            return
        self._put_role("state", self._codes[state])

    def _rests_in(self, state: MachineState) -> MachineState:
        while state not in self._codes and state in NEXT:
            state = NEXT[state]
        return state

    # -- commands ----------------------------------------------------------------

    def _check_command(self) -> None:
        sequence = self.value("sequence")
        if sequence == self.value("ack"):
            return
        command = self.value("command")
        name = self._command_names.get(command) if isinstance(command, int) else None
        target = COMMANDS.get((name or "", self._state))
        if name == "start":
            self._start()
        elif target is not None and self._rests_in(target) in self._codes:
            self._put_role("error", _ACCEPTED_ERROR.get(name or "", 0))
            self._enter(target, None)
        else:
            self._put_role("error", BAD_COMMAND)
        self._put_role("ack", sequence)

    def _start(self) -> None:
        job_id, recipe = self.value("job_id"), self._read_recipe()
        reject, self._reject = self._reject, None
        if reject is None and self._state is not S.IDLE:
            reject = NOT_IDLE
        elif reject is None and (
            not isinstance(job_id, int) or job_id == 0 or job_id in self._started
        ):
            reject = BAD_JOB_ID
        elif reject is None and recipe is None:
            reject = BAD_RECIPE
        if reject is not None:
            self._put_role("error", reject)
            return
        assert isinstance(job_id, int) and recipe is not None  # what the checks above imply
        if self.on_started is not None:  # first: if logging fails, nothing has started
            self.on_started(self.name, job_id)
        self._started.add(job_id)
        self.executed.append(job_id)
        self._recipe = recipe
        expected = recipe.get("expected_s", 1.0)
        self._expected_s = float(expected) if isinstance(expected, int | float) else 1.0
        self._job, self._elapsed, self._mark = job_id, 0.0, None
        faults = self._rng.random() < self.fault_rate
        self._fault_at = self._rng.uniform(0.1, 0.9) if faults else None
        self._put_role("current_job_id", job_id)
        self._put_role("error", 0)
        self._put_role("progress", 0)
        self._enter(S.STARTING, None)

    def _read_recipe(self) -> dict[str, Value] | None:
        """The recipe in the command block, or None if a value does not decode or fit."""
        recipe: dict[str, Value] = {}
        for name, point in self.map.recipe.items():
            try:
                value = self._get(point)
            except CodecError:
                return None
            if isinstance(value, int | float) and not isinstance(value, bool):
                low, high = point.minimum, point.maximum
                if not math.isfinite(value) or (low is not None and value < low):
                    return None
                if high is not None and value > high:
                    return None
            recipe[name] = value
        expected = recipe.get("expected_s", 1.0)
        if not isinstance(expected, int | float) or not math.isfinite(expected) or expected <= 0:
            return None
        return recipe

    # -- job endings -------------------------------------------------------------

    def _pick_fault(self) -> int:
        codes = sorted(int(c) for c in self.map.faults if c.isdigit() and c not in ("900", "901"))
        return self._rng.choice(codes) if codes else DEFAULT_FAULT

    def _fault(self, code: int) -> None:
        self._put_role("error", code)
        self._enter(S.ABORTING, None)

    def _end(self, outcome: int) -> None:
        self._put_role("last_job_id", self._job)
        self._put_role("current_job_id", 0)
        self._put_role("outcome", outcome)
        self._job = 0

    def _complete(self) -> None:
        for name, point in self.map.results.items():
            if name == "cycle_s":
                value = self._expected_s
            else:
                low, high = self.ranges.get(name, (0.0, 1.0))
                value = self._rng.uniform(low, high)
            try:
                self._put(point, value)
            except CodecError:  # a range the point cannot hold: leave the register as it was
                continue
        self._put_role("error", 0)
        self._put_role("progress", 100)
        self._end(self.map.successful)

    # -- the image ---------------------------------------------------------------

    def _get(self, point: Point) -> Value:
        return decode(point, self._image[point.table][point.address : point.end])

    def _put(self, point: Point, value: Value) -> None:
        self._image[point.table][point.address : point.end] = [int(w) for w in encode(point, value)]

    def _put_role(self, role: str, value: Value) -> None:
        if role in self.map.points:
            self._put(self.map.points[role], value)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


def _beat(point: Point, count: int) -> int:
    """The heartbeat as ``point`` holds it: a bool toggles, an int16 wraps to negative."""
    if point.type == DataType.BOOL:
        return count % 2
    if point.type == DataType.INT16 and count >= 32768:
        return count - 65536
    return count
