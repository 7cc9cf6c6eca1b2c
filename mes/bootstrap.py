"""The composition root: the one place where config, store, drivers and service meet."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.base import Driver
from drivers.modbus.driver import ModbusCell, ModbusSettings
from drivers.modbus.link import Endpoint, ModbusLink
from drivers.opcua.driver import OpcuaCell, OpcuaSettings
from drivers.serial.grbl import GrblCell
from drivers.serial.marlin import MarlinCell
from drivers.sim import SimCell
from mes.errors import InputError, MesError, Problem
from mes.service.controller import CellSetup, Controller, ControllerOptions
from mes.service.membership import SharingOptions
from mes.service.stock import StockKeeper, StockTarget
from mes.service.supervisor import Backoff
from mes.settings import CellConfig, Plant, SimDriverConfig
from mes.settings.modbus import ModbusDriverConfig, ReconnectConfig, SimPlcConfig, plc_map
from mes.settings.opcua import OpcuaDriverConfig, OpcuaSecurityConfig, SimMachineConfig
from mes.settings.serial import GrblDriverConfig, MarlinDriverConfig, SerialDriverConfig
from mes.store import Store
from routing.scheduling.optimizer import available as optimizer_available

if TYPE_CHECKING:
    from drivers.sim.plant_sims import MachineSpec, SerialSpec, SimSpec
    from mes.faces.opcua import PlantServer
    from mes.mqtt.messenger import Messenger
    from mes.service.release import ReleaseMessages

log = logging.getLogger(__name__)


def cell_setups(plant: Plant, *, read_only: bool = False) -> list[CellSetup]:
    """What the controller needs to know of each configured cell."""
    read_only = read_only or plant.config.plant.read_only
    return [
        CellSetup(
            name=c.name,
            capabilities=frozenset(c.capabilities),
            driver_kind=c.driver.kind,
            factors=dict(c.duration_factors),
            rerun_interrupted=c.rerun_interrupted,
            confirm_after_job=c.confirm_after_job or "",
            setup_s=dict(c.setup_s),
            read_only=read_only or getattr(c.driver, "read_only", False),
            backoff=backoff(c.reconnect),
        )
        for c in plant.cells
    ]


def backoff(config: ReconnectConfig) -> Backoff:
    """Reconnect delays from a cell's ``[cells.reconnect]``."""
    if config.fixed_s is not None:
        return Backoff(first_s=config.fixed_s, cap_s=config.fixed_s, jitter=0.0)
    return Backoff(first_s=config.first_s, cap_s=config.cap_s, jitter=config.jitter)


class Links:
    """Modbus links by endpoint: cells on one gateway or one bus share one connection."""

    def __init__(self) -> None:
        self._links: dict[Endpoint, ModbusLink] = {}

    def get(self, config: ModbusDriverConfig) -> ModbusLink:
        if config.transport == "tcp":
            endpoint = Endpoint("tcp", host=config.host, port=config.port)
        else:
            endpoint = Endpoint(
                "rtu",
                serial_port=config.serial_port or "",
                baudrate=config.baudrate,
                parity=config.parity,
                stopbits=config.stopbits,
                bytesize=config.bytesize,
            )
        if endpoint in self._links:
            link = self._links[endpoint]
            if (link.timeout_s, link.retries) != (config.timeout_s, config.retries):
                log.warning(
                    "%s is shared: it keeps timeout_s=%g and retries=%d of the first cell on it",
                    endpoint,
                    link.timeout_s,
                    link.retries,
                )
        else:
            inter_frame = None if config.inter_frame_ms is None else config.inter_frame_ms / 1000
            self._links[endpoint] = ModbusLink(
                endpoint,
                timeout_s=config.timeout_s,
                retries=config.retries,
                inter_frame_s=inter_frame,
            )
        return self._links[endpoint]


def build_driver(
    plant: Plant,
    cell: CellConfig,
    *,
    speed: float = 1.0,
    seed: int | str = 0,
    links: Links | None = None,
    read_only: bool = False,
) -> Driver:
    """The driver for one configured cell. ``speed`` scales simulated cells' time."""
    config = cell.driver
    if isinstance(config, SimDriverConfig):
        return SimCell(
            cell.name, speed=speed * config.speed, fault_rate=config.fault_rate, seed=seed
        )
    if isinstance(config, MarlinDriverConfig):
        return MarlinCell(
            cell.name, config.settings(read_only=read_only or plant.config.plant.read_only)
        )
    if isinstance(config, GrblDriverConfig):
        return GrblCell(
            cell.name, config.settings(read_only=read_only or plant.config.plant.read_only)
        )
    if isinstance(config, OpcuaDriverConfig):
        return OpcuaCell(
            cell.name,
            opcua_settings(cell.name, config, read_only=read_only or plant.config.plant.read_only),
        )
    links = links or Links()
    settings = ModbusSettings(
        device_id=config.device_id,
        poll_s=config.poll_ms / 1000,
        ack_timeout_s=config.ack_timeout_s,
        heartbeat_timeout_s=config.heartbeat_timeout_s,
        max_registers=config.max_registers,
        span_gaps=config.span_gaps,
        read_only=read_only or plant.config.plant.read_only or config.read_only,
    )
    register_map = plc_map(plant.config.register_maps[config.register_map])
    return ModbusCell(cell.name, links.get(config), register_map, settings)


