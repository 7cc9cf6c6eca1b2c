"""The ``mes`` command line. Every user-facing error is a message and an exit code, never
a traceback: 2 for bad input (config, order file), 1 for a refused request or an
unreachable store, 130 when interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from mes.cli_bench import bench_app
from mes.cli_db import db_app
from mes.cli_format import driven_by, json_default, result, table, when
from mes.cli_mqtt import mqtt_app
from mes.cli_options import ActorOption, DbOption, JsonOption, PlantOption, ReasonOption, WaitOption
from mes.cli_stock import order_status, stock_app
from mes.dashboard.command import dashboard as dashboard_command
from mes.errors import InputError, MesError, NotFound
from mes.settings import DEFAULT_PLANT_PATH, Plant, load_plant
from mes.store import Store
from routing.family import Family

app = typer.Typer(
    help="Manufacturing execution controller for batch-of-one production.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
order_app = typer.Typer(help="Release and list orders.", no_args_is_help=True)
unit_app = typer.Typer(
    help="Look at units and their as-built records; hold, release, scrap.", no_args_is_help=True
)
cell_app = typer.Typer(help="Look at cells; hold and resume them.", no_args_is_help=True)
step_app = typer.Typer(help="Act on steps.", no_args_is_help=True)
alarm_app = typer.Typer(help="List and acknowledge alarms.", no_args_is_help=True)
certs_app = typer.Typer(help="This controller's OPC UA certificate.", no_args_is_help=True)
app.add_typer(order_app, name="order")
app.add_typer(unit_app, name="unit")
app.add_typer(cell_app, name="cell")
app.add_typer(step_app, name="step")
app.add_typer(alarm_app, name="alarm")
app.add_typer(bench_app, name="bench")
app.add_typer(certs_app, name="certs")
app.add_typer(db_app, name="db")
app.add_typer(mqtt_app, name="mqtt")
app.add_typer(stock_app, name="stock")
order_app.command("status")(order_status)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # pymodbus and asyncua warn at every failed reconnect (and about much else); the
    # supervisor says "link lost" once and
    # raises an alarm, then stays quiet until the link is back.
    for library in ("pymodbus", "asyncua"):
        logging.getLogger(library).setLevel(logging.INFO if verbose else logging.CRITICAL)


# -- demo and run --------------------------------------------------------------------------


@app.command()
def demo(
    units: Annotated[int, typer.Option(min=1, max=100_000, help="Units to release.")] = 20,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per wall second.")
    ] = 400.0,
    seed: Annotated[int, typer.Option(help="Random seed for units, durations, faults.")] = 1,
    db: DbOption = None,
    plant: PlantOption = DEFAULT_PLANT_PATH,
    headless: Annotated[bool, typer.Option(help="Print progress lines only.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on the last line.")
    ] = False,
    sims: Annotated[
        bool,
        typer.Option(
            help="Serve the plant's simulated PLCs in this process "
            "(--no-sims: they run elsewhere, e.g. `mes sim`)."
        ),
    ] = True,
    read_only: Annotated[
        bool, typer.Option(help="Monitor only: hand no job to any cell, write no PLC.")
    ] = False,
) -> None:
    """Run the demo plant: release random custom units and run them all to done.

    In a terminal the dashboard opens on it (--headless: progress lines only); the
    controller then runs in a child process, so drawing never slows it."""
    if not headless and sys.stdin.isatty() and sys.stdout.isatty():
        from mes.dashboard.command import demo_with_dashboard

        child = ["--units", str(units), "--speed", str(speed), "--seed", str(seed)]
        child += ["--plant", str(plant)] + (["--json"] if as_json else [])
        child += ([] if sims else ["--no-sims"]) + (["--read-only"] if read_only else [])
        code = demo_with_dashboard(child, db, plant, speed)
        if code:
            raise typer.Exit(code)
        return
    from mes.bootstrap import build_controller, release_messages, serving_faces
    from mes.service.demo import random_order, run_demo
    from mes.settings.stations import stations

    config = load_plant(plant)
    store = Store.open(db)

    async def main() -> dict[str, Any]:
        async with _simulators(config, speed, enabled=sims):
            controller = build_controller(
                config, store, speed=speed, seed=seed, actor="demo", read_only=read_only
            )
            async with serving_faces(config, controller, store, speed=speed):
                return await run_demo(
                    config,
                    store,
                    controller,
                    spec,
                    stations(config),
                    speed=speed,
                    messages=release_messages(config),
                )

    try:
        spec = random_order(config, units, random.Random(seed))
        summary = asyncio.run(main())
    finally:
        store.close()
    _print_summary(summary, as_json)
    if summary["unfinished"]:
        raise typer.Exit(130)


app.command("dashboard")(dashboard_command)


@contextlib.asynccontextmanager
async def _simulators(plant: Plant, speed: float, *, enabled: bool = True) -> AsyncIterator[None]:
    """Serve the plant's simulated PLCs for the duration of the block."""
    from drivers.sim.plant_sims import serve
    from mes.bootstrap import machine_specs, serial_specs, sim_specs

    specs = sim_specs(plant, speed=speed) if enabled else []
    machines = machine_specs(plant, speed=speed) if enabled else []
    lines = serial_specs(plant, speed=speed) if enabled else []
    if not specs and not machines and not lines:
        yield
        return
    try:
        simulators = await serve(specs, machines, lines)
    except OSError as exc:
        raise MesError(
            f"cannot serve the simulated PLCs ({exc}); is `mes sim` or another demo "
            "already running? Stop it, or pass --no-sims to use it"
        ) from exc
    try:
        yield
    finally:
        await simulators.aclose()


