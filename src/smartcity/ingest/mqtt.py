"""The MQTT southbound: device topics of the FIWARE IoT-Agent convention, and device commands.

Devices publish on `/<apikey>/<deviceId>/attrs` (all measures), `/<apikey>/<deviceId>/attrs/<field>`
(one field) and `/<apikey>/<deviceId>/cmdexe` (answers to commands), or the same under `/json`
and `/ul` as newer IoT Agents accept; commands go to `/<apikey>/<deviceId>/cmd`.

Nothing the broker accepted is lost across a restart: the agent subscribes with QoS 1 on a
persistent session (a fixed client id, MQTT 5 with a session expiry), and acknowledges a message
to the broker only after its readings are on the bus or it is a dead letter. A message received
but not yet acknowledged when the agent stops is sent again by the broker to the next agent that
connects with the same client id, with whatever arrived meanwhile. aiomqtt has no manual
acknowledgement of its own, so the agent switches it on in the paho client aiomqtt wraps.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from smartcity.ingest.agent import ATTRS, CMDEXE, Inbound, IotAgent
from smartcity.ingest.commands import CommandBook, command_payload
from smartcity.ingest.device_model import PayloadFormat
from smartcity.ingest.devices import DeviceService

SOURCE: Final = "mqtt"
_FORMATS: Final = {"json": PayloadFormat.JSON, "ul": PayloadFormat.ULTRALIGHT}

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """How the southbound connects (from Settings)."""

    url: str = "mqtt://127.0.0.1:1883"
    """mqtt://[user:password@]host[:port] or mqtts:// for TLS."""
    client_id: str = "smartcity-iot-agent"
    """Fixed, so the broker keeps the session (and what arrives while the agent is away)."""
    topic_prefix: str = ""
    """Put before every topic ('' keeps the FIWARE convention `/<apikey>/...`)."""
    session_expiry: int = 7 * 86400
    """Seconds the broker keeps the session of a disconnected agent."""
    receive_maximum: int = 1000
    """Messages the broker may send without an acknowledgement (the agent's window)."""
    batch_size: int = 500
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    command_poll: float = 1.0
    """How often pending commands written by other processes are looked for (seconds)."""


@dataclass(frozen=True, slots=True)
class Topic:
    """What a device topic says."""

    api_key: str
    device_id: str
    kind: str
    attribute: str | None = None
    payload_format: PayloadFormat | None = None


def subscriptions(prefix: str = "") -> list[str]:
    """The topic filters the agent subscribes to."""
    filters = []
    for lead in ("", "/json", "/ul"):
        base = f"{prefix}{lead}/+/+"
        filters += [f"{base}/attrs", f"{base}/attrs/+", f"{base}/cmdexe"]
    return filters


def parse_topic(topic: str, prefix: str = "") -> Topic | None:
    """Read a device topic (None if it is not one of the convention's)."""
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    if len(parts) < 4 or parts[0] != "":
        return None
    payload_format = _FORMATS.get(parts[1]) if len(parts) >= 5 else None
    if payload_format is not None and parts[4] in (ATTRS, CMDEXE):
        parts = ["", *parts[2:]]
    _, api_key, device_id, kind, *rest = parts
    if not api_key or not device_id or kind not in (ATTRS, CMDEXE) or len(rest) > 1:
        return None
    if kind == CMDEXE and rest:
        return None
    attribute = rest[0] if rest else None
    if attribute == "":
        return None
    return Topic(api_key, device_id, kind, attribute, payload_format)


def masked(topic: Topic, prefix: str = "") -> str:
    """The topic with the key hidden, as dead letters keep it."""
    lead = "" if topic.payload_format is None else f"/{topic.payload_format.value}"
    tail = f"/{topic.attribute}" if topic.attribute is not None else ""
    return f"{prefix}{lead}/***/{topic.device_id}/{topic.kind}{tail}"


def client_for(options: MqttOptions, *, clean: bool = False) -> aiomqtt.Client:
    """Build the agent's MQTT 5 client: persistent session, manual acknowledgements."""
    url = urlsplit(options.url)
    if url.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"the MQTT URL must start with mqtt:// or mqtts://, not {options.url!r}")
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0 if clean else options.session_expiry
    properties.ReceiveMaximum = options.receive_maximum
    client = aiomqtt.Client(
        url.hostname or "127.0.0.1",
        url.port or (8883 if url.scheme == "mqtts" else 1883),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        identifier=options.client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=clean,
        properties=properties,
        tls_context=ssl.create_default_context() if url.scheme == "mqtts" else None,
        logger=None,
    )
    # aiomqtt acknowledges on receipt; the paho client it wraps can leave that to us.
    _paho(client).manual_ack_set(True)
    return client


