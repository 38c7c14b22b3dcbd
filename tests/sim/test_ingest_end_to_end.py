"""The simulator through the real ingest path: MQTT via Mosquitto, the IoT agent, the bus, the
ingest writer, the broker. Counted, not sampled: every message sent is a stored reading (or the
dead letter its faulty device deserves), every entity holds its device's last report, and the
temporal history holds one instance per field sent.

Each test has its own MQTT client ids and topic prefix, so parallel runs never meet.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.entity import LOCATION
from smartcity.ingest.mqtt import MqttOptions, forget_session
from smartcity.ingest.writer import IngestWriter
from smartcity.platform import Platform, build_platform
from smartcity.sim.clock import SimClock
from smartcity.sim.codec_reading import fields_of
from smartcity.sim.emission import Emission
from smartcity.sim.engine import Simulation
from smartcity.sim.model import District
from smartcity.sim.provision import new_keys, prepare_contexts, provision
from smartcity.sim.runner import RunStats, SimulationRunner
from smartcity.sim.scenario import load_scenario
from smartcity.sim.seed import data_path
from smartcity.sim.transports import AgentSender, MqttSender, RoutingSender
from smartcity.storage.base import EntityQuery
from smartcity.storage.deadletters import DeadLetterFilter
from tests.conftest import check_service
from tests.sim.conftest import sim_settings

SEOUL = ZoneInfo("Asia/Seoul")
TERMS: dict[str, str] = json.loads(data_path("changdong-context.jsonld").read_text())["@context"]


def _probe_mosquitto() -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex}")
    client.connect("127.0.0.1", 1883, keepalive=5)
    client.disconnect()


@dataclass
class City:
    """A platform with its MQTT southbound on this test's own topics."""

    platform: Platform
    database: Path


@pytest.fixture
def city(tmp_path: Path, shared_data: Path) -> Iterator[City]:
    check_service("Mosquitto", _probe_mosquitto)
    token = uuid.uuid4().hex[:12]
    settings = sim_settings(
        tmp_path,
        shared_data,
        ingest_mqtt_enabled=True,
        ingest_mqtt_client_id=f"test-sim-agent-{token}",
        ingest_mqtt_topic_prefix=f"/test-sim-{token}",
        ingest_mqtt_session_expiry=300,
    )
    platform = build_platform(settings)
    yield City(platform, tmp_path / "city.db")
    platform.close()
    asyncio.run(forget_session(MqttOptions(client_id=settings.ingest_mqtt_client_id)))


@dataclass
class Run:
    """What a run sent, and what the platform did with it."""

    stats: RunStats
    emissions: list[Emission]
    stored: int
    readings: int


async def simulate(city: City, simulation: Simulation, until: datetime) -> Run:
    """Register the devices, run the simulation at full speed, wait until all is stored."""
    platform = city.platform
    prepare_contexts(platform)
    keys = new_keys()
    provision(platform.iot.devices, Caller.system(), simulation.devices, keys)
    stop = asyncio.Event()
    workers = asyncio.create_task(platform.run_workers(stop))
    sent: list[Emission] = []
    try:
        southbound = platform.iot.mqtt
        assert southbound is not None
        await asyncio.wait_for(southbound.connected.wait(), 15)
        agent = platform.iot.agent
        writer = next(w for w in platform.workers if isinstance(w, IngestWriter))
        settings = platform.settings
        mqtt = MqttSender(
            settings.ingest_mqtt_url,
            keys,
            topic_prefix=settings.ingest_mqtt_topic_prefix,
            client_id=f"test-sim-devices-{uuid.uuid4().hex[:8]}",
        )
        http = AgentSender(agent, keys)
        sender = RoutingSender(mqtt, http)

        class Recording(RoutingSender):
            async def send(self, batch: Any) -> None:
                sent.extend(batch)
                await super().send(batch)

        recording = Recording(mqtt, http)
        runner = SimulationRunner(
            simulation,
            SimClock(simulation.cursor, float("inf")),
            recording,
            until=until,
            backlog=lambda: (mqtt.sent + http.sent) - agent.stats.received,
            max_backlog=800,
        )
        stats = await runner.run(asyncio.Event())
        await sender.close()
        well_formed = stats.emitted - sum(stats.expected_refusals.values())
        deadline = time.monotonic() + 180
        while writer.counts.stored < well_formed and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # anything more would be a duplicate: give it time to show
        return Run(stats, sent, writer.counts.stored, agent.stats.readings)
    finally:
        stop.set()
        await workers