@app.command()
def sim(
    plant: PlantOption = DEFAULT_PLANT_PATH,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per wall second.")
    ] = 1.0,
    log: Annotated[
        Path | None,
        typer.Option(help="Append every job id a simulated PLC starts to this file (JSON lines)."),
    ] = None,
) -> None:
    """Serve a simulated PLC for every Modbus cell, a simulated machine for every OPC UA
    cell and a virtual printer for every Marlin cell of the plant, until Ctrl-C."""
    from drivers.sim.plant_sims import serve
    from mes.bootstrap import machine_specs, serial_specs, sim_specs

    config = load_plant(plant)
    specs = sim_specs(config, speed=speed, log=log)
    machines = machine_specs(config, speed=speed, log=log)
    lines = serial_specs(config, speed=speed, log=log)
    if not specs and not machines and not lines:
        raise MesError(f"{plant}: no Modbus, OPC UA or serial cell to simulate")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            simulators = await serve(specs, machines, lines)
        except OSError as exc:
            raise MesError(f"cannot serve the simulated PLCs: {exc}") from exc
        try:
            for spec in specs:
                where = (
                    f"tcp {spec.host}:{spec.port}"
                    if spec.transport == "tcp"
                    else f"rtu {spec.serial_port}"
                )
                print(f"simulating {spec.name} on {where} (device {spec.device_id})", flush=True)
            for machine in machines:
                print(f"simulating {machine.name} on {machine.endpoint} (OPC UA)", flush=True)
            for line in lines:
                print(f"simulating {line.name} on {line.port} ({line.kind})", flush=True)
            print("Ctrl-C stops", flush=True)
            await stop.wait()
        finally:
            await simulators.aclose()

    asyncio.run(main())


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    util = ", ".join(f"{c} {u:.0%}" for c, u in summary["utilisation"].items())
    families = ", ".join(f"{f} {n}" for f, n in summary["families"].items())
    print(
        f"\norder {summary['order']}: {summary['done']}/{summary['units']} units done, "
        f"{summary['failed']} failed, {summary['unfinished']} unfinished ({families})\n"
        f"makespan {summary['makespan_s']:.1f}s wall = {summary['plant_makespan_s'] / 3600:.2f}h "
        f"plant time; throughput {summary['throughput_per_h']:.1f} units/h; "
        f"{summary['jobs']} jobs, {summary['job_faults']} faulted\n"
        f"utilisation: {util}"
    )
    if as_json:
        print(json.dumps(summary, sort_keys=True))


