"""The parking payment vocabulary: cards, transactions, their results, sessions and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from smartcity.core.errors import SMARTCITY_ERRORS, BadRequestData, Conflict
from smartcity.domains.mobility.parking.tariff import DiscountClass


class CardKind(StrEnum):
    """How a card pays: stored value (선불, T-money-like) or billed later (후불)."""

    PREPAID = "prepaid"
    POSTPAID = "postpaid"


class TransactionKind(StrEnum):
    """What a terminal reports."""

    ENTRY = "entry"
    """A card tap or a plate read at the entry gate (입차)."""
    EXIT = "exit"
    """A card tap or a plate read at the exit gate (출차): the fee is charged."""
    TOPUP = "topup"
    """Stored value loaded onto a prepaid card (충전)."""


class Outcome(StrEnum):
    """What became of one transaction."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    """The key was processed before: the first result is returned, nothing is charged again."""
    PENDING = "pending"
    """An exit whose entry has not arrived yet: kept, and closed when the entry arrives."""
    REFUSED = "refused"
    """Not accepted (detail says why); nothing was written, so the same key may be retried."""


class SessionStatus(StrEnum):
    """Where a parking session (주차 세션) stands."""

    OPEN = "open"
    PAID = "paid"
    ARREARS = "arrears"
    """Closed, but the card could not pay all of the fee: the rest is owed (미납)."""
    FLAGGED = "flagged"
    """Open for too long (entry without exit): waiting for an operator."""
    VOID = "void"
    """Closed by an operator without a charge."""


ORDER = {TransactionKind.ENTRY: 0, TransactionKind.TOPUP: 1, TransactionKind.EXIT: 2}
MAX_TOPUP = 1_000_000
"""Most won one top-up may load (a T-money card holds at most 500,000원)."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """One tap or plate read as a terminal reports it."""

    kind: TransactionKind
    lot_id: str
    terminal_id: str
    counter: int
    """The terminal's transaction counter: with the card (or plate) it makes the key."""
    at: datetime
    card_id: str | None = None
    plate: str | None = None
    amount: int | None = None
    """Won loaded, for a top-up."""
    classes: tuple[DiscountClass, ...] = ()
    """Discount classes the terminal saw (a disabled-person sticker, ...)."""

    @property
    def key(self) -> str:
        """Return the idempotency key: card (or plate) + terminal + transaction counter."""
        holder = self.card_id if self.card_id is not None else f"plate:{self.plate}"
        return f"{holder}|{self.terminal_id}|{self.counter}"

    def check(self) -> None:
        """Raise BadRequestData unless the transaction is complete and consistent."""
        if not self.lot_id or not self.terminal_id:
            raise BadRequestData("a transaction needs a lot and a terminal")
        if self.counter < 0:
            raise BadRequestData("the transaction counter must not be negative")
        if self.at.tzinfo is None:
            raise BadRequestData("the transaction time needs a time zone")
        if self.card_id is None and self.plate is None:
            raise BadRequestData("a transaction needs a card or a plate")
        for name, value in (
            ("card", self.card_id),
            ("plate", self.plate),
            ("terminal", self.terminal_id),
        ):
            if value is not None and ("|" in value or not value.strip() or len(value) > 100):
                raise BadRequestData(f"a {name} id is 1 to 100 characters without '|'")
        if self.kind is TransactionKind.TOPUP:
            if self.card_id is None:
                raise BadRequestData("a top-up needs a card")
            amount = self.amount
            if type(amount) is not int or not 0 < amount <= MAX_TOPUP or amount % 10:
                raise BadRequestData(
                    f"a top-up amount is a multiple of 10 won from 10 to {MAX_TOPUP:,}"
                )


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """What the platform did with one transaction (stored under its key, returned again)."""

    key: str
    kind: TransactionKind
    outcome: Outcome
    detail: str = ""
    session_id: str | None = None
    fee: int | None = None
    """The fee due after discount (won)."""
    paid: int | None = None
    """What the card paid now (stored value or postpaid)."""
    arrears: int | None = None
    """What stays owed (미납)."""
    balance: int | None = None
    """The prepaid card's stored value after the transaction."""
    journal_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the result as JSON (camelCase, no empty fields)."""
        body: dict[str, Any] = {"key": self.key, "kind": self.kind.value}
        body["outcome"] = self.outcome.value
        for name, value in (
            ("detail", self.detail or None),
            ("sessionId", self.session_id),
            ("fee", self.fee),
            ("paid", self.paid),
            ("arrears", self.arrears),
            ("balance", self.balance),
            ("journalId", self.journal_id),
        ):
            if value is not None:
                body[name] = value
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> TransactionResult:
        """Rebuild a stored result."""
        return cls(
            key=body["key"],
            kind=TransactionKind(body["kind"]),
            outcome=Outcome(body["outcome"]),
            detail=body.get("detail", ""),
            session_id=body.get("sessionId"),
            fee=body.get("fee"),
            paid=body.get("paid"),
            arrears=body.get("arrears"),
            balance=body.get("balance"),
            journal_id=body.get("journalId"),
        )


@dataclass(frozen=True, slots=True)
class Card:
    """A payment card (교통카드) known to the platform."""

    card_id: str
    kind: CardKind
    balance: int
    """Stored value in won (prepaid); 0 for a postpaid card."""
    plate: str | None = None
    """The vehicle registered for plate-read payment (자동결제), if any."""
    classes: tuple[DiscountClass, ...] = ()
    """Discount classes registered for the card's vehicle or holder."""


@dataclass(frozen=True, slots=True)
class ParkingSession:
    """One stay in a lot, from entry to exit."""

    session_id: str
    lot_id: str
    status: SessionStatus
    entry_at: str
    entry_terminal: str
    card_id: str | None = None
    plate: str | None = None
    exit_at: str | None = None
    exit_terminal: str | None = None
    fee: int | None = None
    paid: int | None = None
    arrears: int | None = None
    refunded: int = 0
    journal_id: str | None = None
    quote: dict[str, Any] = field(default_factory=dict)


class InsufficientBalance(Conflict):
    """A prepaid card cannot pay the fee at an online exit: the session stays open."""

    problem_type = SMARTCITY_ERRORS + "InsufficientBalance"
    title = "Insufficient stored value"


class LedgerImbalance(Exception):
    """A journal whose postings do not sum to zero: a programming error, never written."""
