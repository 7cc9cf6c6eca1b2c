"""A cell driven through a machine object on an OPC UA server (asyncua 2.x).

Theory of operation (the node model is in ``docs/opcua.md``):

* **Connect.** A new ``Client`` for every connect (reusing one after a loss can hang,
  opcua-asyncio#1660); asyncua's own reconnect stays off, the cell's supervisor
  reconnects with the plant's backoff. The machine's nodes are found by browse name,
  the recipe variables' declared types are read once, and one subscription follows
  ``State``, ``CurrentJobId``, ``LastJobId`` and ``Progress`` by data change, not polling.
  A lost session (asyncua's watchdog) ends the subscription with ``DeviceUnavailable``.
* **Command.** State is read before anything is written. A start writes the recipe,
  each value as its node's declared variant type (no Int64 into a UInt16; a value that
  does not fit refuses the job before anything is written), then calls
  ``Start(JobId: UInt32)``; the method's answer says accepted or the refusal code. A job
  the machine runs or has finished is never started again (idempotent by job id).
  Hold, resume and abort are the machine's methods.
* **Follow.** Reports come from the subscription; the job's end is read (outcome, error,
  results) once ``LastJobId`` names it: the machine writes those before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import Subscription
from asyncua.crypto.security_policies import (
    SecurityPolicy,
    SecurityPolicyAes256Sha256RsaPss,
    SecurityPolicyBasic256Sha256,
)
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from drivers.base import Driver
from drivers.opcua.types import coerce
from mes.domain.job import (
    PACKML_COMMAND_NUMBERS,
    PACKML_STATE_NUMBERS,
    REFUSALS,
    STOP_CODES,
    CellStatus,
    Job,
    JobCompleted,
    JobFaulted,
    JobProgress,
    JobReport,
    MachineState,
    ProgramKind,
)
from mes.errors import DeviceUnavailable, JobRejected

log = logging.getLogger(__name__)

POLICIES: dict[str, type[SecurityPolicy]] = {
    "Basic256Sha256": SecurityPolicyBasic256Sha256,
    "Aes256_Sha256_RsaPss": SecurityPolicyAes256Sha256RsaPss,
}
#: Variables the subscription follows.
WATCHED = ("State", "CurrentJobId", "LastJobId", "Progress")
#: Job-contract point (as the plant file names it) -> its browse name in our node model.
POINTS: dict[str, str] = {
    "state": "State",
    "current_job_id": "CurrentJobId",
    "last_job_id": "LastJobId",
    "progress": "Progress",
    "last_outcome": "LastOutcome",
    "error_code": "ErrorCode",
    "error_text": "ErrorText",
    "heartbeat": "Heartbeat",
    "recipe": "Recipe",
    "results": "Results",
    "command": "Command",
    "job_id": "JobId",
}
#: Method browse name -> PackML command name (for a machine commanded by writes).
COMMANDS = {
    "Start": "start",
    "Hold": "hold",
    "Resume": "unhold",
    "Abort": "abort",
    "Reset": "reset",
    "Clear": "clear",
}
_NODE_ID = ("ns=", "nsu=", "i=", "s=", "g=", "b=")
_INVERSE_PACKML = {number: name for name, number in PACKML_STATE_NUMBERS.items()}
_ERRORS = (OSError, asyncio.TimeoutError, UaError, ConnectionError)


@dataclass(frozen=True, slots=True)
class OpcuaSettings:
    """How one cell is reached (from its driver config; secrets already resolved)."""

    endpoint: str
    namespace: str
    machine: str
    results: Sequence[str] = ()
    timeout_s: float = 4.0
    publishing_ms: float = 50.0
    read_only: bool = False
    policy: str | None = None
    """``Basic256Sha256`` or ``Aes256_Sha256_RsaPss``; None: no security."""
    mode: str = "SignAndEncrypt"
    certificate: str | None = None
    private_key: str | None = None
    trust_dir: str | None = None
    """Server certificates trusted; None: any server certificate is accepted."""
    application_uri: str = "urn:mes-batch-of-one:controller"
    """Must equal the URI in this controller's certificate."""
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    nodes: Mapping[str, str] = field(default_factory=dict)
    """Point (:data:`POINTS`) -> browse path below the machine or node id, where the
    machine does not follow our node model. With ``command`` (and ``job_id``) commands are
    written there instead of calling methods."""
    states: str = "names"
    """``names``: State is a PackML name; ``packml``: a PackML StateCurrent number."""