@app.command()
def run(
    plant: PlantOption = DEFAULT_PLANT_PATH,
    db: DbOption = None,
    headless: Annotated[bool, typer.Option(help="Print progress lines only.")] = False,
    speed: Annotated[
        float,
        typer.Option(min=0.001, help="Time scale of simulated cells (real machines ignore it)."),
    ] = 1.0,
    read_only: Annotated[
        bool, typer.Option(help="Monitor only: hand no job to any cell, write no PLC.")
    ] = False,
    name: Annotated[
        str,
        typer.Option(
            help="This controller's name in the journal and among others sharing the plant."
        ),
    ] = "controller",
    cells: Annotated[
        str | None,
        typer.Option(
            help="Drive only these cells (comma-separated); default: a fair share of all."
        ),
    ] = None,
    area: Annotated[
        str | None, typer.Option(help="Drive only the cells of this area (plant file).")
    ] = None,
) -> None:
    """Run the production controller; resumes whatever is unfinished in the store.

    Several controllers may share one plant on one PostgreSQL database: each drives the
    cells it holds a lease on (--cells, --area, or a fair share) and takes over those of
    a controller that stops or dies.
    """
    from mes.bootstrap import build_controller, serving_faces, sharing_options
    from mes.service.demo import Progress

    config = load_plant(plant)
    wanted = [c.strip() for c in cells.split(",") if c.strip()] if cells else None
    sharing = sharing_options(config, name, wanted, area)
    store = Store.open(db)

    async def main() -> None:
        controller = build_controller(
            config, store, speed=speed, read_only=read_only, actor=name, sharing=sharing
        )
        controller.recorder.subscribe(Progress("", None, sys.stdout))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, controller.stop)
        async with serving_faces(config, controller, store, speed=speed) as face:
            scope = "a fair share of" if sharing.cells is None else f"{len(sharing.cells)} of"
            print(
                f"controller running ({name}): {scope} {len(config.cells)} cells, "
                f"store {store.url}"
                + (f", plant on OPC UA at {face.endpoint}" if face else "")
                + "; Ctrl-C stops (twice: at once)",
                flush=True,
            )
            await controller.run()

    try:
        asyncio.run(main())
    finally:
        store.close()


# -- check ---------------------------------------------------------------------------------


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="Plant file or config directory.")] = (
        DEFAULT_PLANT_PATH
    ),
) -> None:
    """Validate the plant and product configuration; print a summary or every error."""
    plant = load_plant(path)
    print(
        f"{plant.path}: OK: plant {plant.config.plant.name!r}, {len(plant.cells)} cells, "
        f"{len(plant.families)} product families"
    )
    rows = [[c.name, c.driver.kind, ", ".join(c.capabilities)] for c in plant.cells]
    print(table(["cell", "driver", "capabilities"], rows))
    rows = [
        [f.name, str(len(f.options)), str(len(f.rules)), _plan_outline(f)]
        for f in plant.families.values()
    ]
    print(table(["family", "options", "rules", "process plan (? conditional)"], rows))


# -- orders, units, cells ------------------------------------------------------------------


@order_app.command("release")
def order_release(
    file: Annotated[Path, typer.Argument(help="Order file: .toml, .json or .csv")],
    plant: PlantOption = DEFAULT_PLANT_PATH,
    db: DbOption = None,
) -> None:
    """Release the orders in FILE, all or nothing."""
    from mes.bootstrap import release_messages
    from mes.service.order_files import read_order_file
    from mes.service.release import release
    from mes.settings.stations import stations

    config = load_plant(plant)
    specs = read_order_file(file)
    store = Store.open(db)
    try:
        result = release(
            store,
            specs,
            config.families,
            datetime.now(UTC),
            source=str(file),
            actor="cli",
            stations=stations(config),
            messages=release_messages(config),
        )
    finally:
        store.close()
    for order_id in result.released:
        print(f"released order {order_id}")
    for order_id in result.unchanged:
        print(f"order {order_id} was already released with the same content; unchanged")
    print(f"{len(result.released)} orders, {result.units} units released")


