"""Rules that relate several keys of a validated file, each reported at the key at fault.

The pydantic models (:mod:`mes.settings.schema`) have checked each value alone; these
checks run on the validated models and return :class:`~mes.settings.issues.Issue` values
whose paths point at the one key to fix (``options.material.min``, not ``options``).
They also turn a clean family file into the :class:`routing.family.Family` the planner
uses, so the option defaults are checked by the very code that checks orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from mes.settings.issues import Issue, describe
from mes.settings.modbus import ModbusDriverConfig, map_problems
from mes.settings.opcua import OpcuaDriverConfig, OpcuaSecurityConfig
from mes.settings.plan_checks import build_plan, try_defaults
from mes.settings.schema import OPTION_KEYS, CellConfig, FamilyConfig, OptionConfig, PlantConfig
from mes.settings.serial import GrblDriverConfig, MarlinDriverConfig
from mes.settings.stock_checks import check_postponement
from mes.settings.toml_lines import KeyLines, KeyPath
from routing.family import Family, OptionKind, OptionSpec, OptionValue, QualityPolicy


def check_plant(config: PlantConfig, lines: KeyLines) -> list[Issue]:
    """Duplicate cell names, duplicate capabilities, stray duration factors.

    Args:
        config: the validated plant file.
        lines: its key lines, to say where a duplicate was first seen.

    Returns:
        Every issue found, empty when the plant is sound.
    """
    issues = _duplicates(
        ((("cells", i, "name"), cell.name) for i, cell in enumerate(config.cells)),
        "cell name",
        lines,
    )
    for i, cell in enumerate(config.cells):
        seen: set[str] = set()
        for j, capability in enumerate(cell.capabilities):
            if capability in seen:
                issues.append(
                    Issue(("cells", i, "capabilities", j), f"duplicate capability {capability!r}")
                )
            seen.add(capability)
        if cell.machine is not None:
            for axis in ("x_mm", "y_mm", "z_mm"):
                low, high = getattr(cell.machine, axis)
                if low > high:
                    issues.append(
                        Issue(
                            ("cells", i, "machine", axis),
                            f"minimum {low:g} is greater than maximum {high:g}",
                        )
                    )
        issues.extend(_driver_issues(config, i, cell))
        for capability in cell.duration_factors:
            if capability not in seen:
                issues.append(
                    Issue(
                        ("cells", i, "duration_factors", capability),
                        f"{capability!r} is not a capability of this cell "
                        f"(it has: {', '.join(cell.capabilities)})",
                    )
                )
    for name, register_map in config.register_maps.items():
        issues.extend(
            Issue(("register_maps", name, *path), reason)
            for path, reason in map_problems(register_map)
        )
    if config.opcua_server is not None:
        issues.extend(_security_issues(("opcua_server", "security"), config.opcua_server.security))
    return issues


def _driver_issues(config: PlantConfig, i: int, cell: CellConfig) -> list[Issue]:
    driver = cell.driver
    if isinstance(driver, MarlinDriverConfig | GrblDriverConfig):
        try:
            driver.settings()
        except ValueError as exc:
            key, _, reason = str(exc).partition(": ")
            return [Issue(("cells", i, "driver", key), reason or str(exc))]
        return []
    if isinstance(driver, OpcuaDriverConfig):
        return _security_issues(
            ("cells", i, "driver", "security"), driver.security, server_side=True
        ) + (_node_issues(i, driver))
    if not isinstance(driver, ModbusDriverConfig):
        return []
    issues = []
    if driver.register_map not in config.register_maps:
        known = ", ".join(config.register_maps) or "none declared"
        issues.append(
            Issue(
                ("cells", i, "driver", "register_map"),
                f"no register map {driver.register_map!r} under [register_maps] (known: {known})",
            )
        )
    if driver.transport == "rtu" and not driver.serial_port:
        issues.append(
            Issue(
                ("cells", i, "driver", "transport"),
                "an RTU link needs serial_port (a device path or a pyserial URL)",
            )
        )
    return issues


def _node_issues(i: int, driver: OpcuaDriverConfig) -> list[Issue]:
    nodes, path = driver.nodes, ("cells", i, "driver", "nodes")
    if (nodes.command is None) != (nodes.job_id is None):
        missing = "job_id" if nodes.job_id is None else "command"
        return [Issue((*path, missing), "commands by writes need both command and job_id")]
    if driver.sim is not None and driver.sim.commands == "writes" and nodes.command is None:
        return [
            Issue(
                (*path, "command"),
                'the simulated machine takes commands by writes: set command = "Command" '
                'and job_id = "JobId"',
            )
        ]
    return []


def _security_issues(
    path: KeyPath, security: OpcuaSecurityConfig, *, server_side: bool = False
) -> list[Issue]:
    """``server_side``: the security of a connection to a server (a cell), whose
    certificate must be checked against a trust directory: otherwise anyone who can
    answer on its address is taken for the machine."""
    if security.policy == "None":
        if not security.allow_insecure:
            return [
                Issue(
                    (*path, "policy"),
                    'policy "None" sends everything in clear and unauthenticated; '
                    "set allow_insecure = true to accept that",
                )
            ]
        return []
    issues = [
        Issue((*path, key), f"policy {security.policy!r} needs a {what} (mes certs init)")
        for key, what in (("certificate", "certificate"), ("private_key", "private key"))
        if getattr(security, key) is None
    ]
    if server_side and security.trust_dir is None and not security.allow_insecure:
        issues.append(
            Issue(
                (*path, "trust_dir"),
                "the server's certificate must be checked: name the folder of trusted "
                "server certificates (e.g. pki/trusted, see mes certs init), or set "
                "allow_insecure = true to accept any server",
            )
        )
    return issues


def check_family(config: FamilyConfig, lines: KeyLines, source: str) -> tuple[list[Issue], Family]:
    """Check a validated family file and build its :class:`Family`.

    Args:
        config: the validated family file.
        lines: its key lines, to say where a duplicate was first seen.
        source: the file, recorded on the family for later messages.

    Returns:
        The issues found, and the family (only meaningful when there are none).
    """
    issues: list[Issue] = []
    options: dict[str, OptionSpec] = {}
    for name, option in config.options.items():
        found, spec = _check_option(name, option, lines)
        issues += found
        options[name] = spec
    issues += _duplicates(
        ((("steps", i, "name"), step.name) for i, step in enumerate(config.steps)),
        "step name",
        lines,
    )
    known = ", ".join(config.options) or "none"
    for i, step in enumerate(config.steps):
        for j, parameter in enumerate(step.parameters):
            if parameter not in config.options:
                issues.append(
                    Issue(
                        ("steps", i, "parameters", j),
                        f"unknown option {parameter!r} (family has: {known})",
                    )
                )
    plan_issues, steps, rules = build_plan(config, options)
    issues += plan_issues
    family = Family(
        name=config.family.name,
        options=options,
        steps=steps,
        description=config.family.description,
        source=source,
        rules=rules,
        quality=QualityPolicy(
            config.quality.policy, config.quality.max_retries, config.quality.rework_from
        ),
    )
    if not issues:
        postponed = check_postponement(config, family)
        issues += postponed[0]
        family = replace(family, postponement=postponed[1])
    if not issues:
        issues += try_defaults(family)
    return issues, family


def check_capabilities(config: FamilyConfig, cells: Sequence[CellConfig]) -> list[Issue]:
    """Every step of the family needs a capability that at least one cell offers.

    Args:
        config: a validated family file.
        cells: the plant's cells.

    Returns:
        One issue per step whose capability no cell offers.
    """
    offered = sorted({c for cell in cells for c in cell.capabilities})
    return [
        Issue(
            ("steps", i, "capability"),
            f"no cell offers {step.capability!r} (cells offer: {', '.join(offered)})",
        )
        for i, step in enumerate(config.steps)
        if step.capability not in offered
    ]


def _check_option(
    name: str, option: OptionConfig, lines: KeyLines
) -> tuple[list[Issue], OptionSpec]:
    base: KeyPath = ("options", name)
    issues: list[Issue] = []
    allowed = OPTION_KEYS[option.type] | {"type", "default"}
    # model_fields_set holds the keys written in the file, defaults excluded.
    for key in sorted(option.model_fields_set - allowed):
        issues.append(Issue((*base, key), f"not allowed for a {option.type} option"))
    if option.type == "choice":
        if option.choices is None:
            issues.append(Issue((*base, "choices"), "is required for a choice option"))
        elif not option.choices:
            issues.append(Issue((*base, "choices"), "must not be empty"))
        else:
            issues += _duplicates(
                (((*base, "choices", j), c) for j, c in enumerate(option.choices)), "choice", lines
            )
    if option.min is not None and option.max is not None and option.min > option.max:
        issues.append(
            Issue(
                (*base, "min"),
                f"min ({option.min:g}) is greater than max ({option.max:g})",
            )
        )
    spec = OptionSpec(
        name=name,
        kind=OptionKind(option.type),
        choices=tuple(option.choices or ()),
        min=option.min,
        max=option.max,
        step=option.step,
        unit=option.unit,
        max_length=option.max_length,
        allowed_chars=option.allowed_chars,
    )
    if option.default is None or issues:
        # A default can only be judged against an option that is itself sound.
        return issues, spec
    try:
        default = _coerce_default(spec, option.default)
    except ValueError as exc:
        issues.append(Issue((*base, "default"), str(exc)))
        return issues, spec
    return issues, replace(spec, default=default)


def _coerce_default(spec: OptionSpec, value: object) -> OptionValue:
    """``spec.coerce``, after asking for the TOML type the option's kind implies.

    ``coerce`` accepts text for numbers and booleans, as order files need; a config
    file has real types, and ``default = "160"`` is more likely a slip than a wish.
    """
    if spec.kind in (OptionKind.CHOICE, OptionKind.TEXT):
        wanted, ok = "a string", isinstance(value, str)
    elif spec.kind is OptionKind.BOOLEAN:
        wanted, ok = "true or false", isinstance(value, bool)
    elif spec.kind is OptionKind.INTEGER:
        wanted, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    else:
        wanted = "a number"
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        raise ValueError(f"must be {wanted} (got {describe(value)})")
    return spec.coerce(value)


def _duplicates(named: Iterable[tuple[KeyPath, str]], what: str, lines: KeyLines) -> list[Issue]:
    """An issue at each repeat of a value, naming where it was first seen."""
    first: dict[str, KeyPath] = {}
    issues: list[Issue] = []
    for path, value in named:
        if value not in first:
            first[value] = path
            continue
        line = lines.exact(first[value])
        where = f" (first at line {line})" if line is not None else ""
        issues.append(Issue(path, f"duplicate {what} {value!r}{where}"))
    return issues
