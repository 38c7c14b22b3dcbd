"""The dead-letter store: one contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from smartcity.storage.deadletters import (
    DISCARDED,
    NEW,
    REPLAYED,
    DeadLetter,
    DeadLetterFilter,
    ReplayRecord,
    SqlDeadLetterStore,
)
from smartcity.storage.sqlbase import SqlEntityStore

EVERY = DeadLetterFilter()


@pytest.fixture
def database(backend_store: SqlEntityStore) -> SqlEntityStore:
    """Return an empty store of each backend (the root conftest's `backend_store`)."""
    return backend_store


@pytest.fixture
def store(database: SqlEntityStore) -> SqlDeadLetterStore:
    return SqlDeadLetterStore(database)


def make_letter(number: int, tenant: str = "", **changes: object) -> DeadLetter:
    letter = DeadLetter(
        id=f"letter-{number:04d}",
        tenant=tenant,
        received_at=f"2026-11-28T01:{number // 60:02d}:{number % 60:02d}.000000Z",
        source="mqtt",
        payload=b"t|21.5|h|40",
        reason="unknown-device",
        stage="authenticate",
        message="no device lamp-7 with this key",
        device_id=f"lamp-{number % 3}",
        topic="/k3y/lamp-7/attrs",
        content_type="text/plain",
        meta={"qos": 1},
    )
    return replace(letter, **changes)  # type: ignore[arg-type]


def test_a_letter_is_kept_exactly_as_given(store: SqlDeadLetterStore) -> None:
    payload = bytes(range(256)) + "온도 21.5°C".encode()
    letter = make_letter(1, payload=payload, path="temperature", meta={"한글": ["값", 1.5]})
    store.add_many([letter])
    assert store.get("", letter.id) == letter
    assert store.get("", letter.id).payload == payload  # type: ignore[union-attr]


def test_letters_of_another_tenant_are_invisible(store: SqlDeadLetterStore) -> None:
    store.add_many([make_letter(1, tenant="dobong"), make_letter(2, tenant="nowon")])
    assert store.get("nowon", "letter-0001") is None
    assert [letter.id for letter in store.page("dobong", EVERY, 10, 0)] == ["letter-0001"]
    assert store.count("nowon", EVERY) == 1
    assert store.counts_by_reason("", EVERY) == {}
    assert store.discard("nowon", ["letter-0001"], "2026-11-28T02:00:00.000000Z") == 0
    assert store.get("dobong", "letter-0001").status == NEW  # type: ignore[union-attr]


def test_add_many_is_one_transaction(store: SqlDeadLetterStore) -> None:
    store.add_many([make_letter(1)])
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        store.add_many([make_letter(2), make_letter(1)])
    assert store.count("", EVERY) == 1


def test_pages_newest_first_with_filters_and_counts(store: SqlDeadLetterStore) -> None:
    letters = [make_letter(n) for n in range(10)]
    letters[3] = replace(letters[3], reason="schema", source="adapter:parking")
    letters[7] = replace(letters[7], reason="schema")
    store.add_many(letters)
    ids = [letter.id for letter in store.page("", EVERY, 4, 0)]
    assert ids == ["letter-0009", "letter-0008", "letter-0007", "letter-0006"]
    assert [letter.id for letter in store.page("", EVERY, 4, 8)] == ["letter-0001", "letter-0000"]
    schema = DeadLetterFilter(reason="schema")
    assert [letter.id for letter in store.page("", schema, 10, 0)] == [
        "letter-0007",
        "letter-0003",
    ]
    assert store.count("", DeadLetterFilter(source="adapter:parking")) == 1
    assert store.count("", DeadLetterFilter(device_id="lamp-1")) == 3
    window = DeadLetterFilter(
        since="2026-11-28T01:00:02.000000Z", until="2026-11-28T01:00:05.000000Z"
    )
    assert [letter.id for letter in store.page("", window, 10, 0)] == [
        "letter-0004",
        "letter-0003",
        "letter-0002",
    ]
    assert store.counts_by_reason("", EVERY) == {"schema": 2, "unknown-device": 8}
    assert store.counts_by_reason("", DeadLetterFilter(device_id="lamp-0")) == {
        "schema": 1,
        "unknown-device": 3,
    }


def test_replays_are_recorded_on_new_letters_only(store: SqlDeadLetterStore) -> None:
    store.add_many([make_letter(1), make_letter(2), make_letter(3)])
    at = "2026-11-28T03:00:00.000000Z"
    failed = ReplayRecord(
        "letter-0002",
        at,
        "failed: schema at validate: temperature: 'hot' is not a number",
        replayed=False,
        reason="schema",
        stage="validate",
        path="temperature",
        message="temperature: 'hot' is not a number",
    )
    assert store.record_replays("", [ReplayRecord("letter-0001", at, "ok", True), failed]) == 2
    ok = store.get("", "letter-0001")
    assert ok is not None
    assert (ok.status, ok.attempts, ok.last_replay_result, ok.resolved_at) == (
        REPLAYED,
        1,
        "ok",
        at,
    )
    again = store.get("", "letter-0002")
    assert again is not None
    assert (again.status, again.attempts, again.reason, again.stage, again.path) == (
        NEW,
        1,
        "schema",
        "validate",
        "temperature",
    )
    assert again.last_replay_result == failed.result
    assert store.discard("", ["letter-0003", "letter-0001"], at) == 1
    assert store.get("", "letter-0003").status == DISCARDED  # type: ignore[union-attr]
    # A replayed or discarded letter is not changed by a late outcome.
    assert store.record_replays("", [replace(failed, id="letter-0003")]) == 0
    assert store.count("", DeadLetterFilter(status=NEW)) == 1


def test_purge_removes_resolved_letters_older_than_the_cutoff(
    store: SqlDeadLetterStore,
) -> None:
    store.add_many([make_letter(n) for n in range(4)])
    store.record_replays(
        "", [ReplayRecord("letter-0000", "2026-11-01T00:00:00.000000Z", "ok", True)]
    )
    store.discard("", ["letter-0001"], "2026-11-01T00:00:00.000000Z")
    store.discard("", ["letter-0002"], "2026-11-27T00:00:00.000000Z")
    assert store.purge("2026-11-20T00:00:00.000000Z") == 2
    assert sorted(letter.id for letter in store.page("", EVERY, 10, 0)) == [
        "letter-0002",
        "letter-0003",
    ]


def test_the_table_is_shared_by_every_process(database: SqlEntityStore) -> None:
    SqlDeadLetterStore(database).add_many([make_letter(1)])
    assert SqlDeadLetterStore(database).count("", EVERY) == 1
