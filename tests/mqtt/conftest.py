"""A private Mosquitto per test module (never the machine's shared one on 1883), a
subscriber that records what it gets, and small plants of simulated cells on MQTT."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import REPO, free_ports

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
)
ROOT = "acme/works"


class Broker:
    """``mosquitto -c <conf>`` on a free loopback port, persisting to its own folder, so a
    subscriber's QoS 1 session and the retained messages outlive a restart."""

    def __init__(self, folder: Path, *, acl: str = "", extra: str = "") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (self.port,) = free_ports(1)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {folder}/broker.log",
            # As root, mosquitto would drop to a user who cannot write the folder.
            "user root" if os.geteuid() == 0 else "",
            extra,
        ]
        if acl:
            (folder / "acl").write_text(acl)
            lines.append(f"acl_file {folder}/acl")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(line for line in lines if line) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.folder / "broker.log").read_text(errors="replace")
                raise AssertionError(f"mosquitto exited {self.proc.returncode}:\n{log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)  # polling for the port to open, bounded by the deadline
        raise AssertionError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its sessions and retained messages, then exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _need_mosquitto() -> None:
    if MOSQUITTO is None:
        reason = "mosquitto is not installed (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    _need_mosquitto()
    made = Broker(tmp_path_factory.mktemp("broker"), acl=BROKER_ACL, extra="max_packet_size 65536")
    made.start()
    yield made
    made.stop()


#: Everything allowed but one subtree, so a message there is refused (PUBACK 0x87).
BROKER_ACL = f"topic readwrite #\ntopic deny {ROOT}/forbidden/#\n"


@dataclass(frozen=True)
class Got:
    topic: str
    payload: bytes
    retain: bool
    properties: Any = None

    def json(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        assert isinstance(value, dict)
        return value


class Subscriber:
    """A paho client (MQTT 5) subscribed at QoS 1 that records every message, with a
    session the broker keeps while it is away (``persistent``)."""

    def __init__(
        self, broker: Broker, topic: str = f"{ROOT}/#", *, name: str, persistent: bool = False
    ) -> None:
        self.got: list[Got] = []
        self._changed = threading.Condition()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.on_message = self._on_message
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600 if persistent else 0
        client.connect("127.0.0.1", broker.port, clean_start=not persistent, properties=properties)
        client.loop_start()
        self.client = client

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.got.append(
                Got(message.topic, bytes(message.payload), message.retain, message.properties)
            )
            self._changed.notify_all()

    def wait_for(self, done: Callable[[list[Got]], bool], timeout: float = 20.0) -> list[Got]:
        """Wait until ``done(messages so far)``; fail after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: done(self.got), timeout):
                shown = "\n".join(f"{g.topic} {g.payload[:120]!r}" for g in self.got[-20:])
                raise AssertionError(f"not there after {timeout} s; last messages:\n{shown}")
            return list(self.got)

    async def until(self, done: Callable[[list[Got]], bool], within_s: float = 20.0) -> list[Got]:
        """:meth:`wait_for` from a coroutine, the event loop running meanwhile."""
        return await asyncio.to_thread(self.wait_for, done, within_s)

    def on(self, topic: str) -> list[Got]:
        with self._changed:
            return [g for g in self.got if g.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``check`` (a database read) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)  # polling a database another process writes, bounded by the deadline


CELLS = {
    "printer-1": (["print.fdm"], "hall-1", "print"),
    "laser-1": (["laser.engrave", "cnc.route"], "hall-1", "finish"),
    "bench-1": (["assembly", "test"], "hall-2", ""),
}


def write_plant(
    folder: Path, broker: Broker, *, speed: float = 3000, mqtt_extra: str = "", extra: str = ""
) -> Path:
    """A plant of three simulated cells (the demo's families) publishing to ``broker``."""
    # A quick heartbeat: a restarted controller takes the cells of the one killed soon.
    text = (
        f'[plant]\nname = "MQTT test plant"\nproducts = "{REPO / "config" / "products"}"\n'
        "heartbeat_s = 0.5\n"
        f'\n[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nenterprise = "acme"\n'
        f'site = "works"\nkeepalive_s = 5\n{mqtt_extra}\n[mqtt.reconnect]\nfixed_s = 0.2\n'
    )
    for name, (capabilities, area, line) in CELLS.items():
        caps = ", ".join(f'"{c}"' for c in capabilities)
        text += (
            f'\n[[cells]]\nname = "{name}"\ncapabilities = [{caps}]\narea = "{area}"\n'
            f'line = "{line}"\nrerun_interrupted = true\n'
            f'[cells.driver]\nkind = "sim"\nspeed = {speed}\n'
        )
    path = folder / "plant.toml"
    path.write_text(text + extra)
    return path
