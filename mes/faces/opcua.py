"""The plant as an OPC UA server, for SCADA and HMI clients (Ignition, Kepware and the like).

Theory of operation: :class:`PlantServer` builds one address space from the plant's cells
and then, every ``update_ms``, takes a :class:`~mes.faces.view.PlantView` and writes the
values that changed (typed, stamped), so clients that subscribe get one data change per
real change. The node model, in the namespace ``urn:mes-batch-of-one:plant`` with string
node ids (``ns=2;s=Plant.Cells.printer-1.State``)::

    Objects/Plant
        Name String, Updated DateTime, UnitsInProgress UInt32, UnitsDone UInt32,
        UnitsFailed UInt32, UnitsScrapped UInt32, UnitsHeld UInt32, JobsDone UInt32,
        JobsFailed UInt32, ActiveAlarms UInt32, CellsOnline UInt32
        Cells/<cell>
            State String (idle, execute, held, offline...), Online Boolean,
            StateSince DateTime, Unit String, Step String, JobId UInt32,
            Progress Double (percent), JobsDone UInt32, JobsFailed UInt32,
            ActiveAlarms UInt32, Alarm String (the newest active alarm's text),
            WaitingFor String (what an operator must do and confirm; "" when nothing)
            Hold(Reason String) -> RequestId UInt32, Resume() -> RequestId UInt32
                (only when the server is not read-only)

Every variable is read-only for clients. The methods queue operator requests in the store,
the same as ``mes cell hold``; the controller carries them out and journals them with the
actor ``opcua:<user>``. The server never blocks the controller: it reads the controller's
live state on the loop (microseconds) and the store's counts in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from asyncua import ua
from asyncua.server.server import Server

from drivers.opcua.server import argument, check_arguments, secure, stop, write
from mes.domain import UnitState
from mes.errors import StoreError
from mes.faces.view import PlantView, PlantWatch

log = logging.getLogger(__name__)

V = ua.VariantType
APPLICATION_URI = "urn:mes-batch-of-one:controller"

#: Plant variable -> its type.
PLANT_VARIABLES: dict[str, ua.VariantType] = {
    "Name": V.String,
    "Updated": V.DateTime,
    "UnitsInProgress": V.UInt32,
    "UnitsDone": V.UInt32,
    "UnitsFailed": V.UInt32,
    "UnitsScrapped": V.UInt32,
    "UnitsHeld": V.UInt32,
    "JobsDone": V.UInt32,
    "JobsFailed": V.UInt32,
    "ActiveAlarms": V.UInt32,
    "CellsOnline": V.UInt32,
}
#: Cell variable -> its type.
CELL_VARIABLES: dict[str, ua.VariantType] = {
    "State": V.String,
    "Online": V.Boolean,
    "StateSince": V.DateTime,
    "Unit": V.String,
    "Step": V.String,
    "JobId": V.UInt32,
    "Progress": V.Double,
    "JobsDone": V.UInt32,
    "JobsFailed": V.UInt32,
    "ActiveAlarms": V.UInt32,
    "Alarm": V.String,
    "WaitingFor": V.String,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PlantServerSettings:
    """How the plant's server listens (from ``[opcua_server]``, secrets resolved)."""

    endpoint: str
    namespace: str = "urn:mes-batch-of-one:plant"
    update_ms: float = 500.0
    read_only: bool = True
    policy: str | None = None
    mode: str = "SignAndEncrypt"
    certificate: str | None = None
    private_key: str | None = None
    trust_dir: str | None = None
    users: Mapping[str, str] | None = field(default=None, repr=False)


def plant_values(plant: str, view: PlantView) -> dict[str, object]:
    """The plant object's variables for ``view``."""
    units = view.units
    return {
        "Name": plant,
        "Updated": view.at,
        "UnitsInProgress": view.units_in_progress,
        "UnitsDone": units.get(UnitState.DONE.value, 0),
        "UnitsFailed": units.get(UnitState.FAILED.value, 0),
        "UnitsScrapped": units.get(UnitState.SCRAPPED.value, 0),
        "UnitsHeld": units.get(UnitState.HELD.value, 0),
        "JobsDone": view.jobs_done,
        "JobsFailed": view.jobs_failed,
        "ActiveAlarms": len(view.alarms),
        "CellsOnline": sum(c.online for c in view.cells),
    }


def cell_values(view: PlantView) -> dict[str, dict[str, object]]:
    """Each cell's variables for ``view``."""
    return {
        c.name: {
            "State": c.state,
            "Online": c.online,
            "StateSince": c.since,
            "Unit": c.unit,
            "Step": c.step,
            "JobId": c.job_id,
            "Progress": round(c.progress * 100.0, 1),
            "JobsDone": c.jobs_done,
            "JobsFailed": c.jobs_failed,
            "ActiveAlarms": len(c.alarms),
            "Alarm": c.alarms[0] if c.alarms else "",
            "WaitingFor": c.waiting_for,
        }
        for c in view.cells
    }


