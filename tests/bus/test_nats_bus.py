"""What only the NATS JetStream bus promises: durable consumers across connections, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from smartcity.bus.base import Outgoing, Received
from smartcity.bus.nats import NatsBus, redacted
from tests.bus.conftest import _delete_stream, nats_url, require_nats, run

pytestmark = pytest.mark.nats


@pytest.fixture
def stream() -> Iterator[tuple[str, str]]:
    """Yield a fresh (stream name, subject prefix), deleted afterwards."""
    require_nats()
    token = uuid.uuid4().hex[:12]
    name, prefix = f"test_{token}", f"t{token}"
    yield name, prefix
    run(_delete_stream(name, prefix), timeout=30)


def test_a_consumer_that_reconnects_continues_where_the_old_one_left_off(
    stream: tuple[str, str],
) -> None:
    name, prefix = stream

    async def scenario() -> None:
        first = NatsBus(nats_url(), name, [f"{prefix}.>"])
        await first.start()
        await first.publish_many([Outgoing(f"{prefix}.x", b"%d" % i) for i in range(10)])
        consumer = await first.consumer(f"{prefix}.>", "writer")
        taken: list[Received] = []
        while len(taken) < 4:
            taken.extend(await consumer.fetch(4 - len(taken), 5.0))
        for message in taken:
            await message.ack()
        await first.close()  # the process stops

        second = NatsBus(nats_url(), name, [f"{prefix}.>"])  # ... and starts again
        await second.start()
        again = await second.consumer(f"{prefix}.>", "writer")
        rest: list[Received] = []
        while len(rest) < 6:
            batch = await again.fetch(10, 5.0)
            assert batch, "the durable consumer lost its position"
            rest.extend(batch)
        assert [m.data for m in rest] == [b"%d" % i for i in range(4, 10)]
        assert {m.delivery_count for m in rest} == {1}
        for message in rest:
            await message.ack()
        assert await again.fetch(10, 0.3) == []
        await second.close()

    run(scenario())


def test_start_twice_and_a_changed_subject_list_updates_the_stream(
    stream: tuple[str, str],
) -> None:
    name, prefix = stream

    async def scenario() -> None:
        bus = NatsBus(nats_url(), name, [f"{prefix}.a.>"])
        await bus.start()
        await bus.start()
        with pytest.raises(ValueError, match="no stream holds"):
            await bus.publish(f"{prefix}.b.x", b"b")
        await bus.close()
        wider = NatsBus(nats_url(), name, [f"{prefix}.a.>", f"{prefix}.b.>"])
        await wider.start()
        await wider.publish(f"{prefix}.b.x", b"b")
        consumer = await wider.consumer(f"{prefix}.b.>", "g")
        (message,) = await consumer.fetch(1, 5.0)
        assert message.data == b"b"
        await message.ack()
        await wider.close()

    run(scenario())


class CuttingProxy:
    """A TCP proxy to the NATS server that can cut every connection through it at once."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.cuts = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"nats://127.0.0.1:{port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        self.writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )
        self.writers.difference_update((writer, upstream_writer))

    def cut(self) -> None:
        """Drop every connection in both directions, as a network failure would."""
        self.cuts += 1
        for writer in list(self.writers):
            writer.transport.abort()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CuttingProxy]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self.cut()
            self.server.close()


def test_reconnects_lose_no_acknowledged_publish_and_store_none_twice(
    stream: tuple[str, str],
) -> None:
    name, prefix = stream
    host, port = nats_url().removeprefix("nats://").split(":")

    async def scenario() -> None:
        async with CuttingProxy(host, int(port)).running() as proxy:
            bus = NatsBus(proxy.url, name, [f"{prefix}.>"], confirm_timeout=1.0)
            await bus.start()
            confirmed: list[str] = []

            async def publish() -> None:
                for chunk in range(40):
                    ids = [f"r{chunk}-{i}" for i in range(50)]
                    await bus.publish_many(
                        [Outgoing(f"{prefix}.x", i.encode(), msg_id=i) for i in ids]
                    )
                    confirmed.extend(ids)
                    await asyncio.sleep(0.02)  # spread over the cuts

            publishing = asyncio.create_task(publish())
            while not publishing.done() and proxy.cuts < 3:
                await asyncio.sleep(0.15)
                proxy.cut()
            await publishing
            assert proxy.cuts >= 1
            await bus.close()

        reader = NatsBus(nats_url(), name, [f"{prefix}.>"])
        await reader.start()
        consumer = await reader.consumer(f"{prefix}.>", "check")
        stored: list[str] = []
        while batch := await consumer.fetch(500, 1.0):
            stored.extend(m.data.decode() for m in batch)
            for message in batch:
                await message.ack()
        await reader.close()
        assert len(confirmed) == 2000
        assert sorted(stored) == sorted(confirmed)  # every one kept, none twice

    run(scenario(), timeout=180)


def test_credentials_are_not_logged() -> None:
    assert redacted("nats://user:secret@nats.example:4222") == "nats://nats.example:4222"
    assert redacted("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
