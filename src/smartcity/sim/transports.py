"""How simulated devices reach the platform: MQTT to the broker, HTTP to the southbound.

MQTT devices publish to the broker (Mosquitto) on the FIWARE IoT-Agent topics
`/<apikey>/<deviceId>/attrs`, QoS 1, like the real devices would; the platform's MQTT southbound
picks them up there. HTTP devices POST to `/iot/json` or `/iot/d` with `?k=<apikey>&i=<deviceId>`
when the platform runs elsewhere (`HttpSender`). Inside the platform's own process they are
handed to the IoT agent as the HTTP route hands them (`AgentSender`): the same payload bytes,
key and device id, decoded, mapped, standardized and dead-lettered by the same code; only the
loopback socket, uvicorn and the framework are skipped, which would cost the simulator and the
server CPU on a two-core machine and measure nothing about the platform's ingestion.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit

import aiomqtt
import httpx
import orjson

from smartcity.core.errors import ConfigurationError
from smartcity.ingest.agent import Inbound, IotAgent
from smartcity.ingest.device_model import PayloadFormat, Transport
from smartcity.sim.catalog import DeviceKind
from smartcity.sim.emission import Emission

HTTP_ATTEMPTS: Final = 4
"""Tries of one request answered 429 before it counts as a failure."""
HTTP_PATHS: Final = {PayloadFormat.JSON: "/iot/json", PayloadFormat.ULTRALIGHT: "/iot/d"}
PUBLISH_CONCURRENCY: Final = 200
HTTP_CONCURRENCY: Final = 16


CommandHandler = Callable[[str, str, Any], None]
"""Takes a command a device received: device id, command name, arguments."""


class Sender(Protocol):
    """Sends emissions on to the platform; `close` releases the connection."""

    async def send(self, batch: Sequence[Emission]) -> None: ...

    async def close(self) -> None: ...


class MqttSender:
    """Publishes the MQTT devices' payloads to the broker, QoS 1, on the devices' topics."""

    def __init__(
        self, url: str, keys: Mapping[str, str], *, topic_prefix: str = "", client_id: str
    ) -> None:
        self.url = url
        self.keys = keys
        self.prefix = topic_prefix
        self.client_id = client_id
        self.client: aiomqtt.Client | None = None
        self.sent = 0
        self._connecting = asyncio.Lock()
        """One connection however many tasks ask at once (two with one client id: the broker
        would drop the first)."""

    async def connect(self) -> None:
        """Connect now (ConfigurationError saying what to do if the broker cannot be reached)."""
        try:
            await self._connect()
        except aiomqtt.MqttError as error:
            raise ConfigurationError(
                f"the simulator cannot reach the MQTT broker at {_redacted(self.url)} ({error}): "
                "start Mosquitto (apt-get install mosquitto) or set SMARTCITY_INGEST_MQTT_URL"
            ) from None

    async def _connect(self) -> aiomqtt.Client:
        async with self._connecting:
            return await self._connect_once()

    async def _connect_once(self) -> aiomqtt.Client:
        if self.client is None:
            url = urlsplit(self.url)
            if url.scheme not in ("mqtt", "mqtts"):
                raise ValueError(f"the MQTT URL must start with mqtt:// or mqtts://: {self.url!r}")
            client = aiomqtt.Client(
                url.hostname or "127.0.0.1",
                url.port or (8883 if url.scheme == "mqtts" else 1883),
                username=unquote(url.username) if url.username else None,
                password=unquote(url.password) if url.password else None,
                identifier=self.client_id,
                max_inflight_messages=PUBLISH_CONCURRENCY,
                tls_context=ssl.create_default_context() if url.scheme == "mqtts" else None,
            )
            # aiomqtt warns past 10 unacknowledged publishes; a device fleet has hundreds.
            client.pending_calls_threshold = PUBLISH_CONCURRENCY * 2
            await client.__aenter__()
            self.client = client
        return self.client

    def topic(self, emission: Emission) -> str:
        """Return the topic a device publishes its measures on."""
        key = self.keys[emission.kind.name]
        return f"{self.prefix}/{key}/{emission.device.id}/attrs"

    async def send(self, batch: Sequence[Emission]) -> None:
        """Publish a batch (in order; acknowledged by the broker before this returns)."""
        client = await self._connect()
        for start in range(0, len(batch), PUBLISH_CONCURRENCY):
            chunk = batch[start : start + PUBLISH_CONCURRENCY]
            await asyncio.gather(*(client.publish(self.topic(e), e.payload, qos=1) for e in chunk))
        self.sent += len(batch)

    async def listen(self, kinds: Sequence[DeviceKind], handler: CommandHandler) -> None:
        """Take the commands sent to devices of these kinds (`/<apikey>/+/cmd`) until cancelled.

        A command is `{"<name>": <arguments>}` (JSON devices); anything else is answered as an
        error at once, as a real controller would.
        """
        client = await self._connect()
        filters = {f"{self.prefix}/{self.keys[kind.name]}/+/cmd" for kind in kinds}
        for topic in sorted(filters):
            await client.subscribe(topic, qos=1)
        async for message in client.messages:
            device_id = str(message.topic).split("/")[-2]
            try:
                document = orjson.loads(bytes(message.payload))
            except (orjson.JSONDecodeError, TypeError):
                document = None
            if not isinstance(document, dict) or len(document) != 1:
                kind_key = str(message.topic).split("/")[-3]
                topic = f"{self.prefix}/{kind_key}/{device_id}/cmdexe"
                error = {"command": {"status": "error", "info": "not a JSON command"}}
                await client.publish(topic, orjson.dumps(error), qos=1)
                continue
            ((name, arguments),) = document.items()
            handler(device_id, str(name), arguments)

    async def answer(
        self, kind: DeviceKind, device_id: str, name: str, ok: bool, info: str
    ) -> None:
        """Publish a device's answer to a command on `/<apikey>/<deviceId>/cmdexe`."""
        client = await self._connect()
        result: Any = info if ok else {"status": "error", "info": info}
        topic = f"{self.prefix}/{self.keys[kind.name]}/{device_id}/cmdexe"
        await client.publish(topic, orjson.dumps({name: result}), qos=1)

    async def close(self) -> None:
        """Disconnect from the broker."""
        if self.client is not None:
            client, self.client = self.client, None
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