class PlantServer:
    """Serves a plant's live view over OPC UA (see the module docstring)."""

    def __init__(
        self, plant: str, cells: list[str], watch: PlantWatch, settings: PlantServerSettings
    ) -> None:
        self.plant = plant
        self.cells = list(cells)
        self.watch = watch
        self.settings = settings
        self.endpoint = settings.endpoint
        self.namespace_index = 0
        self.updates = 0
        """Views published so far (tests wait on it)."""
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._written: dict[str, object] = {}
        self._updated = asyncio.Condition()

    def node_id(self, path: str) -> ua.NodeId:
        """The node id of ``Plant.<path>`` (``"Cells.printer-1.State"``)."""
        name = f"Plant.{path}" if path else "Plant"
        return ua.NodeId(ua.String(name), ua.Int16(self.namespace_index))

    async def start(self) -> None:
        """Build the address space, listen, and start publishing.

        Raises:
            OSError: the endpoint cannot be bound, or a certificate or key not read.
            ValueError: the security settings do not fit together.
        """
        s = self.settings
        self._server = server = Server()
        try:
            await server.init()
            server.set_endpoint(s.endpoint)
            server.set_server_name(f"mes-batch-of-one plant {self.plant}")
            await server.set_application_uri(APPLICATION_URI)
            await secure(
                server,
                s.policy,
                s.mode,
                certificate=s.certificate,
                private_key=s.private_key,
                trust_dir=s.trust_dir,
                users=s.users,
            )
            self.namespace_index = await server.register_namespace(s.namespace)
            await self._build(server)
            await server.start()
            assert server.bserver is not None  # set by start()
            url = urlparse(s.endpoint)
            self.endpoint = url._replace(netloc=f"{url.hostname}:{server.bserver.port}").geturl()
            await self.update()
            self._task = asyncio.create_task(self._publish_forever(), name="opcua-plant")
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop publishing and serving; safe to call twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            server, self._server = self._server, None
            await stop(server)

    async def __aenter__(self) -> PlantServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _build(self, server: Server) -> None:
        ns = self.namespace_index

        async def variables(parent: Any, prefix: str, types: Mapping[str, ua.VariantType]) -> None:
            for name, vtype in types.items():
                path = f"{prefix}{name}"
                initial = _EPOCH if vtype is V.DateTime else ua.get_default_value(vtype)
                node = await parent.add_variable(
                    self.node_id(path), ua.QualifiedName(name, ns), initial, vtype
                )
                self._nodes[path] = node.nodeid

        plant = await server.nodes.objects.add_object(
            self.node_id(""), ua.QualifiedName("Plant", ns)
        )
        await variables(plant, "", PLANT_VARIABLES)
        folder = await plant.add_object(self.node_id("Cells"), ua.QualifiedName("Cells", ns))
        for cell in self.cells:
            obj = await folder.add_object(self.node_id(f"Cells.{cell}"), ua.QualifiedName(cell, ns))
            await variables(obj, f"Cells.{cell}.", CELL_VARIABLES)
            if not self.settings.read_only:
                await self._methods(obj, cell)

    async def _methods(self, obj: Any, cell: str) -> None:
        ns = self.namespace_index
        reason = [argument("Reason", V.String)]
        answer = [argument("RequestId", V.UInt32)]
        for method, action, inputs in (
            ("Hold", "cell.hold", reason),
            ("Resume", "cell.resume", []),
        ):
            await obj.add_method(
                self.node_id(f"Cells.{cell}.{method}"),
                ua.QualifiedName(method, ns),
                self._request(cell, action, [V.String] * len(inputs)),
                inputs,
                answer,
            )

    def _request(self, cell: str, action: str, types: list[ua.VariantType]) -> Any:
        async def call(_parent: ua.NodeId, *args: ua.Variant) -> Any:
            if (refused := check_arguments(args, types)) is not None:
                return refused
            reason = str(args[0].Value or "") if args else ""
            store = self.watch.store
            request_id = await asyncio.to_thread(
                store.submit, datetime.now(UTC), "opcua", "opcua", action, cell, reason
            )
            return [ua.Variant(request_id, V.UInt32)]

        return call

    async def update(self) -> PlantView:
        """Publish the plant as it is now; returns the view published.

        Raises:
            StoreError: the store cannot be read.
        """
        assert self._server is not None
        view = await self.watch.view()
        values = plant_values(self.plant, view)
        for cell, cell_vars in cell_values(view).items():
            if cell in self.cells:
                values.update({f"Cells.{cell}.{k}": v for k, v in cell_vars.items()})
        for path, value in values.items():
            if path != "Updated" and self._written.get(path, _EPOCH) == value:
                continue
            vtype = _type(path)
            await write(self._server, self._nodes[path], value, vtype)
            self._written[path] = value
        async with self._updated:
            self.updates += 1
            self._updated.notify_all()
        return view

    async def updated(self, after: int) -> int:
        """Wait until more than ``after`` views were published; the new count."""
        async with self._updated:
            await self._updated.wait_for(lambda: self.updates > after)
            return self.updates

    async def _publish_forever(self) -> None:
        period = self.settings.update_ms / 1000
        failing = False
        while True:
            await asyncio.sleep(period)
            try:
                await self.update()
                failing = False
            except StoreError as exc:
                if not failing:
                    log.warning("OPC UA plant server: store not read, values stale: %s", exc)
                failing = True


def _type(path: str) -> ua.VariantType:
    name = path.rsplit(".", 1)[-1]
    return CELL_VARIABLES[name] if path.startswith("Cells.") else PLANT_VARIABLES[name]
