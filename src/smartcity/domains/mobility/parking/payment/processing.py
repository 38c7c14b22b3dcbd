"""Process one entry, exit or top-up inside the caller's write transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.domains.mobility.parking.payment import ledger, pairing
from smartcity.domains.mobility.parking.payment.codec import transaction_from_json, transaction_json
from smartcity.domains.mobility.parking.payment.model import (
    Card,
    CardKind,
    InsufficientBalance,
    Outcome,
    SessionStatus,
    Transaction,
    TransactionKind,
    TransactionResult,
)
from smartcity.domains.mobility.parking.tariff import (
    DiscountClass,
    FeeQuote,
    Tariff,
    parking_fee,
)
from smartcity.storage.sqlbase import Cursor

OPEN_STATES = (SessionStatus.OPEN.value, SessionStatus.FLAGGED.value)


@dataclass(frozen=True, slots=True)
class Lot:
    """What payment needs of a lot: its operator and its tariff."""

    lot_id: str
    operator_id: str
    tariff: Tariff


def quote_json(quote: FeeQuote) -> dict[str, Any]:
    """Return a fee quote as the JSON kept on the session (the receipt's lines)."""
    return {
        "entry": isoformat(quote.entry),
        "exit": isoformat(quote.exit),
        "gross": quote.gross,
        "discount": quote.discount,
        "total": quote.total,
        "appliedDiscount": quote.applied_discount,
        "lines": [
            {
                "kind": line.kind.value,
                "labelKo": line.label_ko,
                "labelEn": line.label_en,
                "amount": line.amount,
                "quantity": line.quantity,
                "day": None if line.day is None else line.day.isoformat(),
            }
            for line in quote.lines
        ],
    }


def classes_of(text: str | None) -> tuple[DiscountClass, ...]:
    """Parse stored discount classes."""
    return tuple(DiscountClass(name) for name in orjson.loads(text or "[]"))


class Processor:
    """Apply transactions to sessions, cards and the ledger through one cursor."""

    def __init__(self, cursor: Cursor, placeholder: str, tenant: str, now: datetime) -> None:
        self.cursor = cursor
        self.p = placeholder
        self.tenant = tenant
        self.now = now

    def sql(self, text: str) -> str:
        """Return a statement written with ? placeholders in this database's style."""
        return text if self.p == "?" else text.replace("?", self.p)

    def run(self, text: str, params: list[Any]) -> None:
        """Execute one statement."""
        self.cursor.execute(self.sql(text), params)

    def one(self, text: str, params: list[Any]) -> Any:
        """Execute a query and return its first row (or None)."""
        self.cursor.execute(self.sql(text), params)
        return self.cursor.fetchone()

    # -- cards ---------------------------------------------------------------------------------

    def card(self, card_id: str) -> Card | None:
        """Return a card, or None."""
        row = self.one(
            "SELECT card_id, kind, balance, plate, classes FROM parking_pay_cards "
            "WHERE tenant = ? AND card_id = ?",
            [self.tenant, card_id],
        )
        return None if row is None else _card(row)

    def card_for_plate(self, plate: str) -> Card | None:
        """Return the card registered for a plate (자동결제), or None."""
        row = self.one(
            "SELECT card_id, kind, balance, plate, classes FROM parking_pay_cards "
            "WHERE tenant = ? AND plate = ? ORDER BY card_id LIMIT 1",
            [self.tenant, plate],
        )
        return None if row is None else _card(row)

    def change_balance(self, card_id: str, delta: int) -> int:
        """Add `delta` won to a prepaid card's stored value; refuse to go below zero."""
        row = self.one(
            "UPDATE parking_pay_cards SET balance = balance + ? "
            "WHERE tenant = ? AND card_id = ? AND balance + ? >= 0 RETURNING balance",
            [delta, self.tenant, card_id, delta],
        )
        if row is None:
            raise Conflict(f"card {card_id} cannot take {delta} won")
        return int(row[0])

    # -- transactions --------------------------------------------------------------------------

    def apply(self, tx: Transaction, lot: Lot, online: bool) -> TransactionResult:
        """Apply one new transaction and return its result."""
        if tx.kind is TransactionKind.ENTRY:
            return self.entry(tx, lot)
        if tx.kind is TransactionKind.EXIT:
            return self.exit(tx, lot, online)
        return self.topup(tx)

    def entry(self, tx: Transaction, lot: Lot) -> TransactionResult:
        """Open a session; close it at once if its exit arrived first."""
        if tx.card_id is not None and self.card(tx.card_id) is None:
            raise ResourceNotFound(f"no card {tx.card_id}")
        session_id = uuid.uuid4().hex
        self.run(
            "INSERT INTO parking_pay_sessions (tenant, session_id, lot_id, operator_id, card_id, "
            "plate, status, entry_at, entry_terminal, entry_key, classes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.tenant,
                session_id,
                lot.lot_id,
                lot.operator_id,
                tx.card_id,
                tx.plate,
                SessionStatus.OPEN.value,
                isoformat(tx.at),
                tx.terminal_id,
                tx.key,
                orjson.dumps([c.value for c in tx.classes]).decode(),
            ],
        )
        result = TransactionResult(tx.key, tx.kind, Outcome.ACCEPTED, session_id=session_id)
        taken = pairing.take_exit_from_earlier_stay(self, tx, lot)
        if taken is not None:
            self.store_result(self._charge_session(taken, lot, session_id, online=False))
        else:
            self._close_pending(tx, lot)
        return result

    def _close_pending(self, entry: Transaction, lot: Lot) -> None:
        """Close the new session with the earliest exit that waited for it, if any."""
        row = self.one(
            "SELECT idem_key, payload FROM parking_pay_pending WHERE tenant = ? AND lot_id = ? "
            "AND holder = ? AND occurred_at >= ? ORDER BY occurred_at LIMIT 1",
            [self.tenant, lot.lot_id, _holder(entry), isoformat(entry.at)],
        )
        if row is None:
            return
        key, payload = row
        self.run(
            "DELETE FROM parking_pay_pending WHERE tenant = ? AND idem_key = ?", [self.tenant, key]
        )
        exit_tx = transaction_from_json(orjson.loads(payload))
        result = self.exit(exit_tx, lot, online=False)
        self.store_result(result)

    def exit(self, tx: Transaction, lot: Lot, online: bool) -> TransactionResult:
        """Close the session this exit ends and charge it; keep the exit if none matches yet.

        The exit ends the holder's latest stay that entered before it. When that stay was
        closed by a later exit (uploads out of order), it is paired again with this exit and
        the later exit waits for its own entry (see `pairing`).
        """
        column, holder = ("card_id", tx.card_id) if tx.card_id else ("plate", tx.plate)
        row = self.one(
            "SELECT session_id, card_id, plate, entry_at, classes, status, exit_at, refunded "
            f"FROM parking_pay_sessions WHERE tenant = ? AND lot_id = ? AND {column} = ? "
            "AND status <> ? AND entry_at <= ? ORDER BY entry_at DESC LIMIT 1",
            [self.tenant, lot.lot_id, holder, SessionStatus.VOID.value, isoformat(tx.at)],
        )
        later_exit: Transaction | None = None
        if row is not None and row[5] not in OPEN_STATES:
            closed_by_later = str(row[6]) > isoformat(tx.at) and not int(row[7])
            later_exit = pairing.unpair(self, row[0]) if closed_by_later else None
            if later_exit is None:
                row = None
        if row is None:
            self._keep_pending(tx, lot)
            detail = "no open session for this exit yet: kept until its entry arrives"
            return TransactionResult(tx.key, tx.kind, Outcome.PENDING, detail)
        result = self._charge_session(tx, lot, row[0], online)
        if later_exit is not None:
            self._keep_pending(later_exit, lot)
            detail = "its stay was paired again with an earlier exit: waiting for its entry"
            self.store_result(
                TransactionResult(later_exit.key, later_exit.kind, Outcome.PENDING, detail)
            )
        return result

    def _charge_session(
        self, tx: Transaction, lot: Lot, session_id: str, online: bool
    ) -> TransactionResult:
        """Charge an open session for an exit."""
        card_id, plate, entry_at, classes = self.one(
            "SELECT card_id, plate, entry_at, classes FROM parking_pay_sessions "
            "WHERE tenant = ? AND session_id = ?",
            [self.tenant, session_id],
        )
        payer = self._payer(tx.card_id or card_id, plate)
        wanted = {*classes_of(classes), *tx.classes, *(payer.classes if payer else ())}
        entry = datetime.fromisoformat(str(entry_at))
        quote = parking_fee(lot.tariff, entry, tx.at, wanted)
        return self.charge(tx, lot, session_id, quote, payer, plate, online)

    def _payer(self, card_id: str | None, plate: str | None) -> Card | None:
        if card_id is not None:
            card = self.card(card_id)
            if card is None:
                raise ResourceNotFound(f"no card {card_id}")
            return card
        return self.card_for_plate(plate) if plate is not None else None

    def charge(
        self,
        tx: Transaction,
        lot: Lot,
        session_id: str,
        quote: FeeQuote,
        payer: Card | None,
        plate: str | None,
        online: bool,
    ) -> TransactionResult:
        """Charge a closed stay to its payer and write the session's exit."""
        total, paid, balance = quote.total, 0, None
        postings: list[tuple[str, int]] = [
            (ledger.revenue_account(lot.operator_id), -quote.gross),
            (ledger.discount_account(lot.operator_id), quote.discount),
        ]
        if payer is not None and payer.kind is CardKind.POSTPAID:
            paid = total
            postings.append((ledger.receivable_account(payer.card_id), total))
        elif payer is not None:
            paid = min(payer.balance, total)
            if online and paid < total:
                raise InsufficientBalance(
                    f"card {payer.card_id} holds {payer.balance} won but the fee is {total} "
                    "won: top up or pay another way; the session stays open",
                    fee=total,
                    balance=payer.balance,
                )
            postings.append((ledger.card_account(payer.card_id), paid))
            balance = self.change_balance(payer.card_id, -paid) if paid else payer.balance
        elif online and total > 0:
            raise InsufficientBalance(
                f"no card pays for plate {plate}: tap a card or pay at the machine; "
                "the session stays open",
                fee=total,
            )
        arrears = total - paid
        holder = payer.card_id if payer is not None else f"plate:{plate}"
        postings.append((ledger.arrears_account(holder), arrears))
        journal_id = None
        if quote.gross:
            journal = ledger.Journal(
                "charge", tx.at, lot.lot_id, lot.operator_id, session_id, holder
            )
            journal_id = ledger.post(self.cursor, self.p, self.tenant, journal, postings, self.now)
        status = SessionStatus.ARREARS if arrears else SessionStatus.PAID
        self.run(
            "UPDATE parking_pay_sessions SET status = ?, exit_at = ?, exit_terminal = ?, "
            "exit_key = ?, exit_payload = ?, fee = ?, paid = ?, arrears = ?, journal_id = ?, "
            "quote = ?, card_id = COALESCE(card_id, ?) WHERE tenant = ? AND session_id = ?",
            [
                status.value,
                isoformat(tx.at),
                tx.terminal_id,
                tx.key,
                orjson.dumps(transaction_json(tx)).decode(),
                total,
                paid,
                arrears,
                journal_id,
                orjson.dumps(quote_json(quote)).decode(),
                payer.card_id if payer is not None else None,
                self.tenant,
                session_id,
            ],
        )
        return TransactionResult(
            tx.key,
            tx.kind,
            Outcome.ACCEPTED,
            session_id=session_id,
            fee=total,
            paid=paid,
            arrears=arrears,
            balance=balance,
            journal_id=journal_id,
        )

    def _keep_pending(self, tx: Transaction, lot: Lot) -> None:
        self.run(
            "INSERT INTO parking_pay_pending (tenant, idem_key, lot_id, holder, occurred_at, "
            "payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                self.tenant,
                tx.key,
                lot.lot_id,
                _holder(tx),
                isoformat(tx.at),
                orjson.dumps(transaction_json(tx)).decode(),
                isoformat(self.now),
            ],
        )

    def topup(self, tx: Transaction) -> TransactionResult:
        """Load stored value; what the card owes (미납) is paid from it first."""
        assert tx.card_id is not None
        assert tx.amount is not None
        card = self.card(tx.card_id)
        if card is None:
            raise ResourceNotFound(f"no card {tx.card_id}")
        if card.kind is not CardKind.PREPAID:
            raise BadRequestData(f"card {tx.card_id} is postpaid: it has no stored value")
        arrears_account = ledger.arrears_account(card.card_id)
        owed = ledger.account_balance(self.cursor, self.p, self.tenant, arrears_account)
        settled = min(max(owed, 0), tx.amount)
        card_account = ledger.card_account(card.card_id)
        postings = [
            (ledger.TOPUP_CLEARING, tx.amount),
            (card_account, -tx.amount + settled),
            (arrears_account, -settled),
        ]
        journal = ledger.Journal("topup", tx.at, tx.lot_id, None, None, card.card_id)
        journal_id = ledger.post(self.cursor, self.p, self.tenant, journal, postings, self.now)
        balance = self.change_balance(card.card_id, tx.amount - settled)
        detail = f"{settled} won of arrears paid first" if settled else ""
        return TransactionResult(
            tx.key, tx.kind, Outcome.ACCEPTED, detail, balance=balance, journal_id=journal_id
        )

    def store_result(self, result: TransactionResult) -> None:
        """Keep a result under its key, so a duplicate gets it back."""
        self.run(
            "UPDATE parking_pay_transactions SET outcome = ?, result = ? "
            "WHERE tenant = ? AND idem_key = ?",
            [
                result.outcome.value,
                orjson.dumps(result.as_json()).decode(),
                self.tenant,
                result.key,
            ],
        )


def _card(row: Any) -> Card:
    card_id, kind, balance, plate, classes = row
    return Card(card_id, CardKind(kind), int(balance), plate, classes_of(classes))


def _holder(tx: Transaction) -> str:
    return tx.card_id if tx.card_id is not None else f"plate:{tx.plate}"
