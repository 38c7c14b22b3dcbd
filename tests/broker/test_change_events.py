"""Entity-change events: the message format, and the relay from the change log to the bus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.broker.change_events import (
    ChangeRelay,
    change_context,
    decode_change,
    encode_change,
)
from smartcity.bus.base import EventBus
from smartcity.core.causality import Context
from smartcity.core.entity import StoredEntity
from smartcity.storage.base import ChangeKind, ChangeRecord, Changes
from smartcity.storage.coordination import SqlCoordination
from smartcity.storage.sqlbase import SqlEntityStore
from tests.bus.conftest import BusUnderTest, run

VOCAB = "https://example.org/"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture
def store(backend_store: SqlEntityStore) -> SqlEntityStore:
    """An empty store of each backend (the shared `backend_store`)."""
    return backend_store


def write(store: SqlEntityStore, tenant: str, number: int, value: int) -> None:
    """Create or replace entity `number` of a tenant with one value."""
    entity = StoredEntity(
        id=f"urn:ngsi-ld:Thing:{number}",
        types=[VOCAB + "Thing"],
        attrs={VOCAB + "value": [{"type": "Property", "value": value}]},
        created_at="2026-11-27T10:00:00Z",
        modified_at=f"2026-11-27T10:00:{value % 60:02d}Z",
    )
    store.apply(tenant, [entity.id], lambda current: Changes(upserts=[entity]))


@given(
    seq=st.integers(min_value=1, max_value=2**53),
    tenant=st.text(max_size=10),
    kind=st.sampled_from(list(ChangeKind)),
    value=json_values,
    changed=st.lists(st.text(max_size=10), max_size=3),
)
def test_a_change_survives_its_message(
    seq: int, tenant: str, kind: ChangeKind, value: Any, changed: list[str]
) -> None:
    change = ChangeRecord(
        seq=seq,
        tenant=tenant,
        kind=kind,
        at="2026-11-27T10:00:00Z",
        entity=StoredEntity(
            "urn:ngsi-ld:Thing:1",
            [VOCAB + "Thing"],
            {VOCAB + "v": [{"type": "Property", "value": value}]},
            ["/Dobong"],
            "2026-11-27T09:00:00Z",
            "2026-11-27T10:00:00Z",
        ),
        changed=changed,
        previous={VOCAB + "v": [{"type": "Property", "value": 1}]},
        types_changed=True,
    )
    assert decode_change(encode_change(change)) == change


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b'{"seq": "x"}', b"\xff"])
def test_what_is_not_a_change_message_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an entity-change message"):
        decode_change(data)


def test_the_context_of_a_change_is_the_root_of_its_chain() -> None:
    context = change_context("db1", 42)
    assert context.parent_id is None
    assert Context.from_headers(context.headers()) == context
    child = context.child("firing:abc", "rule:hot")
    assert Context.from_headers(child.headers()) == child
    assert child.parent_id == context.id


async def _drain(bus: EventBus, subjects: str, group: str, expected: int) -> list[Any]:
    consumer = await bus.consumer(subjects, group, ack_wait=5)
    received: list[Any] = []
    for _ in range(200):
        batch = await consumer.fetch(100, 0.1)
        for message in batch:
            await message.ack()
        received.extend(batch)
        if len(received) >= expected and not batch:
            break
    await consumer.close()
    return received


def test_every_committed_change_is_published_once_in_log_order(
    store: SqlEntityStore, bus_under_test: BusUnderTest
) -> None:
    async def scenario() -> None:
        opened = await bus_under_test.open()
        prefix = bus_under_test.subject("changes")
        coordination = SqlCoordination(store)
        relay = ChangeRelay(
            store, coordination, opened, batch=7, subject_prefix=prefix, holder="relay"
        )
        for number in range(20):
            write(store, "" if number % 2 else "gangbuk", number, number)
        while await relay.step():
            pass
        # A relay that crashed before storing its position publishes the same changes again
        # when it restarts: the bus drops them by message id.
        coordination.save_position("bus.relay.entity-changed", 0)
        relay = ChangeRelay(
            store, coordination, opened, batch=7, subject_prefix=prefix, holder="relay"
        )
        while await relay.step():
            pass
        received = await _drain(opened, f"{prefix}.>", "check", 20)
        changes = [decode_change(message.data) for message in received]
        assert [c.seq for c in changes] == list(range(1, 21))
        assert {m.subject for m in received} == {f"{prefix}._", f"{prefix}.gangbuk"}
        assert changes[0].entity.id == "urn:ngsi-ld:Thing:0"
        assert changes[0].tenant == "gangbuk"
        first = Context.from_headers(received[0].headers)
        assert first == change_context(relay.database, 1)
        assert relay.position() == 20
        await bus_under_test.close_all()

    run(scenario())


def test_two_relays_on_one_database_publish_each_change_once(
    store: SqlEntityStore, bus_under_test: BusUnderTest
) -> None:
    async def scenario() -> None:
        opened = await bus_under_test.open()
        prefix = bus_under_test.subject("changes")
        relays = [
            ChangeRelay(
                store,
                SqlCoordination(store),
                opened,
                batch=5,
                poll_interval=0.05,
                lease_seconds=1.0,
                subject_prefix=prefix,
                holder=f"relay-{n}",
            )
            for n in range(2)
        ]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
        for number in range(40):
            await asyncio.to_thread(write, store, "", number, number)
            if number == 20:
                # The publishing relay stops (its lease given back); the other takes over.
                leader = next(index for index, relay in enumerate(relays) if relay.published)
                tasks[leader].cancel()
                await asyncio.gather(tasks[leader], return_exceptions=True)
        received = await _drain(opened, f"{prefix}.>", "check", 40)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        seqs = [decode_change(message.data).seq for message in received]
        assert sorted(seqs) == list(range(1, 41))
        assert len(seqs) == len(set(seqs))
        assert all(relay.published for relay in relays)
        await bus_under_test.close_all()

    run(scenario())
