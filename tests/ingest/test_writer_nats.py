"""Ingest writers on NATS JetStream: a writer killed mid-batch loses nothing, members share."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from smartcity.bus.base import Outgoing
from smartcity.bus.nats import NatsBus
from smartcity.ingest.readings import Reading, subject_for
from smartcity.ingest.writer import GROUP, IngestWriter, WriterOptions
from smartcity.platform import Platform
from tests.bus.conftest import _delete_stream, nats_url, require_nats, run
from tests.ingest.conftest import RecordedDeadLetters, history_values, make_reading

pytestmark = pytest.mark.nats


@pytest.fixture
def stream() -> Iterator[tuple[str, str]]:
    """Yield a fresh (stream name, subject prefix), deleted afterwards."""
    require_nats()
    token = uuid.uuid4().hex[:12]
    name, prefix = f"test_{token}", f"t{token}"
    yield name, prefix
    run(_delete_stream(name, prefix), timeout=30)


def test_a_writer_killed_mid_batch_loses_nothing_and_the_group_stores_each_reading_once(
    stream: tuple[str, str], platform: Platform, dead_letters: RecordedDeadLetters
) -> None:
    name, prefix = stream
    readings_filter = f"{prefix}.ingest.readings.>"
    readings = [
        make_reading(f"n{n % 60}", n, tenant=("" if n % 3 else "dobong")) for n in range(300)
    ]
    options = WriterOptions(batch_size=25, batch_wait=0.01, idle_wait=0.1, ack_wait=5.0)
    stored: list[Reading] = []
    all_stored = asyncio.Event()

    def record(batch: list[Reading]) -> None:
        stored.extend(batch)
        if len({r.id for r in stored}) >= len(readings):
            all_stored.set()

    def writer_on(bus: NatsBus) -> IngestWriter:
        return IngestWriter(
            bus,
            platform.entities,
            platform.contexts,
            dead_letters,
            platform.clock,
            options,
            subjects=readings_filter,
            on_stored=record,
        )

    def nats_bus() -> NatsBus:
        return NatsBus(nats_url(), name, [f"{prefix}.>"])

    async def scenario() -> None:
        publisher = nats_bus()
        await publisher.start()
        messages = [
            Outgoing(f"{prefix}.{subject_for(r.tenant)}", r.to_bytes(), msg_id=r.id)
            for r in readings
        ]
        await publisher.publish_many(messages)
        await publisher.publish_many(messages[:40])  # published twice: stored once

        doomed = nats_bus()
        await doomed.start()
        consumer = await doomed.consumer(readings_filter, GROUP, ack_wait=5.0, max_deliver=1000)
        taken = await consumer.fetch(25, 5.0)
        assert taken
        await doomed.close()  # killed with a batch in hand: no ack, no nak

        buses = [nats_bus(), nats_bus()]
        writers = [writer_on(bus) for bus in buses]
        stop = asyncio.Event()
        for bus in buses:
            await bus.start()
        running = [asyncio.create_task(writer.run(stop)) for writer in writers]
        await all_stored.wait()
        stop.set()
        await asyncio.gather(*running)
        for bus in [publisher, *buses]:
            await bus.close()

    run(scenario(), timeout=120)
    assert sorted(r.id for r in stored) == sorted(r.id for r in readings)
    assert dead_letters.items == []
    for n in range(60):
        # Every reading is in the history, once; the readings the killed writer held came back
        # after newer ones (at-least-once delivery does not keep the order across a failure).
        tenant = "" if n % 3 else "dobong"
        assert history_values(platform, f"n{n}", tenant) == list(range(n, 300, 60))
