"""The MQTT southbound against the real Mosquitto: readings in JSON and UltraLight, dead letters,
commands round trip with a device played by a real MQTT client, and a restart that loses nothing.

Each test has its own client id, topic prefix and tenant, so parallel runs never meet; the
broker's session of the test's agent is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.auth.principal import Caller
from smartcity.broker.temporal_params import TemporalOptions
from smartcity.config import Settings
from smartcity.core.clock import ManualClock, isoformat
from smartcity.core.errors import ResourceNotFound
from smartcity.ingest.agent import Inbound, Outcome
from smartcity.ingest.mqtt import MqttOptions, MqttSouthbound, forget_session, parse_topic
from smartcity.platform import Platform, build_platform
from smartcity.storage.deadletters import DeadLetterFilter
from tests.bus.conftest import require_nats
from tests.conftest import check_service
from tests.iot_support import BusTap, air_sensor, eventually

T = TypeVar("T")
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
KEY = "changdong-air"
SECRET = "test-secret-for-signing-bearer-tokens-0123456789"


def run(scenario: Coroutine[Any, Any, T], within: float = 120.0) -> T:
    """Run one scenario on a fresh event loop; a hang fails instead of blocking the run."""
    return asyncio.run(asyncio.wait_for(scenario, within))


def _probe_mosquitto() -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex}")
    client.connect(MQTT_HOST, MQTT_PORT, keepalive=5)
    client.disconnect()


@dataclass
class MqttCity:
    """One test's settings, tenant and topics, and the platforms it built."""

    settings: Settings
    tenant: str
    prefix: str
    platforms: list[Platform] = field(default_factory=list)

    def platform(self, clock: ManualClock | None = None, **changes: Any) -> Platform:
        built = build_platform(self.settings.model_copy(update=changes), clock)
        self.platforms.append(built)
        return built

    def topic(self, device_id: str, kind: str = "attrs", key: str = KEY, lead: str = "") -> str:
        return f"{self.prefix}{lead}/{key}/{device_id}/{kind}"

    def caller(self) -> Caller:
        return Caller.system(self.tenant)


@pytest.fixture
def city(tmp_path: Path, shared_data: Path) -> Iterator[MqttCity]:
    check_service("Mosquitto", _probe_mosquitto)
    token = uuid.uuid4().hex[:12]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'city.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(shared_data / "smart-data-models"),
        auth_secret=SECRET,
        notifications_enabled=False,
        ingest_schema_dirs=[str(shared_data / "smart-data-models")],
        ingest_mqtt_enabled=True,
        ingest_mqtt_client_id=f"test-agent-{token}",
        ingest_mqtt_topic_prefix=f"/test-{token}",
        ingest_mqtt_session_expiry=300,
    )
    city = MqttCity(settings, f"t{token}", f"/test-{token}")
    yield city
    for platform in city.platforms:
        platform.close()
    run(forget_session(MqttOptions(client_id=settings.ingest_mqtt_client_id)), within=30)


@asynccontextmanager
async def agent_running(platform: Platform) -> AsyncIterator[MqttSouthbound]:
    """Run the platform's workers (the MQTT southbound among them) until the block ends."""
    stop = asyncio.Event()
    workers = asyncio.create_task(platform.run_workers(stop))
    southbound = platform.iot.mqtt
    assert southbound is not None
    try:
        await asyncio.wait_for(southbound.connected.wait(), 10)
        yield southbound
    finally:
        stop.set()
        await workers


@asynccontextmanager
async def device_client(name: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=f"{name}-{uuid.uuid4().hex}") as c:
        yield c


def test_topics_of_the_convention_are_read() -> None:
    topic = parse_topic("/k1/lamp-7/attrs")
    assert topic is not None
    assert (topic.api_key, topic.device_id, topic.kind, topic.attribute) == (
        "k1",
        "lamp-7",
        "attrs",
        None,
    )
    single = parse_topic("/json/k1/lamp-7/attrs/t")
    assert single is not None
    assert (single.payload_format, single.attribute) == ("json", "t")
    answer = parse_topic("/p/ul/k1/lamp-7/cmdexe", "/p")
    assert answer is not None
    assert (answer.kind, answer.payload_format) == ("cmdexe", "ul")
    for other in ("/k1/lamp-7/cmd", "k1/lamp-7/attrs", "/k1/attrs", "/q/k1/lamp-7/attrs"):
        assert parse_topic(other, "/p" if other.startswith("/q") else "") is None