class OpcuaCell(Driver):
    """One machine object on an OPC UA server."""

    kind = "opcua"

    def __init__(self, name: str, settings: OpcuaSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self._client: Client | None = None
        self._nodes: dict[str, Node] = {}
        self._recipe: dict[str, tuple[Node, ua.VariantType]] = {}
        self._results: dict[str, Node] = {}
        self._machine: Node | None = None
        self._types: dict[str, ua.VariantType] = {}
        self._ns = 0  # the namespace's index on this server, looked up once per connect
        self._subscription: Subscription | None = None
        self._values: dict[str, Any] = {}
        self._changed = asyncio.Condition()
        self._version = 0
        self._failure: DeviceUnavailable | None = None

    # -- link -------------------------------------------------------------------------

    async def connect(self) -> None:
        s = self.settings
        client = Client(s.endpoint, timeout=s.timeout_s)
        # A short session: after a crash the server drops our old session (and its
        # subscription) soon; a live controller renews it with every request.
        client.session_timeout = 30_000
        if s.user:
            client.set_user(s.user)
        if s.password:
            client.set_password(s.password)
        try:
            if s.policy:
                await self._secure(client)
            await client.connect()
        except UaStatusCodeError as exc:
            raise DeviceUnavailable(f"{s.endpoint}: {_refusal(exc, s)}") from exc
        except _ERRORS as exc:
            raise DeviceUnavailable(f"cannot connect to {s.endpoint}: {_reason(exc)}") from exc
        self._client = client
        self._failure = None
        client.connection_lost_callback = self._lost
        try:
            await self._find_nodes(client)
            self._subscription = await client.create_subscription(s.publishing_ms, self)
            nodes = [self._nodes[n] for n in WATCHED]
            await self._subscription.subscribe_data_change(nodes)
        except _ERRORS as exc:
            await self.aclose()
            raise DeviceUnavailable(f"{s.endpoint}: {self.name}: {_reason(exc)}") from exc

    async def _secure(self, client: Client) -> None:
        s = self.settings
        assert s.policy is not None and s.certificate and s.private_key
        client.application_uri = s.application_uri
        if s.trust_dir:
            store = TrustStore([Path(s.trust_dir)], [])
            try:
                await store.load()
            except (OSError, ValueError) as exc:
                raise DeviceUnavailable(
                    f"{s.endpoint}: no trusted server certificate in {s.trust_dir} ({exc}); "
                    "if this is the right server, copy its certificate into it"
                ) from exc
            options = (
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_SERVER
            )
            client.certificate_validator = CertificateValidator(options, store)
        await client.set_security(
            POLICIES[s.policy],
            certificate=s.certificate,
            private_key=s.private_key,
            mode=ua.MessageSecurityMode[s.mode],
        )

    async def _find_nodes(self, client: Client) -> None:
        s = self.settings
        try:
            ns = self._ns = await client.get_namespace_index(s.namespace)
        except ValueError as exc:
            raise DeviceUnavailable(
                f"{s.endpoint}: the server has no namespace {s.namespace!r} "
                "(check the cell's namespace)"
            ) from exc
        try:
            machine = await client.nodes.objects.get_child(f"{ns}:{s.machine}")
        except UaStatusCodeError as exc:
            raise DeviceUnavailable(
                f"{s.endpoint}: no machine object {s.machine!r} under Objects (check the "
                "cell's machine and namespace, docs/opcua.md)"
            ) from exc
        self._machine = machine
        points = [p for p in POINTS if p not in ("command", "job_id") or p in s.nodes]
        found = {p: await self._locate(client, machine, p) for p in points}
        self._nodes = {POINTS[p]: node for p, node in found.items()}
        self._recipe = {}
        for node in await self._nodes.pop("Recipe").get_children():
            name = (await node.read_browse_name()).Name
            self._recipe[name] = (node, await node.read_data_type_as_variant_type())
        results = self._nodes.pop("Results")
        self._results = {}
        for r in s.results:
            try:
                self._results[r] = await results.get_child(f"{ns}:{r}")
            except UaStatusCodeError as exc:
                raise DeviceUnavailable(
                    f"{s.endpoint}: no result {r!r} under {s.machine}'s results (check the "
                    "cell's results)"
                ) from exc
        self._types = {
            n: await self._nodes[n].read_data_type_as_variant_type()
            for n in ("Command", "JobId")
            if n in self._nodes
        }

    async def _locate(self, client: Client, machine: Node, point: str) -> Node:
        """The node of ``point``: a node id, or a browse path below the machine object."""
        s = self.settings
        ref = s.nodes.get(point, POINTS[point])
        where = f"{point} = {ref!r}" if point in s.nodes else f"{POINTS[point]!r}"
        try:
            if ref.startswith(_NODE_ID):
                if ref.startswith("nsu="):
                    uri, _, rest = ref[4:].partition(";")
                    ref = f"ns={await client.get_namespace_index(uri)};{rest}"
                node = client.get_node(ua.NodeId.from_string(ref))
                await node.read_browse_name()  # it exists
                return node
            path = [
                n if n.split(":", 1)[0].isdigit() else f"{self._ns}:{n}" for n in ref.split("/")
            ]
            return await machine.get_child(path)
        except (UaStatusCodeError, ValueError) as exc:
            raise DeviceUnavailable(
                f"{s.endpoint}: no node for {where} under {s.machine} ({_reason(exc)}); check "
                "the cell's nodes (docs/opcua.md)"
            ) from exc

    async def _lost(self, exc: Exception) -> None:
        async with self._changed:
            self._failure = DeviceUnavailable(
                f"{self.settings.endpoint}: session lost: {_reason(exc)}"
            )
            self._changed.notify_all()

    async def link_lost(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._failure is not None)
        assert self._failure is not None
        raise self._failure

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._subscription = None
        if client is not None:
            client.connection_lost_callback = None
            with contextlib.suppress(*_ERRORS):
                await client.disconnect()

    # -- subscription -----------------------------------------------------------------

    def datachange_notification(self, node: Node, val: Any, _data: Any) -> None:
        """asyncua's callback: one watched variable changed."""
        for name, known in self._nodes.items():
            if known == node:
                self._values[name] = val
        self._version += 1
        asyncio.get_running_loop().create_task(self._notify())

    def status_change_notification(self, status: Any) -> None:
        """asyncua's callback: the subscription ended (session lost)."""
        if self._failure is None:  # asyncua reports the lost session first: keep its reason
            code = getattr(getattr(status, "Status", None), "name", status)  # "BadShutdown"
            self._failure = DeviceUnavailable(
                f"{self.settings.endpoint}: subscription ended ({code})"
            )
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _next_change(self, seen: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self._failure is not None or self._version != seen)
            if self._failure is not None:
                raise self._failure
            return self._version

    # -- reading ----------------------------------------------------------------------

    async def _read(self, *names: str) -> dict[str, Any]:
        if self._client is None:
            raise DeviceUnavailable(f"cell {self.name} is not connected")
        try:
            values = await self._client.read_values([self._nodes[n] for n in names])
        except _ERRORS as exc:
            raise DeviceUnavailable(
                f"{self.settings.endpoint}: read failed: {_reason(exc)}"
            ) from exc
        return dict(zip(names, values, strict=True))

    async def _state(self) -> tuple[MachineState, int, int]:
        v = await self._read("State", "CurrentJobId", "LastJobId")
        return self._machine_state(v["State"]), int(v["CurrentJobId"]), int(v["LastJobId"])

    async def _last_report(self, job_id: int) -> JobCompleted | JobFaulted:
        v = await self._read("LastOutcome", "ErrorCode", "ErrorText")
        if v["LastOutcome"] == "successful":
            measurements: dict[str, float] = {}
            if self._results and self._client is not None:
                try:
                    read = await self._client.read_values(list(self._results.values()))
                except _ERRORS as exc:
                    raise DeviceUnavailable(f"results not read: {_reason(exc)}") from exc
                measurements = {n: float(x) for n, x in zip(self._results, read, strict=True)}
            return JobCompleted(job_id, measurements)
        code = int(v["ErrorCode"])
        return JobFaulted(
            job_id, str(code), str(v["ErrorText"] or (REFUSALS | STOP_CODES).get(code, "fault"))
        )

    async def status(self) -> CellStatus:
        state, current, last = await self._state()
        return CellStatus(
            state=state,
            job_id=current or None,
            last_job_id=last or None,
            last_report=await self._last_report(last) if last else None,
        )

    # -- commanding -------------------------------------------------------------------

    async def _call(self, method: str, *args: ua.Variant) -> None:
        if self.settings.read_only:
            raise JobRejected(f"cell {self.name} is read-only: will not call {method}")
        assert self._machine is not None and self._client is not None
        if "Command" in self._nodes:
            await self._write_command(COMMANDS[method], *args)
            return
        ns = self._ns
        try:
            answer = await self._machine.call_method(f"{ns}:{method}", *args)
        except UaStatusCodeError as exc:
            raise JobRejected(f"machine {self.name} refused {method}: {_reason(exc)}") from exc
        except _ERRORS as exc:
            raise DeviceUnavailable(f"{method} not answered: {_reason(exc)}") from exc
        accepted, code = answer if isinstance(answer, list) else (answer, 0)
        if not accepted:
            raise JobRejected(
                f"machine {self.name} refused {method}: error {code} "
                f"({REFUSALS.get(int(code), 'refused')})"
            )

    async def _write_command(self, command: str, *args: ua.Variant) -> None:
        """Command by writes: the job id (for a start), then the command; the machine
        takes it and sets the command back to 0. A start it did not take is refused with
        the machine's error code."""
        vtype = self._types["Command"]
        value = command if vtype is ua.VariantType.String else PACKML_COMMAND_NUMBERS[command]
        job_id = int(args[0].Value) if args else 0
        try:
            if job_id:
                job_node = self._nodes["JobId"]
                await job_node.write_value(
                    ua.Variant(coerce(self._types["JobId"], job_id), self._types["JobId"])
                )
            await self._nodes["Command"].write_value(ua.Variant(coerce(vtype, value), vtype))
        except UaStatusCodeError as exc:
            raise JobRejected(f"machine {self.name} refused {command}: {_reason(exc)}") from exc
        except _ERRORS as exc:
            raise DeviceUnavailable(f"{command} not written: {_reason(exc)}") from exc
        deadline = asyncio.get_running_loop().time() + self.settings.timeout_s
        while True:
            v = await self._read("Command", "CurrentJobId", "LastJobId", "ErrorCode")
            if job_id and job_id in (int(v["CurrentJobId"]), int(v["LastJobId"])):
                return
            if not v["Command"]:
                if not job_id:
                    return
                code = int(v["ErrorCode"])
                raise JobRejected(
                    f"machine {self.name} did not take job {job_id}: error {code} "
                    f"({REFUSALS.get(code, 'refused')})"
                )
            if asyncio.get_running_loop().time() > deadline:
                raise DeviceUnavailable(
                    f"machine {self.name} did not take the {command} command within "
                    f"{self.settings.timeout_s:g} s (its command variable still holds it)"
                )
            await asyncio.sleep(0.01)

    async def _settle(self) -> MachineState:
        state, _, _ = await self._state()
        deadline = asyncio.get_running_loop().time() + self.settings.timeout_s
        while state.acting and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
            state, _, _ = await self._state()
        return state

    async def start_job(self, job: Job) -> None:
        if self.settings.read_only:
            raise JobRejected(f"cell {self.name} is read-only: will not start job {job.job_id}")
        values = self._recipe_values(job)
        state, current, last = await self._state()
        if job.job_id in (current, last):
            return  # it arrived before: never hand a job over twice
        state = await self._settle()
        if current:
            raise JobRejected(f"machine {self.name} is busy with job {current}")
        if state is MachineState.ABORTED:
            await self._call("Clear")
            state = await self._settle()
        if state in (MachineState.COMPLETE, MachineState.STOPPED):
            await self._call("Reset")
            await self._settle()
        try:
            for node, value in values:
                await node.write_value(value)
        except UaStatusCodeError as exc:
            raise JobRejected(f"machine {self.name} refused the recipe: {_reason(exc)}") from exc
        except _ERRORS as exc:
            raise DeviceUnavailable(f"recipe not written: {_reason(exc)}") from exc
        await self._call("Start", ua.Variant(job.job_id, ua.VariantType.UInt32))

    def _recipe_values(self, job: Job) -> list[tuple[Node, ua.Variant]]:
        parameters: dict[str, object] = {}
        if job.program.kind is ProgramKind.RECIPE:
            parameters = json.loads(job.program.body)
        parameters.setdefault("expected_s", job.expected_s)
        out = []
        for name, (node, vtype) in self._recipe.items():
            if name not in parameters:
                continue  # the machine keeps its own value
            try:
                out.append((node, ua.Variant(coerce(vtype, parameters[name]), vtype)))
            except (TypeError, ValueError) as exc:
                raise JobRejected(
                    f"cell {self.name}: recipe {name!r} = {parameters[name]!r} does not fit "
                    f"the machine's {vtype.name}: {exc}; nothing sent"
                ) from exc
        return out

    async def reports(self, job_id: int) -> AsyncIterator[JobReport]:
        version = self._version
        _, current, last = await self._state()  # read first; then follow notifications
        last_progress: float | None = None
        while True:
            if current != job_id and last != job_id:
                _, current, last = await self._state()  # notifications may lag: ask
            if last == job_id and current != job_id:
                yield await self._last_report(job_id)
                return
            if current != job_id:
                raise JobRejected(f"machine {self.name} does not know job {job_id}")
            progress = self._values.get("Progress")
            if isinstance(progress, int | float) and progress != last_progress:
                last_progress = float(progress)
                yield JobProgress(job_id, min(max(last_progress / 100.0, 0.0), 1.0))
            version = await self._next_change(version)
            _, current, last = self._from(self._values)

    def _from(self, values: Mapping[str, Any]) -> tuple[MachineState, int, int]:
        return (
            self._machine_state(values.get("State")),
            int(values.get("CurrentJobId") or 0),
            int(values.get("LastJobId") or 0),
        )

    def _machine_state(self, value: object) -> MachineState:
        if self.settings.states == "packml":
            value = _INVERSE_PACKML.get(value) if isinstance(value, int) else None
        try:
            return MachineState(str(value).lower())
        except ValueError:
            return MachineState.UNKNOWN

    async def hold(self) -> None:
        await self._call("Hold")

    async def resume(self) -> None:
        await self._call("Resume")

    async def abort(self) -> None:
        await self._call("Abort")


def _refusal(exc: UaStatusCodeError, s: OpcuaSettings) -> str:
    """What a refused connection means for the person who has to fix it."""
    name = ua.StatusCode(exc.code).name
    if "Certificate" in name:
        return (
            f"the server's certificate is not trusted ({name}); if this is the right "
            f"server, copy its certificate into {s.trust_dir}"
        )
    if name in ("BadUserAccessDenied", "BadIdentityTokenRejected", "BadIdentityTokenInvalid"):
        who = f"user {s.user!r}" if s.user else "anonymous login"
        return f"{who} refused ({name}): check the user name and password it was given"
    if name == "BadSecurityChecksFailed":
        return (
            f"{name}: the server does not trust this controller's certificate "
            f"({s.certificate}); have it trusted on the server"
        )
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
