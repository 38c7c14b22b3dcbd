"""Transactions as JSON: the batch upload's item format, and how a pending exit is kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smartcity.core.errors import BadRequestData
from smartcity.domains.mobility.parking.payment.model import Transaction, TransactionKind
from smartcity.domains.mobility.parking.tariff import DiscountClass


def transaction_json(tx: Transaction) -> dict[str, Any]:
    """Return a transaction as JSON (the batch upload's item format)."""
    body: dict[str, Any] = {
        "kind": tx.kind.value,
        "lotId": tx.lot_id,
        "terminalId": tx.terminal_id,
        "counter": tx.counter,
        "at": tx.at.isoformat(),
    }
    for name, value in (("cardId", tx.card_id), ("plate", tx.plate), ("amount", tx.amount)):
        if value is not None:
            body[name] = value
    if tx.classes:
        body["classes"] = [c.value for c in tx.classes]
    return body


def transaction_from_json(body: Any) -> Transaction:
    """Rebuild a transaction from its JSON (raise BadRequestData when it is not one)."""
    if not isinstance(body, dict):
        raise BadRequestData("a transaction is a JSON object")
    counter, amount = body.get("counter"), body.get("amount")
    if type(counter) is not int:
        raise BadRequestData("counter must be a whole number")
    if amount is not None and type(amount) is not int:
        raise BadRequestData("amount must be a whole number of won")
    for name in ("cardId", "plate"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadRequestData(f"{name} must be a string")
    for name in ("lotId", "terminalId", "at", "kind"):
        if name in body and not isinstance(body[name], str):
            raise BadRequestData(f"{name} must be a string")
    try:
        at = datetime.fromisoformat(body["at"].replace("Z", "+00:00"))
        return Transaction(
            kind=TransactionKind(body["kind"]),
            lot_id=body["lotId"],
            terminal_id=body["terminalId"],
            counter=counter,
            at=at,
            card_id=body.get("cardId"),
            plate=body.get("plate"),
            amount=amount,
            classes=tuple(DiscountClass(c) for c in body.get("classes", ())),
        )
    except KeyError as error:
        raise BadRequestData(f"a transaction needs {error.args[0]}") from error
    except (ValueError, TypeError) as error:
        raise BadRequestData(f"not a parking transaction: {error}") from error
