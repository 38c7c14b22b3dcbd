"""The ingest writer: readings from the bus into the broker, acknowledged after the commit."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcity.bus.base import Consumer, EventBus, Outgoing, Received
from smartcity.bus.memory import InProcessBus
from smartcity.ingest.readings import Reading, subject_for
from smartcity.ingest.writer import GROUP, READINGS_FILTER, IngestWriter, WriterOptions
from smartcity.platform import Platform
from tests.bus.conftest import run
from tests.ingest.conftest import RecordedDeadLetters, history_values, make_reading

ENVIRONMENT_CONTEXT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
    "context.jsonld"
)
QUICK = WriterOptions(batch_wait=0.01, idle_wait=0.05, backoff_base=0.01, backoff_cap=0.05)
"""Back-offs short enough that a redelivery comes within the next fetch's wait."""


def writer_for(
    platform: Platform, dead_letters: RecordedDeadLetters, options: WriterOptions = QUICK
) -> IngestWriter:
    return IngestWriter(
        platform.bus, platform.entities, platform.contexts, dead_letters, platform.clock, options
    )


async def publish(bus: EventBus, readings: list[Reading]) -> None:
    await bus.publish_many(
        [Outgoing(subject_for(r.tenant), r.to_bytes(), msg_id=r.id) for r in readings]
    )


async def join(bus: EventBus, ack_wait: float = 30.0) -> Consumer:
    return await bus.consumer(READINGS_FILTER, GROUP, ack_wait=ack_wait, max_deliver=1000)


async def write_until_quiet(writer: IngestWriter, consumer: Consumer, wait: float = 1.0) -> int:
    """Fetch and write batches until a fetch brings nothing; return how many batches."""
    batches = 0
    while messages := await consumer.fetch(writer.options.batch_size, wait):
        await writer.write(messages)
        batches += 1
    return batches


def value_of(platform: Platform, entity: str, attribute: str, tenant: str = "") -> Any:
    stored = platform.store.get(tenant, f"urn:ngsi-ld:AirQualityObserved:{entity}")
    assert stored is not None, entity
    return stored.attrs[attribute][0]["value"]


CORE_TEMPERATURE = "https://uri.etsi.org/ngsi-ld/default-context/temperature"