@order_app.command("list")
def order_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every order with its units by state."""
    store = Store.open(db)
    try:
        orders = store.orders()
    finally:
        store.close()
    if as_json:
        print(json.dumps(orders, default=json_default, indent=1))
        return
    rows = [
        [
            o["id"],
            when(o["released_at"]),
            str(o["priority"]),
            when(o["due"]),
            str(sum(o["units"].values())),
            ", ".join(f"{n} {s}" for s, n in sorted(o["units"].items())),
        ]
        for o in orders
    ]
    print(
        table(["order", "released", "prio", "due", "units", "states"], rows)
        if rows
        else "no orders"
    )


@unit_app.command("show")
def unit_show(
    unit_id: Annotated[str, typer.Argument(metavar="ID", help="Unit id, e.g. SO-1001.1")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The as-built record of a unit: every step with cell, program, start, end, result."""
    store = Store.open(db)
    try:
        record = store.unit_record(unit_id)
    finally:
        store.close()
    if record is None:
        raise NotFound(f"no unit {unit_id!r} in {store.url}")
    if as_json:
        print(json.dumps(record, default=json_default, indent=1))
        return
    options = ", ".join(f"{k}={v!r}" for k, v in record["options"].items())
    print(
        f"unit {record['id']}  order {record['order_id']}  family {record['family']}  "
        f"state {record['state']}\noptions: {options}"
    )
    if record["blank"]:
        blank = record["blank"]
        print(
            f"started from blank {blank['id']} (made {when(blank['made_at'])} on "
            f"{', '.join(blank['cells']) or '?'}): its generic steps are that blank's record"
        )
    rows = []
    for step in record["steps"]:
        jobs = step["jobs"] or [None]
        for job in jobs:
            rows.append(
                [
                    str(step["seq"]),
                    step["name"],
                    step["capability"],
                    step["state"] if job is None else job["state"],
                    str(job["id"]) if job else "",
                    job["cell"] if job else "",
                    (job["program_id"] if job else step["program_id"])[:12],
                    when(job["started_at"]) if job else "",
                    when(job["finished_at"]) if job else "",
                    result(job) if job else "",
                ]
            )
    print(
        table(
            [
                "#",
                "step",
                "capability",
                "state",
                "job",
                "cell",
                "program",
                "start",
                "end",
                "result",
            ],
            rows,
        )
    )