def history_instances(database: Path, start: datetime, end: datetime) -> int:
    """Count the history's instances observed in a window (static attributes are not)."""
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT count(*) FROM history_instances WHERE observed_at >= ? AND observed_at < ?",
            (int(start.timestamp() * 1_000_000), int(end.timestamp() * 1_000_000)),
        ).fetchone()
    return int(row[0])


def test_an_hour_of_concert_night_is_stored_reading_by_reading(
    city: City, changdong: District
) -> None:
    start = datetime(2026, 11, 27, 18, 30, tzinfo=SEOUL)
    end = datetime(2026, 11, 27, 19, 30, tzinfo=SEOUL)
    simulation = Simulation(changdong, load_scenario("concert-night", changdong), 11)
    simulation.skip_to(start)
    run = asyncio.run(asyncio.wait_for(simulate(city, simulation, end), 600))
    platform, system = city.platform, Caller.system()

    assert run.stats.emitted == len(run.emissions) > 15_000
    assert not run.stats.expected_refusals
    assert platform.deadletters.counts_by_reason(system, DeadLetterFilter()) == {}
    assert platform.iot.agent.stats.rejected == Counter()
    assert run.readings == run.stored == run.stats.emitted
    # Every kind of device reported over its own transport.
    assert set(run.stats.by_kind) == {
        "traffic-detector",
        "cctv-analytics",
        "parking-lot",
        "parking-spot",
        "streetlight",
        "food-waste-bin",
        "air-quality",
        "noise",
        "ble-beacon",
        "parking-enforcement",
        "signal-controller",
        "water-level",
        "weather-station",
        "sos-wearable",
    }
    # Every entity a device feeds holds what its device sent last.
    last: dict[str, Emission] = {}
    for emission in run.emissions:
        last[emission.device.id] = emission
    ids = sorted({e.device.entity_id for e in last.values()})
    stored = {
        entity.id: entity
        for start_at in range(0, len(ids), 500)
        for entity in platform.entities.query(
            system, EntityQuery(ids=ids[start_at : start_at + 500], limit=500)
        ).entities
    }
    assert sorted(stored) == ids
    by_entity: dict[str, list[Emission]] = defaultdict(list)
    for emission in last.values():
        by_entity[emission.device.entity_id].append(emission)
    for entity_id, emissions in by_entity.items():
        for emission in emissions:
            for native in fields_of(emission):
                attribute = next(f.attribute for f in emission.kind.fields if f.object_id == native)
                term = LOCATION if attribute == "location" else TERMS[attribute]  # a core term
                (instance,) = stored[entity_id].attrs[term]
                assert instance["observedAt"] == isoformat(emission.at), (entity_id, attribute)
    # The history holds one instance per field sent, no more, no fewer.
    fields = sum(len(fields_of(e)) for e in run.emissions)
    assert history_instances(city.database, start, end) == fields


def test_faulty_devices_give_the_dead_letters_they_should_and_nothing_else(
    city: City, changdong: District
) -> None:
    start = datetime(2026, 11, 25, 8, 29, tzinfo=SEOUL)
    end = datetime(2026, 11, 25, 8, 46, tzinfo=SEOUL)
    simulation = Simulation(changdong, load_scenario("device-faults", changdong), 2)
    simulation.skip_to(start)
    run = asyncio.run(asyncio.wait_for(simulate(city, simulation, end), 600))
    platform, system = city.platform, Caller.system()
    faulty = set(simulation.faults.faulty)
    assert len(faulty) == 3 + 2 + 1 + 2

    letters = platform.deadletters.page(system, DeadLetterFilter(), limit=500).letters
    assert Counter(letter.reason for letter in letters) == run.stats.expected_refusals
    assert set(run.stats.expected_refusals) == {"unparsable", "conversion"}
    assert {letter.device_id for letter in letters} <= faulty
    sources = {letter.source for letter in letters}
    assert sources == {"http", "mqtt"}  # the parking server and the lamp controllers
    refused = sum(run.stats.expected_refusals.values())
    assert run.stored == run.stats.emitted - refused

    kinds = {device: simulation.by_id[device].kind.name for device in faulty}
    silent = {device for device, kind in kinds.items() if kind == "air-quality"}
    stuck = {device for device, kind in kinds.items() if kind == "traffic-detector"}
    assert not [e for e in run.emissions if e.device.id in silent]
    for device in stuck:
        reports = [fields_of(e) for e in run.emissions if e.device.id == device]
        assert len(reports) == 17
        assert all(report == reports[0] for report in reports)
