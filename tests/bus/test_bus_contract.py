"""The EventBus contract, run against the in-process bus and NATS JetStream alike."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from smartcity.bus.base import Consumer, Outgoing, Received
from smartcity.bus.nats import NatsBus
from tests.bus.conftest import BusUnderTest, run, settle_all

SHORT_ACK_WAIT = 0.5
"""Long enough for a fetch-and-ack round trip, short enough that redelivery tests stay quick."""


def datas(messages: list[Received]) -> list[bytes]:
    return [message.data for message in messages]


async def fetch_all(consumer: Consumer, expected: int, wait: float = 5.0) -> list[Received]:
    """Fetch until `expected` messages came or a fetch returned nothing."""
    got: list[Received] = []
    while len(got) < expected:
        batch = await consumer.fetch(expected - len(got), wait)
        if not batch:
            break
        got.extend(batch)
    return got


def test_publish_fetch_ack(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        subject = bus_under_test.subject("readings", "tenant1")
        await bus.publish(subject, b"one", msg_id="m1", headers={"Source": "mqtt"})
        await bus.publish(subject, b"two")
        consumer = await bus.consumer(bus_under_test.subject(">"), "g", ack_wait=SHORT_ACK_WAIT)
        got = await fetch_all(consumer, 2)
        assert datas(got) == [b"one", b"two"]
        first = got[0]
        assert first.subject == subject
        assert dict(first.headers) == {"Source": "mqtt"}
        assert first.msg_id == "m1"
        assert [message.delivery_count for message in got] == [1, 1]
        await settle_all(got)
        # Acknowledged: not delivered again, even well after ack_wait.
        assert await consumer.fetch(10, SHORT_ACK_WAIT * 3) == []
        await consumer.close()
        await bus_under_test.close_all()

    run(scenario())


def test_fetch_waits_for_a_message_published_later(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        import asyncio

        bus = await bus_under_test.open()
        consumer = await bus.consumer(bus_under_test.subject(">"), "g")
        fetching = asyncio.create_task(consumer.fetch(5, 10.0))
        await asyncio.sleep(0.2)
        await bus.publish(bus_under_test.subject("late"), b"late")
        published = time.monotonic()
        got = await fetching
        assert datas(got) == [b"late"]
        # As soon as it came: not when the batch of 5 was full, nor when the wait was over.
        assert time.monotonic() - published < 2.0
        await settle_all(got)
        await bus_under_test.close_all()

    run(scenario())


def test_a_fetch_after_a_publish_returns_the_message(bus_under_test: BusUnderTest) -> None:
    # What was stored before a fetch began comes in it: a fetch that returns nothing means
    # the consumer is caught up (the rule partitions move their position on that).
    async def scenario() -> None:
        bus = await bus_under_test.open()
        consumer = await bus.consumer(bus_under_test.subject(">"), "g")
        for number in range(30):
            assert await consumer.fetch(10, 0.02) == []
            await bus.publish(bus_under_test.subject("one"), str(number).encode())
            got = await consumer.fetch(10, 0.02)
            assert datas(got) == [str(number).encode()]
            await settle_all(got)
        await bus_under_test.close_all()

    run(scenario())


def test_subject_filters(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        s = bus_under_test.subject
        for subject in (s("a", "x"), s("a", "y", "z"), s("b", "x"), s("a")):
            await bus.publish(subject, subject.encode())
        expected = {
            s("a", "*"): [s("a", "x")],
            s("a", ">"): [s("a", "x"), s("a", "y", "z")],
            s("*", "x"): [s("a", "x"), s("b", "x")],
            s("a"): [s("a")],
            s(">"): [s("a", "x"), s("a", "y", "z"), s("b", "x"), s("a")],
        }
        for index, (pattern, subjects) in enumerate(expected.items()):
            consumer = await bus.consumer(pattern, f"filter{index}")
            got = await fetch_all(consumer, len(subjects) + 1, wait=1.0)
            assert [message.subject for message in got] == subjects, pattern
            await settle_all(got)
        await bus_under_test.close_all()

    run(scenario())


def test_two_groups_each_get_every_message(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        first = await bus.consumer(bus_under_test.subject(">"), "first")
        second = await bus.consumer(bus_under_test.subject(">"), "second")
        sent = [f"m{i}".encode() for i in range(30)]
        await bus.publish_many([Outgoing(bus_under_test.subject("x"), data) for data in sent])
        for consumer in (first, second):
            got = await fetch_all(consumer, len(sent))
            assert datas(got) == sent
            await settle_all(got)
        await bus_under_test.close_all()

    run(scenario())


def test_members_of_one_group_share_the_messages(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        other_bus = await bus_under_test.open()  # NATS: another connection, as another process
        one = await bus.consumer(bus_under_test.subject(">"), "shared")
        two = await other_bus.consumer(bus_under_test.subject(">"), "shared")
        sent = {f"m{i}".encode() for i in range(40)}
        await bus.publish_many([Outgoing(bus_under_test.subject("x"), d) for d in sorted(sent)])
        got_one = await one.fetch(15, 5.0)
        got_two = await fetch_all(two, len(sent) - len(got_one))
        assert got_one
        assert got_two
        assert set(datas(got_one)).isdisjoint(datas(got_two))
        assert set(datas(got_one)) | set(datas(got_two)) == sent
        await settle_all(got_one + got_two)
        assert await one.fetch(10, 0.3) == []
        assert await two.fetch(10, 0.3) == []
        await bus_under_test.close_all()

    run(scenario())


def test_unacknowledged_message_is_delivered_again_after_ack_wait(
    bus_under_test: BusUnderTest,
) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        consumer = await bus.consumer(bus_under_test.subject(">"), "g", ack_wait=SHORT_ACK_WAIT)
        await bus.publish(bus_under_test.subject("x"), b"again")
        (first,) = await consumer.fetch(5, 5.0)
        assert first.delivery_count == 1
        (second,) = await consumer.fetch(5, 10.0)  # not acknowledged: back after ack_wait
        assert (second.data, second.delivery_count) == (b"again", 2)
        await second.ack()
        assert await consumer.fetch(5, SHORT_ACK_WAIT * 3) == []
        await bus_under_test.close_all()

    run(scenario())


def test_nak_delivers_again_at_once_or_after_the_delay(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        consumer = await bus.consumer(bus_under_test.subject(">"), "g", ack_wait=30.0)
        await bus.publish(bus_under_test.subject("x"), b"refused")
        (first,) = await consumer.fetch(5, 5.0)
        await first.nak()
        # Long before ack_wait: the nak asked for it.
        (second,) = await consumer.fetch(5, 5.0)
        assert (second.data, second.delivery_count) == (b"refused", 2)
        await second.nak(delay=2.0)
        assert await consumer.fetch(5, 0.3) == []  # not before the delay
        (third,) = await consumer.fetch(5, 10.0)
        assert third.delivery_count == 3
        await third.ack()
        await bus_under_test.close_all()

    run(scenario())


def test_term_is_never_delivered_again(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        consumer = await bus.consumer(bus_under_test.subject(">"), "g", ack_wait=SHORT_ACK_WAIT)
        await bus.publish(bus_under_test.subject("x"), b"poison")
        await bus.publish(bus_under_test.subject("x"), b"fine")
        poison, fine = await fetch_all(consumer, 2)
        await poison.term()
        await fine.ack()
        assert await consumer.fetch(5, SHORT_ACK_WAIT * 4) == []
        await bus_under_test.close_all()

    run(scenario())


def test_max_deliver_stops_redelivery(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        consumer = await bus.consumer(
            bus_under_test.subject(">"), "g", ack_wait=SHORT_ACK_WAIT, max_deliver=2
        )
        await bus.publish(bus_under_test.subject("x"), b"twice")
        (first,) = await consumer.fetch(5, 5.0)
        await first.nak()
        (second,) = await consumer.fetch(5, 5.0)
        assert second.delivery_count == 2
        # Neither a nak nor an expired ack_wait brings it back a third time.
        await second.nak()
        assert await consumer.fetch(5, SHORT_ACK_WAIT * 4) == []
        await bus_under_test.close_all()

    run(scenario())


def test_a_message_id_seen_before_is_dropped(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        subject = bus_under_test.subject("x")
        await bus.publish(subject, b"first", msg_id="reading-1")
        await bus.publish(subject, b"again", msg_id="reading-1")
        await bus.publish_many(
            [
                Outgoing(subject, b"second", msg_id="reading-2"),
                Outgoing(subject, b"once more", msg_id="reading-1"),
                Outgoing(subject, b"second again", msg_id="reading-2"),
                Outgoing(subject, b"no id"),
                Outgoing(subject, b"no id"),
            ]
        )
        consumer = await bus.consumer(bus_under_test.subject(">"), "g")
        got = await fetch_all(consumer, 10, wait=1.0)
        assert datas(got) == [b"first", b"second", b"no id", b"no id"]
        await settle_all(got)
        await bus_under_test.close_all()

    run(scenario())


def test_publish_many_keeps_the_order_of_each_subject(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        subjects = [bus_under_test.subject("readings", str(n)) for n in range(3)]
        sent = [Outgoing(subjects[i % 3], f"{i}".encode(), msg_id=f"id{i}") for i in range(900)]
        await bus.publish_many(sent)
        consumer = await bus.consumer(bus_under_test.subject(">"), "g")
        got = await fetch_all(consumer, len(sent))
        per_subject: dict[str, list[int]] = defaultdict(list)
        for message in got:
            per_subject[message.subject].append(int(message.data))
        assert per_subject == {
            subject: [i for i in range(900) if i % 3 == n] for n, subject in enumerate(subjects)
        }
        await settle_all(got)
        await bus_under_test.close_all()

    run(scenario())


def test_a_member_that_died_without_acking_loses_nothing(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        survivor_bus = await bus_under_test.open()
        doomed = await bus.consumer(bus_under_test.subject(">"), "g", ack_wait=SHORT_ACK_WAIT)
        await bus.publish_many([Outgoing(bus_under_test.subject("x"), b"%d" % i) for i in range(5)])
        taken = await fetch_all(doomed, 5)
        assert len(taken) == 5
        if isinstance(bus, NatsBus):
            await bus.close()  # the process dies: its connection goes, nothing is given back
        survivor = await survivor_bus.consumer(
            bus_under_test.subject(">"), "g", ack_wait=SHORT_ACK_WAIT
        )
        got = await fetch_all(survivor, 5, wait=10.0)
        assert sorted(datas(got)) == sorted(datas(taken))
        assert {message.delivery_count for message in got} == {2}
        await settle_all(got)
        await bus_under_test.close_all()

    run(scenario())


def test_a_member_that_leaves_gives_its_messages_to_the_others(
    bus_under_test: BusUnderTest,
) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        leaving = await bus.consumer(bus_under_test.subject(">"), "g", ack_wait=60.0)
        staying = await bus.consumer(bus_under_test.subject(">"), "g", ack_wait=60.0)
        await bus.publish(bus_under_test.subject("x"), b"handed over")
        assert len(await leaving.fetch(1, 5.0)) == 1
        await leaving.close()
        # Far sooner than ack_wait: closing gave it back.
        (got,) = await staying.fetch(1, 10.0)
        assert (got.data, got.delivery_count) == (b"handed over", 2)
        await got.ack()
        await bus_under_test.close_all()

    run(scenario())


def test_publishing_outside_the_stream_subjects_is_an_error(
    bus_under_test: BusUnderTest,
) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        with pytest.raises(ValueError, match="no stream holds"):
            await bus.publish(f"elsewhere{bus_under_test.prefix}.x", b"lost?")
        with pytest.raises(ValueError, match="invalid subject"):
            await bus.publish(bus_under_test.subject("*"), b"wildcard")
        await bus_under_test.close_all()

    run(scenario())


def test_a_group_keeps_its_filter(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        await bus.consumer(bus_under_test.subject("a", ">"), "g")
        with pytest.raises(ValueError, match="consumes"):
            await bus.consumer(bus_under_test.subject("b", ">"), "g")
        await bus_under_test.close_all()

    run(scenario())


def test_fetching_after_close_is_an_error(bus_under_test: BusUnderTest) -> None:
    async def scenario() -> None:
        bus = await bus_under_test.open()
        consumer = await bus.consumer(bus_under_test.subject(">"), "g")
        await consumer.close()
        await consumer.close()  # twice is harmless
        with pytest.raises(RuntimeError, match="closed"):
            await consumer.fetch(1, 0.1)
        await bus_under_test.close_all()

    run(scenario())