def test_the_running_writer_stores_every_reading_and_acknowledges_it(
    any_platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    platform = any_platform
    readings = [
        make_reading(f"e{n % 10}", n, tenant=("" if n % 2 else "dobong")) for n in range(40)
    ]
    writer = writer_for(platform, dead_letters)

    async def scenario() -> None:
        await platform.start()
        stop = asyncio.Event()
        all_stored = asyncio.Event()
        writer.on_stored = lambda _: all_stored.set() if writer.counts.stored >= 40 else None
        running = asyncio.create_task(writer.run(stop))
        await publish(platform.bus, readings)
        await all_stored.wait()
        stop.set()
        await running
        # Everything was acknowledged: another member of the group finds nothing.
        other = await join(platform.bus, ack_wait=0.1)
        assert await other.fetch(100, 0.3) == []
        await platform.stop()

    run(scenario())
    assert writer.counts.stored == 40
    assert dead_letters.items == []
    for n in range(10):
        tenant = "" if n % 2 else "dobong"
        # Entity e{n} got the readings n, n+10, n+20, n+30: the last one is current.
        assert value_of(platform, f"e{n}", CORE_TEMPERATURE, tenant) == n + 30
        assert history_values(platform, f"e{n}", tenant) == [n, n + 10, n + 20, n + 30]


def test_readings_of_one_entity_in_one_batch_all_reach_the_history(
    platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    times = [f"2026-11-28T01:00:0{i}Z" for i in range(5)]
    readings = [make_reading("same", i, observed_at=t) for i, t in enumerate(times)]
    readings.append(make_reading("other", 99))
    writer = writer_for(platform, dead_letters)

    async def scenario() -> None:
        await publish(platform.bus, readings)
        consumer = await join(platform.bus)
        messages = await consumer.fetch(100, 1.0)
        assert len(messages) == 6  # one batch
        await writer.write(messages)

    run(scenario())
    assert writer.counts.stored == 6
    assert value_of(platform, "same", CORE_TEMPERATURE) == 4
    assert history_values(platform, "same") == [0, 1, 2, 3, 4]


def test_attribute_names_are_terms_of_the_readings_context(
    platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    writer = writer_for(platform, dead_letters)
    readings = [
        make_reading("sdm", 21.5, context=[ENVIRONMENT_CONTEXT]),
        make_reading("core", 20.0),
    ]

    async def scenario() -> None:
        await publish(platform.bus, readings)
        await write_until_quiet(writer, await join(platform.bus), wait=0.3)

    run(scenario())
    sdm = "https://smartdatamodels.org/dataModel.Environment/temperature"
    assert value_of(platform, "sdm", sdm) == 21.5
    assert value_of(platform, "core", CORE_TEMPERATURE) == 20.0


def test_what_is_not_a_reading_becomes_a_dead_letter_and_the_rest_is_stored(
    platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    writer = writer_for(platform, dead_letters)
    good = make_reading("good", 1.0)

    async def scenario() -> None:
        bus = platform.bus
        await bus.publish(subject_for("dobong"), b"\xff not json")
        await bus.publish(subject_for(""), orjson.dumps({"id": "r", "tenant": ""}))
        await publish(bus, [good])
        consumer = await join(bus, ack_wait=0.2)
        await write_until_quiet(writer, consumer, wait=0.5)  # longer than ack_wait: all settled

    run(scenario())
    assert value_of(platform, "good", CORE_TEMPERATURE) == 1.0
    assert dead_letters.reasons() == ["unparsable", "unparsable"]
    (raw, rejected), (raw2, _) = dead_letters.items
    assert (raw.source, raw.tenant, raw.payload) == ("writer", "dobong", b"\xff not json")
    assert raw.topic == "ingest.readings.dobong"
    assert rejected.stage == "store"
    assert "not a reading" in rejected.message
    assert raw2.tenant == ""
    assert writer.counts.stored == 1
    assert writer.counts.dead_letters == 2


def test_a_reading_the_broker_refuses_is_a_dead_letter_that_names_the_problem(
    platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    writer = writer_for(platform, dead_letters)
    refused = make_reading("bad", 1.0)
    refused = Reading(
        id=refused.id,
        tenant="",
        entity_id="not a URI",
        entity_type="AirQualityObserved",
        attributes=refused.attributes,
        received_at=refused.received_at,
        source="mqtt",
        device_id="device-bad",
    )
    no_value = make_reading("novalue", None)
    unknown_context = make_reading("ctx", 1.0, context=["https://example.org/unknown.jsonld"])
    fine = make_reading("fine", 2.0)

    async def scenario() -> None:
        await publish(platform.bus, [refused, no_value, unknown_context, fine])
        consumer = await join(platform.bus, ack_wait=0.2)
        await write_until_quiet(writer, consumer, wait=0.5)

    run(scenario())
    assert value_of(platform, "fine", CORE_TEMPERATURE) == 2.0
    assert sorted(dead_letters.reasons()) == ["broker", "broker", "broker"]
    by_entity = {raw.meta["entityId"]: (raw, rejected) for raw, rejected in dead_letters.items}
    raw, rejected = by_entity["not a URI"]
    assert raw.device_id == "device-bad"
    assert raw.payload == refused.to_bytes()  # replayable as it was
    assert raw.meta["readingId"] == refused.id
    assert "not a URI" in rejected.message
    assert "unknown.jsonld" in by_entity[unknown_context.entity_id][1].message
    assert platform.store.get("", no_value.entity_id) is None


def test_a_database_failure_delivers_the_batch_again_and_loses_nothing(
    platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    writer = writer_for(platform, dead_letters)
    readings = [make_reading(f"d{n}", n) for n in range(5)]
    with platform.store.writing() as cursor:  # the database refuses every new entity
        cursor.execute(
            "CREATE TRIGGER refuse_all BEFORE INSERT ON entities "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )

    async def scenario() -> list[Received]:
        await publish(platform.bus, readings)
        consumer = await join(platform.bus)
        first = await consumer.fetch(100, 1.0)
        await writer.write(first)
        again = await consumer.fetch(100, 2.0)  # long before ack_wait: naked with a back-off
        assert sorted(m.msg_id or "" for m in again) == sorted(r.id for r in readings)
        assert {m.delivery_count for m in again} == {2}
        with platform.store.writing() as cursor:  # the database is back
            cursor.execute("DROP TRIGGER refuse_all")
        await writer.write(again)
        return await consumer.fetch(100, 0.3)

    assert run(scenario()) == []
    assert dead_letters.items == []
    assert [value_of(platform, f"d{n}", CORE_TEMPERATURE) for n in range(5)] == list(range(5))
    assert writer.counts.retried == 5


def test_one_reading_the_database_keeps_refusing_does_not_hold_back_the_others(
    platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    writer = writer_for(platform, dead_letters)
    readings = [make_reading(f"p{n}", n) for n in range(6)]
    poison = readings[3]
    with platform.store.writing() as cursor:
        cursor.execute(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON entities "
            f"WHEN NEW.id = '{poison.entity_id}' BEGIN SELECT RAISE(ABORT, 'bad row'); END"
        )

    async def scenario() -> None:
        await publish(platform.bus, readings)
        await write_until_quiet(writer, await join(platform.bus))

    run(scenario())
    assert [raw.meta["readingId"] for raw, _ in dead_letters.items] == [poison.id]
    (raw, rejected) = dead_letters.items[0]
    assert rejected.reason == "broker"
    assert "bad row" in rejected.message
    assert raw.meta["deliveries"] == QUICK.isolate_after + 1
    for n in (0, 1, 2, 4, 5):
        assert value_of(platform, f"p{n}", CORE_TEMPERATURE) == n
    assert writer.counts.stored == 5


def test_a_reading_still_failing_at_its_last_delivery_becomes_a_dead_letter(
    platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    options = WriterOptions(
        batch_wait=0.01, backoff_base=0.01, backoff_cap=0.02, max_deliver=4, isolate_after=10
    )
    writer = writer_for(platform, dead_letters, options)
    with platform.store.writing() as cursor:
        cursor.execute(
            "CREATE TRIGGER refuse_all BEFORE INSERT ON entities "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    reading = make_reading("last", 1)

    async def scenario() -> None:
        await publish(platform.bus, [reading])
        consumer = await platform.bus.consumer(READINGS_FILTER, GROUP, max_deliver=4)
        await write_until_quiet(writer, consumer)

    run(scenario())
    ((raw, rejected),) = dead_letters.items
    assert (rejected.reason, raw.meta["deliveries"]) == ("store-failed", 4)
    assert "disk full" in rejected.message


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
reading_like = st.fixed_dictionaries(
    {
        "id": st.text(max_size=8),
        "tenant": st.sampled_from(["", "dobong"]),
        "entityId": st.sampled_from(["urn:ngsi-ld:Thing:1", "urn:ngsi-ld:Thing:2", "", "x"]),
        "entityType": st.sampled_from(["Thing", "", "https://example.org/T"]),
        "attributes": st.dictionaries(
            st.sampled_from(["a", "id", "type", "@context"]), json_values
        ),
        "receivedAt": st.just("2026-11-28T01:00:00Z"),
        "source": st.just("mqtt"),
    },
    optional={"context": json_values, "deviceId": json_values},
)
payloads = st.lists(
    st.binary(max_size=40) | json_values.map(orjson.dumps) | reading_like.map(orjson.dumps),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=payloads)
def test_whatever_arrives_the_writer_settles_every_message_and_never_crashes(
    payloads: list[bytes], platform: Platform
) -> None:
    dead_letters = RecordedDeadLetters()
    writer = writer_for(platform, dead_letters)

    async def scenario() -> None:
        bus = InProcessBus(["ingest.>"])
        writer.bus = bus
        await bus.publish_many([Outgoing(subject_for("dobong"), p) for p in payloads])
        consumer = await join(bus)
        await writer.write(await consumer.fetch(100, 0.5))

    run(scenario())
    # Each message was stored or refused into the dead letters; none was left to retry.
    assert writer.counts.stored + writer.counts.dead_letters == len(payloads)
    assert writer.counts.retried == 0