class AgentSender:
    """Hands the HTTP devices' payloads to the IoT agent of this process, as /iot/* does."""

    def __init__(self, agent: IotAgent, keys: Mapping[str, str]) -> None:
        self.agent = agent
        self.keys = keys
        self.sent = 0
        self.refused = 0

    async def send(self, batch: Sequence[Emission]) -> None:
        """Accept a batch through the agent (readings on the bus, refusals dead-lettered)."""
        received = self.agent.now()
        inbound = [
            Inbound(
                source="http",
                api_key=self.keys[e.kind.name],
                device_id=e.device.id,
                payload=e.payload,
                received_at=received,
                payload_format=e.kind.protocol,
                topic=HTTP_PATHS[e.kind.protocol],
            )
            for e in batch
        ]
        outcomes = await self.agent.accept(inbound)
        self.sent += len(batch)
        self.refused += sum(outcome.rejected is not None for outcome in outcomes)

    async def close(self) -> None:
        """Nothing to release."""


class HttpSender:
    """POSTs the HTTP devices' payloads to a platform's southbound over HTTP."""

    def __init__(self, base_url: str, keys: Mapping[str, str], timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.client = httpx.AsyncClient(timeout=timeout)
        self.limit = asyncio.Semaphore(HTTP_CONCURRENCY)
        self.sent = 0
        self.refused = 0
        self.throttled = 0
        """Requests answered 429 (too fast for the platform's per-device limit) and retried."""
        self.failures: list[str] = []

    async def _post(self, emission: Emission) -> None:
        path = HTTP_PATHS[emission.kind.protocol]
        params = {"k": self.keys[emission.kind.name], "i": emission.device.id}
        media = "application/json" if emission.kind.protocol == PayloadFormat.JSON else "text/plain"
        for attempt in range(HTTP_ATTEMPTS):
            async with self.limit:
                response = await self.client.post(
                    self.base_url + path,
                    params=params,
                    content=emission.payload,
                    headers={"Content-Type": media},
                )
            if response.status_code != 429 or attempt == HTTP_ATTEMPTS - 1:
                break
            # Too fast for the platform's per-device limit: wait as told, as a device would.
            self.throttled += 1
            await asyncio.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
        if response.status_code == 400:
            self.refused += 1  # kept as a dead letter by the platform
        elif response.status_code >= 300:
            self.failures.append(f"{emission.device.id}: HTTP {response.status_code}")

    async def send(self, batch: Sequence[Emission]) -> None:
        """POST a batch, several requests at a time."""
        await asyncio.gather(*(self._post(emission) for emission in batch))
        self.sent += len(batch)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


class RoutingSender:
    """Sends each emission by its device's transport: MQTT to one sender, HTTP to another."""

    def __init__(self, mqtt: Sender, http: Sender) -> None:
        self.mqtt = mqtt
        self.http = http

    async def send(self, batch: Sequence[Emission]) -> None:
        """Split a batch by transport and send both parts."""
        over_mqtt = [e for e in batch if e.kind.transport == Transport.MQTT]
        over_http = [e for e in batch if e.kind.transport == Transport.HTTP]
        if over_mqtt:
            await self.mqtt.send(over_mqtt)
        if over_http:
            await self.http.send(over_http)

    async def close(self) -> None:
        """Close both senders."""
        await self.mqtt.close()
        await self.http.close()


def command_link(sender: Sender) -> MqttSender | None:
    """Return the MQTT connection commands reach the devices through, if the sender has one."""
    if isinstance(sender, MqttSender):
        return sender
    if isinstance(sender, RoutingSender) and isinstance(sender.mqtt, MqttSender):
        return sender.mqtt
    return None
