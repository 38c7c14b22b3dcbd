"""PostgreSQL: a store's commit listeners hear the commits of other processes at once."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from smartcity.broker.change_events import ChangeRelay, decode_change
from smartcity.bus.memory import InProcessBus
from smartcity.storage.coordination import SqlCoordination
from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlincidents import SqlIncidentStore
from tests.conftest import postgres_url
from tests.storage.entity_factories import make_entity, prop
from tests.storage.test_incident_store import incident
from tests.storage.test_store_contract import put

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stores(postgres_schema: str) -> Iterator[Callable[..., PostgresEntityStore]]:
    """Open stores on the test schema (as other processes would), closed after the test."""
    opened: list[PostgresEntityStore] = []

    def open_store(schema: str = postgres_schema) -> PostgresEntityStore:
        store = PostgresEntityStore(postgres_url(), schema=schema, max_size=2)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


class Heard:
    """A commit listener that counts, and lets a test wait for a count."""

    def __init__(
        self, store: PostgresEntityStore, incidents: SqlIncidentStore | None = None
    ) -> None:
        self.count = 0
        self._changed = threading.Condition()
        (incidents or store).add_commit_listener(self)
        assert store.notifications.listening.wait(10), "the listening connection did not come up"

    def __call__(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_for(self, count: int, seconds: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= count, seconds)


def test_another_stores_commit_wakes_the_listeners_once_per_transaction(
    stores: Callable[..., PostgresEntityStore],
) -> None:
    listening, writing = stores(), stores()
    heard = Heard(listening)
    own = Heard(writing)
    spots = [make_entity(f"urn:ngsi-ld:ParkingSpot:n{n}", "ParkingSpot") for n in range(3)]
    put(writing, *spots)  # one transaction of three changes: one notification
    put(writing, make_entity("urn:ngsi-ld:ParkingSpot:n0", "ParkingSpot", count=prop(1)))
    assert heard.wait_for(2)
    time.sleep(0.5)  # a third (wrong) wake-up would have come by now
    assert heard.count == 2
    # The writer heard its own commits once each (directly), not again from the server.
    assert own.count == 2
    assert writing.notifications.heard == 0


def test_an_incident_written_elsewhere_wakes_the_incident_listeners_only(
    stores: Callable[..., PostgresEntityStore],
) -> None:
    listening, writing = stores(), stores()
    heard_entities = Heard(listening)
    heard_incidents = Heard(listening, SqlIncidentStore(listening))
    with SqlIncidentStore(writing).write() as tx:
        tx.insert(incident("INC-elsewhere"), [])
    assert heard_incidents.wait_for(1)
    put(writing, make_entity("urn:ngsi-ld:ParkingSpot:i", "ParkingSpot"))
    assert heard_entities.wait_for(1)
    time.sleep(0.5)
    assert (heard_incidents.count, heard_entities.count) == (1, 1)


def test_a_rolled_back_write_and_another_schema_wake_no_one(
    stores: Callable[..., PostgresEntityStore], postgres_schema: str
) -> None:
    listening = stores()
    heard = Heard(listening)
    other_schema = stores(f"{postgres_schema}_other")
    try:
        put(other_schema, make_entity("urn:ngsi-ld:ParkingSpot:x", "ParkingSpot"))

        def failing(_: object) -> object:
            raise RuntimeError("the plan fails after nothing was written")

        writing = stores()
        with pytest.raises(RuntimeError):
            writing.apply("", ["urn:ngsi-ld:ParkingSpot:y"], failing)  # type: ignore[arg-type]
        time.sleep(0.7)
        assert heard.count == 0
    finally:
        other_schema.close()
        with psycopg.connect(postgres_url(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(f"{postgres_schema}_other")
                )
            )


def test_the_relay_publishes_another_processs_change_without_waiting_for_its_poll(
    stores: Callable[..., PostgresEntityStore], postgres_schema: str
) -> None:
    store = stores()

    async def scenario() -> float:
        bus = InProcessBus(["entity.changed.>"])
        await bus.start()
        consumer = await bus.consumer("entity.changed.>", "check")
        relay = ChangeRelay(store, SqlCoordination(store), bus, poll_interval=60.0)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await asyncio.to_thread(store.notifications.listening.wait, 10)
        await asyncio.sleep(0.3)  # the relay's first look found nothing; it waits a minute
        code = (
            "import sys\n"
            "from smartcity.storage.postgres import PostgresEntityStore\n"
            "from tests.storage.entity_factories import make_entity\n"
            "from tests.storage.test_store_contract import put\n"
            "store = PostgresEntityStore(sys.argv[1], schema=sys.argv[2], max_size=1)\n"
            "put(store, make_entity('urn:ngsi-ld:ParkingSpot:from-elsewhere', 'ParkingSpot'))\n"
            "store.close()\n"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, postgres_url(), postgres_schema, cwd=ROOT
        )
        assert await process.wait() == 0
        committed = time.monotonic()
        received = await consumer.fetch(10, 10.0)
        waited = time.monotonic() - committed
        stop.set()
        await task
        assert [decode_change(message.data).entity.id for message in received] == [
            "urn:ngsi-ld:ParkingSpot:from-elsewhere"
        ]
        return waited

    assert asyncio.run(scenario()) < 5.0  # not the minute of its poll
