"""The shape of the plant file and of product family files, as pydantic models.

These models check each file on its own: keys, types, ranges, name patterns. Rules that
relate several keys (a duration factor for a capability the cell lacks, a default that
is not among the choices) live in :mod:`mes.settings.checks`, because pydantic cannot
point such an error at the key at fault, and here every error names its key.

Every model is frozen, forbids unknown keys and is strict: a TOML string is not quietly
read as a number or a boolean (an integer is still accepted where a float is wanted).

Drivers: :data:`DriverConfig` is a union discriminated by ``kind``. Adding a kind takes
one model with ``kind: Literal["name"]`` and one member in that union; the loader's
messages list the known kinds from the union itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import Field

from mes.settings.base import Capability, Identifier, Name, NonBlank, Stage
from mes.settings.base import Model as _Model
from mes.settings.modbus import ModbusDriverConfig, ReconnectConfig, RegisterMap
from mes.settings.mqtt import AreaName, IntakeConfig, LineName, MqttConfig
from mes.settings.opcua import OpcuaDriverConfig, OpcuaServerConfig
from mes.settings.serial import GrblDriverConfig, MarlinDriverConfig

# -- plant.toml -------------------------------------------------------------------


class PlantSection(_Model):
    """``[plant]``: the plant's name and where its product families live."""

    name: NonBlank
    products: NonBlank = "products"
    """Directory of family files, relative to the plant file."""
    dispatch: Literal["rank", "ect", "setup", "slack"] = "ect"
    """The dispatch rule: ``ect`` earliest completion with setups (default), ``setup``
    shortest setup first (batches by material and colour), ``slack`` least due-date
    slack, ``rank`` priority, due date, then release order."""
    optimize_s: float = Field(default=0.0, ge=0.0)
    """Optimizer time limit per plan in seconds (needs the ``opt`` extra); 0: off."""
    replan_s: float = Field(default=30.0, gt=0.0)
    """Plan again at most this often (when work arrives or a cell goes down)."""
    read_only: bool = False
    """Monitor the whole plant: no job is handed to any cell and no PLC is written."""
    heartbeat_s: float = Field(default=2.0, gt=0.0, le=60.0)
    """Controllers sharing the plant beat and renew their cell leases this often."""
    lease_beats: int = Field(default=3, ge=2, le=100)
    """A controller silent for this many heartbeats loses its cells to the others."""
    handoff_s: float = Field(default=5.0, gt=0.0)
    """With other controllers alive, a unit whose next step waited this long for this
    controller's cells goes back to all of them."""


class SimDriverConfig(_Model):
    """The in-process simulated cell."""

    kind: Literal["sim"]
    fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    speed: float = Field(default=1.0, gt=0.0)


# One member per driver kind.
DriverConfig = Annotated[
    SimDriverConfig
    | ModbusDriverConfig
    | OpcuaDriverConfig
    | MarlinDriverConfig
    | GrblDriverConfig,
    Field(discriminator="kind"),
]


def driver_kinds() -> tuple[str, ...]:
    """The ``kind`` of every driver model in :data:`DriverConfig`, in union order."""
    union = get_args(DriverConfig)[0]
    members = get_args(union) if get_origin(union) is not None else (union,)
    return tuple(str(get_args(m.model_fields["kind"].annotation)[0]) for m in members)


Range = Annotated[list[float], Field(min_length=2, max_length=2)]


class MachineConfig(_Model):
    """``[cells.machine]``: a cell that runs G-code: its class and its work envelope.

    The class (printer: Marlin words; cnc and laser: GRBL words) says which G/M words a
    program may use; the envelope is ``[min, max]`` in mm per axis, with X/Y from the
    front-left corner and Z0 the bed, the plate in focus, or the top of the stock (a
    CNC cuts below it: a negative minimum).
    """

    kind: Literal["printer", "cnc", "laser"]
    x_mm: Range
    y_mm: Range
    z_mm: Range
    extra_words: list[str] = Field(default_factory=list)
    """G/M words this machine accepts beyond its class's set."""


class CellConfig(_Model):
    """One ``[[cells]]`` entry: a machine, what it can do, and how to drive it."""

    name: Name
    capabilities: list[Capability] = Field(min_length=1)
    area: AreaName = ""
    line: LineName = ""
    """Where the cell stands (ISA-95 area and line): its place in the MQTT topic tree
    (``[mqtt]`` gives the default for cells that do not say)."""
    rerun_interrupted: bool = False
    confirm_after_job: NonBlank | None = None
    """What an operator must do between jobs (``"clear the bed"``): after every job the
    cell waits, held, until one confirms it (``mes cell confirm NAME``)."""
    duration_factors: dict[str, Annotated[float, Field(gt=0.0)]] = Field(default_factory=dict)
    setup_s: dict[Identifier, Annotated[float, Field(ge=0.0)]] = Field(default_factory=dict)
    """Seconds to change over when a step attribute (material, colour, tool) changes."""
    machine: MachineConfig | None = None
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    driver: DriverConfig

    def duration_factor(self, capability: str) -> float:
        """How much longer (> 1) or shorter (< 1) this cell takes for ``capability``.

        Args:
            capability: a capability name such as ``print.fdm``.

        Returns:
            The configured factor, 1.0 when none is set.
        """
        return self.duration_factors.get(capability, 1.0)


