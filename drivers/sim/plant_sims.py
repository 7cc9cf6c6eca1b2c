"""Serve a plant's simulated PLCs: one Modbus server per address, one scan loop per PLC.

Theory of operation: each :class:`SimSpec` describes one simulated PLC and where it is
reached. :func:`serve` groups the specs: TCP cells that share host and port sit behind one
server as a gateway (told apart by device id), RTU cells that share a serial port sit on
one pty bus, and an RTU cell without a serial port gets a pty of its own. Every PLC gets a
task that calls :meth:`SimPlc.scan` every ``scan_ms`` with ``loop.time()``, on a fixed
cadence that skips (never bursts) when the loop falls behind. Accepted job ids go to an
execution log, one JSON line per job flushed at once, so another process can check that
no job ran twice. :meth:`Simulators.aclose` stops the loops, the servers and the logs.

This module knows nothing of the plant file: the composition root builds the specs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlparse

from asyncua import ua

from drivers.modbus.plcmap import PlcMap
from drivers.sim.grbl.firmware import SimGrbl
from drivers.sim.grbl.port import serve as serve_grbl
from drivers.sim.marlin.firmware import SimMarlin
from drivers.sim.marlin.port import serve as serve_printer
from drivers.sim.modbus_server import SimServer
from drivers.sim.opcua_machine import SimMachine
from drivers.sim.opcua_server import OpcuaSimServer
from drivers.sim.plc import SimPlc
from drivers.sim.serial_line import SimSerialPort


@dataclass(frozen=True, slots=True)
class SimSpec:
    """One simulated PLC and where it is served.

    Attributes:
        port: TCP port; 0 picks a free one (specs naming port 0 on one host share it), read
            it back from ``Simulators.servers[name].port``.
        serial_port: RTU: where to put a symlink to the client's pty (cells naming the same
            path share one bus); None gives the cell a pty of its own.
        results: Result name -> (low, high) of the simulated measurement.
        log_path: The execution log (JSON lines) to append accepted job ids to.
    """

    name: str
    plc_map: PlcMap
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str | None = None
    device_id: int = 1
    speed: float = 1.0
    fault_rate: float = 0.0
    seed: int = 0
    scan_ms: float = 10.0
    results: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    log_path: Path | None = None
    baudrate: int = 19200


@dataclass(frozen=True, slots=True)
class MachineSpec:
    """One simulated OPC UA machine and the endpoint it is served at."""

    name: str
    endpoint: str
    recipe: Mapping[str, str] = field(default_factory=lambda: {"expected_s": "Double"})
    """Recipe variable -> OPC UA type name (Double, Float, UInt16, String...)."""
    results: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    speed: float = 1.0
    fault_rate: float = 0.0
    seed: int = 0
    scan_ms: float = 10.0
    log_path: Path | None = None
    commands: Literal["methods", "writes"] = "methods"
    states: Literal["names", "packml"] = "names"


@dataclass(frozen=True, slots=True)
class SerialSpec:
    """One simulated serial machine (a Marlin printer, a GRBL machine) and where it is
    reached: a
    ``socket://host:port`` URL is served on TCP, a path as a symlink to a pty."""

    name: str
    kind: Literal["marlin", "grbl"]
    port: str
    baudrate: int = 115200
    speed: float = 1.0
    log_path: Path | None = None


class JobLog:
    """An execution log: one JSON line ``{"cell", "job_id", "at"}`` per accepted job."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO = path.open("a", encoding="utf-8")

    def __call__(self, cell: str, job_id: int) -> None:
        """Append and flush one line (``at`` is the wall-clock time, ISO 8601, UTC)."""
        at = datetime.now(UTC).isoformat()
        self._file.write(json.dumps({"cell": cell, "job_id": job_id, "at": at}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


async def scan_forever(plc: SimPlc, period_s: float) -> None:
    """Scan ``plc`` every ``period_s`` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        plc.scan(loop.time())
        due = max(due + period_s, loop.time())  # behind schedule: skip, do not burst
        await asyncio.sleep(due - loop.time())


async def until(plc: SimPlc, predicate: Callable[[SimPlc], bool]) -> None:
    """Wait until ``predicate(plc)`` holds, checked after each scan and write.

    Bound it with ``asyncio.timeout``: it waits as long as it takes.
    """
    changed = asyncio.Event()
    unsubscribe = plc.subscribe(changed.set)
    try:
        while not predicate(plc):
            await changed.wait()
            changed.clear()
    finally:
        unsubscribe()