@cell_app.command("list")
def cell_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every cell, with its last recorded state and the controller that drives it."""
    now = datetime.now(UTC)
    store = Store.open(db)
    try:
        cells = store.cells()
    finally:
        store.close()
    if as_json:
        print(json.dumps(cells, default=json_default, indent=1))
        return
    rows = [
        [
            c["name"],
            c["state"] + (f" (waiting: {c['waiting_for']})" if c.get("waiting_for") else ""),
            c["driver_kind"],
            ", ".join(c["capabilities"]),
            str(c["job_id"] or ""),
            when(c["updated_at"]),
            driven_by(c, now),
        ]
        for c in cells
    ]
    print(
        table(["cell", "state", "driver", "capabilities", "job", "since", "controller"], rows)
        if rows
        else "no cells recorded yet: start the controller (mes run or mes demo)"
    )


@cell_app.command("times")
def cell_times(
    hours: Annotated[float, typer.Option(min=0.01, help="The window: the last H hours.")] = 8.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Time each cell spent executing, idle, held, faulted and offline, and availability."""
    from mes.domain.accounting import CATEGORIES, availability, state_times, waiting_intervals

    end = datetime.now(UTC)
    start = end - timedelta(hours=hours)
    store = Store.open(db)
    try:
        events = store.events(kind="cell")
        step_events = store.events(kind="step")
        steps = store.step_needs({e["subject"] for e in step_events})
        capabilities = {c["name"]: set(c["capabilities"]) for c in store.cells()}
    finally:
        store.close()
    eligible = {
        step: [c for c, caps in capabilities.items() if need in caps and (not only or c in only)]
        for step, (need, only) in steps.items()
    }
    waiting = waiting_intervals(
        ((e["at"], e["subject"], e["after"]) for e in step_events), eligible, end
    )
    times = state_times(((e["at"], e["subject"], e["after"]) for e in events), start, end, waiting)
    if as_json:
        print(json.dumps({c: {**t, "availability": availability(t)} for c, t in times.items()}))
        return
    window = hours * 3600
    rows = [
        [cell, *(f"{t[k] / window:.1%}" for k in CATEGORIES), f"{availability(t):.0%}"]
        for cell, t in sorted(times.items())
    ]
    print(
        f"share of the last {hours:g} h in each state "
        "(idle is blocked while work it could do waited, else starved):"
    )
    print(table(["cell", *CATEGORIES, "availability"], rows) if rows else "no cells recorded")


# -- operator requests --------------------------------------------------------------


def _ask(
    action: str,
    target: str,
    reason: str,
    actor: str,
    db: str | None,
    wait: float,
    args: dict[str, Any] | None = None,
) -> None:
    """Queue a request for the controller and print its answer.

    Exit 0 when done, 1 when refused, 3 when no controller answered in time (the request
    stays queued and is carried out when a controller runs).
    """
    store = Store.open(db)
    try:
        who = actor or os.environ.get("USER") or "operator"
        request_id = store.submit(datetime.now(UTC), who, "cli", action, target, reason, args)
        deadline = time.monotonic() + wait
        answer = store.request(request_id)
        while answer is not None and answer["state"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.1)  # the controller answers through the store
            answer = store.request(request_id)
    finally:
        store.close()
    if answer is None or answer["state"] == "pending":
        print(
            f"request {request_id} ({action} {target}) is queued: no controller has taken it "
            f"yet; it is carried out when one runs on {store.url}"
        )
        raise typer.Exit(3)
    print(f"{action} {target}: {answer['result']}")
    if answer["state"] != "done":
        raise typer.Exit(1)


def _operator_command(group: typer.Typer, name: str, action: str, metavar: str, doc: str) -> None:
    """Register ``group name TARGET`` as a request for the controller (see :func:`_ask`)."""

    def command(
        target: str,
        reason: ReasonOption = "",
        actor: ActorOption = "",
        db: DbOption = None,
        wait: WaitOption = 10.0,
    ) -> None:
        _ask(action, target, reason, actor, db, wait)

    # An object, not a string: the annotations of this module are strings evaluated in
    # its globals, where ``metavar`` is not.
    command.__annotations__["target"] = Annotated[str, typer.Argument(metavar=metavar)]
    command.__doc__ = doc
    group.command(name)(command)


for _group, _name, _action, _metavar, _doc in (
    (
        cell_app,
        "hold",
        "cell.hold",
        "NAME",
        "Hold a cell: no new job goes to it (a running job ends first). Needs no login.",
    ),
    (cell_app, "resume", "cell.resume", "NAME", "Resume a held cell."),
    (
        cell_app,
        "confirm",
        "cell.confirm",
        "NAME",
        "Confirm what a cell waits for between jobs (bed cleared, stock changed).",
    ),
    (
        unit_app,
        "hold",
        "unit.hold",
        "ID",
        "Hold a unit: none of its steps is dispatched until it is released.",
    ),
    (unit_app, "release", "unit.release", "ID", "Release a held unit back into production."),
    (unit_app, "scrap", "unit.scrap", "ID", "Scrap a unit: it leaves production for good."),
    (
        step_app,
        "retry",
        "step.retry",
        "STEP",
        "Run a failed, interrupted or aborted step again (under a new job id).",
    ),
    (
        step_app,
        "abort",
        "step.abort",
        "STEP",
        "Abort a step that has not started; its unit waits for an operator.",
    ),
    (alarm_app, "ack", "alarm.ack", "ID", "Acknowledge an alarm."),
):
    _operator_command(_group, _name, _action, _metavar, _doc)


