"""The double-entry ledger (복식부기): balanced journals of integer-won postings.

A posting's amount is positive for a debit and negative for a credit; every journal's postings
sum to zero, checked before anything is written, so the whole ledger always sums to zero.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from smartcity.core.clock import isoformat
from smartcity.domains.mobility.parking.payment.model import LedgerImbalance
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.storage.sqlbase import Cursor

TOPUP_CLEARING: Final = "clearing:topup"
"""Money received for top-ups (충전 대금), an asset until the platform's bank settles it."""
POSTPAID_CLEARING: Final = "clearing:postpaid"
"""Money the postpaid card issuers paid (후불 정산)."""


def card_account(card_id: str) -> str:
    """Return the stored-value account of a prepaid card (선불 잔액, a liability)."""
    return f"card:{card_id}"


def receivable_account(card_id: str) -> str:
    """Return what a postpaid card owes (후불 미수금, an asset)."""
    return f"receivable:{card_id}"


def arrears_account(holder: str) -> str:
    """Return what a card or a plate owes after a fee it could not pay (미납, an asset)."""
    return f"arrears:{holder}"


def revenue_account(operator_id: str) -> str:
    """Return an operator's gross parking revenue (주차 수입, credited by each charge)."""
    return f"revenue:{operator_id}"


def discount_account(operator_id: str) -> str:
    """Return the discounts an operator granted (감면, contra-revenue)."""
    return f"discounts:{operator_id}"


def refund_account(operator_id: str) -> str:
    """Return the refunds an operator gave (환불, contra-revenue)."""
    return f"refunds:{operator_id}"


def payable_account(operator_id: str) -> str:
    """Return what the platform owes an operator after settlement (정산 지급 예정)."""
    return f"payable:{operator_id}"


@dataclass(frozen=True, slots=True)
class Journal:
    """The header of one balanced journal entry (분개)."""

    kind: str
    occurred_at: datetime
    lot_id: str | None = None
    operator_id: str | None = None
    session_id: str | None = None
    card_id: str | None = None
    reverses: str | None = None
    day: str | None = None
    """The business day, when it is not the KST date of `occurred_at` (a settlement)."""

    @property
    def business_day(self) -> str:
        """Return the Asia/Seoul business day the journal belongs to."""
        return self.day or self.occurred_at.astimezone(KST).date().isoformat()


def post(
    cursor: Cursor,
    placeholder: str,
    tenant: str,
    journal: Journal,
    postings: Sequence[tuple[str, int]],
    now: datetime,
) -> str:
    """Write a journal and its postings; raise LedgerImbalance unless they sum to zero."""
    lines = [(account, amount) for account, amount in postings if amount != 0]
    for _, amount in lines:
        if type(amount) is not int:
            raise LedgerImbalance(f"a posting of {amount!r} is not integer won")
    if not lines:
        raise LedgerImbalance(f"a {journal.kind} journal without postings")
    if sum(amount for _, amount in lines) != 0:
        raise LedgerImbalance(f"a {journal.kind} journal does not balance: {lines}")
    journal_id = uuid.uuid4().hex
    p = placeholder
    cursor.execute(
        "INSERT INTO parking_pay_journals (tenant, journal_id, kind, lot_id, operator_id, "
        "session_id, card_id, occurred_at, business_day, reverses, created_at) "
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
        [
            tenant,
            journal_id,
            journal.kind,
            journal.lot_id,
            journal.operator_id,
            journal.session_id,
            journal.card_id,
            isoformat(journal.occurred_at),
            journal.business_day,
            journal.reverses,
            isoformat(now),
        ],
    )
    rows = ", ".join([f"({p}, {p}, {p}, {p})"] * len(lines))
    cursor.execute(
        f"INSERT INTO parking_pay_postings (tenant, journal_id, account, amount) VALUES {rows}",
        [value for account, amount in lines for value in (tenant, journal_id, account, amount)],
    )
    return journal_id


def account_balance(cursor: Cursor, placeholder: str, tenant: str, account: str) -> int:
    """Return the debit-positive balance of one account."""
    p = placeholder
    cursor.execute(
        f"SELECT COALESCE(SUM(amount), 0) FROM parking_pay_postings "
        f"WHERE tenant = {p} AND account = {p}",
        [tenant, account],
    )
    return int(cursor.fetchone()[0])


def trial_balance(cursor: Cursor, placeholder: str, tenant: str) -> dict[str, int]:
    """Return every account's debit-positive balance (they sum to zero)."""
    cursor.execute(
        f"SELECT account, SUM(amount) FROM parking_pay_postings WHERE tenant = {placeholder} "
        "GROUP BY account ORDER BY account",
        [tenant],
    )
    return {account: int(total) for account, total in cursor.fetchall()}


def unbalanced_journals(cursor: Cursor, placeholder: str, tenant: str) -> list[str]:
    """Return the ids of journals whose postings do not sum to zero (none, ever)."""
    cursor.execute(
        f"SELECT journal_id FROM parking_pay_postings WHERE tenant = {placeholder} "
        "GROUP BY journal_id HAVING SUM(amount) <> 0",
        [tenant],
    )
    return [str(row[0]) for row in cursor.fetchall()]
