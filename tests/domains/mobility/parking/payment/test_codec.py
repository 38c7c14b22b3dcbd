"""Property tests for reading transactions from uploaded JSON."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.errors import BadRequestData
from smartcity.domains.mobility.parking.payment.codec import (
    transaction_from_json,
    transaction_json,
)
from smartcity.domains.mobility.parking.payment.model import Transaction, TransactionKind
from smartcity.domains.mobility.parking.tariff import DiscountClass
from tests.domains.mobility.parking.payment.conftest import START

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
fields = st.sampled_from(
    ["kind", "lotId", "terminalId", "counter", "at", "cardId", "plate", "amount", "classes"]
)


@given(st.dictionaries(fields, json_values) | json_values)
def test_any_json_is_a_transaction_or_a_bad_request(body: Any) -> None:
    try:
        tx = transaction_from_json(body)
    except BadRequestData:
        return
    assert isinstance(tx, Transaction)
    try:
        tx.check()
    except BadRequestData:
        return


@given(
    kind=st.sampled_from(list(TransactionKind)),
    counter=st.integers(min_value=0, max_value=2**40),
    card=st.text(min_size=1, max_size=20).filter(lambda t: "|" not in t and t.strip() != ""),
    classes=st.lists(st.sampled_from(list(DiscountClass)), max_size=2, unique=True),
)
def test_transactions_round_trip(
    kind: TransactionKind, counter: int, card: str, classes: list[DiscountClass]
) -> None:
    amount = 1000 if kind is TransactionKind.TOPUP else None
    tx = Transaction(kind, "lot-1", "gate", counter, START, card, None, amount, tuple(classes))
    tx.check()
    assert transaction_from_json(transaction_json(tx)) == tx


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"counter": True}, "counter"),
        ({"counter": 1.5}, "counter"),
        ({"amount": 10.0}, "amount"),
        ({"at": "2026-11-27T09:00:00"}, "time zone"),
        ({"cardId": "a|b"}, "without '|'"),
        ({"lotId": 7}, "lotId must be a string"),
        ({"amount": 10**12}, "multiple of 10"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], message: str) -> None:
    body = {
        "kind": "topup",
        "lotId": "lot-1",
        "terminalId": "kiosk",
        "counter": 1,
        "at": "2026-11-27T09:00:00+09:00",
        "cardId": "card-1",
        "amount": 1000,
        **change,
    }
    with pytest.raises(BadRequestData, match=message):
        transaction_from_json(body).check()
