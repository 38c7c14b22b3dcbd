"""The permission table, write rules and read visibility, over a real accounts store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcity.auth.policy import (
    PERMISSIONS,
    PUBLIC_MARK,
    AccessControl,
    Permission,
    allowed,
    may_write,
    require,
    require_write,
)
from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.core.clock import ManualClock, isoformat
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import Forbidden, Unauthorized
from smartcity.storage.accounts import AuditFilter, ShareRecord
from smartcity.storage.base import EVERYTHING
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlite import SqliteEntityStore

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PARKING = "urn:type:OffStreetParking"
CAMERA = "urn:type:Camera"


def caller(*roles: Role, ids: tuple[str, ...] = (), principal_id: str = "") -> Caller:
    kind = PrincipalKind.DEVICE if Role.DEVICE in roles else PrincipalKind.USER
    return Caller("someone", "dobong", frozenset(roles), kind, frozenset(ids), principal_id)


@pytest.fixture
def access(tmp_path: Path) -> Iterator[AccessControl]:
    store = SqliteEntityStore(tmp_path / "policy.db")
    yield AccessControl(SqlAccountStore(store), ManualClock(START))
    store.close()


def test_the_permission_table() -> None:
    assert PERMISSIONS[Role.ADMIN] == set(Permission)
    assert Permission.ADMINISTER not in PERMISSIONS[Role.OPERATOR]
    for role in (Role.ANALYST, Role.AGENCY, Role.PUBLIC):
        assert Permission.WRITE_ENTITIES not in PERMISSIONS[role]
    assert all(Permission.READ_ENTITIES in permissions for permissions in PERMISSIONS.values())
    assert allowed(Caller.system(), Permission.ADMINISTER)
    assert not allowed(Caller.anonymous(), Permission.WRITE_ENTITIES)


def test_refusals_are_401_without_a_credential_and_403_with_one() -> None:
    with pytest.raises(Unauthorized):
        require(Caller.anonymous("dobong"), Permission.WRITE_ENTITIES)
    with pytest.raises(Forbidden):
        require(caller(Role.ANALYST), Permission.WRITE_ENTITIES)
    with pytest.raises(Forbidden):
        require(caller(Role.OPERATOR), Permission.ADMINISTER)
    require(caller(Role.ANALYST, Role.OPERATOR), Permission.WRITE_ENTITIES)


def test_devices_write_only_their_own_entities() -> None:
    lamp = caller(Role.DEVICE, ids=("urn:lamp:7",))
    assert may_write(lamp, "urn:lamp:7")
    assert not may_write(lamp, "urn:lamp:8")
    assert may_write(caller(Role.OPERATOR), "urn:lamp:8")
    assert not may_write(caller(Role.ANALYST, Role.AGENCY, Role.PUBLIC), "urn:lamp:8")
    with pytest.raises(Forbidden):
        require_write(lamp, "urn:lamp:8")


def test_visibility_per_role(access: AccessControl) -> None:
    access.accounts.mark_type("dobong", PARKING, PUBLIC_MARK)
    for full in (Role.ADMIN, Role.OPERATOR, Role.ANALYST):
        assert access.visibility(caller(full)) == EVERYTHING
    public = access.visibility(Caller.anonymous("dobong"))
    assert not public.everything
    assert public.types == {PARKING}
    assert not public.ids
    lamp = access.visibility(caller(Role.DEVICE, ids=("urn:lamp:7",)))
    assert lamp.types == {PARKING}
    assert lamp.ids == {"urn:lamp:7"}
    assert access.visibility(Caller.anonymous("nowon")).types == frozenset()


def test_an_agency_sees_what_is_shared_until_it_expires(access: AccessControl) -> None:
    clock = access.clock
    assert isinstance(clock, ManualClock)
    in_an_hour = isoformat(START + timedelta(hours=1))
    for share in (
        ShareRecord("1", "dobong", "police", "urn:cam:1", None, in_an_hour, "", "kim"),
        ShareRecord("2", "dobong", "police", None, CAMERA, in_an_hour, "", "kim"),
        ShareRecord("3", "dobong", "fire", "urn:cam:2", None, in_an_hour, "", "kim"),
        ShareRecord("4", "nowon", "police", "urn:cam:3", None, in_an_hour, "", "kim"),
    ):
        access.accounts.add_share(share)
    police = caller(Role.AGENCY, principal_id="police")
    seen = access.visibility(police)
    assert seen.types == {CAMERA}
    assert seen.ids == {"urn:cam:1"}
    camera = StoredEntity(id="urn:cam:9", types=[CAMERA], attrs={})
    assert seen.allows(camera)
    clock.advance(timedelta(hours=1))
    later = access.visibility(police)
    assert not later.types
    assert not later.ids
    assert not later.allows(camera)


def test_type_marks_are_read_again_after_a_change(access: AccessControl) -> None:
    assert access.visibility(Caller.anonymous("dobong")).types == frozenset()
    access.accounts.mark_type("dobong", PARKING, PUBLIC_MARK)
    access.forget_marks("dobong")
    assert access.visibility(Caller.anonymous("dobong")).types == {PARKING}


def test_a_batch_of_the_platform_is_one_audit_record_per_outcome(access: AccessControl) -> None:
    targets = [("urn:a", "ok"), ("urn:b", "ok"), ("urn:c", "BadRequestData"), ("urn:d", "ok")]
    access.record(Caller.system("dobong"), "entity.upsert", targets)
    access.record(caller(Role.OPERATOR), "entity.upsert", targets)
    records = access.accounts.audit(AuditFilter("dobong"))
    assert [(r.principal, r.target, r.outcome) for r in records] == [
        ("system", "3 entities: urn:a .. urn:d", "ok"),
        ("system", "urn:c", "BadRequestData"),
        ("someone", "urn:a", "ok"),
        ("someone", "urn:b", "ok"),
        ("someone", "urn:c", "BadRequestData"),
        ("someone", "urn:d", "ok"),
    ]


def test_audit_records_older_than_the_retention_are_deleted(access: AccessControl) -> None:
    clock = access.clock
    assert isinstance(clock, ManualClock)
    for _ in range(5):
        access.record(caller(Role.OPERATOR), "entity.update", [("urn:a", "ok")])
        clock.advance(timedelta(days=100))
    assert access.prune_audit(timedelta(days=250), chunk=2) == 3
    left = access.accounts.audit(AuditFilter("dobong"))
    assert [r.at[:10] for r in left] == ["2027-09-23", "2028-01-01"]
