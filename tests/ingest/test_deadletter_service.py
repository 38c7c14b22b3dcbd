"""The dead-letter service: recording, permissions per role and tenant, replay, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.core.clock import ManualClock
from smartcity.core.errors import (
    BadRequestData,
    Forbidden,
    OperationNotSupported,
    ResourceNotFound,
    Unauthorized,
)
from smartcity.ingest.deadletters import DeadLetterService
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.storage.deadletters import (
    DISCARDED,
    NEW,
    REPLAYED,
    DeadLetterFilter,
    SqlDeadLetterStore,
)
from smartcity.storage.sqlbase import SqlEntityStore

START = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
EVERY = DeadLetterFilter()


@pytest.fixture
def database(backend_store: SqlEntityStore) -> SqlEntityStore:
    """Return an empty store of each backend (the root conftest's `backend_store`)."""
    return backend_store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def service(database: SqlEntityStore, clock: ManualClock) -> DeadLetterService:
    return DeadLetterService(
        SqlDeadLetterStore(database), clock, max_limit=50, retention=timedelta(days=30)
    )


def person(role: Role, tenant: str = "") -> Caller:
    return Caller(f"{role.value}-kim", tenant, frozenset({role}), PrincipalKind.USER)


def raw_input(
    tenant: str = "",
    *,
    device: str = "lamp-7",
    payload: bytes = b"t|21.5",
    source: str = "mqtt",
    received_at: str = "2026-11-28T10:00:00+09:00",
) -> RawInput:
    return RawInput(
        tenant=tenant,
        source=source,
        payload=payload,
        received_at=received_at,
        device_id=device,
        topic=f"/ul/{device}/attrs",
        content_type="text/plain",
        meta={"qos": 1},
    )


UNKNOWN = Rejected("unknown-device", "no device lamp-7: register it", stage="authenticate")


def test_record_keeps_the_raw_input_and_the_refusal(service: DeadLetterService) -> None:
    payload = b"\xff\x00not utf-8 \xc3"
    refusal = Rejected("out-of-range", "latitude 127 beyond 90", stage="normalize", path="loc")
    letter_id = service.record(raw_input(payload=payload), refusal)
    letter = service.get(person(Role.ANALYST), letter_id)
    assert letter.payload == payload
    assert (letter.reason, letter.stage, letter.path, letter.message) == (
        "out-of-range",
        "normalize",
        "loc",
        "latitude 127 beyond 90",
    )
    assert (letter.source, letter.device_id, letter.topic, letter.content_type) == (
        "mqtt",
        "lamp-7",
        "/ul/lamp-7/attrs",
        "text/plain",
    )
    assert letter.received_at == "2026-11-28T01:00:00.000000Z"  # +09:00 read as UTC
    assert (letter.status, letter.attempts, letter.meta) == (NEW, 0, {"qos": 1})


def test_record_many_is_one_transaction_and_keeps_the_order(
    service: DeadLetterService,
) -> None:
    items = [(raw_input(device=f"lamp-{n}"), UNKNOWN) for n in range(5)]
    ids = service.record_many(items)
    assert len(set(ids)) == 5
    assert [service.get(Caller.system(), i).device_id for i in ids] == [
        f"lamp-{n}" for n in range(5)
    ]
    assert service.record_many([]) == []


def test_an_unreadable_receipt_time_is_kept_beside_the_recording_time(
    service: DeadLetterService,
) -> None:
    letter_id = service.record(raw_input(received_at="last tuesday"), UNKNOWN)
    letter = service.get(Caller.system(), letter_id)
    assert letter.received_at == "2026-11-28T01:00:00.000000Z"
    assert letter.meta["receivedAtAsGiven"] == "last tuesday"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.ANALYST])
def test_full_readers_read_their_tenant(service: DeadLetterService, role: Role) -> None:
    mine = service.record(raw_input("dobong"), UNKNOWN)
    service.record(raw_input("nowon"), UNKNOWN)
    caller = person(role, "dobong")
    page = service.page(caller, EVERY, count=True)
    assert ([letter.id for letter in page.letters], page.total) == ([mine], 1)
    assert service.counts_by_reason(caller, EVERY) == {"unknown-device": 1}


@pytest.mark.parametrize("role", [Role.AGENCY, Role.DEVICE, Role.PUBLIC])
def test_other_roles_read_nothing(service: DeadLetterService, role: Role) -> None:
    letter_id = service.record(raw_input(), UNKNOWN)
    caller = person(role)
    with pytest.raises(Forbidden):
        service.page(caller, EVERY)
    with pytest.raises(Forbidden):
        service.get(caller, letter_id)
    with pytest.raises(Forbidden):
        service.counts_by_reason(caller, EVERY)


