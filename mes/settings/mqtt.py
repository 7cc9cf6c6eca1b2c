"""The MQTT part of the plant file: the broker, the Unified Namespace, and order intake.

``[mqtt]`` names the broker (host, port, TLS, login), this plant's place in the Unified
Namespace (``enterprise`` and ``site``; each cell adds its ``area`` and ``line``) and how
the outbox is drained (docs/mqtt.md). The password comes from the environment or a
secret file named here, never from the plant file. ``[intake]`` names a folder watched
for order files.

Each key is checked alone by its type; a rule that relates two keys of one table (a
password needs a user; a client certificate needs its key) is a validator on the later
key, so the error names the key to fix.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from mes.settings.base import Model, NonBlank
from mes.settings.modbus import ReconnectConfig

_LEVEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: Topic levels under a site that are not areas (docs/mqtt.md).
RESERVED_AREAS = frozenset({"units", "orders", "alarms", "mes"})


def _level(value: str) -> str:
    if not _LEVEL_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid topic level (letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 64 characters)"
        )
    return value


def _optional_level(value: str) -> str:
    return value if value == "" else _level(value)


def _area(value: str) -> str:
    if value in RESERVED_AREAS:
        raise ValueError(
            f"{value!r} is taken by the MQTT topic tree (reserved: "
            f"{', '.join(sorted(RESERVED_AREAS))}); name the area otherwise"
        )
    return _optional_level(value)


TopicLevel = Annotated[str, AfterValidator(_level)]
"""One level of an MQTT topic: no ``/``, ``+``, ``#``, spaces, nor a leading ``$``."""
LineName = Annotated[str, AfterValidator(_optional_level)]
"""A cell's line: a topic level, or empty (the ``[mqtt]`` default)."""
AreaName = Annotated[str, AfterValidator(_area)]
"""A cell's area: a topic level other than the reserved ones, or empty."""


class MqttTlsConfig(Model):
    """``[mqtt.tls]``: present means TLS (port 8883 by default)."""

    ca_file: NonBlank | None = None
    """CA certificates (PEM) the broker's certificate must chain to; unset: the system's."""
    cert_file: NonBlank | None = None
    """This controller's client certificate (PEM), for brokers that require one."""
    key_file: NonBlank | None = Field(default=None, validate_default=True)
    """The client certificate's private key (PEM)."""
    verify_hostname: bool = True
    """Check that the broker's certificate names the host connected to."""

    @field_validator("key_file")
    @classmethod
    def _pair(cls, value: str | None, info: ValidationInfo) -> str | None:
        cert = info.data.get("cert_file")
        if (cert is None) != (value is None) and "cert_file" in info.data:
            raise ValueError(
                "a client certificate needs its key file"
                if value is None
                else "a key file needs its client certificate (cert_file)"
            )
        return value


class MqttConfig(Model):
    """``[mqtt]``: publish the plant to a broker under a Unified Namespace (docs/mqtt.md)."""

    host: NonBlank
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 1883, or 8883 with ``[mqtt.tls]``."""
    tls: MqttTlsConfig | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT 5 lets the broker refuse one message (and says why); a 3.1.1 broker cannot, so
    a refused message there is lost silently or drops the connection."""
    client_id_prefix: TopicLevel = "mes"
    """The broker sees this plant's controller as ``<prefix>-<enterprise>-<site>``: one
    connection at a time, taken over by whichever controller publishes."""
    username: NonBlank | None = None
    password_env: NonBlank | None = None
    """Environment variable holding the password."""
    password_file: NonBlank | None = None
    """A file whose first line is the password (mode 0600 expected)."""
    keepalive_s: int = Field(default=15, ge=5, le=3600)
    """Seconds between pings; the broker publishes the offline will after 1.5 times it."""

    enterprise: TopicLevel
    """The first level of every topic (ISA-95 enterprise)."""
    site: TopicLevel
    """The second level (ISA-95 site)."""
    area: TopicLevel = "default"
    """The area of cells that do not name theirs."""
    line: TopicLevel = "default"
    """The line of cells that do not name theirs."""

    backlog_rate: float = Field(default=100.0, gt=0.0)
    """Messages per second at most from a backlog (messages queued while the broker was
    away, or before this controller started publishing); new messages on topics without
    a backlog go first and are not limited."""
    window: int = Field(default=64, ge=1, le=1000)
    """Messages sent and not yet acknowledged, at most (one per topic at a time)."""
    max_attempts: int = Field(default=5, ge=1, le=100)
    """A message the broker refuses this often (or that cannot be sent at all: too large,
    an invalid topic) is set aside as dead, counted and alarmed. A lost connection never
    counts as a message's failure."""
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    progress_step: float = Field(default=0.05, gt=0.0, le=1.0)
    """A cell's state is published again when its job's progress moved this much."""
    finished_units_s: int = Field(default=86_400, ge=0)
    """MQTT 5: the retained state of a finished unit expires after this long (0: kept)."""
    intake: bool = False
    """Take orders published on ``<enterprise>/<site>/orders/in`` (docs/mqtt.md)."""
    session_expiry_s: int = Field(default=86_400, ge=0)
    """With ``intake``: how long the broker keeps orders for this plant while no
    controller is connected."""

    @field_validator("password_env", "password_file")
    @classmethod
    def _password(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.field_name == "password_file" and info.data.get("password_env") is not None:
            raise ValueError("give the password once: password_env or password_file")
        if "username" in info.data and info.data["username"] is None:
            raise ValueError("a password needs a username")
        return value


class IntakeConfig(Model):
    """``[intake]``: order files dropped into a folder are released like ``mes order
    release`` does, then moved to ``done/`` or ``failed/`` (with the reasons beside)."""

    folder: NonBlank
    """The folder watched, relative to the plant file."""
    poll_s: float = Field(default=1.0, gt=0.0, le=60.0)
    settle_s: float = Field(default=1.0, ge=0.0, le=600.0)
    """A file is taken once it has not changed for this long (an upstream system still
    writing it is not read half-written; writing elsewhere and renaming is better)."""
