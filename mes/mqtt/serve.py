"""The plant on MQTT, composed from the plant file: the messenger for the recorder and for
releases, and the tasks a controller process runs (publisher, order intake).

:mod:`mes.bootstrap` calls these; nothing else here knows the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime

from mes.mqtt.intake import OrderIntake, watch_folder
from mes.mqtt.link import link_settings
from mes.mqtt.messenger import JobLookup, Messenger, namespace
from mes.mqtt.publisher import Publisher, PublisherSettings
from mes.mqtt.topics import Namespace
from mes.service.release import ReleaseMessages
from mes.service.supervisor import Backoff
from mes.settings import Plant
from mes.store import Store

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def plant_namespace(plant: Plant) -> Namespace | None:
    """Where the plant's topics are, from ``[mqtt]`` and each cell's area and line."""
    config = plant.config.mqtt
    if config is None:
        return None
    return namespace(
        config.enterprise,
        config.site,
        ((c.name, c.area, c.line) for c in plant.cells),
        (config.area, config.line),
    )


def messenger(
    plant: Plant,
    *,
    clock: Callable[[], datetime] = utc_now,
    job_lookup: JobLookup | None = None,
    active_alarms: Iterable[tuple[str, str]] = (),
) -> Messenger | None:
    """The messenger for ``Recorder.messages`` (None without ``[mqtt]``)."""
    ns = plant_namespace(plant)
    if ns is None or plant.config.mqtt is None:
        return None
    return Messenger(
        ns,
        clock=clock,
        progress_step=plant.config.mqtt.progress_step,
        job_lookup=job_lookup,
        active_alarms=active_alarms,
    )


def release_messages(plant: Plant) -> ReleaseMessages | None:
    """What an order release tells MQTT (``release(messages=...)``; None without it)."""
    made = messenger(plant)
    return made.released if made is not None else None


def publisher_settings(plant: Plant) -> PublisherSettings:
    """The publisher's settings from ``[mqtt]``, the broker password read.

    Raises:
        MesError: the password's environment variable is unset or its file unreadable.
    """
    config = plant.config.mqtt
    ns = plant_namespace(plant)
    assert config is not None and ns is not None
    reconnect = config.reconnect
    backoff = (
        Backoff(reconnect.fixed_s, reconnect.fixed_s, 0.0)
        if reconnect.fixed_s is not None
        else Backoff(reconnect.first_s, reconnect.cap_s, reconnect.jitter)
    )
    return PublisherSettings(
        link=link_settings(config),
        ns=ns,
        backlog_rate=config.backlog_rate,
        max_attempts=config.max_attempts,
        backoff=backoff,
        expiry_s=config.finished_units_s if config.protocol == "5" else None,
    )


@contextlib.asynccontextmanager
async def serving_mqtt(
    plant: Plant,
    store: Store,
    subscribe: Callable[[Callable[[object], None]], None],
) -> AsyncIterator[Publisher | None]:
    """Publish the outbox and take in orders (as the plant file says) for the block.

    Args:
        plant: the plant.
        store: its store.
        subscribe: registers a callback called after each commit (the recorder's
            ``subscribe``), so a change is published at once, not at the next poll.

    Raises:
        MesError: a secret named in ``[mqtt]`` cannot be read.
    """
    config, folder = plant.config.mqtt, plant.config.intake
    tasks: list[asyncio.Task[None]] = []
    publisher = None
    ns = plant_namespace(plant)
    intake = OrderIntake(store, plant, ns=ns, messages=release_messages(plant))
    if config is not None:
        publisher = Publisher(
            store,
            publisher_settings(plant),
            on_session=intake.attach if config.intake else None,
        )
        subscribe(publisher.wake)
        tasks.append(asyncio.create_task(publisher.run(), name="mqtt-publisher"))
    if folder is not None:
        path = (plant.path.parent / folder.folder).resolve()
        path.mkdir(parents=True, exist_ok=True)
        wake = publisher.wake if publisher is not None else (lambda: None)
        watching = watch_folder(
            intake, path, poll_s=folder.poll_s, settle_s=folder.settle_s, wake=wake
        )
        tasks.append(asyncio.create_task(watching, name="order-folder"))
        log.info("taking orders dropped into %s", path)
    try:
        yield publisher
        if publisher is not None:  # what the controller said last (cells offline) goes out
            await publisher.flush(3.0)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
