"""Parking payment: lots and cards, and entries, exits and top-ups from terminals, exactly once.

Every transaction carries an idempotency key (card + terminal + counter). A batch reads which of
its keys were processed before (their first results are returned, nothing is charged again),
then applies the new transactions in time order, each inside a savepoint so a refused item
leaves nothing behind and the rest still counts, and stores each result under its key (a unique
row). On PostgreSQL the batch first locks its cards and plates, so concurrent batches touching
the same card run one after the other; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from smartcity.auth.policy import AccessControl, Permission, denied, require
from smartcity.auth.principal import Caller
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import BadRequestData, ResourceNotFound, SmartCityError
from smartcity.domains.mobility.parking.payment import ledger
from smartcity.domains.mobility.parking.payment.access import PaymentAccess
from smartcity.domains.mobility.parking.payment.model import (
    ORDER,
    Card,
    CardKind,
    Outcome,
    Transaction,
    TransactionResult,
)
from smartcity.domains.mobility.parking.payment.processing import Lot, Processor
from smartcity.domains.mobility.parking.payment.schema import create_tables
from smartcity.domains.mobility.parking.tariff import DiscountClass, Tariff
from smartcity.storage.sqlbase import Cursor, SqlEntityStore

TariffLookup = Callable[[str, str], Tariff | None]
"""(tenant, lot id) -> the lot's tariff, when another part of the platform owns tariffs."""
RETRYABLE = frozenset({"40001", "40P01", "23505"})
"""PostgreSQL serialization failure, deadlock and unique violation: the batch is retried."""
ATTEMPTS = 5


