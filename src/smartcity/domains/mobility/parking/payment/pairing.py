"""Pair entries and exits again when offline uploads arrive out of order.

An entry gate and an exit gate upload their logs separately, so an exit can meet the stay
before the one it ends: the card's previous entry is known, its own entry is not yet. That exit
closes the earlier stay; when the missing piece arrives (the earlier stay's own exit, or the
later stay's entry) the wrong pair is undone: its charge is reversed by a journal that negates
it posting for posting (kind `reversal`, on the same business day), the stay is opened again,
and each exit is charged to the stay it ends. A stay already refunded is never undone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from smartcity.core.clock import isoformat
from smartcity.domains.mobility.parking.payment import ledger
from smartcity.domains.mobility.parking.payment.codec import transaction_from_json
from smartcity.domains.mobility.parking.payment.model import SessionStatus, Transaction

if TYPE_CHECKING:
    from smartcity.domains.mobility.parking.payment.processing import Lot, Processor

CLOSED = (SessionStatus.PAID.value, SessionStatus.ARREARS.value)


def unpair(processor: Processor, session_id: str) -> Transaction | None:
    """Reverse a closed stay's charge and open it again; return the exit it had."""
    row = processor.one(
        "SELECT journal_id, exit_payload, lot_id, operator_id, card_id, refunded "
        "FROM parking_pay_sessions WHERE tenant = ? AND session_id = ?",
        [processor.tenant, session_id],
    )
    if row is None or row[1] is None or int(row[5]):
        return None
    journal_id, payload, lot_id, operator_id, card_id = row[:5]
    exit_tx = transaction_from_json(orjson.loads(payload))
    if journal_id is not None:
        _reverse(processor, journal_id, exit_tx, lot_id, operator_id, session_id, card_id)
    processor.run(
        "UPDATE parking_pay_sessions SET status = ?, exit_at = NULL, exit_terminal = NULL, "
        "exit_key = NULL, exit_payload = NULL, fee = NULL, paid = NULL, arrears = NULL, "
        "journal_id = NULL, quote = NULL WHERE tenant = ? AND session_id = ?",
        [SessionStatus.OPEN.value, processor.tenant, session_id],
    )
    return exit_tx


def _reverse(
    processor: Processor,
    journal_id: str,
    exit_tx: Transaction,
    lot_id: str,
    operator_id: str,
    session_id: str,
    card_id: str | None,
) -> None:
    """Post the negation of a charge journal and give the card back what it paid."""
    processor.cursor.execute(
        processor.sql(
            "SELECT account, amount FROM parking_pay_postings WHERE tenant = ? AND journal_id = ?"
        ),
        [processor.tenant, journal_id],
    )
    postings: list[tuple[str, int]] = [(a, -int(n)) for a, n in processor.cursor.fetchall()]
    journal = ledger.Journal(
        "reversal", exit_tx.at, lot_id, operator_id, session_id, card_id, reverses=journal_id
    )
    ledger.post(processor.cursor, processor.p, processor.tenant, journal, postings, processor.now)
    if card_id is not None:
        for account, amount in postings:
            if account == ledger.card_account(card_id) and amount:
                processor.change_balance(card_id, -amount)


def take_exit_from_earlier_stay(
    processor: Processor, entry: Transaction, lot: Lot
) -> Transaction | None:
    """Return the exit a late entry takes over from an earlier stay that it had closed."""
    column, holder = ("card_id", entry.card_id) if entry.card_id else ("plate", entry.plate)
    at = isoformat(entry.at)
    row: Any = processor.one(
        "SELECT session_id FROM parking_pay_sessions WHERE tenant = ? AND lot_id = ? "
        f"AND {column} = ? AND status IN (?, ?) AND entry_at < ? AND exit_at >= ? "
        "AND refunded = 0 ORDER BY entry_at DESC LIMIT 1",
        [processor.tenant, lot.lot_id, holder, *CLOSED, at, at],
    )
    return None if row is None else unpair(processor, row[0])