def opcua_login(who: str, security: OpcuaSecurityConfig) -> tuple[str | None, str | None]:
    """The user name and password ``security`` points at (environment or secret file).

    Raises:
        MesError: a named environment variable is unset or the secret file unreadable.
    """
    user = password = None
    if security.user_env:
        user = os.environ.get(security.user_env)
        if user is None:
            raise MesError(f"{who}: ${security.user_env} (its OPC UA user) is not set")
    if security.password_env:
        password = os.environ.get(security.password_env)
        if password is None:
            raise MesError(f"{who}: ${security.password_env} (its password) is not set")
    elif security.password_file:
        try:
            password = Path(security.password_file).read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise MesError(
                f"{who}: cannot read the password file {security.password_file}: {exc}"
            ) from exc
    return user, password


def opcua_settings(
    name: str, config: OpcuaDriverConfig, *, read_only: bool = False
) -> OpcuaSettings:
    """The OPC UA driver's settings, with the secrets read from where the config points.

    Raises:
        MesError: a named environment variable is unset or a secret file unreadable.
    """
    security = config.security
    user, password = opcua_login(f"cell {name}", security)
    if security.policy == "None":
        log.warning(
            "cell %s: OPC UA without security (allow_insecure): anyone on the network can "
            "read and command it",
            name,
        )
    elif security.trust_dir is None:
        log.warning(
            "cell %s: the OPC UA server's certificate is not checked (allow_insecure, no "
            "trust_dir): whoever answers at %s is taken for the machine",
            name,
            config.endpoint,
        )
    return OpcuaSettings(
        endpoint=config.endpoint,
        namespace=config.namespace,
        machine=config.machine,
        results=tuple(config.results),
        timeout_s=config.timeout_s,
        publishing_ms=config.publishing_ms,
        read_only=read_only or config.read_only,
        policy=None if security.policy == "None" else security.policy,
        mode=security.mode,
        certificate=security.certificate,
        private_key=security.private_key,
        trust_dir=security.trust_dir,
        user=user,
        password=password,
        nodes=config.nodes.overrides(),
        states=config.states,
    )


def machine_specs(
    plant: Plant, *, speed: float = 1.0, log: Path | None = None
) -> list[MachineSpec]:
    """The simulated machines for every OPC UA cell of ``plant``."""
    from drivers.sim.plant_sims import MachineSpec

    specs = []
    for cell in plant.cells:
        config = cell.driver
        if not isinstance(config, OpcuaDriverConfig):
            continue
        sim = config.sim or SimMachineConfig()
        specs.append(
            MachineSpec(
                name=config.machine,
                endpoint=config.endpoint,
                recipe=dict(sim.recipe),
                results={
                    "cycle_s": (0.0, 0.0),  # the real cycle time; the range is unused
                    **{name: (low, high) for name, (low, high) in sim.results.items()},
                    **{name: (0.0, 1.0) for name in config.results if name not in sim.results},
                },
                speed=speed * sim.speed,
                fault_rate=sim.fault_rate,
                seed=sim.seed,
                scan_ms=sim.scan_ms,
                log_path=log,
                commands=sim.commands,
                states=config.states,
            )
        )
    return specs


def sim_specs(plant: Plant, *, speed: float = 1.0, log: Path | None = None) -> list[SimSpec]:
    """The simulated PLCs for every Modbus cell of ``plant`` (``mes sim``, ``mes demo``)."""
    from drivers.sim.plant_sims import SimSpec

    specs = []
    for cell in plant.cells:
        config = cell.driver
        if not isinstance(config, ModbusDriverConfig):
            continue
        sim = config.sim or SimPlcConfig()
        specs.append(
            SimSpec(
                name=cell.name,
                plc_map=plc_map(plant.config.register_maps[config.register_map]),
                transport=config.transport,
                host=config.host,
                port=config.port,
                serial_port=config.serial_port,
                device_id=config.device_id,
                speed=speed * sim.speed,
                fault_rate=sim.fault_rate,
                seed=sim.seed,
                scan_ms=sim.scan_ms,
                results={name: (low, high) for name, (low, high) in sim.results.items()},
                log_path=log,
                baudrate=config.baudrate,
            )
        )
    return specs


