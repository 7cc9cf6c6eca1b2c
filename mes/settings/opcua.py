"""The OPC UA part of the plant file: a cell driven through a machine object on a server.

The machine object follows one node model (``docs/opcua.md``): PackML state by name,
current and last job id, outcome, error, progress and heartbeat variables, a ``Recipe``
object of typed writable variables, a ``Results`` object, and the methods ``Start``,
``Hold``, ``Resume``, ``Abort``, ``Reset`` and ``Clear``. A cell names the endpoint, the
namespace URI and the machine's name; every node is found by browse name under it.

Security: Basic256Sha256 (or Aes256_Sha256_RsaPss) with Sign or SignAndEncrypt by default;
policy ``None`` only with ``allow_insecure = true``. User name and password come from the
environment or a secret file named here, never from the plant file itself.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mes.settings.base import Model, NonBlank


class OpcuaSecurityConfig(Model):
    """``[cells.driver.security]``: how the session is protected."""

    policy: Literal["None", "Basic256Sha256", "Aes256_Sha256_RsaPss"] = "Basic256Sha256"
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: str | None = None
    """This controller's application certificate (DER or PEM), from ``mes certs init``."""
    private_key: str | None = None
    trust_dir: str | None = None
    """Directory of the peers' certificates trusted: the servers a cell connects to
    (required with a security policy, unless ``allow_insecure``), or the clients the
    plant's own server lets in (unset: any client certificate, then a login)."""
    allow_insecure: bool = False
    """Needed for policy ``None``, or for a cell's secure connection without a
    ``trust_dir`` (any server accepted); the controller warns at start."""
    user_env: str | None = None
    """Environment variable holding the user name: the one a cell logs in with, or the one
    the plant's server lets in (anonymous when unset)."""
    password_env: str | None = None
    password_file: str | None = None
    """A file whose first line is the password (mode 0600 expected)."""


RecipeType = Literal["Boolean", "UInt16", "UInt32", "Int32", "Float", "Double", "String"]


def _default_recipe() -> dict[str, RecipeType]:
    return {"expected_s": "Double"}


class SimMachineConfig(Model):
    """``[cells.driver.sim]``: how ``mes sim`` and ``mes demo`` simulate this machine."""

    speed: float = Field(default=1.0, gt=0.0)
    fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0
    scan_ms: float = Field(default=10.0, gt=0.0)
    results: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        default_factory=dict
    )
    """Result name -> [low, high] of the simulated measurement (``cycle_s`` is real)."""
    recipe: dict[str, RecipeType] = Field(default_factory=_default_recipe)
    """Recipe variable name -> its OPC UA type on the simulated machine."""
    commands: Literal["methods", "writes"] = "methods"
    """How the simulated machine takes commands: its methods, or a ``Command`` variable
    (PackML numbers) and a ``JobId`` variable that it reads every scan, as many PLCs do."""


NodeRef = Annotated[str, Field(min_length=1, pattern=r"^\S(.*\S)?$")]


class OpcuaNodesConfig(Model):
    """``[cells.driver.nodes]``: where a machine that does not follow this project's node
    model keeps the job contract's points. Each value is a browse path below the machine
    object (``"Status/StateCurrent"``, each name in the cell's namespace) or a node id
    (``"ns=3;s=Line1.Robot.State"``, ``"nsu=urn:vendor:robot;i=6001"``). Unset: the
    default browse name (docs/opcua.md)."""

    state: NodeRef | None = None
    current_job_id: NodeRef | None = None
    last_job_id: NodeRef | None = None
    progress: NodeRef | None = None
    last_outcome: NodeRef | None = None
    error_code: NodeRef | None = None
    error_text: NodeRef | None = None
    heartbeat: NodeRef | None = None
    recipe: NodeRef | None = None
    """An object whose variables are the recipe parameters."""
    results: NodeRef | None = None
    """An object whose variables are the results."""
    command: NodeRef | None = None
    """A writable variable taking commands (PackML ``CntrlCmd``: 1 reset, 2 start, 4 hold,
    5 unhold, 8 abort, 9 clear; or the command's name if it is a String). When set,
    commands are written here instead of calling the machine's methods."""
    job_id: NodeRef | None = None
    """The writable variable a start writes the job id into (needed with ``command``)."""

    def overrides(self) -> dict[str, str]:
        """Point -> where it is, for the points set here."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class OpcuaDriverConfig(Model):
    """A machine behind an OPC UA server."""

    kind: Literal["opcua"]
    endpoint: NonBlank
    """e.g. ``opc.tcp://10.0.0.12:4840``."""
    namespace: NonBlank = "urn:mes-batch-of-one:sim"
    """Namespace URI of the machine's nodes (its index is looked up on connect)."""
    machine: NonBlank
    """Browse name of the machine object under Objects."""
    results: list[NonBlank] = Field(default_factory=list)
    """Result variables under ``Results`` read when a job ends."""
    timeout_s: float = Field(default=4.0, gt=0.0)
    publishing_ms: float = Field(default=50.0, ge=10.0)
    """Subscription publishing interval: how soon state changes reach the controller."""
    security: OpcuaSecurityConfig = Field(default_factory=OpcuaSecurityConfig)
    read_only: bool = False
    """Monitor only: no write and no method call is ever sent."""
    states: Literal["names", "packml"] = "names"
    """How the state variable reads: PackML names (String), or PackML ``StateCurrent``
    numbers (an integer type: 4 idle, 6 execute, 17 complete...)."""
    nodes: OpcuaNodesConfig = Field(default_factory=OpcuaNodesConfig)
    sim: SimMachineConfig | None = None


class OpcuaServerConfig(Model):
    """``[opcua_server]``: the plant as an OPC UA server that SCADA and HMI clients browse
    and subscribe to (cells, their units and steps, progress, counts, alarms, totals)."""

    endpoint: NonBlank = "opc.tcp://127.0.0.1:4850/mes"
    """Where it listens; ``0.0.0.0`` for every interface."""
    namespace: NonBlank = "urn:mes-batch-of-one:plant"
    update_ms: float = Field(default=500.0, ge=50.0)
    """How often the values are brought up to date."""
    read_only: bool = True
    """Values only. False adds ``Hold(Reason)`` and ``Resume()`` methods to each cell,
    queued as operator requests like ``mes cell hold``."""
    security: OpcuaSecurityConfig = Field(default_factory=OpcuaSecurityConfig)
