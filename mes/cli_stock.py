"""``mes stock`` and ``mes order status``: blanks made ahead, and an order as its customer
sees it.

``stock plan`` releases stock units of one variant (cells make them when they have
nothing else to do), ``stock list`` shows each variant's level beside its target (or
every blank, ``--all``), ``stock scrap`` takes a damaged blank out of stock. ``order
status`` prints each unit's stage in the customer's words, its estimated completion
and its lead time split. All of them work on the store; none needs a running
controller (an estimate needs one: with every cell offline there is none).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from mes.cli_format import json_default, table, when
from mes.cli_options import DbOption, JsonOption, PlantOption
from mes.errors import InputError, NotFound, OrderError, Problem
from mes.settings import DEFAULT_PLANT_PATH, Plant, load_plant
from mes.store import Store
from routing.family import describe_variant, variant_key

stock_app = typer.Typer(
    help="Blanks made ahead: plan them, list them, scrap one.", no_args_is_help=True
)


@stock_app.command("plan")
def plan(
    family: Annotated[str, typer.Argument(help="Product family, e.g. coaster")],
    variant: Annotated[
        list[str],
        typer.Option("--variant", "-v", help="A variant option as NAME=VALUE (each of them)."),
    ],
    quantity: Annotated[int, typer.Option("--quantity", "-n", min=1, max=10_000)] = 1,
    plant: PlantOption = DEFAULT_PLANT_PATH,
    db: DbOption = None,
) -> None:
    """Release QUANTITY blanks of one variant: cells make them when they have nothing
    else to do; units of that variant released later start from them."""
    from mes.bootstrap import release_messages
    from mes.service.stock import plan_stock
    from mes.settings.stations import stations

    config = load_plant(plant)
    found = config.families.get(family)
    if found is None:
        known = ", ".join(sorted(config.families))
        raise InputError(Problem(f"unknown family {family!r} (known: {known})", path="FAMILY"))
    chosen = _pairs(variant)
    store = Store.open(db)
    try:
        ids = plan_stock(
            store,
            found,
            chosen,
            quantity,
            datetime.now(UTC),
            actor=_who(),
            stations=stations(config),
            messages=release_messages(config),
        )
    except OrderError as exc:
        raise OrderError(
            [Problem(p.reason, path=f"--variant {p.path}".strip()) for p in exc.problems]
        ) from None
    finally:
        store.close()
    order = ids[0].rsplit(".", 1)[0]
    print(
        f"released {len(ids)} stock units of {family} "
        f"{describe_variant(variant_key(found.configure_variant(chosen)))} as order {order}: "
        "cells make them when they have nothing else to do"
    )


@stock_app.command("list")
def stock_list(
    plant: PlantOption = DEFAULT_PLANT_PATH,
    db: DbOption = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every blank in stock or being made.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Each variant's blanks in stock and being made, beside the plant's target."""
    config = _plant_or_none(plant)
    store = Store.open(db)
    try:
        levels = store.stock_levels()
        blanks = store.blanks() if every else []
    finally:
        store.close()
    targets: dict[tuple[str, str], int] = {}
    for entry in config.config.stock if config is not None else []:
        assert config is not None
        values = config.families[entry.family].configure_variant(entry.variant)
        targets[(entry.family, variant_key(values))] = entry.target
    rows: list[dict[str, Any]] = []
    for family, variant in sorted(targets.keys() | levels.keys()):
        level = levels.get((family, variant))
        rows.append(
            {
                "family": family,
                "variant": json.loads(variant),
                "target": targets.get((family, variant)),
                "in_stock": level.in_stock if level else 0,
                "being_made": level.making if level else 0,
            }
        )
    if as_json:
        print(json.dumps({"levels": rows, "blanks": blanks}, default=json_default, indent=1))
        return
    if not rows:
        print("no blanks in stock or being made, and no [[stock]] targets")
    else:
        print(
            table(
                ["family", "variant", "target", "in stock", "being made"],
                [
                    [
                        r["family"],
                        " ".join(f"{k}={v}" for k, v in r["variant"].items()),
                        "-" if r["target"] is None else str(r["target"]),
                        str(r["in_stock"]),
                        str(r["being_made"]),
                    ]
                    for r in rows
                ],
            )
        )
    if every:
        print()
        print(
            table(
                ["blank", "family", "variant", "state", "made"],
                [
                    [
                        b["unit_id"],
                        b["family"],
                        describe_variant(b["variant"]),
                        "in stock"
                        if b["unit_state"] == "done"
                        else f"being made ({b['unit_state']})",
                        when(b["made_at"]),
                    ]
                    for b in blanks
                ],
            )
            if blanks
            else "no blanks in stock or being made"
        )