def _paho(client: aiomqtt.Client) -> Any:
    return client._client  # the only way to manual acknowledgements


def _waiting(client: aiomqtt.Client) -> asyncio.Queue[aiomqtt.Message]:
    # Drain what arrived without a task per message (aiomqtt's iterator makes one each).
    queue: asyncio.Queue[aiomqtt.Message] = client._queue
    return queue


async def forget_session(options: MqttOptions) -> None:
    """Drop the broker's session of this client id (what it queued for the agent is lost)."""
    async with client_for(options, clean=True):
        pass


class MqttSouthbound:
    """Worker: receives device messages over MQTT and publishes pending commands."""

    name = "mqtt-southbound"

    def __init__(
        self,
        agent: IotAgent,
        devices: DeviceService,
        commands: CommandBook,
        options: MqttOptions,
    ) -> None:
        self.agent = agent
        self.devices = devices
        self.commands = commands
        self.options = options
        self.connected = asyncio.Event()
        """Set while subscribed (tests wait for it)."""
        self._wake: asyncio.Event | None = None
        self._listening = False

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop`, reconnecting with back-off when the broker goes away."""
        delay = self.options.reconnect_min
        self._listen_for_commands()
        while not stop.is_set():
            try:
                await self._connected(stop)
                continue  # returns only once stopped
            except aiomqtt.MqttError as error:
                log.warning("MQTT connection lost; retrying", error=str(error), in_seconds=delay)
            except Exception:
                # The bus or the database failed: what was not acknowledged comes again.
                log.exception("MQTT southbound failed; reconnecting", in_seconds=delay)
            if self.connected.is_set():
                delay = self.options.reconnect_min
            self.connected.clear()
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, self.options.reconnect_max)

    def _listen_for_commands(self) -> None:
        if self._listening:
            return
        loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        self.commands.on_new(wake_up)
        self._listening = True

    async def _connected(self, stop: asyncio.Event) -> None:
        async with client_for(self.options) as client:
            for topic_filter in subscriptions(self.options.topic_prefix):
                await client.subscribe(topic_filter, qos=1)
            self.connected.set()
            log.info("MQTT southbound subscribed", client_id=self.options.client_id)
            tasks = [
                asyncio.create_task(self._receive(client), name="mqtt-receive"),
                asyncio.create_task(self._publish_commands(client), name="mqtt-commands"),
                asyncio.create_task(stop.wait(), name="mqtt-stop"),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.connected.clear()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    # -- receiving --------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        messages = aiter(client.messages)
        waiting = _waiting(client)
        while True:
            batch = [await anext(messages)]
            while len(batch) < self.options.batch_size:
                try:
                    batch.append(waiting.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await self.handle(batch)
            paho = _paho(client)
            for message in batch:
                paho.ack(message.mid, message.qos)

    async def handle(self, batch: list[aiomqtt.Message]) -> None:
        """Run a batch of messages through the agent (readings on the bus, or dead letters)."""
        inbound: list[Inbound] = []
        for message in batch:
            topic = parse_topic(message.topic.value, self.options.topic_prefix)
            if topic is None:
                log.warning("message on a topic that is no device's", topic=message.topic.value)
                continue
            payload = message.payload
            inbound.append(
                Inbound(
                    source=SOURCE,
                    api_key=topic.api_key,
                    device_id=topic.device_id,
                    payload=payload if isinstance(payload, bytes) else str(payload).encode(),
                    received_at=self.agent.now(),
                    kind=topic.kind,
                    attribute=topic.attribute,
                    payload_format=topic.payload_format,
                    topic=masked(topic, self.options.topic_prefix),
                )
            )
        await self.agent.accept(inbound)

    # -- commands ---------------------------------------------------------------------------

    async def _publish_commands(self, client: aiomqtt.Client) -> None:
        wake = self._wake or asyncio.Event()
        while True:
            wake.clear()
            claimed = await asyncio.to_thread(self.commands.claim)
            for command in claimed:
                device = await asyncio.to_thread(
                    self.devices.device_for_replay, command.tenant, command.device_id
                )
                if device is None or device.command_key is None:
                    why = "the device is gone" if device is None else "no key to address it"
                    if device is not None:
                        await asyncio.to_thread(self.commands.failed, device, command, why)
                    continue
                topic = f"{self.options.topic_prefix}/{device.command_key}/{device.id}/cmd"
                await client.publish(topic, command_payload(device, command), qos=1)
                await asyncio.to_thread(self.commands.delivered, device, command)
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self.options.command_poll)
