"""The device catalog: every simulated device registers, and what it sends is accepted as is.

A quarter of an hour of a concert evening around dusk (lamps switching, spots changing, bins
weighing, crowds) goes through the IoT agent's own decoding, mapping and standardization
against the Smart Data Models schemas: not one message may be refused.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.ingest.agent import Inbound
from smartcity.ingest.codecs import decode_ul_measures
from smartcity.ingest.device_model import PayloadFormat
from smartcity.platform import Platform
from smartcity.sim.catalog import KINDS, NOISE, TRAFFIC_DETECTOR, Stamp
from smartcity.sim.engine import Simulation
from smartcity.sim.model import District
from smartcity.sim.provision import new_keys, prepare_contexts, provision
from smartcity.sim.scenario import load_scenario

SEOUL = ZoneInfo("Asia/Seoul")


def test_payloads_are_each_vendors_own() -> None:
    moment = datetime(2026, 11, 27, 19, 1, 5, tzinfo=SEOUL)
    values = {"vol": 12, "spd": 43.5, "occ": 18.25, "jam": False}
    assert TRAFFIC_DETECTOR.encode(values, moment, SEOUL) == (
        b"2026-11-27T19:01:05+09:00|vol|12|spd|43.5|occ|18.25|jam|0"
    )
    assert NOISE.encode({"lamax": 70.1, "laeq": 58.2}, moment, SEOUL) == (
        b'{"TimeInstant":"2026-11-27T10:01:05Z","laeq":58.2,"lamax":70.1}'
    )
    stamps = {kind.stamp for kind in KINDS}
    assert stamps == {Stamp.LOCAL, Stamp.UTC, Stamp.EPOCH}
    pairs = {(kind.protocol.value, kind.transport.value) for kind in KINDS}
    assert pairs == {("ul", "mqtt"), ("json", "mqtt"), ("json", "http"), ("ul", "http")}


def test_every_device_registers_and_every_message_is_accepted(
    changdong: District, sim_platform: Platform
) -> None:
    scenario = load_scenario("concert-night", changdong)
    simulation = Simulation(changdong, scenario, 3)
    prepare_contexts(sim_platform)
    keys = new_keys()
    report = provision(sim_platform.iot.devices, Caller.system(), simulation.devices, keys)
    assert len(report.created) == len(simulation.devices) == 1963
    simulation.skip_to(datetime(2026, 11, 27, 17, 38, tzinfo=SEOUL))
    emissions = [
        e
        for _, batch in simulation.run(datetime(2026, 11, 27, 17, 53, tzinfo=SEOUL))
        for e in batch
    ]
    kinds = Counter(e.kind.name for e in emissions)
    assert set(kinds) == {kind.name for kind in KINDS}
    agent = sim_platform.iot.agent
    attributes: Counter[str] = Counter()
    for emission in emissions:
        outcome = agent.handle(
            Inbound(
                source=emission.kind.transport.value,
                api_key=keys[emission.kind.name],
                device_id=emission.device.id,
                payload=emission.payload,
                received_at="2026-11-28T00:00:00Z",
                payload_format=emission.kind.protocol,
            )
        )
        assert outcome.rejected is None, (emission.device.id, emission.payload, outcome.rejected)
        (reading,) = outcome.readings
        assert reading.entity_id == emission.device.entity_id
        observed = {a["observedAt"] for a in reading.attributes.values()}
        assert observed == {isoformat(emission.at)}
        attributes.update(reading.attributes.keys())
        assert len(reading.attributes) == len(_fields(emission.payload, emission.kind.protocol))
    mapped = {f.attribute for kind in KINDS for f in kind.fields}
    assert set(attributes) == mapped
    # Event-driven reports happened: lamps switched on at dusk, spots changed, bins weighed.
    assert kinds["streetlight"] > 800 * 15 / 15
    assert kinds["parking-spot"] > 285 * 15 / 10


def _fields(payload: bytes, protocol: PayloadFormat) -> list[str]:
    if protocol == PayloadFormat.JSON:
        document = orjson.loads(payload)
        return [k for k in document if k not in ("TimeInstant", "ts", "t")]
    (measure,) = decode_ul_measures(payload)
    return list(measure.fields)