def test_without_a_credential_the_answer_is_401(service: DeadLetterService) -> None:
    with pytest.raises(Unauthorized):
        service.page(Caller.anonymous(), EVERY)


def test_another_tenants_letter_is_not_found_nor_counted(service: DeadLetterService) -> None:
    theirs = service.record(raw_input("nowon"), UNKNOWN)
    admin = person(Role.ADMIN, "dobong")
    with pytest.raises(ResourceNotFound):
        service.get(admin, theirs)
    assert service.page(admin, EVERY, count=True).total == 0
    assert service.counts_by_reason(admin, EVERY) == {}
    with pytest.raises(ResourceNotFound):
        service.discard(admin, [theirs])
    report = asyncio.run(service.replay(admin, ids=[theirs]))
    assert [outcome.outcome for outcome in report.outcomes] == ["not-found"]
    assert service.get(person(Role.ADMIN, "nowon"), theirs).status == NEW


def test_analysts_may_not_replay_or_discard(service: DeadLetterService) -> None:
    letter_id = service.record(raw_input(), UNKNOWN)
    analyst = person(Role.ANALYST)
    with pytest.raises(Forbidden):
        service.discard(analyst, [letter_id])
    with pytest.raises(Forbidden):
        asyncio.run(service.replay(analyst, ids=[letter_id]))


def test_discard_marks_a_new_letter_and_refuses_it_twice(service: DeadLetterService) -> None:
    letter_id = service.record(raw_input(), UNKNOWN)
    operator = person(Role.OPERATOR)
    assert service.discard(operator, [letter_id]) == 1
    assert service.get(operator, letter_id).status == DISCARDED
    with pytest.raises(BadRequestData, match="discarded"):
        service.discard(operator, [letter_id])


def test_filters_are_checked(service: DeadLetterService) -> None:
    admin = person(Role.ADMIN)
    with pytest.raises(BadRequestData, match="status"):
        service.page(admin, DeadLetterFilter(status="lost"))
    with pytest.raises(BadRequestData, match="since"):
        service.page(admin, DeadLetterFilter(since="yesterday"))
    service.record(raw_input(received_at="2026-11-28T10:00:00+09:00"), UNKNOWN)
    since = DeadLetterFilter(since="2026-11-28T09:59:00+09:00")
    assert service.page(admin, since, count=True).total == 1
    assert service.page(admin, DeadLetterFilter(until="2026-11-28T01:00:00Z")).letters == []


class Replayer:
    """A replayer as the IoT agent registers: accepts what its mapping now understands."""

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.seen: list[RawInput] = []

    async def __call__(self, raw: RawInput) -> str | None:
        self.seen.append(raw)
        if raw.device_id not in self.known:
            raise Rejected(
                "unknown-device", f"still no device {raw.device_id}", stage="authenticate"
            )
        if raw.payload.startswith(b"boom"):
            raise RuntimeError("the replayer broke")
        return f"reading for {raw.device_id}"


def test_fix_the_device_then_replay(service: DeadLetterService, clock: ManualClock) -> None:
    replayer = Replayer()
    service.register_replayer("mqtt", replayer)
    operator = person(Role.OPERATOR)
    first = service.record(raw_input(device="lamp-7"), UNKNOWN)
    clock.advance(timedelta(minutes=5))
    report = asyncio.run(service.replay(operator, ids=[first]))
    assert [(o.outcome, o.reason) for o in report.outcomes] == [("failed", "unknown-device")]
    letter = service.get(operator, first)
    assert (letter.status, letter.attempts) == (NEW, 1)
    assert letter.last_replay_result is not None
    assert letter.last_replay_result.startswith("failed: unknown-device")
    replayer.known.add("lamp-7")
    report = asyncio.run(service.replay(operator, ids=[first]))
    assert [o.outcome for o in report.outcomes] == [REPLAYED]
    letter = service.get(operator, first)
    assert (letter.status, letter.attempts, letter.last_replay_result) == (
        REPLAYED,
        2,
        "ok: reading for lamp-7",
    )
    assert replayer.seen[-1].payload == b"t|21.5"
    assert replayer.seen[-1].received_at == "2026-11-28T01:00:00.000000Z"
    report = asyncio.run(service.replay(operator, ids=[first]))
    assert [o.outcome for o in report.outcomes] == ["skipped"]