def test_json_and_ultralight_readings_arrive_on_the_bus(city: MqttCity) -> None:
    platform = city.platform()
    devices = platform.iot.devices
    devices.register(city.caller(), air_sensor("air-json", KEY))
    devices.register(city.caller(), air_sensor("air-ul", KEY, protocol="ul"))
    tap = BusTap(platform.bus, f"ingest.readings.{city.tenant}", "test")

    async def scenario() -> None:
        async with agent_running(platform), device_client("sensor") as sensor:
            await sensor.publish(city.topic("air-json"), b'{"t": 21.5, "h": 40}', qos=1)
            await sensor.publish(city.topic("air-ul"), b"t|20|h|30#t|20.5", qos=1)
            await sensor.publish(city.topic("air-ul", "attrs/t"), b"19.5", qos=1)
            await sensor.publish(city.topic("air-ul", lead="/ul"), b"h|35", qos=1)
            await sensor.publish(
                city.topic("air-json", lead="/json"), b'[{"t": 1}, {"t": 2}]', qos=1
            )
            readings = await tap.readings(7)
            values = sorted(
                (r.device_id or "", name, attribute["value"])
                for r in readings
                for name, attribute in r.attributes.items()
            )
            assert values == [
                ("air-json", "relativeHumidity", 0.4),
                ("air-json", "temperature", 1),
                ("air-json", "temperature", 2),
                ("air-json", "temperature", 21.5),
                ("air-ul", "relativeHumidity", 0.3),
                ("air-ul", "relativeHumidity", 0.35),
                ("air-ul", "temperature", 19.5),
                ("air-ul", "temperature", 20),
                ("air-ul", "temperature", 20.5),
            ]
            assert {r.source for r in readings} == {"mqtt"}
            assert {r.tenant for r in readings} == {city.tenant}
            # The ingest writer stores them: current state and temporal history.
            await eventually(lambda: len(_history(platform, city, "air-json")) == 3)
            assert sorted(_history(platform, city, "air-json")) == [1, 2, 21.5]
            assert sorted(_history(platform, city, "air-ul")) == [19.5, 20, 20.5]
            stored = platform.entities.retrieve(city.caller(), _entity_id("air-ul"))
            assert stored.attrs[_vocab("relativeHumidity")][0]["value"] == 0.35
            await platform.iot.sightings.flush()
            seen = devices.get(city.caller(), "air-ul")
            assert seen.health == "ok"
            assert seen.last_seen is not None

    run(scenario())


def test_bad_input_over_mqtt_becomes_dead_letters_without_the_key(city: MqttCity) -> None:
    platform = city.platform()
    platform.iot.devices.register(city.caller(), air_sensor("air-1", KEY))

    def letters(reason: str) -> list[Any]:
        where = DeadLetterFilter(reason=reason)
        return platform.deadletters.page(city.caller(), where, limit=10).letters

    async def scenario() -> None:
        async with agent_running(platform), device_client("sensor") as sensor:
            await sensor.publish(city.topic("air-1", key="stolen-key"), b'{"t": 1}', qos=1)
            await sensor.publish(city.topic("air-9"), b'{"t": 2}', qos=1)
            await sensor.publish(city.topic("air-1"), b'{"t": ', qos=1)
            await sensor.publish(city.topic("air-1"), b'{"t": 1e400}', qos=1)
            await sensor.publish(city.topic("air-1"), b'{"pm": 3}', qos=1)
            await eventually(lambda: platform.iot.agent.stats.received >= 5)

    run(scenario())
    (bad_key,) = letters("bad-key")
    assert bad_key.topic == f"{city.prefix}/***/air-1/attrs"
    assert "stolen-key" not in str(bad_key.meta)
    (unknown,) = letters("unknown-device")
    assert (unknown.device_id, unknown.payload) == ("air-9", b'{"t": 2}')
    unparsable = letters("unparsable")
    assert sorted(letter.payload for letter in unparsable) == [b'{"t": ', b'{"t": 1e400}']
    (unmapped,) = letters("unmapped")
    assert "it sent pm; mapped fields are t, h, f" in unmapped.message


