"""The AccountStore contract, on SQLite and PostgreSQL: everything kept per tenant."""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.errors import AlreadyExists
from smartcity.storage.accounts import (
    ApiKeyRecord,
    AuditFilter,
    AuditRecord,
    PrincipalRecord,
    ShareRecord,
)
from smartcity.storage.base import Changes, EntityStore
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlbase import SqlEntityStore
from tests.storage.entity_factories import make_entity

AT = "2026-11-27T09:00:00.000000Z"


@pytest.fixture
def accounts(store: EntityStore) -> SqlAccountStore:
    assert isinstance(store, SqlEntityStore)
    return SqlAccountStore(store)


def principal(name: str, kind: str = "user") -> PrincipalRecord:
    return PrincipalRecord(f"id-{name}", name, kind, AT, password_hash=f"hash-{name}")


def test_principals_have_unique_names(accounts: SqlAccountStore) -> None:
    accounts.add_principal(principal("kim"))
    with pytest.raises(AlreadyExists):
        accounts.add_principal(PrincipalRecord("other-id", "kim", "user", AT))
    assert accounts.principal_by_name("kim") == principal("kim")
    assert accounts.principal_by_id("id-kim") == principal("kim")
    assert accounts.principal_by_name("lee") is None
    accounts.set_password_hash("id-kim", "new-hash")
    accounts.set_disabled("id-kim", True)
    changed = accounts.principal_by_name("kim")
    assert changed is not None
    assert (changed.password_hash, changed.disabled) == ("new-hash", True)


def test_roles_and_device_entities_are_per_tenant(accounts: SqlAccountStore) -> None:
    accounts.add_principal(principal("kim"))
    accounts.add_principal(principal("lamp", "device"))
    accounts.grant("id-kim", "dobong", "admin")
    accounts.grant("id-kim", "dobong", "admin")
    accounts.grant("id-kim", "dobong", "analyst")
    accounts.grant("id-kim", "nowon", "public")
    accounts.grant("id-lamp", "dobong", "device")
    assert accounts.roles("id-kim", "dobong") == {"admin", "analyst"}
    assert accounts.roles("id-kim", "nowon") == {"public"}
    assert accounts.roles("id-kim", "") == frozenset()
    assert accounts.tenants_of("id-kim") == {"dobong", "nowon"}
    members = accounts.principals_in("dobong")
    assert [(p.name, sorted(roles)) for p, roles in members] == [
        ("kim", ["admin", "analyst"]),
        ("lamp", ["device"]),
    ]
    assert [p.name for p, _ in accounts.principals_in("nowon")] == ["kim"]
    accounts.revoke("id-kim", "dobong", "admin")
    assert accounts.roles("id-kim", "dobong") == {"analyst"}
    accounts.revoke("id-kim", "nowon")
    assert accounts.tenants_of("id-kim") == {"dobong"}
    accounts.set_device_entities("id-lamp", "dobong", ["urn:a", "urn:b", "urn:a"])
    assert accounts.device_entities("id-lamp", "dobong") == {"urn:a", "urn:b"}
    assert accounts.device_entities("id-lamp", "nowon") == frozenset()
    accounts.set_device_entities("id-lamp", "dobong", ["urn:c"])
    assert accounts.device_entities("id-lamp", "dobong") == {"urn:c"}


def test_keys_are_found_by_prefix_and_revoked(accounts: SqlAccountStore) -> None:
    accounts.add_principal(principal("svc", "service"))
    first = ApiKeyRecord("sck_aaaaaaaaaaaa", "id-svc", "hash-1", AT)
    second = ApiKeyRecord("sck_bbbbbbbbbbbb", "id-svc", "hash-2", "2026-11-27T10:00:00.000000Z")
    accounts.add_key(first)
    accounts.add_key(second)
    assert accounts.key_by_prefix("sck_aaaaaaaaaaaa") == first
    assert accounts.key_by_prefix("sck_cccccccccccc") is None
    assert accounts.keys_of("id-svc") == [first, second]
    accounts.revoke_key("sck_aaaaaaaaaaaa", "2026-11-28T00:00:00.000000Z")
    accounts.revoke_key("sck_aaaaaaaaaaaa", "2026-11-29T00:00:00.000000Z")
    revoked = accounts.key_by_prefix("sck_aaaaaaaaaaaa")
    assert revoked is not None
    assert revoked.revoked_at == "2026-11-28T00:00:00.000000Z"


def test_shares_and_type_marks_stay_in_their_tenant(accounts: SqlAccountStore) -> None:
    share = ShareRecord("s1", "dobong", "id-police", "urn:cam:1", None, AT, AT, "kim")
    by_type = ShareRecord("s2", "dobong", "id-police", None, "urn:type:Camera", AT, AT, "kim")
    accounts.add_share(share)
    accounts.add_share(by_type)
    assert accounts.shares("dobong") == [share, by_type]
    assert accounts.shares("dobong", "id-police") == [share, by_type]
    assert accounts.shares("dobong", "id-fire") == []
    assert accounts.shares("nowon") == []
    assert not accounts.delete_share("nowon", "s1")
    assert accounts.delete_share("dobong", "s1")
    assert accounts.shares("dobong") == [by_type]
    accounts.mark_type("dobong", "urn:type:Parking", "public")
    accounts.mark_type("dobong", "urn:type:Parking", "public")
    accounts.mark_type("dobong", "urn:type:Camera", "restricted")
    assert accounts.marked_types("dobong", "public") == {"urn:type:Parking"}
    assert accounts.marked_types("dobong", "restricted") == {"urn:type:Camera"}
    assert accounts.marked_types("nowon", "public") == frozenset()
    accounts.unmark_type("dobong", "urn:type:Parking", "public")
    assert accounts.marked_types("dobong", "public") == frozenset()


