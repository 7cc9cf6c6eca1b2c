"""``mes mqtt``: the MQTT outbox as an operator sees it: what waits, what was set aside.

``status`` counts the messages waiting (and how old the oldest is) and those set aside
(dead: refused by the broker, too large, an invalid topic, after ``max_attempts``), and
lists the latter; ``requeue`` puts them back in line once the cause is fixed, ``purge``
gives them up. It reads the store only; the publisher runs in the controller.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from mes.cli_options import DbOption
from mes.mqtt.outbox import Outbox
from mes.store import Store

mqtt_app = typer.Typer(help="The MQTT outbox: waiting and dead messages.", no_args_is_help=True)


@mqtt_app.command("status")
def status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Messages waiting to be published, the oldest one's age, and messages set aside."""
    store = Store.open(db)
    try:
        outbox = Outbox(store)
        counts = outbox.counts()
        dead = outbox.dead()
    finally:
        store.close()
    now = datetime.now(UTC)
    age = (now - counts.oldest_pending).total_seconds() if counts.oldest_pending else None
    if as_json:
        print(
            json.dumps(
                {
                    "pending": counts.pending,
                    "oldest_pending_s": None if age is None else round(age, 3),
                    "dead": counts.dead,
                    "dead_messages": dead,
                },
                default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
            )
        )
        return
    oldest = f" (oldest {_age(age)} old)" if age is not None else ""
    print(f"pending {counts.pending}{oldest}, dead {counts.dead}")
    for row in dead:
        print(
            f"  dead #{row['id']} {row['topic']} ({row['bytes']} bytes, {row['attempts']} "
            f"attempts, {row['created_at']:%Y-%m-%d %H:%M:%S}): {row['error']}"
        )
    if counts.dead > len(dead):
        print(f"  ... and {counts.dead - len(dead)} more")
    if counts.dead:
        print("fix the cause, then `mes mqtt requeue`; or `mes mqtt purge --yes` to drop them")


@mqtt_app.command("requeue")
def requeue(db: DbOption = None) -> None:
    """Put every dead message back in line (after the cause was fixed), in its old place."""
    store = Store.open(db)
    try:
        count = Outbox(store).requeue_dead()
    finally:
        store.close()
    print(f"{count} messages back in line")


@mqtt_app.command("purge")
def purge(
    db: DbOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete them.")] = False,
) -> None:
    """Delete every dead message for good."""
    if not yes:
        print("this deletes every dead message for good; add --yes")
        raise typer.Exit(1)
    store = Store.open(db)
    try:
        count = Outbox(store).purge_dead()
    finally:
        store.close()
    print(f"{count} dead messages deleted")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