def test_replay_by_filter_goes_oldest_first_up_to_the_limit(
    service: DeadLetterService, clock: ManualClock
) -> None:
    replayer = Replayer()
    replayer.known.update({"lamp-1", "lamp-2"})
    service.register_replayer("mqtt", replayer)
    for n in range(6):
        service.record(
            raw_input(device=f"lamp-{n % 3}", received_at=f"2026-11-28T01:00:0{n}Z"), UNKNOWN
        )
    report = asyncio.run(
        service.replay(person(Role.ADMIN), where=DeadLetterFilter(reason="unknown-device"), limit=4)
    )
    assert report.matched == 6
    assert [raw.received_at[17:19] for raw in replayer.seen] == ["00", "01", "02", "03"]
    # lamp-0 is still unknown: two letters fail again, two are replayed.
    assert (report.count(REPLAYED), report.count("failed")) == (2, 2)
    left = service.counts_by_reason(person(Role.ADMIN), DeadLetterFilter(status=NEW))
    assert left == {"unknown-device": 4}


def test_a_source_without_a_replayer_is_an_error_and_nothing_is_replayed(
    service: DeadLetterService,
) -> None:
    replayer = Replayer()
    replayer.known.add("lamp-7")
    service.register_replayer("mqtt", replayer)
    ids = [
        service.record(raw_input(), UNKNOWN),
        service.record(raw_input(source="adapter:parking"), UNKNOWN),
    ]
    with pytest.raises(OperationNotSupported, match="adapter:parking"):
        asyncio.run(service.replay(person(Role.ADMIN), ids=ids))
    assert replayer.seen == []
    service.register_replayer("adapter:", replayer)
    report = asyncio.run(service.replay(person(Role.ADMIN), ids=ids))
    assert report.count(REPLAYED) == 2


def test_a_broken_replayer_is_recorded_and_the_others_go_on(service: DeadLetterService) -> None:
    replayer = Replayer()
    replayer.known.add("lamp-7")
    service.register_replayer("mqtt", replayer)
    ids = [
        service.record(raw_input(payload=b"boom"), UNKNOWN),
        service.record(raw_input(), UNKNOWN),
    ]
    report = asyncio.run(service.replay(person(Role.ADMIN), ids=ids))
    assert [o.outcome for o in report.outcomes] == ["error", REPLAYED]
    broken = service.get(person(Role.ADMIN), ids[0])
    assert (broken.status, broken.reason) == (NEW, "unknown-device")
    assert broken.last_replay_result == "error: RuntimeError: the replayer broke"


def test_replay_takes_ids_or_a_filter(service: DeadLetterService) -> None:
    with pytest.raises(BadRequestData):
        asyncio.run(service.replay(person(Role.ADMIN)))
    with pytest.raises(BadRequestData):
        asyncio.run(service.replay(person(Role.ADMIN), ids=["x"], where=EVERY))
    with pytest.raises(BadRequestData, match="only new"):
        asyncio.run(service.replay(person(Role.ADMIN), where=DeadLetterFilter(status=REPLAYED)))


def test_retention_purges_resolved_letters_only(
    service: DeadLetterService, clock: ManualClock
) -> None:
    operator = person(Role.OPERATOR)
    kept = service.record(raw_input(), UNKNOWN)
    dropped = service.record(raw_input(), UNKNOWN)
    service.discard(operator, [dropped])
    clock.advance(timedelta(days=29))
    assert service.purge() == 0
    clock.advance(timedelta(days=2))
    assert service.purge() == 1
    assert [letter.id for letter in service.page(operator, EVERY).letters] == [kept]


def test_a_letter_is_replayed_once_when_two_requests_ask_together(
    service: DeadLetterService,
) -> None:
    calls: list[str] = []

    async def slow(raw: RawInput) -> str:
        calls.append(raw.device_id or "")
        await asyncio.sleep(0.05)
        return "done"

    service.register_replayer("mqtt", slow)
    letter_id = service.record(raw_input(), UNKNOWN)
    admin = person(Role.ADMIN)

    async def both() -> list[str]:
        reports = await asyncio.gather(
            service.replay(admin, ids=[letter_id]), service.replay(admin, ids=[letter_id])
        )
        return sorted(report.outcomes[0].outcome for report in reports)

    assert asyncio.run(both()) == [REPLAYED, "skipped"]
    assert calls == ["lamp-7"]
    assert service.get(admin, letter_id).attempts == 1