def test_the_audit_log_filters_by_tenant_time_and_principal(accounts: SqlAccountStore) -> None:
    records = [
        AuditRecord(
            f"2026-11-27T0{hour}:00:00.000000Z", tenant, who, "entity.update", "urn:x", "ok"
        )
        for hour, tenant, who in [
            (1, "dobong", "kim"),
            (2, "dobong", "lamp"),
            (3, "nowon", "kim"),
            (4, "dobong", "kim"),
        ]
    ]
    accounts.record_audit(records)
    accounts.record_audit([])
    dobong = accounts.audit(AuditFilter("dobong"))
    assert [(r.at[11:13], r.principal) for r in dobong] == [
        ("01", "kim"),
        ("02", "lamp"),
        ("04", "kim"),
    ]
    assert [r.seq for r in dobong] == sorted(r.seq for r in dobong)
    assert len(accounts.audit(AuditFilter("dobong", principal="kim"))) == 2
    window = AuditFilter(
        "dobong", since="2026-11-27T02:00:00.000000Z", until="2026-11-27T04:00:00.000000Z"
    )
    assert [r.principal for r in accounts.audit(window)] == ["lamp"]
    page = accounts.audit(AuditFilter("dobong", limit=1, after_seq=dobong[0].seq))
    assert [r.principal for r in page] == ["lamp"]
    assert accounts.audit(AuditFilter("gangnam")) == []


def test_old_audit_records_are_pruned_oldest_first_up_to_the_limit(
    accounts: SqlAccountStore,
) -> None:
    accounts.record_audit(
        [
            AuditRecord(f"2026-11-2{day}T09:00:00.000000Z", "dobong", "kim", "a", f"t{day}", "ok")
            for day in (5, 3, 4, 6)
        ]
    )
    cutoff = "2026-11-26T00:00:00.000000Z"
    assert accounts.prune_audit(cutoff, 2) == 2
    assert [r.target for r in accounts.audit(AuditFilter("dobong"))] == ["t5", "t6"]
    assert accounts.prune_audit(cutoff, 2) == 1
    assert accounts.prune_audit(cutoff, 2) == 0
    assert [r.target for r in accounts.audit(AuditFilter("dobong"))] == ["t6"]


def test_the_tables_survive_reopening(accounts: SqlAccountStore, store: EntityStore) -> None:
    accounts.add_principal(principal("kim"))
    assert isinstance(store, SqlEntityStore)
    again = SqlAccountStore(store)
    assert again.principal_by_name("kim") == principal("kim")


def test_access_is_read_in_one_go_per_tenant(accounts: SqlAccountStore) -> None:
    accounts.add_principal(principal("lamp", "device"))
    accounts.grant("id-lamp", "dobong", "device")
    accounts.set_device_entities("id-lamp", "dobong", ["urn:lamp:7"])
    key = ApiKeyRecord("sck_aaaaaaaaaaaa", "id-lamp", "hash", AT)
    accounts.add_key(key)
    access = accounts.access("id-lamp", "dobong")
    assert access is not None
    assert access.principal == principal("lamp", "device")
    assert access.roles == {"device"}
    assert access.entity_ids == {"urn:lamp:7"}
    elsewhere = accounts.access("id-lamp", "nowon")
    assert elsewhere is not None
    assert not elsewhere.roles
    assert not elsewhere.entity_ids
    assert accounts.access("id-nobody", "dobong") is None
    found = accounts.access_by_key("sck_aaaaaaaaaaaa", "dobong")
    assert found is not None
    assert found[0] == key
    assert found[1] == access
    assert accounts.access_by_key("sck_bbbbbbbbbbbb", "dobong") is None


def test_audit_records_commit_or_roll_back_with_the_entity_write(
    accounts: SqlAccountStore, store: EntityStore
) -> None:
    record = AuditRecord(AT, "dobong", "kim", "entity.create", "urn:ngsi-ld:Lamp:1", "ok")
    entity = make_entity("urn:ngsi-ld:Lamp:1", "Streetlight")

    def audit_then_fail(cursor: Any, _: Changes) -> None:
        accounts.record_audit_in(cursor, [record])
        raise RuntimeError("the transaction fails after the audit rows were added")

    with pytest.raises(RuntimeError):
        store.apply(
            "dobong", [entity.id], lambda _: Changes(upserts=[entity]), after=audit_then_fail
        )
    assert store.get("dobong", entity.id) is None
    assert accounts.audit(AuditFilter("dobong")) == []
    store.apply(
        "dobong",
        [entity.id],
        lambda _: Changes(upserts=[entity]),
        after=lambda cursor, _: accounts.record_audit_in(cursor, [record]),
    )
    assert store.get("dobong", entity.id) is not None
    assert [(r.principal, r.target) for r in accounts.audit(AuditFilter("dobong"))] == [
        ("kim", "urn:ngsi-ld:Lamp:1")
    ]
