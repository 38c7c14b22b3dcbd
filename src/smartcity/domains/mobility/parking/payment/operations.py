"""What an operator does after the fact: refunds, reconciliation, top-ups of postpaid bills.

Reconciliation (정산 대사) of incomplete sessions: a session open longer than the limit (entry
without exit) is flagged and left for an operator, never charged by a machine's guess. The
operator closes it at a time they choose (the tariff's daily cap bounds the fee; what the card
cannot pay becomes arrears) or voids it. Exits whose entry never arrived are listed too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from smartcity.auth.policy import Permission, denied
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.domains.mobility.parking.payment import ledger
from smartcity.domains.mobility.parking.payment.model import (
    CardKind,
    ParkingSession,
    SessionStatus,
    Transaction,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.processing import Processor, classes_of
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import parking_fee
from smartcity.storage.sqlbase import Cursor

SESSION_COLUMNS = (
    "session_id, lot_id, operator_id, status, entry_at, entry_terminal, card_id, plate, exit_at, "
    "exit_terminal, fee, paid, arrears, refunded, journal_id, quote, classes"
)


def _session(row: Any) -> tuple[ParkingSession, str]:
    (sid, lot, operator, status, entry_at, entry_terminal, card, plate, exit_at) = row[:9]
    (exit_terminal, fee, paid, arrears, refunded, journal_id, quote) = row[9:16]
    session = ParkingSession(
        sid,
        lot,
        SessionStatus(status),
        entry_at,
        entry_terminal,
        card,
        plate,
        exit_at,
        exit_terminal,
        None if fee is None else int(fee),
        None if paid is None else int(paid),
        None if arrears is None else int(arrears),
        int(refunded),
        journal_id,
        orjson.loads(quote) if quote else {},
    )
    return session, str(operator)


def load_session(
    service: PaymentService,
    cursor: Cursor,
    caller: Caller,
    session_id: str,
    allowed: frozenset[str] | None,
) -> tuple[ParkingSession, str]:
    """Return a session and its operator, if `allowed` (the caller's operators) holds it."""
    p = service.p
    cursor.execute(
        f"SELECT {SESSION_COLUMNS} FROM parking_pay_sessions "
        f"WHERE tenant = {p} AND session_id = {p}",
        [caller.tenant, session_id],
    )
    row = cursor.fetchone()
    if row is None:
        raise ResourceNotFound(f"no parking session {session_id}")
    session, operator_id = _session(row)
    if allowed is not None and operator_id not in allowed:
        raise denied(caller, f"see parking session {session_id}")
    return session, operator_id


def session(service: PaymentService, caller: Caller, session_id: str) -> ParkingSession:
    """Return one parking session."""
    allowed = service.grants.operators(caller, Permission.READ_PARKING_REVENUE)
    with service.store.reading() as cursor:
        found, _ = load_session(service, cursor, caller, session_id, allowed)
    return found


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund (환불) as written: the reversing journal and where the money went."""

    session_id: str
    amount: int
    to_arrears: int
    to_card: int
    journal_id: str
    duplicate: bool = False


def refund(
    service: PaymentService,
    caller: Caller,
    session_id: str,
    amount: int | None,
    request_id: str,
) -> Refund:
    """Refund all or part of a session's fee once per request id (a reversing journal)."""
    if amount is not None and (type(amount) is not int or amount <= 0):
        raise BadRequestData("a refund amount is a positive number of won")
    key = f"refund|{session_id}|{request_id}"
    allowed = service.grants.operators(caller, Permission.MANAGE_PARKING_PAYMENTS)
    with service.store.writing() as cursor:
        stay, operator_id = load_session(service, cursor, caller, session_id, allowed)
        processor = service.processor(cursor, caller.tenant)
        first = processor.one(
            "SELECT result FROM parking_pay_transactions WHERE tenant = ? AND idem_key = ?",
            [caller.tenant, key],
        )
        if first is not None:
            return Refund(**{**orjson.loads(first[0]), "duplicate": True})
        refundable = (stay.fee or 0) - stay.refunded
        wanted = refundable if amount is None else amount
        if stay.status not in (SessionStatus.PAID, SessionStatus.ARREARS) or wanted <= 0:
            raise Conflict(f"session {session_id} has nothing to refund")
        if wanted > refundable:
            raise Conflict(f"only {refundable} won of session {session_id} can be refunded")
        holder = stay.card_id if stay.card_id is not None else f"plate:{stay.plate}"
        owed = ledger.account_balance(
            cursor, service.p, caller.tenant, ledger.arrears_account(holder)
        )
        to_arrears = min(max(owed, 0), wanted)
        rest = wanted - to_arrears
        postings = [
            (ledger.refund_account(operator_id), wanted),
            (ledger.arrears_account(holder), -to_arrears),
        ]
        card = processor.card(stay.card_id) if stay.card_id is not None else None
        if rest and card is None:
            raise Conflict(f"session {session_id} was not paid by a card: refund it in cash")
        if rest and card is not None and card.kind is CardKind.POSTPAID:
            postings.append((ledger.receivable_account(card.card_id), -rest))
        elif rest and card is not None:
            postings.append((ledger.card_account(card.card_id), -rest))
            processor.change_balance(card.card_id, rest)
        journal = ledger.Journal(
            "refund",
            service.clock.now(),
            stay.lot_id,
            operator_id,
            session_id,
            holder,
            reverses=stay.journal_id,
        )
        journal_id = ledger.post(cursor, service.p, caller.tenant, journal, postings, processor.now)
        processor.run(
            "UPDATE parking_pay_sessions SET refunded = refunded + ? "
            "WHERE tenant = ? AND session_id = ?",
            [wanted, caller.tenant, session_id],
        )
        done = Refund(session_id, wanted, to_arrears, rest, journal_id)
        processor.run(
            "INSERT INTO parking_pay_transactions (tenant, idem_key, kind, lot_id, terminal_id, "
            "occurred_at, received_at, outcome, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                caller.tenant,
                key,
                "refund",
                stay.lot_id,
                caller.subject,
                isoformat(processor.now),
                isoformat(processor.now),
                "accepted",
                orjson.dumps(
                    {
                        "session_id": session_id,
                        "amount": wanted,
                        "to_arrears": to_arrears,
                        "to_card": rest,
                        "journal_id": journal_id,
                    }
                ).decode(),
            ],
        )
    return done


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Sessions without an exit for too long, and exits still waiting for their entry."""

    flagged_now: int
    flagged: list[ParkingSession]
    orphan_exits: list[dict[str, Any]]


def reconcile(service: PaymentService, caller: Caller, older_than: timedelta) -> Reconciliation:
    """Flag sessions open longer than `older_than`; list them and the exits without entry."""
    if older_than <= timedelta(0):
        raise BadRequestData("the age of an incomplete session must be positive")
    allowed = service.grants.operators(caller, Permission.MANAGE_PARKING_PAYMENTS)
    cutoff = isoformat(service.clock.now() - older_than)
    p = service.p
    scope, scope_params = "", []
    if allowed is not None:
        scope = f" AND operator_id IN ({', '.join([p] * len(allowed))})" if allowed else " AND 1=0"
        scope_params = sorted(allowed)
    with service.store.writing() as cursor:
        cursor.execute(
            f"UPDATE parking_pay_sessions SET status = {p} WHERE tenant = {p} AND status = {p} "
            f"AND entry_at < {p}{scope}",
            [
                SessionStatus.FLAGGED.value,
                caller.tenant,
                SessionStatus.OPEN.value,
                cutoff,
                *scope_params,
            ],
        )
        flagged_now = int(cursor.rowcount)
        cursor.execute(
            f"SELECT {SESSION_COLUMNS} FROM parking_pay_sessions WHERE tenant = {p} "
            f"AND status = {p}{scope} ORDER BY entry_at",
            [caller.tenant, SessionStatus.FLAGGED.value, *scope_params],
        )
        flagged = [_session(row)[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT x.payload, l.operator_id FROM parking_pay_pending x JOIN parking_pay_lots l "
            f"ON l.tenant = x.tenant AND l.lot_id = x.lot_id WHERE x.tenant = {p} "
            f"AND x.received_at < {p} ORDER BY x.occurred_at",
            [caller.tenant, cutoff],
        )
        orphans = [
            orjson.loads(payload)
            for payload, operator_id in cursor.fetchall()
            if allowed is None or operator_id in allowed
        ]
    return Reconciliation(flagged_now, flagged, orphans)


def incomplete_sessions(
    service: PaymentService, caller: Caller, older_than: timedelta, limit: int = 200
) -> list[tuple[ParkingSession, str]]:
    """Return (session, operator) for sessions flagged or open longer than `older_than`.

    Read only: what reconciliation would flag and what it flagged, for an operator to close or
    void; the caller's operators only.
    """
    allowed = service.grants.operators(caller, Permission.READ_PARKING_REVENUE)
    if allowed is not None and not allowed:
        return []
    p = service.p
    scope, scope_params = "", []
    if allowed is not None:
        scope = f" AND operator_id IN ({', '.join([p] * len(allowed))})"
        scope_params = sorted(allowed)
    cutoff = isoformat(service.clock.now() - older_than)
    with service.store.reading() as cursor:
        cursor.execute(
            f"SELECT {SESSION_COLUMNS} FROM parking_pay_sessions WHERE tenant = {p} "
            f"AND (status = {p} OR (status = {p} AND entry_at < {p})){scope} "
            f"ORDER BY entry_at LIMIT {int(limit)}",
            [
                caller.tenant,
                SessionStatus.FLAGGED.value,
                SessionStatus.OPEN.value,
                cutoff,
                *scope_params,
            ],
        )
        return [_session(row) for row in cursor.fetchall()]


def close_flagged(
    service: PaymentService, caller: Caller, session_id: str, at: datetime | None = None
) -> ParkingSession:
    """Close an incomplete session as if it left at `at` (default now) and charge it."""
    allowed = service.grants.operators(caller, Permission.MANAGE_PARKING_PAYMENTS)
    with service.store.writing() as cursor:
        stay, _operator_id = load_session(service, cursor, caller, session_id, allowed)
        if stay.status not in (SessionStatus.FLAGGED, SessionStatus.OPEN):
            raise Conflict(f"session {session_id} is {stay.status.value}, not open")
        exit_at = at or service.clock.now()
        if exit_at.tzinfo is None:
            raise BadRequestData("the exit time needs a time zone")
        lot = service.lots(cursor, caller.tenant, [stay.lot_id]).get(stay.lot_id)
        if lot is None:
            raise ResourceNotFound(f"lot {stay.lot_id} is not registered for payment")
        processor = service.processor(cursor, caller.tenant)
        payer = processor.card(stay.card_id) if stay.card_id is not None else None
        if payer is None and stay.plate is not None:
            payer = processor.card_for_plate(stay.plate)
        cursor.execute(
            f"SELECT classes FROM parking_pay_sessions WHERE tenant = {service.p} "
            f"AND session_id = {service.p}",
            [caller.tenant, session_id],
        )
        classes = {*classes_of(cursor.fetchone()[0]), *(payer.classes if payer else ())}
        entry = datetime.fromisoformat(stay.entry_at)
        quote = parking_fee(lot.tariff, entry, exit_at, classes)
        tx = Transaction(
            TransactionKind.EXIT,
            stay.lot_id,
            f"operator:{caller.subject}",
            0,
            exit_at,
            stay.card_id,
            stay.plate,
        )
        processor.charge(tx, lot, session_id, quote, payer, stay.plate, online=False)
        return load_session(service, cursor, caller, session_id, allowed)[0]


def void_session(service: PaymentService, caller: Caller, session_id: str) -> ParkingSession:
    """Close an incomplete session without a charge (a gate fault, a test car)."""
    allowed = service.grants.operators(caller, Permission.MANAGE_PARKING_PAYMENTS)
    with service.store.writing() as cursor:
        stay, _ = load_session(service, cursor, caller, session_id, allowed)
        if stay.status not in (SessionStatus.FLAGGED, SessionStatus.OPEN):
            raise Conflict(f"session {session_id} is {stay.status.value}, not open")
        processor = Processor(cursor, service.p, caller.tenant, service.clock.now())
        processor.run(
            "UPDATE parking_pay_sessions SET status = ?, fee = 0, paid = 0, arrears = 0 "
            "WHERE tenant = ? AND session_id = ?",
            [SessionStatus.VOID.value, caller.tenant, session_id],
        )
        return load_session(service, cursor, caller, session_id, allowed)[0]
