"""A real OPC UA server (asyncua) in front of simulated machines: the node model and its glue.

Theory of operation: :class:`OpcuaSimServer` puts one object per :class:`SimMachine` under
the Objects folder, in the namespace :data:`NAMESPACE_URI`, every node named by a string
node id ``<machine>.<path>`` (``ns=2;s=tester-2.State``, ``...Results.cycle_s``,
``...Recipe.expected_s``, ``...Start``):

- variables, read-only for clients, typed as :data:`drivers.sim.opcua_machine.VARIABLES`
  says, plus ``Results/<name>`` (Double) under a ``Results`` object;
- a ``Recipe`` object whose variables clients write, each created with its variant type:
  asyncua refuses a write of another type with BadTypeMismatch;
- methods Start(JobId UInt32) and Hold, Resume, Abort, Reset, Clear(), each answering
  (Accepted Boolean, ErrorCode UInt16). asyncua does not check input arguments, so this
  module does: a wrong count or variant type is refused (BadArgumentsMissing,
  BadTooManyArguments, BadInvalidArgument with BadTypeMismatch for the argument).

The machines own the truth; the address space is a copy. After every method call and every
scan the glue writes the variables whose value changed since its last write, in
:meth:`SimMachine.values` order (results, outcome, job ids, error, progress, then State),
under one lock and without awaiting anything that yields to other tasks in between, so
neither a Read nor a publish ever sees half a change. asyncua does not keep write order
inside one publish response, though: it groups notifications by monitored item, in the
order of each item's first change in that publishing interval, so a handler may be told of
``State`` before ``LastJobId`` of the same response. A client that needs the job's end on a
State change reads the rest (one Read) or looks at the whole response. Start reads the
Recipe variables from the address space and hands them to the machine, which latches them
if it accepts.

A scan task calls :meth:`SimMachine.scan` for every machine every ``scan_ms`` with
``loop.time()``, on a fixed cadence that skips (never bursts) when the loop falls behind.

Security is one policy per server: ``none`` (NoSecurity) or ``sign_encrypt``
(Basic256Sha256, SignAndEncrypt; the server certificate and key are files). With ``users``
only user-name tokens are offered (anonymous is refused); either way no client is an
administrator (:mod:`drivers.opcua.server`). Client certificates are not checked: a
simulator trusts everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlparse

from asyncua import ua
from asyncua.server.server import Server

from drivers.opcua.server import argument, check_arguments, secure, stop, write
from drivers.sim.opcua_machine import NOT_ALLOWED, VARIABLES, Command, Reply, SimMachine, Value
from mes.domain.job import PACKML_COMMAND_NUMBERS, PACKML_STATE_NUMBERS

NAMESPACE_URI = "urn:mes-batch-of-one:sim"
APPLICATION_URI = "urn:mes-batch-of-one:sim:server"
DEFAULT_ENDPOINT = "opc.tcp://127.0.0.1:0/mes/sim"
Security = Literal["none", "sign_encrypt"]
V = ua.VariantType
MethodResult = list[ua.Variant] | ua.CallMethodResult
MethodCallback = Callable[..., Awaitable[MethodResult]]

#: Method browse name -> the machine command (None: Start, which takes a JobId).
METHODS: dict[str, Command | None] = {
    "Start": None,
    "Hold": "hold",
    "Resume": "resume",
    "Abort": "abort",
    "Reset": "reset",
    "Clear": "clear",
}


_START_INPUTS = [argument("JobId", V.UInt32)]
_OUTPUTS = [argument("Accepted", V.Boolean), argument("ErrorCode", V.UInt16)]


class OpcuaSimServer:
    """One asyncua server endpoint serving simulated machines (see the module docstring).

    Attributes:
        machines: Machine name -> machine.
        namespace_index: The index of :data:`NAMESPACE_URI` (set by :meth:`start`).
        port: The bound TCP port, also when asked for port 0 (set by :meth:`start`).
        endpoint: The URL clients connect to, with the bound port (set by :meth:`start`).
    """

    def __init__(
        self,
        machines: Iterable[SimMachine],
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        scan_ms: float = 10.0,
        security: Security = "none",
        certificate: Path | None = None,
        private_key: Path | None = None,
        users: Mapping[str, str] | None = None,
        application_uri: str = APPLICATION_URI,
    ) -> None:
        """Describe the server; nothing listens before :meth:`start`.

        Args:
            machines: The machines to serve, with distinct names.
            endpoint: ``opc.tcp://host:port/path``; port 0 picks a free one.
            scan_ms: The machines' scan period.
            security: ``none`` or ``sign_encrypt`` (Basic256Sha256 SignAndEncrypt only).
            certificate: The server certificate (DER or PEM) for ``sign_encrypt``; its URI
                must be ``application_uri``.
            private_key: The certificate's private key (PEM, unencrypted).
            users: User name -> password; when given, only these users may open a session.
            application_uri: The server's ApplicationUri.

        Raises:
            ValueError: no machines, two with one name, a bad scan period, or
                ``sign_encrypt`` without a certificate and key.
        """
        listed = list(machines)
        self.machines = {m.name: m for m in listed}
        if not listed or len(self.machines) != len(listed):
            raise ValueError("an OPC UA sim server needs machines, with distinct names")
        if scan_ms <= 0:
            raise ValueError("scan_ms must be > 0")
        if security == "sign_encrypt" and (certificate is None or private_key is None):
            raise ValueError("sign_encrypt needs a server certificate and private key")
        self.endpoint = endpoint
        self.scan_ms = scan_ms
        self.security = security
        self.certificate, self.private_key = certificate, private_key
        self.users = dict(users) if users is not None else None
        self.application_uri = application_uri
        self.namespace_index = 0
        self.port = 0
        self._server: Server | None = None
        self._scan: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._nodes: dict[str, dict[str, ua.NodeId]] = {}
        self._recipe_nodes: dict[str, dict[str, ua.NodeId]] = {}
        self._pushed: dict[str, dict[str, Value]] = {}

    def node_id(self, machine: str, path: str = "") -> ua.NodeId:
        """The node id of ``path`` below a machine's object (``"Results/cycle_s"``), or its own."""
        name = f"{machine}.{path.replace('/', '.')}" if path else machine
        return ua.NodeId(ua.String(name), ua.Int16(self.namespace_index))

    # -- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        """Build the address space, listen, and start scanning.

        After :meth:`aclose` it may be called again: a restarted server, on the same port
        (the one first bound), with the machines as they were; the Recipe variables come
        back at their power-up values.

        Raises:
            OSError: the endpoint cannot be bound.
            FileNotFoundError: the certificate or key file is missing.
        """
        self._server = server = Server()
        try:
            await server.init()
            server.set_endpoint(self.endpoint)
            server.set_server_name("mes-batch-of-one simulated machines")
            await server.set_application_uri(self.application_uri)
            policy = "Basic256Sha256" if self.security == "sign_encrypt" else None
            await secure(
                server,
                policy,
                certificate=self.certificate,
                private_key=self.private_key,
                users=self.users,
            )
            self.namespace_index = await server.register_namespace(NAMESPACE_URI)
            for machine in self.machines.values():
                await self._build(server, machine)
            await server.start()
            assert server.bserver is not None  # set by start()
            self.port = server.bserver.port
            url = urlparse(self.endpoint)
            self.endpoint = url._replace(netloc=f"{url.hostname}:{self.port}").geturl()
            await self.push()
            self._scan = asyncio.create_task(self._scan_forever(), name="sim-opcua-scan")
        except BaseException:
            await self.aclose()
            raise

    async def add(self, machine: SimMachine) -> None:
        """Serve one more machine on the running server (its nodes built now).

        Raises:
            ValueError: a machine of that name is served already.
        """
        if machine.name in self.machines:
            raise ValueError(f"a machine named {machine.name!r} is served already")
        async with self._lock:
            assert self._server is not None, "add() needs a started server"
            await self._build(self._server, machine)
            self.machines[machine.name] = machine

    async def aclose(self) -> None:
        """Stop scanning and serving; safe to call twice."""
        if self._scan is not None:
            self._scan.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scan
            self._scan = None
        if self._server is not None:
            server, self._server = self._server, None
            await stop(server)

    async def __aenter__(self) -> OpcuaSimServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def drop_sessions(self, *, keep_sessions: bool = False) -> int:
        """Close every client connection, as a server restart or a cut cable would.

        Args:
            keep_sessions: Leave the sessions (and their subscriptions) for the clients to
                reactivate on a new connection, as asyncua does after a lost connection;
                by default they are closed too, as after a restart.

        Returns:
            How many connections were closed.
        """
        if self._server is None:
            return 0
        iserver = self._server.iserver
        if not keep_sessions:
            # asyncua keeps its sessions in a private registry and offers no public way to
            # list them; close_session(delete_subs=True) is what a CloseSession request does.
            for session in list(iserver._external_sessions.values()):
                await session.close_session(True)
        transports = list(iserver.asyncio_transports)
        for transport in transports:
            transport.close()
        return len(transports)

    # -- the address space -------------------------------------------------------

    async def _build(self, server: Server, machine: SimMachine) -> None:
        ns, name = self.namespace_index, machine.name
        obj = await server.nodes.objects.add_object(self.node_id(name), ua.QualifiedName(name, ns))
        results = await obj.add_object(
            self.node_id(name, "Results"), ua.QualifiedName("Results", ns)
        )
        nodes = self._nodes[name] = {}
        for path, value in machine.values().items():
            parent, leaf = (results, path.split("/", 1)[1]) if "/" in path else (obj, path)
            value, vtype = _typed(machine, path, value)
            qname = ua.QualifiedName(leaf, ns)
            var = await parent.add_variable(self.node_id(name, path), qname, value, vtype)
            nodes[path] = var.nodeid
        self._pushed[name] = machine.values()
        recipe = await obj.add_object(self.node_id(name, "Recipe"), ua.QualifiedName("Recipe", ns))
        recipe_nodes = self._recipe_nodes[name] = {}
        for key, value in machine.default_recipe().items():
            nodeid, qname = self.node_id(name, f"Recipe/{key}"), ua.QualifiedName(key, ns)
            var = await recipe.add_variable(nodeid, qname, value, machine.recipe_types[key])
            await var.set_writable()
            recipe_nodes[key] = var.nodeid
        if machine.commands == "writes":
            for path, vtype in (("Command", V.Int32), ("JobId", V.UInt32)):
                qname = ua.QualifiedName(path, ns)
                var = await obj.add_variable(self.node_id(name, path), qname, 0, vtype)
                await var.set_writable()
                nodes[path] = var.nodeid
            return
        for method, command in METHODS.items():
            inputs = _START_INPUTS if command is None else []
            callback = self._method(machine, command)
            qname = ua.QualifiedName(method, ns)
            await obj.add_method(self.node_id(name, method), qname, callback, inputs, _OUTPUTS)

    def _method(self, machine: SimMachine, command: Command | None) -> MethodCallback:
        """The callback asyncua calls with the object's node id and the input Variants."""

        async def call(parent: ua.NodeId, *args: ua.Variant) -> MethodResult:
            types = [V.UInt32] if command is None else []
            if (refusal := check_arguments(args, types)) is not None:
                return refusal
            if command is None:
                reply = machine.start(int(args[0].Value), self._read_recipe(machine))
            else:
                reply = machine.command(command)
            await self.push()
            return _outputs(reply)

        return call

    def _value(self, nodeid: ua.NodeId) -> Any:
        assert self._server is not None
        variant = self._server.read_attribute_value(nodeid).Value
        return None if variant is None else variant.Value

    def _read_recipe(self, machine: SimMachine) -> dict[str, Value]:
        assert self._server is not None  # methods are only called while serving
        recipe: dict[str, Value] = {}
        for key, nodeid in self._recipe_nodes[machine.name].items():
            variant = self._server.read_attribute_value(nodeid).Value
            if variant is not None:  # never None: a write of Null is refused as a type mismatch
                recipe[key] = variant.Value
        return recipe

    async def push(self) -> None:
        """Write every variable whose value changed since the last push, in push order."""
        async with self._lock:
            if self._server is None:
                return
            for name, machine in self.machines.items():
                pushed, nodes = self._pushed[name], self._nodes[name]
                for path, value in machine.values().items():
                    if path in pushed and pushed[path] == value:
                        continue
                    await write(self._server, nodes[path], *_typed(machine, path, value))
                    pushed[path] = value

    async def _take_commands(self) -> None:
        """Machines commanded by writes: act on a non-zero ``Command`` (with ``JobId`` for
        a start) and set it back to 0; a refusal shows in ``ErrorCode``/``ErrorText``."""
        assert self._server is not None
        for name, machine in list(self.machines.items()):  # add() may come meanwhile
            if machine.commands != "writes":
                continue
            nodes = self._nodes[name]
            number = self._value(nodes["Command"])
            if not number:
                continue
            command = _COMMAND_NAMES.get(int(number))
            if command == "start":
                job_id = int(self._value(nodes["JobId"]) or 0)
                reply = machine.start(job_id, self._read_recipe(machine))
            elif command is not None:
                reply = machine.command(command)
            else:
                reply = Reply(False, NOT_ALLOWED)
            machine.refused(reply)
            await self.push()
            async with self._lock:
                await write(self._server, nodes["Command"], 0, V.Int32)

    async def _scan_forever(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.scan_ms / 1000
        due = loop.time()
        while True:
            await self._take_commands()
            now = loop.time()
            for machine in self.machines.values():
                machine.scan(now)
            await self.push()
            due = max(due + period, loop.time())  # behind schedule: skip, do not burst
            await asyncio.sleep(due - loop.time())


#: PackML CntrlCmd number -> the machine's command ("start" is the Start method's).
_COMMAND_NAMES: dict[int, Command | Literal["start"]] = {
    PACKML_COMMAND_NUMBERS["start"]: "start",
    PACKML_COMMAND_NUMBERS["hold"]: "hold",
    PACKML_COMMAND_NUMBERS["unhold"]: "resume",
    PACKML_COMMAND_NUMBERS["abort"]: "abort",
    PACKML_COMMAND_NUMBERS["reset"]: "reset",
    PACKML_COMMAND_NUMBERS["clear"]: "clear",
}


def _typed(machine: SimMachine, path: str, value: Value) -> tuple[Value, ua.VariantType]:
    """A variable's value and type as the machine shows it (``State`` as a PackML number
    on a machine with ``states = "packml"``)."""
    if path == "State" and machine.states == "packml":
        return PACKML_STATE_NUMBERS[str(value)], V.Int32
    return value, VARIABLES.get(path, V.Double)


def _outputs(reply: Reply) -> list[ua.Variant]:
    return [ua.Variant(reply.accepted, V.Boolean), ua.Variant(reply.error_code, V.UInt16)]