@unit_app.command("rework")
def unit_rework(
    unit_id: Annotated[str, typer.Argument(metavar="ID")],
    step: Annotated[str, typer.Option("--step", help="Step name to go back to.")],
    reason: ReasonOption = "",
    actor: ActorOption = "",
    db: DbOption = None,
    wait: WaitOption = 10.0,
) -> None:
    """Send a unit back to a named step: it and every later step run again."""
    _ask("unit.rework", unit_id, reason, actor, db, wait, {"step": step})


@alarm_app.command("list")
def alarm_list(
    every: Annotated[
        bool, typer.Option("--all", help="Include cleared, acknowledged ones.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Alarms: active and unacknowledged first."""
    store = Store.open(db)
    try:
        alarms = store.alarms(open_only=not every)
    finally:
        store.close()
    if as_json:
        print(json.dumps(alarms, default=json_default, indent=1))
        return
    rows = [
        [
            str(a["id"]),
            a["severity"],
            "active" if a["active"] else "cleared",
            f"acked by {a['acked_by']}" if a["acked_at"] else "UNACKED",
            a["cell"],
            when(a["raised_at"]),
            a["text"],
        ]
        for a in alarms
    ]
    print(
        table(["id", "severity", "state", "ack", "cell", "raised", "text"], rows)
        if rows
        else "no alarms"
    )


# -- helpers -------------------------------------------------------------------------------


@certs_app.command("init")
def certs_init(
    pki: Annotated[Path, typer.Option("--pki", help="PKI folder.")] = Path("pki"),
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Host name or IP it is valid for (repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days it is valid.")] = 730,
    force: Annotated[bool, typer.Option(help="Replace an existing certificate.")] = False,
) -> None:
    """Create this controller's self-signed OPC UA application certificate and key."""
    from mes.certs import CONTROLLER_URI, create_certificate

    files = create_certificate(pki.resolve(), hosts=host or (), days=days, force=force)
    print(
        f"certificate {files.certificate} (application URI {CONTROLLER_URI}, {days} days)\n"
        f"private key {files.private_key} (owner only)\n"
        f"trust folder {files.trust_dir}: copy each OPC UA server's certificate here\n\n"
        "in plant.toml, for each secure OPC UA cell (and [opcua_server]):\n"
        "  [cells.driver.security]\n"
        '  policy = "Basic256Sha256"\n'
        f'  certificate = "{files.certificate}"\n'
        f'  private_key = "{files.private_key}"\n'
        f'  trust_dir = "{files.trust_dir}"\n\n'
        f"and have each server trust {files.certificate}"
    )


def _plan_outline(family: Family) -> str:
    """Steps by stage: ``route > engrave? | fit-hanger > inspect``."""
    seqs = {step.name: seq for seq, step in enumerate(family.steps)}
    stage: dict[str, int] = {}
    for seq, step in enumerate(family.steps):
        after = step.after if step.after is not None else [s.name for s in family.steps[:seq]][-1:]
        stage[step.name] = 1 + max((stage[a] for a in after if a in stage), default=-1)
    groups: dict[int, list[str]] = {}
    for step in sorted(family.steps, key=lambda s: seqs[s.name]):
        groups.setdefault(stage[step.name], []).append(step.name + ("?" if step.when else ""))
    return " > ".join(" | ".join(names) for _, names in sorted(groups.items()))


def main() -> None:
    """Entry point of the ``mes`` console command."""
    try:
        app()
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''}; nothing was changed", file=sys.stderr)
        sys.exit(2)
    except MesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
