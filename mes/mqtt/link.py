"""One connection to the broker: paho-mqtt's protocol engine driven by the asyncio loop.

Theory of operation: paho-mqtt (2.x) speaks the protocol; this module hands it the
event loop's reader and writer callbacks instead of a thread (as paho's own asyncio
example and aiomqtt do) and turns its callbacks into futures. A publish returns a future
that is done when the broker acknowledged the message (QoS 1), fails with
:class:`MessageRefused` when the broker refused it (an MQTT 5 PUBACK reason code of 0x80
or more: not authorised, quota, payload format...) or when it cannot be sent at all (a
wildcard in its topic, larger than the broker's maximum packet size), and fails with
:class:`BrokerUnavailable` when the connection is lost first. The caller counts the
first against the message and never the second.

Why not aiomqtt: its ``publish()`` drops the PUBACK reason code, so a message the broker
refused would look delivered and leave the outbox for good.

Incoming messages (order intake) are acknowledged by the caller (:meth:`Link.ack`) once
it has handled them, not on receipt, so a controller that dies meanwhile gets the
message again (its session outlives the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from mes.errors import MesError
from mes.settings.mqtt import MqttConfig

log = logging.getLogger(__name__)


class BrokerUnavailable(MesError):
    """The broker cannot be reached, or the connection was lost: try again after a
    backoff. Never a message's fault."""


class BrokerRefused(BrokerUnavailable):
    """The broker refused the connection (user, password, client id, not authorised):
    the configuration is to be fixed; tried again after a backoff meanwhile."""


