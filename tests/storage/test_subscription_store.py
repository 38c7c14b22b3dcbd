"""The SubscriptionStore contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from smartcity.storage.base import EntityStore
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlsubscriptions import SqlSubscriptionStore
from smartcity.storage.subscriptions import (
    DeliveryOutcome,
    NewNotification,
    SubscriptionRecord,
    SubscriptionStore,
)
from tests.storage.entity_factories import make_entity, prop
from tests.storage.test_store_contract import put

SUB = "urn:ngsi-ld:Subscription:"
NOW = 1_800_000_000.0


@pytest.fixture
def subscriptions(store: EntityStore) -> SubscriptionStore:
    assert isinstance(store, SqlEntityStore)
    return SqlSubscriptionStore(store)


def make_record(name: str, tenant: str = "", **doc: Any) -> SubscriptionRecord:
    body = {"id": SUB + name, "type": "Subscription", **doc}
    return SubscriptionRecord(tenant, SUB + name, body, "urn:ctx", "2026-01-01T00:00:00Z", "x")


def queue(store: SubscriptionStore, name: str, *causes: str, tenant: str = "") -> None:
    position = store.position()
    notifications = [NewNotification(tenant, SUB + name, c, [{"id": c}]) for c in causes]
    assert store.write_notifications(position, position + 1, notifications, NOW)


def test_create_get_page_replace_delete(subscriptions: SubscriptionStore) -> None:
    version = subscriptions.version()
    assert subscriptions.create(make_record("b", q="a>1"))
    assert subscriptions.create(make_record("a"))
    assert not subscriptions.create(make_record("a"))
    assert subscriptions.create(make_record("a", tenant="police"))
    assert subscriptions.version() > version
    got = subscriptions.get("", SUB + "b")
    assert got is not None
    assert got.doc["q"] == "a>1"
    assert got.context == "urn:ctx"
    assert got.status.times_sent == 0
    assert got.status.last_status is None
    page, total = subscriptions.page("", limit=1, offset=1)
    assert total == 2
    assert [r.id for r in page] == [SUB + "b"]
    got.doc["q"] = "a>2"
    version = subscriptions.version()
    assert subscriptions.replace(got)
    assert subscriptions.version() > version
    assert subscriptions.get("", SUB + "b").doc["q"] == "a>2"  # type: ignore[union-attr]
    assert subscriptions.delete("", SUB + "b")
    assert not subscriptions.delete("", SUB + "b")
    assert subscriptions.get("", SUB + "b") is None
    assert subscriptions.get("police", SUB + "a") is not None
    assert {(r.tenant, r.id) for r in subscriptions.load_all()} == {
        ("", SUB + "a"),
        ("police", SUB + "a"),
    }


def test_a_subscription_remembers_the_log_position_it_was_created_at(
    store: EntityStore, subscriptions: SubscriptionStore
) -> None:
    put(store, make_entity("urn:ngsi-ld:Spot:1", "ParkingSpot", status=prop("free")))
    subscriptions.create(make_record("a"))
    assert subscriptions.get("", SUB + "a").since_seq == store.last_change_seq()  # type: ignore[union-attr]


def test_notifications_move_the_position_once(subscriptions: SubscriptionStore) -> None:
    subscriptions.create(make_record("a"))
    start = subscriptions.position()
    rows = [NewNotification("", SUB + "a", "c:1", [{"id": "x"}], remember=True)]
    assert subscriptions.write_notifications(start, start + 5, rows, NOW)
    # A second writer that read the same position loses: nothing is queued twice.
    assert not subscriptions.write_notifications(start, start + 5, rows, NOW)
    assert subscriptions.position() == start + 5
    assert subscriptions.queued("", SUB + "a") == (1, 0)
    assert subscriptions.get("", SUB + "a").last_notified_at == NOW  # type: ignore[union-attr]


def test_only_the_head_of_each_queue_is_claimed(subscriptions: SubscriptionStore) -> None:
    for name in ("a", "b"):
        subscriptions.create(make_record(name))
    queue(subscriptions, "a", "c:1", "c:2")
    queue(subscriptions, "b", "c:3")
    claimed = subscriptions.claim(NOW, 10, lease=30)
    assert sorted((c.subscription_id, c.data[0]["id"]) for c in claimed) == [
        (SUB + "a", "c:1"),
        (SUB + "b", "c:3"),
    ]
    # Leased heads hold their queues: nothing more until they are done.
    assert subscriptions.claim(NOW, 10, lease=30) == []
    head = next(c for c in claimed if c.subscription_id == SUB + "a")
    subscriptions.complete([DeliveryOutcome(head.nid, "", SUB + "a", "2026-11-27T10:00:00Z")])
    (second,) = subscriptions.claim(NOW, 10, lease=30)
    assert second.data == [{"id": "c:2"}]
    record = subscriptions.get("", SUB + "a")
    assert record is not None
    assert record.status.times_sent == 1
    assert record.status.last_status == "ok"
    assert record.status.last_success == "2026-11-27T10:00:00Z"


def test_an_expired_lease_is_claimed_again(subscriptions: SubscriptionStore) -> None:
    subscriptions.create(make_record("a"))
    queue(subscriptions, "a", "c:1")
    (first,) = subscriptions.claim(NOW, 10, lease=30)
    (again,) = subscriptions.claim(NOW + 31, 10, lease=30)
    assert again.nid == first.nid


def test_a_failure_backs_off_its_own_queue_only(subscriptions: SubscriptionStore) -> None:
    for name in ("dead", "alive"):
        subscriptions.create(make_record(name))
    queue(subscriptions, "dead", "c:1", "c:2")
    queue(subscriptions, "alive", "c:1")
    claimed = {c.subscription_id: c for c in subscriptions.claim(NOW, 10, lease=30)}
    dead = claimed[SUB + "dead"]
    subscriptions.complete(
        [DeliveryOutcome(dead.nid, "", SUB + "dead", "t1", error="HTTP 503", retry_at=NOW + 60)]
    )
    queue(subscriptions, "alive", "c:2")
    alive = claimed[SUB + "alive"]
    subscriptions.complete([DeliveryOutcome(alive.nid, "", SUB + "alive", "t1")])
    (only,) = subscriptions.claim(NOW + 1, 10, lease=30)
    assert only.subscription_id == SUB + "alive"
    assert subscriptions.next_due() == pytest.approx(NOW + 30 + 1)
    subscriptions.complete([DeliveryOutcome(only.nid, "", SUB + "alive", "t1")])
    (retried,) = subscriptions.claim(NOW + 61, 10, lease=30)
    assert retried.nid == dead.nid
    assert retried.attempts == 1
    subscriptions.complete(
        [DeliveryOutcome(dead.nid, "", SUB + "dead", "t2", error="HTTP 503", attempts=2)]
    )
    # Given up: kept as failed, and the next notification of the queue comes forward.
    assert subscriptions.queued("", SUB + "dead") == (1, 1)
    (next_one,) = subscriptions.claim(NOW + 62, 10, 30)
    assert next_one.data == [{"id": "c:2"}]
    record = subscriptions.get("", SUB + "dead")
    assert record is not None
    assert (record.status.times_sent, record.status.times_failed) == (2, 2)
    assert record.status.last_status == "failed"
    assert record.status.last_failure == "t2"


def test_deleting_a_subscription_drops_its_queue(subscriptions: SubscriptionStore) -> None:
    subscriptions.create(make_record("a"))
    queue(subscriptions, "a", "c:1")
    subscriptions.delete("", SUB + "a")
    assert subscriptions.claim(NOW, 10, 30) == []
    assert subscriptions.queued("", SUB + "a") == (0, 0)


def test_periodic_notifications_are_queued_once_per_period(
    subscriptions: SubscriptionStore,
) -> None:
    subscriptions.create(make_record("a"))
    row = NewNotification("", SUB + "a", "t:3", [{"id": "x"}], remember=True, not_before=NOW - 9)
    assert subscriptions.write_periodic([row], NOW) == 1
    assert subscriptions.write_periodic([row], NOW) == 0
    assert subscriptions.queued("", SUB + "a") == (1, 0)
    (claimed,) = subscriptions.claim(NOW, 10, lease=30)
    subscriptions.complete([DeliveryOutcome(claimed.nid, "", SUB + "a", "t")])
    # Delivered and gone, the period is still done (another process may try it again).
    assert subscriptions.write_periodic([row], NOW + 1) == 0
    later = NewNotification("", SUB + "a", "t:4", [{"id": "x"}], remember=True, not_before=NOW + 1)
    assert subscriptions.write_periodic([later], NOW + 2) == 1


def test_concurrent_claimers_never_share_a_notification(
    subscriptions: SubscriptionStore,
) -> None:
    for number in range(40):
        subscriptions.create(make_record(f"s{number}"))
        queue(subscriptions, f"s{number}", "c:1")
    claimed: list[int] = []
    lock = threading.Lock()

    def claim() -> None:
        for _ in range(10):
            got = subscriptions.claim(NOW, 3, lease=30)
            with lock:
                claimed.extend(c.nid for c in got)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == len(set(claimed)) == 40


def test_owners_are_kept_and_older_tables_gain_the_column(store: EntityStore) -> None:
    assert isinstance(store, SqlEntityStore)
    subscriptions = SqlSubscriptionStore(store)
    owned = make_record("owned")
    owned.owner = "principal-1"
    assert subscriptions.create(owned)
    got = subscriptions.get("", SUB + "owned")
    assert got is not None
    assert got.owner == "principal-1"
    with store.writing() as cursor:  # as an earlier version made the table
        cursor.execute("ALTER TABLE subscriptions DROP COLUMN owner")
    reopened = SqlSubscriptionStore(store)
    got = reopened.get("", SUB + "owned")
    assert got is not None
    assert got.owner == ""  # the platform's: it keeps notifying as before the upgrade