def test_commands_round_trip_with_a_device_on_mqtt(city: MqttCity) -> None:
    platform = city.platform()
    devices = platform.iot.devices
    lamp = air_sensor("lamp-7", KEY, protocol="ul", commands=["dim", "switch"])
    devices.register(city.caller(), lamp)
    json_lamp = air_sensor("lamp-8", KEY, commands=["dim"])
    devices.register(city.caller(), json_lamp)

    async def scenario() -> None:
        async with agent_running(platform), device_client("lamp") as device:
            await device.subscribe(city.topic("+", "cmd"), qos=1)
            sent = devices.send_command(city.caller(), "lamp-7", "dim", {"level": 30})
            async with asyncio.timeout(10):
                message = await anext(aiter(device.messages))
            assert message.topic.value == city.topic("lamp-7", "cmd")
            assert message.payload == b"lamp-7@dim|level=30"
            await eventually(lambda: _status(platform, city, sent.id) == "delivered")
            await device.publish(city.topic("lamp-7", "cmdexe"), b"lamp-7@dim|dimmed to 30%", qos=1)
            await eventually(lambda: _status(platform, city, sent.id) == "ok")
            other = devices.send_command(city.caller(), "lamp-8", "dim", {"level": 10})
            async with asyncio.timeout(10):
                message = await anext(aiter(device.messages))
            assert orjson.loads(message.payload) == {"dim": {"level": 10}}
            failure = b'{"dim": {"status": "error", "info": "driver fault"}}'
            await device.publish(city.topic("lamp-8", "cmdexe"), failure, qos=1)
            await eventually(lambda: _status(platform, city, other.id) == "error")

    run(scenario())
    (command,) = devices.command_history(city.caller(), "lamp-7", 10)
    assert (command.status, command.info) == ("ok", "dimmed to 30%")
    entity = platform.entities.retrieve(city.caller(), "urn:ngsi-ld:Device:lamp-7")
    status = entity.attrs[_vocab("dim_status")][0]
    info = entity.attrs[_vocab("dim_info")][0]
    assert (status["value"], info["value"]) == ("OK", "dimmed to 30%")