class MessageRefused(MesError):
    """This message cannot be published (refused by the broker, too large, an invalid
    topic): counts as one of its attempts."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: str


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """How to connect (from ``[mqtt]``, with the password read)."""

    host: str
    port: int
    client_id: str
    protocol: str = "5"
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 15
    tls: ssl.SSLContext | None = None
    tls_verify_hostname: bool = True
    clean_start: bool = True
    """False keeps the broker session (and its queued orders) across connections."""
    session_expiry_s: int = 0
    window: int = 64
    timeout_s: float = 10.0
    will: Will | None = None

    @property
    def v5(self) -> bool:
        return self.protocol == "5"


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message received on a subscription."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    response_topic: str | None = None
    correlation: bytes | None = None
    content_type: str | None = None


def link_settings(config: MqttConfig, will: Will | None = None) -> LinkSettings:
    """The connection settings of ``[mqtt]``, the password read from where it points.

    Raises:
        MesError: the named environment variable is unset, or the file unreadable.
    """
    password = None
    if config.password_env:
        password = os.environ.get(config.password_env)
        if password is None:
            raise MesError(f"[mqtt]: ${config.password_env} (the broker password) is not set")
    elif config.password_file:
        try:
            password = Path(config.password_file).read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise MesError(
                f"[mqtt]: cannot read the password file {config.password_file}: {exc}"
            ) from exc
    context = None
    if config.tls is not None:
        try:
            context = ssl.create_default_context(cafile=config.tls.ca_file)
            if config.tls.cert_file:
                context.load_cert_chain(config.tls.cert_file, config.tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise MesError(f"[mqtt.tls]: cannot load the certificates: {exc}") from exc
        context.check_hostname = config.tls.verify_hostname
    return LinkSettings(
        host=config.host,
        port=config.port or (8883 if config.tls is not None else 1883),
        client_id=f"{config.client_id_prefix}-{config.enterprise}-{config.site}",
        protocol=config.protocol,
        username=config.username,
        password=password,
        keepalive_s=config.keepalive_s,
        tls=context,
        tls_verify_hostname=config.tls.verify_hostname if config.tls else True,
        clean_start=not config.intake,
        session_expiry_s=config.session_expiry_s if config.intake else 0,
        window=config.window,
        will=will,
    )


class Link:
    """One connection to the broker (see the module doc). Use from one event loop."""

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if settings.v5 else mqtt.MQTTv311,
            clean_session=None if settings.v5 else settings.clean_start,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.enable_logger(logging.getLogger("mes.mqtt.paho"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        client.max_inflight_messages_set(settings.window)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            client.tls_set_context(settings.tls)
            client.tls_insecure_set(not settings.tls_verify_hostname)
        if settings.will is not None:
            client.will_set(settings.will.topic, settings.will.payload, qos=1, retain=True)
        self._client = client
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.closed.add_done_callback(_retrieve)
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._subscribing: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._fd: int | None = None
        self._misc: asyncio.Task[None] | None = None
        self._closing = False
        self.incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self.max_packet: int | None = None
        self.receive_max: int = settings.window

    @property
    def window(self) -> int:
        """Messages to have in flight at most: ours, or fewer if the broker says so."""
        return max(1, min(self.settings.window, self.receive_max))

    async def connect(self) -> None:
        """Connect and wait for the broker's CONNACK.

        Raises:
            BrokerUnavailable: cannot reach it, or it did not answer in time.
            BrokerRefused: it answered with a refusal.
        """
        s = self.settings
        properties = None
        if s.v5 and s.session_expiry_s:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = s.session_expiry_s
        try:
            async with asyncio.timeout(s.timeout_s):
                await self._loop.run_in_executor(
                    None,
                    lambda: self._client.connect(
                        s.host,
                        s.port,
                        s.keepalive_s,
                        clean_start=s.clean_start if s.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                        properties=properties,
                    ),
                )
                await asyncio.shield(self._connected)
        except (OSError, TimeoutError, ssl.SSLError, mqtt.WebsocketConnectionError) as exc:
            self._teardown()
            reason = str(exc) or type(exc).__name__
            raise BrokerUnavailable(f"cannot reach {s.host}:{s.port}: {reason}") from exc
        except BaseException:  # refused, or cancelled: no socket left behind
            self._teardown()
            raise
        self._misc = self._loop.create_task(self._misc_loop(), name="mqtt-keepalive")

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expiry_s: int | None = None,
        correlation: bytes | None = None,
    ) -> asyncio.Future[None]:
        """Send a message; the future is done when the broker has it (see the module doc).

        Raises:
            MessageRefused: it cannot be sent at all.
            BrokerUnavailable: not connected.
        """
        if self.closed.done():
            raise BrokerUnavailable("not connected")
        properties = None
        if self.settings.v5 and (expiry_s or correlation):
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if expiry_s:
                properties.MessageExpiryInterval = expiry_s
            if correlation:
                properties.CorrelationData = correlation
        size = packet_size(topic, payload, qos, properties, v5=self.settings.v5)
        if self.max_packet is not None and size > self.max_packet:
            raise MessageRefused(
                f"{size} bytes: larger than the broker's maximum packet size {self.max_packet}"
            )
        try:
            info = self._client.publish(topic, payload, qos, retain, properties)
        except ValueError as exc:
            raise MessageRefused(f"cannot be published: {exc}") from exc
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise BrokerUnavailable(f"cannot publish: {mqtt.error_string(info.rc)}")
        future: asyncio.Future[None] = self._loop.create_future()
        if qos == 0 or info.is_published():
            future.set_result(None)
        else:
            self._pending[info.mid] = future
        return future

    async def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe (retained messages are not sent: an order is taken once).

        Raises:
            BrokerRefused: the broker refused the subscription.
            BrokerUnavailable: the connection was lost.
        """
        if self.settings.v5:
            options = SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            rc, mid = self._client.subscribe(topic, options=options)
        else:
            rc, mid = self._client.subscribe(topic, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise BrokerUnavailable(f"cannot subscribe: {mqtt.error_string(rc)}")
        future: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._subscribing[mid] = future
        either: list[asyncio.Future[Any]] = [future, self.closed]
        done, _ = await asyncio.wait(
            either, timeout=self.settings.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if future not in done:
            raise BrokerUnavailable(f"no answer subscribing to {topic}")
        codes = future.result()
        if any(code.is_failure for code in codes):
            raise BrokerRefused(f"subscription to {topic} refused: {codes[0]}")

    def ack(self, message: Incoming) -> None:
        """Acknowledge a received message once it is handled (QoS 1)."""
        if message.qos > 0 and not self.closed.done():
            self._client.ack(message.mid, message.qos)

    async def aclose(self, last: tuple[str, str] | None = None) -> None:
        """Publish ``last`` (topic, payload; retained) if still connected, then disconnect
        cleanly: the broker does not publish the will."""
        try:
            if not self.closed.done():
                if last is not None:
                    with contextlib.suppress(MesError, TimeoutError):
                        sent = self.publish(last[0], last[1].encode(), retain=True)
                        async with asyncio.timeout(2.0):
                            await asyncio.shield(sent)
                self._closing = True
                self._client.disconnect()
                with contextlib.suppress(TimeoutError, MesError):
                    async with asyncio.timeout(2.0):
                        await asyncio.shield(self.closed)
        finally:
            self._teardown()
            if self._misc is not None:
                self._misc.cancel()
                self._misc = None

    # -- paho's callbacks (on the loop thread, except socket open during connect) -----

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connected.done():
            return
        if reason.is_failure:
            self._connected.set_exception(
                BrokerRefused(f"{self.settings.host}:{self.settings.port} refused: {reason}")
            )
            return
        if properties is not None:
            self.max_packet = getattr(properties, "MaximumPacketSize", None)
            self.receive_max = getattr(properties, "ReceiveMaximum", self.receive_max)
        self._connected.set_result(None)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._closing:
            self._lost(None)
        else:
            self._lost(BrokerUnavailable(f"connection lost: {reason}"))

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        future = self._pending.pop(mid, None)
        if future is None or future.done():
            return
        if reason.is_failure:
            future.set_exception(MessageRefused(f"refused by the broker: {reason}"))
        else:
            future.set_result(None)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        future = self._subscribing.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(codes)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        props = message.properties
        correlation = getattr(props, "CorrelationData", None) if props else None
        self.incoming.put_nowait(
            Incoming(
                topic=message.topic,
                payload=bytes(message.payload),
                mid=message.mid,
                qos=message.qos,
                response_topic=getattr(props, "ResponseTopic", None) if props else None,
                correlation=bytes(correlation) if correlation is not None else None,
                content_type=getattr(props, "ContentType", None) if props else None,
            )
        )

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        fd = sock.fileno()

        def watch() -> None:
            self._fd = fd
            self._loop.add_reader(fd, self._read)

        self._loop.call_soon_threadsafe(watch)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._unwatch)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._watch_write, sock.fileno(), True)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._watch_write, sock.fileno(), False)

    def _watch_write(self, fd: int, on: bool) -> None:
        if fd != self._fd:
            return  # a socket already given up
        if on:
            self._loop.add_writer(fd, self._write)
        else:
            self._loop.remove_writer(fd)

    def _read(self) -> None:
        try:
            self._client.loop_read()
            sock = self._client.socket()
            # TLS: decrypted bytes may wait in the SSL object with nothing on the socket.
            while sock is not None and hasattr(sock, "pending") and sock.pending() > 0:
                self._client.loop_read()
                sock = self._client.socket()
        except Exception as exc:  # a library's socket error: the connection is gone
            self._lost(BrokerUnavailable(f"connection lost: {exc}"))

    def _write(self) -> None:
        try:
            self._client.loop_write()
        except Exception as exc:  # as in _read
            self._lost(BrokerUnavailable(f"connection lost: {exc}"))

    async def _misc_loop(self) -> None:
        """Keepalive pings, and noticing a broker that stopped answering them."""
        while not self.closed.done():
            if self._client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._lost(BrokerUnavailable("connection lost: no answer to keepalive"))
                return
            await asyncio.sleep(1.0)

    def _lost(self, error: BrokerUnavailable | None) -> None:
        if not self._connected.done():
            self._connected.set_exception(error or BrokerUnavailable("connection closed"))
            self._connected.add_done_callback(_retrieve)
        if not self.closed.done():
            if error is None:
                self.closed.set_result(None)
            else:
                self.closed.set_exception(error)
        failure = error or BrokerUnavailable("connection closed")
        waiting: list[asyncio.Future[Any]] = [*self._pending.values(), *self._subscribing.values()]
        for future in waiting:
            if not future.done():
                future.set_exception(failure)
                future.add_done_callback(_retrieve)
        self._pending.clear()
        self._subscribing.clear()
        self._unwatch()

    def _unwatch(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = None

    def _teardown(self) -> None:
        self._unwatch()
        sock = self._client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        if not self.closed.done():
            self.closed.set_exception(BrokerUnavailable("connection closed"))


def packet_size(
    topic: str, payload: bytes, qos: int, properties: Properties | None, *, v5: bool = True
) -> int:
    """The size of a PUBLISH packet, to check against the broker's maximum packet size."""
    props = 1 if v5 else 0
    if properties is not None:
        props = len(properties.pack())  # type: ignore[no-untyped-call]
    remaining = 2 + len(topic.encode("utf-8")) + (2 if qos else 0) + props + len(payload)
    header = 1 + next(n for n in (1, 2, 3, 4) if remaining < 128**n)
    return header + remaining


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (a lost connection is expected, not an error)."""
    if not future.cancelled():
        future.exception()