@stock_app.command("scrap")
def scrap(
    blank: Annotated[str, typer.Argument(metavar="BLANK", help="The blank (its stock unit's id)")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the journal).")],
    db: DbOption = None,
) -> None:
    """Take a blank in stock out of it for good (damaged, lost)."""
    store = Store.open(db)
    try:
        store.scrap_blank(blank, datetime.now(UTC), _who(), reason)
    finally:
        store.close()
    print(f"blank {blank} scrapped: {reason}")


def order_status(
    order_id: Annotated[str, typer.Argument(metavar="ORDER", help="The order id")],
    plant: PlantOption = DEFAULT_PLANT_PATH,
    db: DbOption = None,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Plant seconds per wall second (a simulated plant).")
    ] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """An order as its customer sees it: each unit's stage, its estimated completion
    (from the current schedule) and its lead time: custom work, generic work, waiting."""
    from mes.bootstrap import cell_setups
    from mes.service.tracking import track_order

    config = load_plant(plant)
    store = Store.open(db)
    try:
        status = track_order(
            store,
            order_id,
            cell_setups(config),
            config.config.plant.dispatch,
            datetime.now(UTC),
            speed,
        )
    except NotFound:
        raise NotFound(f"no order {order_id!r} in {store.url}") from None
    finally:
        store.close()
    if as_json:
        print(json.dumps(status, default=json_default, indent=1))
        return
    due = f", due {when(status['due'])}" if status["due"] else ""
    eta = f", estimated done {when(status['eta'])}" if status["eta"] else ""
    late = "" if status["on_time"] is None else " (on time)" if status["on_time"] else " (late)"
    print(
        f"order {status['order']}: {status['status'].replace('_', ' ')} "
        f"(released {when(status['released_at'])}{due}{eta}{late})"
    )
    rows = []
    for u in status["units"]:
        lead = u["lead_time_s"]
        rows.append(
            [
                u["unit"],
                u["family"],
                u["text"] + (" (from stock)" if u["from_stock"] else ""),
                when(u["eta"]) or "-",
                f"{_span(lead['total'])} = {_span(lead['custom'])} + "
                f"{_span(lead['generic'])} + {_span(lead['waiting'])}",
            ]
        )
    print(
        table(
            [
                "unit",
                "family",
                "stage",
                "done or estimated",
                "lead time = custom + generic + waiting",
            ],
            rows,
        )
    )
    print(f"estimates: {status['eta_basis']}")


def _span(seconds: float) -> str:
    from mes.dashboard.figures import duration

    return duration(seconds)


def _pairs(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` options as a mapping.

    Raises:
        InputError: an item without ``=``.
    """
    out: dict[str, str] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            problems.append(Problem(f"{item!r} is not NAME=VALUE", path="--variant"))
            continue
        out[name.strip()] = value.strip()
    if problems:
        raise InputError(problems)
    return out


def _plant_or_none(path: Path) -> Plant | None:
    """The plant when its file exists (for targets); a listing needs none."""
    if not (path.exists() or (path / "plant.toml").exists()):
        return None
    return load_plant(path)


def _who() -> str:
    return os.environ.get("USER") or "planner"
