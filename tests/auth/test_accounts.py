"""The accounts service: login, throttling, callers for later work, credentials of principals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcity.auth.accounts import AccountService
from smartcity.auth.authentication import MAX_FAILED_LOGINS
from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller, Role
from smartcity.auth.tokens import TokenIssuer
from smartcity.core.clock import ManualClock
from smartcity.core.errors import BadRequestData, Forbidden, Unauthorized
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlite import SqliteEntityStore

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def accounts(tmp_path: Path, clock: ManualClock) -> Iterator[AccountService]:
    store = SqliteEntityStore(tmp_path / "accounts.db")
    access = AccessControl(SqlAccountStore(store), clock)
    tokens = TokenIssuer("x" * 40, clock, lifetime=timedelta(hours=1))
    service = AccountService(access, tokens)
    service.add_user(Caller.system("dobong"), "kim", PASSWORD, ["operator"])
    yield service
    store.close()


def test_repeated_failed_logins_lock_the_name_for_a_while(
    accounts: AccountService, clock: ManualClock
) -> None:
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(Unauthorized, match="wrong"):
            accounts.login("kim", "a wrong password")
    with pytest.raises(Unauthorized, match="too many"):
        accounts.login("kim", PASSWORD)
    clock.advance(timedelta(minutes=16))
    token = accounts.login("kim", PASSWORD).token
    assert accounts.caller_for_token(token, "dobong").roles == {Role.OPERATOR}


def test_failed_logins_count_across_processes_and_old_ones_are_forgotten(
    tmp_path: Path, accounts: AccountService, clock: ManualClock
) -> None:
    # A second server process: its own store connection and services on the same database.
    store = SqliteEntityStore(tmp_path / "accounts.db")
    other = AccountService(
        AccessControl(SqlAccountStore(store), clock),
        TokenIssuer("x" * 40, clock, lifetime=timedelta(hours=1)),
    )
    try:
        for attempt in range(MAX_FAILED_LOGINS):
            service = accounts if attempt % 2 else other
            with pytest.raises(Unauthorized, match="wrong"):
                service.login("kim", "a wrong password")
        for service in (accounts, other):
            with pytest.raises(Unauthorized, match="too many"):
                service.login("kim", PASSWORD)
        # Names that do not exist are counted too, and forgotten after the window.
        for number in range(5):
            with pytest.raises(Unauthorized):
                other.login(f"guess-{number}", "x")
        clock.advance(timedelta(minutes=16))
        with pytest.raises(Unauthorized, match="wrong"):
            other.login("guess-last", "x")
        store_rows = SqlAccountStore(store)._read("SELECT COUNT(*) FROM login_failures", [])
        assert store_rows == [(1,)]
        assert other.login("kim", PASSWORD).token
    finally:
        store.close()


def test_later_work_sees_the_principal_as_it_is_now(accounts: AccountService) -> None:
    admin = Caller.system("dobong")
    kim = accounts.principal(admin, "kim")
    caller = accounts.caller_for_principal(kim.id, "dobong")
    assert caller is not None
    assert caller.roles == {Role.OPERATOR}
    accounts.revoke(admin, "kim", ["operator"])
    assert accounts.caller_for_principal(kim.id, "dobong") is not None
    assert accounts.caller_for_principal(kim.id, "dobong").roles == {Role.PUBLIC}  # type: ignore[union-attr]
    accounts.grant(admin, "kim", ["analyst"])
    accounts.set_disabled(admin, "kim", True)
    assert accounts.caller_for_principal(kim.id, "dobong") is None
    assert accounts.caller_for_principal("nobody", "dobong") is None


def test_only_admins_manage_and_keys_fit_their_role(accounts: AccountService) -> None:
    operator = Caller("kim", "dobong", frozenset({Role.OPERATOR}))
    with pytest.raises(Forbidden):
        accounts.create_key(operator, "backdoor", ["admin"])
    with pytest.raises(Unauthorized):
        accounts.principals(Caller.anonymous("dobong"))
    admin = Caller.system("dobong")
    with pytest.raises(BadRequestData, match="entities it feeds"):
        accounts.create_key(admin, "lamp-7", ["device"])
    with pytest.raises(BadRequestData, match="device role"):
        accounts.create_key(admin, "svc", ["operator"], ["urn:lamp:7"])
    with pytest.raises(BadRequestData, match="unknown role"):
        accounts.create_key(admin, "svc", ["superuser"])
    with pytest.raises(BadRequestData, match="name"):
        accounts.add_user(admin, "bad name!", PASSWORD, ["analyst"])
    made = accounts.create_key(admin, "lamp-7", ["device"], ["urn:lamp:7"])
    lamp = accounts.caller_for_key(made.key, "dobong")
    assert lamp.entity_ids == {"urn:lamp:7"}
    assert accounts.caller_for_key(made.key, "nowon").roles == {Role.PUBLIC}


def test_granted_access_is_remembered_briefly_and_forgotten_on_change(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqliteEntityStore(tmp_path / "shared.db")
    tokens = TokenIssuer("x" * 40, clock, lifetime=timedelta(hours=1))
    here = AccountService(AccessControl(SqlAccountStore(store), clock), tokens, cache_seconds=0.3)
    elsewhere = AccountService(AccessControl(SqlAccountStore(store), clock), tokens)
    admin = Caller.system("dobong")
    key = here.create_key(admin, "svc", ["operator"]).key
    assert here.caller_for_key(key, "dobong").roles == {Role.OPERATOR}
    # Another process revokes the role: this one sees it once its memory runs out.
    elsewhere.revoke(admin, "svc", ["operator"])
    assert here.caller_for_key(key, "dobong").roles == {Role.OPERATOR}
    time.sleep(0.35)
    assert here.caller_for_key(key, "dobong").roles == {Role.PUBLIC}
    # A change made here is seen at once.
    here.grant(admin, "svc", ["analyst"])
    assert here.caller_for_key(key, "dobong").roles == {Role.ANALYST}
    here.revoke_key(admin, key.split("_")[0] + "_" + key.split("_")[1])
    with pytest.raises(Unauthorized, match="revoked"):
        here.caller_for_key(key, "dobong")
    store.close()