class Simulators:
    """Running simulated PLCs, their servers and scan loops; close with :meth:`aclose`.

    Attributes:
        plcs: Cell name -> PLC.
        servers: Cell name -> the server it is reached through (shared by a gateway or bus).
    """

    def __init__(self) -> None:
        self.plcs: dict[str, SimPlc] = {}
        self.servers: dict[str, SimServer] = {}
        self.machines: dict[str, SimMachine] = {}
        self.ua_servers: list[OpcuaSimServer] = []
        self.serial_machines: dict[str, SimMarlin | SimGrbl] = {}
        self.serial_ports: list[SimSerialPort] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._logs: dict[Path, JobLog] = {}

    def log_for(self, path: Path) -> JobLog:
        """The one log writer per path (cells may share a file)."""
        if path not in self._logs:
            self._logs[path] = JobLog(path)
        return self._logs[path]

    def run(self, plc: SimPlc, scan_ms: float) -> None:
        """Start ``plc``'s scan loop."""
        task = asyncio.create_task(scan_forever(plc, scan_ms / 1000), name=f"sim-plc:{plc.name}")
        self._tasks.append(task)

    async def aclose(self) -> None:
        """Stop every scan loop and server and close the logs; safe to call twice."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for server in dict.fromkeys(self.servers.values()):
            await server.aclose()
        self.servers = {}
        for ua_server in self.ua_servers:
            await ua_server.aclose()
        self.ua_servers = []
        for served in self.serial_ports:
            await served.aclose()
        self.serial_ports = []
        for machine in self.serial_machines.values():
            await machine.aclose()
        self.serial_machines = {}
        for log in self._logs.values():
            log.close()
        self._logs = {}


def _groups(specs: Iterable[SimSpec]) -> list[list[SimSpec]]:
    """Specs that share a server: one TCP host+port, or one RTU serial port."""
    groups: dict[tuple[str, str, int | str], list[SimSpec]] = {}
    names: set[str] = set()
    for spec in specs:
        if spec.name in names:
            raise ValueError(f"two simulated PLCs are named {spec.name!r}")
        names.add(spec.name)
        if spec.transport == "tcp":
            key: tuple[str, str, int | str] = ("tcp", spec.host, spec.port)
        else:
            key = ("rtu", spec.serial_port or f"own pty of {spec.name}", 0)
        group = groups.setdefault(key, [])
        if clash := [s.name for s in group if s.device_id == spec.device_id]:
            raise ValueError(f"{spec.name} and {clash[0]} both use device id {spec.device_id}")
        group.append(spec)
    return list(groups.values())


async def serve(
    specs: Iterable[SimSpec],
    machines: Iterable[MachineSpec] = (),
    serial: Iterable[SerialSpec] = (),
) -> Simulators:
    """Start the servers and scan loops for ``specs`` (PLCs), ``machines`` (OPC UA) and
    ``serial`` (printers on a pty or TCP).

    Raises:
        ValueError: two specs share a name, or a device id on one server.
        OSError: a port cannot be bound, a pty or log file cannot be opened.
    """
    sims = Simulators()
    try:
        for group in _groups(specs):
            plcs: dict[int, SimPlc] = {}
            for spec in group:
                on_started = sims.log_for(spec.log_path) if spec.log_path else None
                plc = SimPlc(
                    spec.name,
                    spec.plc_map,
                    speed=spec.speed,
                    fault_rate=spec.fault_rate,
                    seed=spec.seed,
                    results=spec.results,
                    on_started=on_started,
                )
                plcs[spec.device_id] = sims.plcs[spec.name] = plc
            server = SimServer(plcs)
            first = group[0]
            for spec in group:
                sims.servers[spec.name] = server
            if first.transport == "tcp":
                await server.start_tcp(first.host, first.port)
            else:
                await server.start_rtu(first.serial_port, baudrate=first.baudrate)
            for spec in group:
                sims.run(sims.plcs[spec.name], spec.scan_ms)
        by_endpoint: dict[str, list[MachineSpec]] = {}
        for machine in machines:
            by_endpoint.setdefault(machine.endpoint, []).append(machine)
        for endpoint, group_ in by_endpoint.items():
            made = []
            for m in group_:
                made.append(
                    SimMachine(
                        m.name,
                        recipe={n: ua.VariantType[t] for n, t in m.recipe.items()},
                        results=m.results,
                        speed=m.speed,
                        fault_rate=m.fault_rate,
                        seed=m.seed,
                        on_started=sims.log_for(m.log_path) if m.log_path else None,
                        commands=m.commands,
                        states=m.states,
                    )
                )
                sims.machines[m.name] = made[-1]
            ua_server = OpcuaSimServer(made, endpoint=endpoint, scan_ms=group_[0].scan_ms)
            await ua_server.start()
            sims.ua_servers.append(ua_server)
        for line in serial:
            on_job = sims.log_for(line.log_path) if line.log_path else None
            url = urlparse(line.port)
            if url.scheme == "socket":
                where: dict[str, Any] = {"host": url.hostname, "port": url.port}
            else:
                where = {"link": line.port}
            if line.kind == "grbl":
                grbl = SimGrbl(line.name, speed=line.speed, on_job=on_job)
                sims.serial_machines[line.name] = grbl
                sims.serial_ports.append(await serve_grbl(grbl, baudrate=line.baudrate, **where))
                continue
            printer = SimMarlin(line.name, speed=line.speed, on_job=on_job)
            sims.serial_machines[line.name] = printer
            sims.serial_ports.append(await serve_printer(printer, baudrate=line.baudrate, **where))
    except BaseException:
        await sims.aclose()
        raise
    return sims