def serial_specs(plant: Plant, *, speed: float = 1.0, log: Path | None = None) -> list[SerialSpec]:
    """The simulated serial machines for every printer (and GRBL) cell of ``plant``."""
    from drivers.sim.plant_sims import SerialSpec

    return [
        SerialSpec(
            name=cell.name,
            kind=config.kind,
            port=config.port,
            # The line's time scales with the device's: a sped-up demo is sped up whole.
            baudrate=round(config.baudrate * speed * (config.sim.speed if config.sim else 1.0)),
            speed=speed * (config.sim.speed if config.sim else 1.0),
            log_path=log,
        )
        for cell in plant.cells
        if isinstance(config := cell.driver, SerialDriverConfig)
    ]


def controller_options(plant: Plant) -> ControllerOptions:
    """The controller's options from the plant config; the optimizer only if installed."""
    section = plant.config.plant
    optimize_s = section.optimize_s
    if optimize_s > 0 and not optimizer_available():
        log.warning(
            "optimize_s is set but OR-Tools is not installed (pip install -e '.[opt]'); "
            "dispatching by the %r rule alone",
            section.dispatch,
        )
        optimize_s = 0.0
    return ControllerOptions(
        rule=section.dispatch,
        optimize_s=optimize_s,
        replan_s=section.replan_s,
        freeze_heap=True,
    )


def sharing_options(
    plant: Plant, name: str, cells: list[str] | None = None, area: str | None = None
) -> SharingOptions:
    """How this controller shares the plant: the cells it may drive (``--cells``, or
    those of ``--area``; else any) and the plant's heartbeat.

    Raises:
        InputError: a named cell or area the plant does not have.
    """
    section = plant.config.plant
    names = {c.name for c in plant.cells}
    wanted: set[str] | None = None
    if cells:
        unknown = sorted(set(cells) - names)
        if unknown:
            raise InputError(
                [
                    Problem(
                        f"no cell {c!r} in the plant (cells: {', '.join(sorted(names))})",
                        path="--cells",
                    )
                    for c in unknown
                ]
            )
        wanted = set(cells)
    if area is not None:
        in_area = {c.name for c in plant.cells if c.area == area}
        if not in_area:
            areas = sorted({c.area for c in plant.cells if c.area}) or ["none declared"]
            raise InputError(
                [Problem(f"no cell in area {area!r} (areas: {', '.join(areas)})", path="--area")]
            )
        wanted = in_area if wanted is None else wanted | in_area
    return SharingOptions(
        name=name,
        cells=None if wanted is None else frozenset(wanted),
        heartbeat_s=section.heartbeat_s,
        ttl_beats=section.lease_beats,
        handoff_s=section.handoff_s,
    )


def build_controller(
    plant: Plant,
    store: Store,
    *,
    speed: float = 1.0,
    seed: int | str = 0,
    options: ControllerOptions | None = None,
    actor: str = "controller",
    read_only: bool = False,
    sharing: SharingOptions | None = None,
) -> Controller:
    """A controller for ``plant`` on ``store``, with a driver for every cell (it drives
    those it leases)."""
    links = Links()
    drivers = {
        c.name: build_driver(plant, c, speed=speed, seed=seed, links=links, read_only=read_only)
        for c in plant.cells
    }
    options = options or controller_options(plant)
    setups = cell_setups(plant, read_only=read_only)
    sharing = sharing or sharing_options(plant, actor)
    controller = Controller(store, setups, drivers, options=options, actor=actor, sharing=sharing)
    if plant.config.mqtt is not None:
        controller.recorder.messages = _mqtt_messenger(plant, controller, store)
    if plant.config.stock and not (read_only or plant.config.plant.read_only):
        controller.stock = stock_keeper(plant, store, poll_s=options.poll_s)
    return controller


def stock_targets(plant: Plant) -> list[StockTarget]:
    """The plant's ``[[stock]]`` targets (checked when the plant was loaded)."""
    return [
        StockTarget.of(plant.families[entry.family], entry.variant, entry.target)
        for entry in plant.config.stock
    ]


def stock_keeper(plant: Plant, store: Store, *, poll_s: float = 1.0) -> StockKeeper:
    """What fills the plant's stock targets with a controller's idle cells (looking at
    the levels at least every ``poll_s``, like the controller at the store)."""
    from mes.settings.stations import stations

    return StockKeeper(
        store,
        stock_targets(plant),
        stations=stations(plant),
        messages=release_messages(plant),
        poll_s=poll_s,
    )


