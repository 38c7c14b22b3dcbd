"""Fixtures for parking payment: a database of each backend, the service, lots and cards."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.core.clock import ManualClock
from smartcity.domains.mobility.parking.payment.access import LOT, OPERATOR
from smartcity.domains.mobility.parking.payment.model import (
    CardKind,
    Transaction,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import EXAMPLE_TARIFF, KST, DiscountClass
from smartcity.storage.accounts import PrincipalRecord
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlbase import SqlEntityStore

TENANT = "dobong"
START = datetime(2026, 11, 27, 9, 0, tzinfo=KST)
SYSTEM = Caller.system(TENANT)


@pytest.fixture
def database(backend_store: SqlEntityStore) -> SqlEntityStore:
    """An empty store of each backend (the shared `backend_store`)."""
    return backend_store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def access(database: SqlEntityStore, clock: ManualClock) -> AccessControl:
    return AccessControl(SqlAccountStore(database), clock)


@pytest.fixture
def service(database: SqlEntityStore, access: AccessControl, clock: ManualClock) -> PaymentService:
    """Return the service with two lots of two operators and three cards."""
    payments = PaymentService(database, access, clock)
    payments.register_lot(SYSTEM, "lot-changdong", "op-dobong", EXAMPLE_TARIFF)
    payments.register_lot(SYSTEM, "lot-arena", "op-arena", EXAMPLE_TARIFF)
    payments.issue_card(SYSTEM, "card-1", CardKind.PREPAID)
    payments.issue_card(SYSTEM, "card-light", CardKind.PREPAID, classes=[DiscountClass.LIGHT_CAR])
    payments.issue_card(SYSTEM, "card-post", CardKind.POSTPAID, plate="12가3456")
    return payments


def tap(
    kind: TransactionKind,
    card: str | None,
    at: datetime,
    counter: int,
    *,
    lot: str = "lot-changdong",
    terminal: str = "gate-1",
    plate: str | None = None,
    amount: int | None = None,
) -> Transaction:
    """Return a transaction as a terminal would report it."""
    return Transaction(kind, lot, terminal, counter, at, card, plate, amount)


def minutes(count: int) -> timedelta:
    return timedelta(minutes=count)


def make_principal(
    access: AccessControl, name: str, role: Role, kind: PrincipalKind = PrincipalKind.SERVICE
) -> Caller:
    """Store a principal with one role in the tenant and return its caller."""
    principal = PrincipalRecord(f"id-{name}", name, kind.value, START.isoformat())
    access.accounts.add_principal(principal)
    access.accounts.grant(principal.id, TENANT, role.value)
    return Caller(name, TENANT, frozenset({role}), kind, principal_id=principal.id)


@pytest.fixture
def terminal_for_changdong(service: PaymentService, access: AccessControl) -> Caller:
    """Return a terminal granted the Changdong lot only."""
    caller = make_principal(access, "gate-changdong", Role.PARKING_TERMINAL)
    service.grants.grant(SYSTEM, "gate-changdong", LOT, ["lot-changdong"])
    return caller


@pytest.fixture
def dobong_operator(service: PaymentService, access: AccessControl) -> Caller:
    """Return a lot operator's staff member granted operator op-dobong only."""
    caller = make_principal(access, "dobong-staff", Role.PARKING_OPERATOR, PrincipalKind.USER)
    service.grants.grant(SYSTEM, "dobong-staff", OPERATOR, ["op-dobong"])
    return caller
