"""Receipts (영수증) in Korean and English, and postpaid statements and payments (후불 청구)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.domains.mobility.parking.payment import ledger
from smartcity.domains.mobility.parking.payment.model import CardKind, SessionStatus
from smartcity.domains.mobility.parking.payment.operations import load_session
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import KST

LABELS = {
    "title": ("주차요금 영수증", "Parking receipt"),
    "lot": ("주차장", "Lot"),
    "entry": ("입차", "Entry"),
    "exit": ("출차", "Exit"),
    "gross": ("주차요금", "Parking fee"),
    "total": ("결제 금액", "Amount due"),
    "paid": ("결제", "Paid"),
    "arrears": ("미납", "Unpaid"),
    "refunded": ("환불", "Refunded"),
    "card": ("카드", "Card"),
}


def mask(card_id: str | None) -> str | None:
    """Return a card number with all but its last four characters hidden."""
    if card_id is None:
        return None
    return "*" * max(len(card_id) - 4, 0) + card_id[-4:]


def receipt(service: PaymentService, caller: Caller, session_id: str) -> dict[str, Any]:
    """Return the itemized receipt of a closed session."""
    allowed = service.grants.operators(caller, Permission.READ_PARKING_REVENUE)
    with service.store.reading() as cursor:
        stay, operator_id = load_session(service, cursor, caller, session_id, allowed)
    if stay.status in (SessionStatus.OPEN, SessionStatus.FLAGGED):
        raise Conflict(f"session {session_id} is still open: no receipt yet")
    quote = stay.quote
    return {
        "receiptNumber": session_id,
        "lotId": stay.lot_id,
        "operatorId": operator_id,
        "entry": stay.entry_at,
        "exit": stay.exit_at,
        "card": mask(stay.card_id),
        "plate": stay.plate,
        "status": stay.status.value,
        "lines": quote.get("lines", []),
        "gross": quote.get("gross", 0),
        "discount": quote.get("discount", 0),
        "total": stay.fee or 0,
        "paid": stay.paid or 0,
        "arrears": stay.arrears or 0,
        "refunded": stay.refunded,
        "currency": "KRW",
        "labels": {name: {"ko": ko, "en": en} for name, (ko, en) in LABELS.items()},
    }


def render_receipt(body: dict[str, Any]) -> str:
    """Return a receipt as plain text, each label in Korean and English."""

    def label(name: str) -> str:
        ko, en = LABELS[name]
        return f"{ko} {en}"

    def moment(text: str | None) -> str:
        if not text:
            return "-"
        return datetime.fromisoformat(text).astimezone(KST).strftime("%Y-%m-%d %H:%M KST")

    rows = [
        f"{label('title')}  #{body['receiptNumber']}",
        f"{label('lot')}: {body['lotId']}",
        f"{label('entry')}: {moment(body['entry'])}",
        f"{label('exit')}: {moment(body['exit'])}",
    ]
    if body["card"]:
        rows.append(f"{label('card')}: {body['card']}")
    for line in body["lines"]:
        day = f" ({line['day']})" if line.get("day") else ""
        text = f"{line['labelKo']} {line['labelEn']}{day}"
        rows.append(f"  {text:<44} {line['amount']:>9,}원")
    for name in ("total", "paid", "arrears", "refunded"):
        if name == "total" or body[name]:
            rows.append(f"{label(name):<46} {body[name]:>9,}원")
    return "\n".join(rows)


def postpaid_statement(
    service: PaymentService, caller: Caller, card_id: str, first: date, last: date
) -> dict[str, Any]:
    """Return what a postpaid card was charged and paid between two KST days, and what it owes."""
    require(caller, Permission.MANAGE_PARKING_PAYMENTS)
    service.grants.operators(caller, Permission.MANAGE_PARKING_PAYMENTS)
    if last < first:
        raise BadRequestData("the statement's first day is after its last")
    card = service.card(caller, card_id)
    if card.kind is not CardKind.POSTPAID:
        raise BadRequestData(f"card {card_id} is prepaid: it gets no bill")
    account = ledger.receivable_account(card_id)
    p = service.p
    with service.store.reading() as cursor:
        cursor.execute(
            "SELECT j.kind, j.business_day, j.session_id, t.amount FROM parking_pay_journals j "
            "JOIN parking_pay_postings t ON t.tenant = j.tenant AND t.journal_id = j.journal_id "
            f"WHERE j.tenant = {p} AND t.account = {p} AND j.business_day >= {p} "
            f"AND j.business_day <= {p} ORDER BY j.business_day, j.created_at",
            [caller.tenant, account, first.isoformat(), last.isoformat()],
        )
        items = [
            {"kind": kind, "businessDay": day, "sessionId": sid, "amount": int(amount)}
            for kind, day, sid, amount in cursor.fetchall()
        ]
        owed = ledger.account_balance(cursor, p, caller.tenant, account)
    return {
        "cardId": card_id,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "items": items,
        "charged": sum(i["amount"] for i in items if i["kind"] == "charge"),
        "credited": -sum(i["amount"] for i in items if i["kind"] != "charge"),
        "owed": owed,
    }


def record_postpaid_payment(
    service: PaymentService, caller: Caller, card_id: str, amount: int, request_id: str
) -> dict[str, Any]:
    """Record a postpaid issuer's payment of a card's bill, once per request id."""
    require(caller, Permission.ADMINISTER_PARKING_PAYMENTS)
    if type(amount) is not int or amount <= 0:
        raise BadRequestData("a payment is a positive number of won")
    key = f"postpaid|{card_id}|{request_id}"
    now = service.clock.now()
    with service.store.writing() as cursor:
        processor = service.processor(cursor, caller.tenant)
        card = processor.card(card_id)
        if card is None:
            raise ResourceNotFound(f"no card {card_id}")
        if card.kind is not CardKind.POSTPAID:
            raise BadRequestData(f"card {card_id} is prepaid: it gets no bill")
        first = processor.one(
            "SELECT result FROM parking_pay_transactions WHERE tenant = ? AND idem_key = ?",
            [caller.tenant, key],
        )
        if first is not None:
            return {**orjson.loads(first[0]), "duplicate": True}
        journal = ledger.Journal("postpaid-payment", now, card_id=card_id)
        postings = [
            (ledger.POSTPAID_CLEARING, amount),
            (ledger.receivable_account(card_id), -amount),
        ]
        journal_id = ledger.post(cursor, service.p, caller.tenant, journal, postings, now)
        owed = ledger.account_balance(
            cursor, service.p, caller.tenant, ledger.receivable_account(card_id)
        )
        result = {"cardId": card_id, "amount": amount, "journalId": journal_id, "owed": owed}
        processor.run(
            "INSERT INTO parking_pay_transactions (tenant, idem_key, kind, lot_id, terminal_id, "
            "occurred_at, received_at, outcome, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                caller.tenant,
                key,
                "postpaid-payment",
                "",
                caller.subject,
                isoformat(now),
                isoformat(now),
                "accepted",
                orjson.dumps(result).decode(),
            ],
        )
    return {**result, "duplicate": False}