def test_a_command_nobody_answers_expires(city: MqttCity) -> None:
    clock = ManualClock(datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    platform = city.platform(clock=clock, ingest_command_timeout=30)
    devices = platform.iot.devices
    devices.register(city.caller(), air_sensor("lamp-7", KEY, commands=["dim"]))

    async def scenario() -> None:
        async with agent_running(platform):
            sent = devices.send_command(city.caller(), "lamp-7", "dim", 30)
            await eventually(lambda: _status(platform, city, sent.id) == "delivered")
            clock.advance(timedelta(seconds=31))
            expired = await asyncio.to_thread(platform.iot.commands.expire)
            assert [c.id for c in expired] == [sent.id]

    run(scenario())
    entity = platform.entities.retrieve(city.caller(), "urn:ngsi-ld:Device:lamp-7")
    assert entity.attrs[_vocab("dim_status")][0]["value"] == "EXPIRED"


def _status(platform: Platform, city: MqttCity, command_id: str) -> str:
    command = platform.iot.commands.store.command(city.tenant, command_id)
    return "" if command is None else command.status


def _entity_id(device_id: str) -> str:
    return f"urn:ngsi-ld:AirQualityObserved:{device_id}"


def _history(platform: Platform, city: MqttCity, device_id: str) -> list[Any]:
    """The temperatures in the temporal history of a sensor's entity (none if not stored)."""
    try:
        page = platform.temporal.retrieve(
            city.caller(), _entity_id(device_id), TemporalOptions(), platform.contexts.resolve(None)
        )
    except ResourceNotFound:
        return []
    instances = page.bodies[0].get("temperature", [])
    return [instance["value"] for instance in instances]


def _vocab(term: str) -> str:
    return f"https://uri.etsi.org/ngsi-ld/default-context/{term}"


@pytest.mark.slow
def test_a_restart_mid_stream_loses_no_reading_the_broker_accepted(city: MqttCity) -> None:
    """Agent A stops while readings stream in; agent B (same client id, a new process's
    platform on the same NATS stream) gets the rest, including what arrived in between."""
    require_nats()
    stream = f"test_{uuid.uuid4().hex[:12]}"
    subjects = [f"ingest.readings.{city.tenant}", f"events.device.*.{city.tenant}"]
    nats: dict[str, Any] = {
        "bus_url": "nats://127.0.0.1:4222",
        "bus_stream": stream,
        "bus_subjects": subjects,
    }
    first = city.platform(**nats)
    first.iot.devices.register(city.caller(), air_sensor("air-1", KEY))
    total = 600
    start = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)

    def payload(number: int) -> bytes:
        moment = isoformat(start + timedelta(seconds=number))
        return orjson.dumps({"t": number, "TimeInstant": moment})

    async def publish(sensor: aiomqtt.Client, numbers: range) -> None:
        for number in numbers:
            await sensor.publish(city.topic("air-1"), payload(number), qos=1)  # broker has it

    async def scenario() -> list[int]:
        async with device_client("sensor") as sensor:
            async with agent_running(first):
                publishing = asyncio.create_task(publish(sensor, range(total // 2)))
                await eventually(lambda: first.iot.agent.stats.readings >= total // 4)
            # A stopped mid-stream, its last batch maybe unacknowledged; the broker keeps what
            # comes for the session: the rest of the first half, and the second half, sent
            # while no agent is connected at all.
            await publishing
            await publish(sensor, range(total // 2, total))
        stopped_at = first.iot.agent.stats.readings
        assert total // 4 <= stopped_at < total
        await first.bus.close()
        second = city.platform(**nats)
        try:
            async with agent_running(second):
                tap = BusTap(second.bus, f"ingest.readings.{city.tenant}", "test-count")
                readings = await tap.readings(total, within=60)
        finally:
            await second.bus.close()
            await _drop_stream(second)
        return sorted(r.attributes["temperature"]["value"] for r in readings)

    assert run(scenario()) == list(range(total))


async def _drop_stream(platform: Platform) -> None:
    bus = platform.bus
    await bus.start()
    delete = getattr(bus, "delete_stream")  # noqa: B009 - NATS only
    await delete()
    await bus.close()


def test_a_batch_that_fails_unexpectedly_comes_again_and_only_once(city: MqttCity) -> None:
    """An unexpected error while a batch is handled (the bus or the database failing, a bug)
    drops the connection before that batch is acknowledged: the broker gives it again to the
    agent when it reconnects, with what came meanwhile, and nothing acknowledged comes twice."""
    platform = city.platform()
    platform.iot.devices.register(city.caller(), air_sensor("air-1", KEY))
    agent = platform.iot.agent
    accept = agent.accept
    failed: list[int] = []
    total = 300

    async def fail_once(batch: Sequence[Inbound]) -> list[Outcome]:
        if not failed and agent.stats.readings >= total // 5:
            failed.append(len(batch))
            raise RuntimeError("injected: the bus went away while a batch was handled")
        return await accept(batch)

    agent.accept = fail_once  # type: ignore[method-assign]
    tap = BusTap(platform.bus, f"ingest.readings.{city.tenant}", "test-once")

    async def scenario() -> list[float]:
        async with agent_running(platform), device_client("sensor") as sensor:
            for number in range(total):
                body = orjson.dumps({"t": number})
                await sensor.publish(city.topic("air-1"), body, qos=1)
            await tap.fetch(total, within=60)
            # All of them came; one given twice would come within the next second or two.
            readings = await tap.readings(total + 1, within=2.0)
        return sorted(r.attributes["temperature"]["value"] for r in readings)

    assert run(scenario()) == list(range(total))
    assert len(failed) == 1  # the failure did happen once, with readings in its batch
    assert failed[0] >= 1
