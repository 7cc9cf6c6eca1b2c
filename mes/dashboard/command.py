"""``mes dashboard``: options, and running the app in the terminal or for browsers; and
``mes demo``'s dashboard, which watches a demo controller run in a child process.

Kept free of Textual imports at module level, so ``mes --help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from mes.settings import DEFAULT_PLANT_PATH, Plant, load_plant
from mes.store import Store, resolve_url

PASSWORD_ENV = "MES_DASHBOARD_PASSWORD"


def dashboard(
    db: Annotated[
        str | None,
        typer.Option("--db", help="SQLAlchemy URL or SQLite path [env MES_DB; default ./mes.db]"),
    ] = None,
    plant: Annotated[
        Path,
        typer.Option(
            "--plant", help="Plant config (families for Release, cells' duration factors)."
        ),
    ] = DEFAULT_PLANT_PATH,
    operator: Annotated[
        str, typer.Option(help="Who acts, kept with every request (default: $USER)")
    ] = "",
    station: Annotated[
        str | None, typer.Option(help="Open the station view of this cell (operator-attended).")
    ] = None,
    refresh: Annotated[
        float, typer.Option(min=0.2, max=60.0, help="Seconds between reads of the store.")
    ] = 1.0,
    speed: Annotated[
        float,
        typer.Option(min=0.001, help="Time scale of simulated cells, as given to mes run/demo."),
    ] = 1.0,
    target: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Target throughput in units per hour (default: the ideal rate)."
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option(help="Watch only: every action is off (and says so).")
    ] = False,
    web: Annotated[bool, typer.Option(help="Serve the dashboard to browsers instead.")] = False,
    host: Annotated[
        str, typer.Option(help="--web: address to listen on (not loopback: login required).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="--web: port.")] = 8080,
    password_env: Annotated[
        str,
        typer.Option(help="--web: environment variable holding the login password (set: login)."),
    ] = PASSWORD_ENV,
) -> None:
    """Watch and steer the plant: cells, work in progress, alarms, performance, release.

    Reads the store only (any number of dashboards, across controller restarts);
    actions are requests the controller carries out and answers.
    """
    who = operator or os.environ.get("USER") or "operator"
    if web:
        from mes.dashboard.web import serve

        serve(
            db=resolve_url(db),
            plant=plant if plant.exists() else None,
            host=host,
            port=port,
            password_env=password_env,
            extra=_passthrough(station, refresh, speed, target, read_only),
            operator=who,
        )
        return
    config = _plant(plant)
    if station and config is not None:
        config.cell(station)  # NotFound names the cells
    store = Store.open(db)
    try:
        run_app(
            store,
            config,
            operator=who,
            station=station,
            refresh_s=refresh,
            speed=speed,
            target_h=target or None,
            read_only=read_only,
        )
    finally:
        store.close()


def _plant(path: Path) -> Plant | None:
    """The plant config; None when the default path is absent (a bare store works)."""
    if path == DEFAULT_PLANT_PATH and not path.exists():
        return None
    return load_plant(path)


def _passthrough(
    station: str | None, refresh: float, speed: float, target: float | None, read_only: bool
) -> list[str]:
    args = ["--refresh", str(refresh), "--speed", str(speed)]
    if station:
        args += ["--station", station]
    if target:
        args += ["--target", str(target)]
    if read_only:
        args.append("--read-only")
    return args


def run_app(store: Store, plant: Plant | None, *, operator: str, **options: object) -> None:
    """Run the dashboard in this terminal until the user quits."""
    from mes.dashboard.app import DashboardApp, DashboardOptions

    app = DashboardApp(store, DashboardOptions(operator, plant=plant, **options))  # type: ignore[arg-type]
    app.run()


def demo_with_dashboard(child_args: list[str], db: str | None, plant: Path, speed: float) -> int:
    """Run ``mes demo --headless`` with ``child_args`` in a child process and the
    dashboard here; on quit, stop the demo gracefully and print its summary.

    The controller never shares an event loop, a thread or the GIL with the UI: it
    cannot be slowed by drawing. Returns the exit code for ``mes demo``.
    """
    url = resolve_url(db)
    config = load_plant(plant)
    store = Store.open(url)  # the schema exists before either process writes
    with tempfile.NamedTemporaryFile("w+", prefix="mes-demo-", suffix=".log", delete=False) as log:
        command = [sys.executable, "-m", "mes.cli", "demo", "--headless", "--db", url]
        child = subprocess.Popen(
            [*command, *child_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the terminal's signals are the dashboard's
        )

        def note() -> str:
            code = child.poll()
            if code is None:
                return f"demo running x{speed:g}"
            return "demo finished" if code == 0 else f"demo stopped ({code})"

        try:
            run_app(
                store,
                config,
                operator=os.environ.get("USER") or "operator",
                speed=speed,
                note=note,
                quit_warning="The demo's controller stops too (its summary is printed).",
            )
        finally:
            code = _stop(child)
            store.close()
    text = Path(log.name).read_text(errors="replace")
    summary = text[text.rfind("\norder ") + 1 :] if "\norder " in text else text[-4000:]
    print(summary.rstrip())
    print(f"(demo log: {log.name})")
    return code


def _stop(child: subprocess.Popen[bytes]) -> int:
    """Stop the demo: gracefully (running jobs are followed), then at once."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
    try:
        return child.wait(timeout=45)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGINT)  # a second signal stops at once
        return child.wait(timeout=15)
