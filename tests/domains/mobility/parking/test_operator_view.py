"""The operator page's data: each lot operator sees its own lots, revenue and settlements only."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from smartcity.auth.principal import Caller, Role
from smartcity.core.clock import ManualClock
from smartcity.core.errors import BadRequestData, Forbidden, Unauthorized
from smartcity.domains.mobility.parking.operator_view import OperatorView
from smartcity.domains.mobility.parking.payment.access import OPERATOR
from smartcity.domains.mobility.parking.payment.model import (
    CardKind,
    Transaction,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.settlement import settle_day
from smartcity.domains.mobility.parking.tariff import EXAMPLE_TARIFF, KST
from smartcity.platform import Platform
from tests.domains.mobility.parking.city import lot, parking, write_lot_history

SYSTEM = Caller.system()
ARENA_LOT = lot("seoul-arena")
OFFICE_LOT = lot("dobong-gu-office")  # a counter, no spot sensors


def operator_view(platform: Platform) -> OperatorView:
    view: OperatorView = platform.services["mobility"].operator
    return view


def user(platform: Platform, name: str, roles: list[str], operators: list[str]) -> Caller:
    """Create a user with roles and grant it lot operators; return its caller."""
    platform.accounts.add_user(SYSTEM, name, "a long enough password 1", roles)
    if operators:
        operator_view(platform).payment.grants.grant(SYSTEM, name, OPERATOR, operators)
    token = platform.accounts.login(name, "a long enough password 1").token
    return platform.accounts.caller_for_token(token, "")


def stay(
    card: str, lot_id: str, entry: datetime, minutes: float | None, counter: int
) -> list[Transaction]:
    """Return an entry and (unless None) its exit, as the lot's gate would report them."""
    done = [Transaction(TransactionKind.ENTRY, lot_id, "gate", counter, entry, card)]
    if minutes is not None:
        exit_at = entry + timedelta(minutes=minutes)
        done.append(Transaction(TransactionKind.EXIT, lot_id, "gate", counter + 1, exit_at, card))
    return done


@pytest.fixture
def operated(city: Platform, clock: ManualClock) -> Platform:
    """Two lots of two operators, a day of paid stays settled, one car that never left."""
    payment = operator_view(city).payment
    payment.register_lot(SYSTEM, ARENA_LOT, "op-arena", EXAMPLE_TARIFF)
    payment.register_lot(SYSTEM, OFFICE_LOT, "op-dobong", EXAMPLE_TARIFF)
    payment.issue_card(SYSTEM, "card-1", CardKind.POSTPAID)
    yesterday = clock.now() - timedelta(days=1)
    taps = [
        *stay("card-1", OFFICE_LOT, yesterday, 90, 1),
        *stay("card-1", ARENA_LOT, yesterday + timedelta(hours=3), 60, 3),
        *stay("card-1", OFFICE_LOT, clock.now() - timedelta(hours=3), 30, 5),
        *stay("card-1", OFFICE_LOT, clock.now() - timedelta(days=2), None, 7),
    ]
    results = payment.submit(SYSTEM, taps)
    assert all(r.outcome.value != "refused" for r in results), results
    settle_day(payment, SYSTEM, yesterday.astimezone(KST).date())
    write_lot_history(city, clock.now(), (OFFICE_LOT, ARENA_LOT), 2)
    return city


def test_a_lot_operator_sees_only_its_own_lots_and_money(operated: Platform) -> None:
    staff = user(operated, "dobong-staff", [Role.PARKING_OPERATOR.value], ["op-dobong"])
    body = operator_view(operated).overview(staff, days=7, lang="en")
    assert body["operators"] == ["op-dobong"]
    assert [item["id"] for item in body["lots"]] == [OFFICE_LOT]
    assert {row["operatorId"] for row in body["revenue"]} == {"op-dobong"}
    assert sum(row["charges"] for row in body["revenue"]) == 2
    assert all(row["gross"] > 0 and row["net"] <= row["gross"] for row in body["revenue"])
    assert [row["operatorId"] for row in body["settlements"]] == ["op-dobong"]
    assert body["settlements"][0]["revisions"] == 1
    assert [row["status"] for row in body["incomplete"]] == ["open"]
    assert {row["operatorId"] for row in body["incomplete"]} == {"op-dobong"}

    station = body["lots"][0]
    assert station["name"] == parking(operated).site_names("", "en")[OFFICE_LOT]
    assert station["capacity"] > 0
    assert len(station["trend"]) >= 90  # 24 hours in 15-minute steps, from the history
    assert all(0 <= point["occupied"] <= station["capacity"] for point in station["trend"])
    assert [p["model"] for p in station["forecast"]] == ["persistence"] * len(station["forecast"])
    assert station["forecast"], "the forecast ahead comes with the trend"
    assert body["forecast"]["model"] == "persistence"


def test_the_city_office_sees_every_operator(operated: Platform) -> None:
    office = user(operated, "city-office", [Role.OPERATOR.value], [])
    body = operator_view(operated).overview(office, days=7)
    assert body["operators"] is None
    assert {item["id"] for item in body["lots"]} == {OFFICE_LOT, ARENA_LOT}
    assert {row["operatorId"] for row in body["revenue"]} == {"op-dobong", "op-arena"}
    assert {row["operatorId"] for row in body["settlements"]} == {"op-dobong", "op-arena"}


def test_operators_without_grants_see_nothing_and_others_are_refused(
    operated: Platform,
) -> None:
    lonely = user(operated, "new-staff", [Role.PARKING_OPERATOR.value], [])
    body = operator_view(operated).overview(lonely)
    assert body["operators"] == []
    assert body["lots"] == body["revenue"] == body["settlements"] == body["incomplete"] == []
    gate = user(operated, "gate-terminal", [Role.PARKING_TERMINAL.value], [])
    with pytest.raises(Forbidden):
        operator_view(operated).overview(gate)
    with pytest.raises(Unauthorized):
        operator_view(operated).overview(Caller.anonymous())
    with pytest.raises(BadRequestData):
        operator_view(operated).overview(SYSTEM, days=0)
