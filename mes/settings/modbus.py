"""The Modbus part of the plant file: register maps and the Modbus driver's settings.

A register map says where a PLC keeps each point of the job contract (see
``docs/modbus.md``): the command block the controller writes in one request (command,
sequence, job id, recipe), and the status block it polls (state, acknowledgement,
current and last job, outcome, error, progress, heartbeat, results). Maps are declared
once under ``[register_maps.NAME]`` and named by each cell's driver, so a line of
identical PLCs shares one map. How the points fit together (overlaps, one contiguous
command block, types that suit their table) is checked in :mod:`mes.settings.checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Annotated, Literal, cast

from pydantic import Field

from drivers.modbus.codec import (
    CodecError,
    DataType,
    Order,
    Point,
    Table,
    check_map,
    encode,
    protocol_address,
)
from drivers.modbus.plcmap import COMMAND_ROLES, STATUS_ROLES, PlcMap
from mes.domain.job import PACKML_COMMAND_NUMBERS, PACKML_STATE_NUMBERS, MachineState
from mes.settings.base import Model, Name, NonBlank

StateName = Literal[
    "clearing",
    "stopped",
    "starting",
    "idle",
    "suspended",
    "execute",
    "stopping",
    "aborting",
    "aborted",
    "holding",
    "held",
    "unholding",
    "suspending",
    "unsuspending",
    "resetting",
    "completing",
    "complete",
]
CommandName = Literal["reset", "start", "stop", "hold", "unhold", "abort", "clear"]
#: PackML (PackTags v3) numbers, the default state and command mappings.
PACKML_STATES = cast(dict[StateName, int], PACKML_STATE_NUMBERS)
PACKML_COMMANDS = cast(dict[CommandName, int], PACKML_COMMAND_NUMBERS)

Word = Annotated[int, Field(ge=0, le=65535)]
Scalar = bool | int | float | str


class PointConfig(Model):
    """One point: where it lives, how it is encoded, and whether we may write it."""

    table: Literal["coil", "discrete_input", "input", "holding"] = "holding"
    address: int = Field(ge=0, le=65536)
    """As numbered under the map's ``addressing`` (0: protocol offset; 1: manual's count)."""
    type: Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64", "string"] = (
        "uint16"
    )
    order: Literal["ABCD", "CDAB", "BADC", "DCBA"] = "ABCD"
    """Word and byte order of multi-byte values (ABCD: big-endian, the Modbus default)."""
    scale: float = 1.0
    offset: float = 0.0
    """Engineering value = raw * scale + offset."""
    access: Literal["ro", "rw"] = "ro"
    length: int = Field(default=0, ge=0, le=123)
    """Registers of a string point (two characters each)."""
    min: float | None = None
    max: float | None = None
    """Engineering limits: a write outside them is refused before anything is sent."""
    default: Scalar | None = None
    """For a recipe point: the value written when a job's recipe does not name it."""


class RegisterMap(Model):
    """``[register_maps.NAME]``: the job contract's points on one kind of PLC."""

    addressing: Literal[0, 1] = 0
    """0: addresses are protocol offsets (holding 0 is "40001"); 1: numbered from 1."""
    command: PointConfig
    sequence: PointConfig
    job_id: PointConfig
    state: PointConfig
    ack: PointConfig
    current_job_id: PointConfig
    last_job_id: PointConfig
    outcome: PointConfig
    error: PointConfig | None = None
    progress: PointConfig | None = None
    """Percent done, 0-100 after scaling."""
    heartbeat: PointConfig | None = None
    recipe: dict[str, PointConfig] = Field(default_factory=dict)
    """Recipe parameter name -> point; filled from the job's recipe (or ``default``).
    ``expected_s`` is the job's expected cycle time, ``unit`` its unit id."""
    results: dict[str, PointConfig] = Field(default_factory=dict)
    """Measurement name -> point, read when the PLC reports the job finished."""
    states: dict[StateName, Word] = Field(default_factory=lambda: dict(PACKML_STATES))
    """State name -> the number the PLC uses (default: PackML StateCurrent)."""
    commands: dict[CommandName, Word] = Field(default_factory=lambda: dict(PACKML_COMMANDS))
    """Command name -> the number the PLC expects (default: PackML CntrlCmd)."""
    successful: Word = 1
    unsuccessful: Word = 2
    """``outcome`` values of the last finished job."""
    faults: dict[str, NonBlank] = Field(default_factory=dict)
    """Error code (as text, e.g. "101") -> what it means, for alarms and the journal."""