class StockTargetConfig(_Model):
    """One ``[[stock]]`` entry: how many blanks of one variant of a family to keep made
    ahead. Idle cells make them, never before customer work (docs/postponement.md)."""

    family: Name
    variant: dict[Identifier, str | int | float | bool]
    """The variant's options (every option of the family's ``postponement.variant``)."""
    target: int = Field(ge=1, le=10_000)
    """Blanks in stock plus blanks being made that idle cells keep up to."""


class PlantConfig(_Model):
    """The whole plant file."""

    plant: PlantSection
    cells: list[CellConfig] = Field(min_length=1)
    register_maps: dict[Name, RegisterMap] = Field(default_factory=dict)
    """Named Modbus register maps, shared by the PLC cells that name them."""
    opcua_server: OpcuaServerConfig | None = None
    """The plant as an OPC UA server (off when absent)."""
    mqtt: MqttConfig | None = None
    """The plant on an MQTT broker, a Unified Namespace (off when absent; docs/mqtt.md)."""
    intake: IntakeConfig | None = None
    """A folder watched for order files (off when absent)."""
    stock: list[StockTargetConfig] = Field(default_factory=list)
    """``[[stock]]``: blanks to keep made ahead, per variant (docs/postponement.md)."""


# -- products/*.toml --------------------------------------------------------------


class FamilySection(_Model):
    """``[family]``: the family's name and a line for people."""

    name: Name
    description: str = ""


class OptionConfig(_Model):
    """``[options.NAME]``: one option a buyer chooses.

    Which keys go with which ``type`` is checked by :mod:`mes.settings.checks` (see
    :data:`OPTION_KEYS`), so the error can name the key that does not belong.
    """

    type: Literal["choice", "integer", "decimal", "text", "boolean"]
    # Any here: the default is checked against the option by OptionSpec.coerce, whose
    # messages are the ones a planner sees for orders too.
    default: Any = None
    choices: list[str] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = Field(default=None, gt=0.0)
    unit: str = ""
    max_length: int | None = Field(default=None, gt=0)
    allowed_chars: str | None = None


# Keys that belong to each option type; ``type`` and ``default`` belong to all.
OPTION_KEYS: dict[str, frozenset[str]] = {
    "choice": frozenset({"choices"}),
    "integer": frozenset({"min", "max", "step", "unit"}),
    "decimal": frozenset({"min", "max", "step", "unit"}),
    "text": frozenset({"max_length", "allowed_chars"}),
    "boolean": frozenset(),
}


# An option expression (see routing.expr); text constants are quoted inside: "'laser'".
Expr = NonBlank
# A parameter: an expression, or a plain number or boolean.
ParameterValue = Expr | int | float | bool


class ProgramConfig(_Model):
    """``[steps.program]``: G-code from a generator, or a recipe for a PLC cell."""

    generator: str | None = None
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)


class StepConfig(_Model):
    """One ``[[steps]]`` entry of the family's process plan."""

    name: NonBlank
    capability: Capability
    duration_s: float | str
    """Seconds (> 0), or an expression of the options giving seconds."""
    parameters: list[str] = Field(default_factory=list)
    when: Expr | None = None
    """Condition on the options; the step is skipped for units where it is false."""
    after: list[str] | None = None
    """Steps that must be finished first; default: the step before this one."""
    program: ProgramConfig | None = None
    attributes: dict[Identifier, Expr] = Field(default_factory=dict)
    """Setup attributes (material, colour, tool) as expressions of the options."""
    limits: dict[Identifier, Range] = Field(default_factory=dict)
    """Measurement name -> [low, high]: a result outside (or missing) fails the step."""
    stage: Stage | None = None
    """What a customer reads while the unit is at this step ("engraving"); unset: only
    "in production". Never a cell's name: customers see it (``mes order status``)."""


class RuleConfig(_Model):
    """One ``[[rules]]`` entry: when ``when`` holds (or always), ``require`` must."""

    require: Expr
    message: NonBlank
    when: Expr | None = None


class QualityConfig(_Model):
    """``[quality]``: what happens when a step's result is out of its limits."""

    policy: Literal["retry", "rework", "scrap"] = "retry"
    """retry the step (on another cell if one can), rework from ``rework_from``, or scrap."""
    max_retries: int = Field(default=2, ge=0, le=20)
    rework_from: str | None = None


class PostponementConfig(_Model):
    """``[postponement]``: the family's decoupling point (docs/postponement.md)."""

    generic: list[NonBlank] = Field(min_length=1)
    """The leading steps whose result depends on the variant alone: made ahead, to stock."""
    variant: list[Identifier] = Field(min_length=1)
    """The options that make two blanks interchangeable (a size class: a choice option)."""


class FamilyConfig(_Model):
    """A whole product family file."""

    family: FamilySection
    quality: QualityConfig = Field(default_factory=QualityConfig)
    postponement: PostponementConfig | None = None
    options: dict[Identifier, OptionConfig] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)
    steps: list[StepConfig] = Field(min_length=1)