class PaymentService:
    """Parking payment for every tenant of the platform's database."""

    def __init__(
        self,
        store: SqlEntityStore,
        access: AccessControl,
        clock: Clock,
        tariffs: TariffLookup | None = None,
    ) -> None:
        create_tables(store)
        self.store = store
        self.clock = clock
        self.grants = PaymentAccess(store, access)
        self.p = store.dialect.placeholder
        self._tariffs = tariffs

    def processor(self, cursor: Cursor, tenant: str) -> Processor:
        """Return a processor writing through `cursor` for one tenant."""
        return Processor(cursor, self.p, tenant, self.clock.now())

    # -- lots and cards ------------------------------------------------------------------------

    def register_lot(self, caller: Caller, lot_id: str, operator_id: str, tariff: Tariff) -> None:
        """Say which operator (운영사) runs a lot and at what tariff (replacing what was)."""
        require(caller, Permission.ADMINISTER_PARKING_PAYMENTS)
        if not lot_id or not operator_id:
            raise BadRequestData("a lot needs an id and an operator")
        p = self.p
        with self.store.writing() as cursor:
            cursor.execute(
                "INSERT INTO parking_pay_lots (tenant, lot_id, operator_id, tariff) "
                f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (tenant, lot_id) DO UPDATE SET "
                "operator_id = excluded.operator_id, tariff = excluded.tariff",
                [caller.tenant, lot_id, operator_id, tariff.model_dump_json()],
            )

    def lots(self, cursor: Cursor, tenant: str, lot_ids: Sequence[str]) -> dict[str, Lot]:
        """Return the registered lots among `lot_ids`."""
        wanted = sorted(set(lot_ids))
        if not wanted:
            return {}
        marks = ", ".join([self.p] * len(wanted))
        cursor.execute(
            "SELECT lot_id, operator_id, tariff FROM parking_pay_lots "
            f"WHERE tenant = {self.p} AND lot_id IN ({marks})",
            [tenant, *wanted],
        )
        found: dict[str, Lot] = {}
        for lot_id, operator_id, tariff in cursor.fetchall():
            looked_up = self._tariffs(tenant, lot_id) if self._tariffs else None
            chosen = looked_up or Tariff.model_validate_json(tariff)
            found[lot_id] = Lot(lot_id, operator_id, chosen)
        return found

    def issue_card(
        self,
        caller: Caller,
        card_id: str,
        kind: CardKind,
        plate: str | None = None,
        classes: Sequence[DiscountClass] = (),
    ) -> Card:
        """Register a card (with no stored value yet)."""
        require(caller, Permission.ADMINISTER_PARKING_PAYMENTS)
        if not card_id:
            raise BadRequestData("a card needs an id")
        p = self.p
        with self.store.writing() as cursor:
            cursor.execute(
                "INSERT INTO parking_pay_cards (tenant, card_id, kind, balance, plate, classes, "
                f"created_at) VALUES ({p}, {p}, {p}, 0, {p}, {p}, {p}) ON CONFLICT DO NOTHING",
                [
                    caller.tenant,
                    card_id,
                    kind.value,
                    plate,
                    orjson.dumps([c.value for c in classes]).decode(),
                    isoformat(self.clock.now()),
                ],
            )
            if cursor.rowcount != 1:
                raise BadRequestData(f"card {card_id} exists already")
        return Card(card_id, kind, 0, plate, tuple(classes))

    def card(self, caller: Caller, card_id: str) -> Card:
        """Return a card and its stored value."""
        require(caller, Permission.READ_PARKING_REVENUE)
        with self.store.reading() as cursor:
            card = self.processor(cursor, caller.tenant).card(card_id)
        if card is None:
            raise ResourceNotFound(f"no card {card_id}")
        return card

    # -- transactions --------------------------------------------------------------------------

    def submit(
        self, caller: Caller, transactions: Sequence[Transaction], *, online: bool = False
    ) -> list[TransactionResult]:
        """Apply a batch of transactions exactly once each; return a result per item, in order.

        `online` is a live gate: an exit the card cannot pay is refused (the session stays open)
        and the error raised. Offline uploads (the car has left) charge what the card holds and
        keep the rest as arrears (미납).
        """
        lots_allowed = self.grants.terminal_lots(caller)
        results: list[TransactionResult | None] = [None] * len(transactions)
        todo: list[tuple[int, Transaction]] = []
        for index, tx in enumerate(transactions):
            try:
                tx.check()
            except BadRequestData as error:
                if online:
                    raise
                results[index] = _refused(tx, error.detail)
                continue
            if lots_allowed is not None and tx.lot_id not in lots_allowed:
                detail = f"{caller.subject} may not post transactions for lot {tx.lot_id}"
                if online:
                    raise denied(caller, f"post transactions for lot {tx.lot_id}")
                results[index] = _refused(tx, detail)
                continue
            todo.append((index, tx))
        todo.sort(key=lambda item: (item[1].at, ORDER[item[1].kind], item[0]))
        done: dict[int, TransactionResult] = {}
        careful, attempt = False, 0
        while True:
            try:
                with self.store.writing() as cursor:
                    if self.store.dialect.name == "postgresql":
                        # Statements whose results are not read go out without waiting.
                        with cursor.connection.pipeline():
                            done = self._apply(cursor, caller.tenant, todo, online, careful)
                    else:
                        done = self._apply(cursor, caller.tenant, todo, online, careful)
                break
            except _Redo:
                careful = True  # an item was refused: again, each item in a savepoint
            except Exception as error:
                attempt += 1
                if getattr(error, "sqlstate", None) in RETRYABLE and attempt < ATTEMPTS:
                    continue
                raise
        for index, result in done.items():
            results[index] = result
        return [result for result in results if result is not None]

    def _apply(
        self,
        cursor: Cursor,
        tenant: str,
        todo: list[tuple[int, Transaction]],
        online: bool,
        careful: bool,
    ) -> dict[int, TransactionResult]:
        processor = self.processor(cursor, tenant)
        if self.store.dialect.name == "postgresql":
            self._lock_holders(processor, todo)
        lots = self.lots(cursor, tenant, [tx.lot_id for _, tx in todo])
        first = self._processed(processor, sorted({tx.key for _, tx in todo}))
        done: dict[int, TransactionResult] = {}
        for index, tx in todo:
            if tx.key in first:
                done[index] = _duplicate(first[tx.key])
                continue
            result = self._apply_one(processor, tx, lots.get(tx.lot_id), online, careful)
            if result.outcome is not Outcome.REFUSED:
                first[tx.key] = result
            done[index] = result
        return done

    def _lock_holders(self, processor: Processor, todo: list[tuple[int, Transaction]]) -> None:
        """Lock each card or plate of the batch for the transaction, in one order.

        Under READ COMMITTED an exit could miss an entry that a concurrent batch is writing
        (and that batch miss the exit it keeps pending); with one lock per holder the two run
        one after the other, and a concurrent duplicate finds the first result stored. Taking
        the locks sorted keeps two batches from waiting on each other in a circle.
        """
        holders = sorted(
            {f"parking|{processor.tenant}|{tx.key.split('|', 1)[0]}" for _, tx in todo}
        )
        processor.run(
            "SELECT COUNT(pg_advisory_xact_lock(hashtextextended(h, 0))) "
            "FROM (SELECT h FROM unnest(?::text[]) AS h ORDER BY h) AS holders",
            [holders],
        )

    def _processed(self, processor: Processor, keys: list[str]) -> dict[str, TransactionResult]:
        """Return the stored results of the keys processed before."""
        found: dict[str, TransactionResult] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            processor.cursor.execute(
                processor.sql(
                    "SELECT result FROM parking_pay_transactions "
                    f"WHERE tenant = ? AND idem_key IN ({marks})"
                ),
                [processor.tenant, *chunk],
            )
            for (text,) in processor.cursor.fetchall():
                result = TransactionResult.from_json(orjson.loads(text))
                found[result.key] = result
        return found

    def _apply_one(
        self,
        processor: Processor,
        tx: Transaction,
        lot: Lot | None,
        online: bool,
        careful: bool,
    ) -> TransactionResult:
        """Apply one new transaction and keep its result under its key.

        A batch first runs without savepoints (fewer round trips); when an item is refused
        the whole batch is rolled back and run again `careful`ly, each item in a savepoint, so
        a refused item leaves nothing behind and the others still count. The key's row is
        unique: should two transactions ever store the same key, the second fails, its batch
        is rolled back and retried, and then finds the first result.
        """
        if careful:
            processor.run("SAVEPOINT parking_item", [])
        try:
            if lot is None:
                raise ResourceNotFound(f"lot {tx.lot_id} is not registered for payment")
            result = processor.apply(tx, lot, online)
        except SmartCityError as error:
            if online:
                raise
            if not careful:
                raise _Redo from error
            processor.run("ROLLBACK TO SAVEPOINT parking_item", [])
            processor.run("RELEASE SAVEPOINT parking_item", [])
            return _refused(tx, error.detail)
        processor.run(
            "INSERT INTO parking_pay_transactions (tenant, idem_key, kind, lot_id, "
            "terminal_id, occurred_at, received_at, outcome, result) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                processor.tenant,
                tx.key,
                tx.kind.value,
                tx.lot_id,
                tx.terminal_id,
                isoformat(tx.at),
                isoformat(processor.now),
                result.outcome.value,
                orjson.dumps(result.as_json()).decode(),
            ],
        )
        if careful:
            processor.run("RELEASE SAVEPOINT parking_item", [])
        return result

    def result(self, caller: Caller, key: str) -> TransactionResult:
        """Return the stored result of a transaction key."""
        require(caller, Permission.READ_PARKING_REVENUE)
        with self.store.reading() as cursor:
            processor = self.processor(cursor, caller.tenant)
            row = processor.one(
                "SELECT result FROM parking_pay_transactions WHERE tenant = ? AND idem_key = ?",
                [caller.tenant, key],
            )
        if row is None:
            raise ResourceNotFound(f"no transaction {key}")
        return TransactionResult.from_json(orjson.loads(row[0]))

    # -- ledger checks -------------------------------------------------------------------------

    def ledger_check(self, caller: Caller) -> dict[str, Any]:
        """Return the ledger's sum (0), unbalanced journals (none) and card mismatches (none)."""
        require(caller, Permission.MANAGE_PARKING_PAYMENTS)
        self.grants.operators(caller, Permission.MANAGE_PARKING_PAYMENTS)
        with self.store.reading() as cursor:
            balances = ledger.trial_balance(cursor, self.p, caller.tenant)
            unbalanced = ledger.unbalanced_journals(cursor, self.p, caller.tenant)
            cursor.execute(
                f"SELECT card_id, balance FROM parking_pay_cards WHERE tenant = {self.p} "
                "AND kind = 'prepaid'",
                [caller.tenant],
            )
            cards = cursor.fetchall()
        mismatched = [
            card_id
            for card_id, balance in cards
            if -balances.get(ledger.card_account(card_id), 0) != int(balance)
        ]
        return {
            "sum": sum(balances.values()),
            "accounts": len(balances),
            "unbalancedJournals": unbalanced,
            "cardMismatches": mismatched,
        }


class _Redo(Exception):
    """An item of a batch run without savepoints was refused: run the batch carefully."""


def _refused(tx: Transaction, detail: str) -> TransactionResult:
    return TransactionResult(tx.key, tx.kind, Outcome.REFUSED, detail)


def _duplicate(first: TransactionResult) -> TransactionResult:
    return TransactionResult(
        first.key,
        first.kind,
        Outcome.DUPLICATE,
        f"processed before ({first.outcome.value}): nothing charged again",
        first.session_id,
        first.fee,
        first.paid,
        first.arrears,
        first.balance,
        first.journal_id,
    )