class ReconnectConfig(Model):
    """``[cells.reconnect]``: how soon to try a lost link again.

    Doubling from ``first_s`` up to ``cap_s`` with +-``jitter``; or every ``fixed_s``
    exactly, for plants that want predictable timing.
    """

    first_s: float = Field(default=0.5, gt=0.0)
    cap_s: float = Field(default=30.0, gt=0.0)
    jitter: float = Field(default=0.2, ge=0.0, lt=1.0)
    fixed_s: float | None = Field(default=None, gt=0.0)


class SimPlcConfig(Model):
    """``[cells.driver.sim]``: how ``mes sim`` and ``mes demo`` simulate this PLC."""

    speed: float = Field(default=1.0, gt=0.0)
    fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0
    scan_ms: float = Field(default=10.0, gt=0.0)
    """PLC scan cycle: how often it looks at commands and advances its job."""
    results: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        default_factory=dict
    )
    """Result name -> [low, high]: the simulated measurement, uniform in that range
    (``cycle_s`` is always the real cycle time)."""


class ModbusDriverConfig(Model):
    """A PLC over Modbus TCP or RTU, through a register map."""

    kind: Literal["modbus"]
    register_map: Name
    transport: Literal["tcp", "rtu"] = "tcp"
    host: NonBlank = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = None
    """RTU: a device path (/dev/ttyUSB0) or a pyserial URL (rfc2217://host:port)."""
    baudrate: int = Field(default=19200, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    inter_frame_ms: float | None = Field(default=None, ge=0.0)
    """RTU: silence between frames on the bus (default: 3.5 characters, at least 1.75 ms)."""
    device_id: int = Field(default=1, ge=1, le=255)
    """Unit id: the PLC's address on an RTU bus (1-247) or behind a TCP gateway."""
    poll_ms: float = Field(default=100.0, ge=5.0)
    timeout_s: float = Field(default=1.0, gt=0.0)
    retries: int = Field(default=2, ge=0, le=10)
    """Attempts after a request timed out, before the link counts as lost."""
    ack_timeout_s: float = Field(default=5.0, gt=0.0)
    """How long the PLC may take to echo a command's sequence number."""
    heartbeat_timeout_s: float = Field(default=3.0, gt=0.0)
    """A heartbeat unchanged this long makes the PLC stale (its values untrusted)."""
    span_gaps: int = Field(default=0, ge=0, le=100)
    """Read across gaps of up to this many unused registers to save requests."""
    max_registers: int = Field(default=125, ge=1, le=125)
    read_only: bool = False
    """Monitor only: no write function code is ever sent to this PLC."""
    sim: SimPlcConfig | None = None


# -- from config to the driver's map ------------------------------------------------


def to_point(name: str, config: PointConfig, base: int) -> Point:
    """The codec's point for one configured point.

    Raises:
        CodecError: the address does not exist under the map's addressing.
    """
    return Point(
        name=name,
        table=Table(config.table),
        address=protocol_address(config.address, base),
        type=DataType(config.type),
        order=Order(config.order),
        scale=config.scale,
        offset=config.offset,
        writable=config.access == "rw",
        length=config.length,
        minimum=config.min,
        maximum=config.max,
    )


def _roles(config: RegisterMap) -> dict[str, PointConfig]:
    roles = (*COMMAND_ROLES, *STATUS_ROLES)
    return {r: p for r in roles if (p := getattr(config, r)) is not None}


def plc_map(config: RegisterMap) -> PlcMap:
    """The driver's view of a checked register map.

    Raises:
        CodecError: a point's address does not exist (the loader reports these first).
    """
    base = config.addressing
    return PlcMap(
        points={r: to_point(r, p, base) for r, p in _roles(config).items()},
        recipe={n: to_point(f"recipe.{n}", p, base) for n, p in config.recipe.items()},
        defaults={n: p.default for n, p in config.recipe.items() if p.default is not None},
        results={n: to_point(f"results.{n}", p, base) for n, p in config.results.items()},
        states={code: MachineState(name) for name, code in config.states.items()},
        commands={str(name): code for name, code in config.commands.items()},
        successful=config.successful,
        unsuccessful=config.unsuccessful,
        faults=dict(config.faults),
    )


def map_problems(config: RegisterMap) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with a register map, each at the key to fix (relative to the map)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    points: dict[tuple[str | int, ...], Point] = {}
    named: list[tuple[tuple[str | int, ...], str, PointConfig]]
    named = [((r,), r, p) for r, p in _roles(config).items()]
    named += [(("recipe", n), f"recipe.{n}", p) for n, p in config.recipe.items()]
    named += [(("results", n), f"results.{n}", p) for n, p in config.results.items()]
    for path, name, point_config in named:
        try:
            point = to_point(name, point_config, config.addressing)
        except CodecError as exc:
            problems.append(((*path, "address"), str(exc)))
            continue
        own = check_map([point])
        problems.extend((path, reason) for reason in own)
        if not own:
            points[path] = point
    problems.extend(_command_block_problems(config, points))
    for path, _, point_config in named:
        if point_config.default is not None and path[0] != "recipe":
            problems.append(((*path, "default"), "only recipe points take a default"))
        elif point_config.default is not None and path in points:
            try:
                encode(points[path], point_config.default)
            except CodecError as exc:
                problems.append(((*path, "default"), str(exc)))
    problems.extend(((), reason) for reason in check_map(points.values()) if "overlap" in reason)
    problems.extend(_code_problems(config))
    return problems


def _command_block_problems(
    config: RegisterMap, points: Mapping[tuple[str | int, ...], Point]
) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    block = [(p, pt) for p, pt in points.items() if p[0] in (*COMMAND_ROLES, "recipe")]
    for path, point in block:
        if point.table is not Table.HOLDING or not point.writable:
            problems.append(
                (path, 'a command-block point must be a holding register with access = "rw"')
            )
    for path, point in points.items():
        if (path[0] in STATUS_ROLES or path[0] == "results") and point.writable:
            problems.append((path, 'a status or result point is read-only: use access = "ro"'))
    if problems:
        return problems
    command, sequence = points.get(("command",)), points.get(("sequence",))
    if command and sequence and sequence.address != command.end and command.address != sequence.end:
        problems.append(
            (
                ("sequence", "address"),
                f"must be next to the command word (holding {command.address}), so a command "
                "and its sequence number go in one request",
            )
        )
    ordered = sorted((pt for _, pt in block), key=lambda pt: pt.address)
    for before, after in pairwise(ordered):
        if after.address > before.end:
            problems.append(
                (
                    (),
                    f"the command block (command, sequence, job_id, recipe) must be one "
                    f"contiguous run of holding registers, written in one request: nothing "
                    f"covers holding {before.end}..{after.address - 1} between "
                    f"'{before.name}' and '{after.name}'",
                )
            )
    if ordered and ordered[-1].end - ordered[0].address > 123:
        problems.append(
            ((), "the command block is longer than one write request allows (123 registers)")
        )
    return problems


def _code_problems(config: RegisterMap) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    tables: tuple[tuple[str, Mapping[str, int], tuple[str, ...]], ...] = (
        ("states", {str(k): v for k, v in config.states.items()}, ("idle", "execute")),
        ("commands", {str(k): v for k, v in config.commands.items()}, ("start",)),
    )
    for key, table, needed in tables:
        seen: dict[int, str] = {}
        for name, code in table.items():
            if code in seen:
                problems.append(((key, name), f"code {code} is also {seen[code]!r}"))
            seen[code] = name
        for name in needed:
            if name not in table:
                problems.append(((key,), f"must name the code for {name!r}"))
    if config.successful == config.unsuccessful:
        problems.append((("unsuccessful",), "must differ from successful"))
    return problems