def _mqtt_messenger(plant: Plant, controller: Controller, store: Store) -> Messenger | None:
    """What each of the controller's commits tells MQTT (written to the outbox with it)."""
    from mes.mqtt.serve import messenger

    def job_lookup(job_id: int) -> tuple[str, str] | None:
        step = next((s for s in controller.steps.values() if s.job_id == job_id), None)
        return (step.unit_id, step.id) if step is not None else None

    active = [(a["cell"], a["subject"]) for a in store.alarms(open_only=True) if a["active"]]
    return messenger(plant, clock=controller.clock, job_lookup=job_lookup, active_alarms=active)


def release_messages(plant: Plant) -> ReleaseMessages | None:
    """What an order release tells MQTT (``release(messages=...)``); None without it."""
    if plant.config.mqtt is None:
        return None
    from mes.mqtt.serve import release_messages as made

    return made(plant)


def plant_server(plant: Plant, controller: Controller, store: Store) -> PlantServer | None:
    """The plant's OPC UA server from ``[opcua_server]``, not started; None when absent.

    Raises:
        MesError: a secret it names cannot be read, or a user without a password.
    """
    from mes.faces.opcua import PlantServer, PlantServerSettings
    from mes.faces.view import PlantWatch

    config = plant.config.opcua_server
    if config is None:
        return None
    security = config.security
    user, password = opcua_login("[opcua_server]", security)
    if user is not None and password is None:
        raise MesError(f"[opcua_server]: user {user!r} has no password (password_env or _file)")
    if security.policy == "None":
        log.warning(
            "OPC UA plant server without security (allow_insecure): anyone who reaches %s "
            "can read the plant%s",
            config.endpoint,
            "" if config.read_only else " and hold its cells",
        )
    settings = PlantServerSettings(
        endpoint=config.endpoint,
        namespace=config.namespace,
        update_ms=config.update_ms,
        read_only=config.read_only,
        policy=None if security.policy == "None" else security.policy,
        mode=security.mode,
        certificate=security.certificate,
        private_key=security.private_key,
        trust_dir=security.trust_dir,
        users={user: password} if user is not None and password is not None else None,
    )
    names = [c.name for c in plant.cells]
    return PlantServer(plant.config.plant.name, names, PlantWatch(controller, store), settings)


@contextlib.asynccontextmanager
async def serving_faces(
    plant: Plant, controller: Controller, store: Store, *, speed: float = 1.0
) -> AsyncIterator[PlantServer | None]:
    """Serve the plant's faces (as configured) for the duration of the block: OPC UA,
    MQTT (publishing the outbox, each order's status) and order intake (topic, folder).
    ``speed``: plant seconds per wall second (simulated cells), for order estimates.

    Raises:
        MesError: it cannot listen, or its certificate, key or secrets cannot be read.
    """
    async with contextlib.AsyncExitStack() as stack:
        if plant.config.mqtt is not None or plant.config.intake is not None:
            from mes.mqtt.serve import serving_mqtt

            publisher = await stack.enter_async_context(
                serving_mqtt(plant, store, controller.recorder.subscribe)
            )
            if publisher is not None:
                await stack.enter_async_context(
                    _tracking_orders(plant, controller, store, publisher.wake, speed)
                )
        yield await stack.enter_async_context(_serving_opcua(plant, controller, store))


@contextlib.asynccontextmanager
async def _tracking_orders(
    plant: Plant, controller: Controller, store: Store, wake: Callable[[], None], speed: float
) -> AsyncIterator[None]:
    """Each order's status on MQTT while the block runs (the leader of a shared plant)."""
    from mes.mqtt.orders import OrderTracker, tracking
    from mes.mqtt.serve import plant_namespace

    ns = plant_namespace(plant)
    assert ns is not None
    tracker = OrderTracker(
        store,
        ns,
        cell_setups(plant),
        plant.config.plant.dispatch,
        clock=controller.clock,
        leader=lambda: controller.membership.leader,
        wake=wake,
        speed=speed,
    )
    async with tracking(tracker):
        yield


@contextlib.asynccontextmanager
async def _serving_opcua(
    plant: Plant, controller: Controller, store: Store
) -> AsyncIterator[PlantServer | None]:
    server = plant_server(plant, controller, store)
    if server is None:
        yield None
        return
    try:
        await server.start()
    except (OSError, ValueError) as exc:
        raise MesError(
            f"[opcua_server]: cannot serve {server.settings.endpoint}: {exc} (another "
            "controller on this port? a certificate path wrong?)"
        ) from exc
    log.info("plant OPC UA server on %s", server.endpoint)
    try:
        yield server
    finally:
        await server.aclose()
