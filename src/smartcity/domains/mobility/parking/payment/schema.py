"""The payment tables on the platform's database (SQLite or PostgreSQL), created on first use."""

from __future__ import annotations

from typing import Final

from smartcity.storage.sqlbase import SqlEntityStore

_DDL: Final = """
CREATE TABLE IF NOT EXISTS parking_pay_lots (
    tenant {text} NOT NULL,
    lot_id {text} NOT NULL,
    operator_id {text} NOT NULL,
    tariff TEXT NOT NULL,
    PRIMARY KEY (tenant, lot_id)
);
CREATE TABLE IF NOT EXISTS parking_pay_grants (
    tenant {text} NOT NULL,
    principal_id {text} NOT NULL,
    scope {text} NOT NULL,
    scope_id {text} NOT NULL,
    PRIMARY KEY (tenant, principal_id, scope, scope_id)
);
CREATE TABLE IF NOT EXISTS parking_pay_cards (
    tenant {text} NOT NULL,
    card_id {text} NOT NULL,
    kind {text} NOT NULL,
    balance BIGINT NOT NULL,
    plate {text},
    classes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, card_id),
    CHECK (balance >= 0)
);
CREATE INDEX IF NOT EXISTS parking_pay_cards_plate ON parking_pay_cards (tenant, plate);
CREATE TABLE IF NOT EXISTS parking_pay_sessions (
    tenant {text} NOT NULL,
    session_id {text} NOT NULL,
    lot_id {text} NOT NULL,
    operator_id {text} NOT NULL,
    card_id {text},
    plate {text},
    status {text} NOT NULL,
    entry_at {text} NOT NULL,
    entry_terminal TEXT NOT NULL,
    entry_key TEXT NOT NULL,
    exit_at {text},
    exit_terminal TEXT,
    exit_key TEXT,
    exit_payload TEXT,
    classes TEXT NOT NULL,
    fee BIGINT,
    paid BIGINT,
    arrears BIGINT,
    refunded BIGINT NOT NULL DEFAULT 0,
    journal_id TEXT,
    quote TEXT,
    PRIMARY KEY (tenant, session_id)
);
CREATE INDEX IF NOT EXISTS parking_pay_sessions_card_entry
    ON parking_pay_sessions (tenant, lot_id, card_id, entry_at);
CREATE INDEX IF NOT EXISTS parking_pay_sessions_plate_entry
    ON parking_pay_sessions (tenant, lot_id, plate, entry_at);
CREATE INDEX IF NOT EXISTS parking_pay_sessions_status
    ON parking_pay_sessions (tenant, status, entry_at);
CREATE TABLE IF NOT EXISTS parking_pay_transactions (
    tenant {text} NOT NULL,
    idem_key {text} NOT NULL,
    kind {text} NOT NULL,
    lot_id {text} NOT NULL,
    terminal_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    outcome {text} NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (tenant, idem_key)
);
CREATE TABLE IF NOT EXISTS parking_pay_pending (
    tenant {text} NOT NULL,
    idem_key {text} NOT NULL,
    lot_id {text} NOT NULL,
    holder {text} NOT NULL,
    occurred_at {text} NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (tenant, idem_key)
);
CREATE INDEX IF NOT EXISTS parking_pay_pending_holder
    ON parking_pay_pending (tenant, lot_id, holder, occurred_at);
CREATE TABLE IF NOT EXISTS parking_pay_journals (
    tenant {text} NOT NULL,
    journal_id {text} NOT NULL,
    kind {text} NOT NULL,
    lot_id {text},
    operator_id {text},
    session_id {text},
    card_id {text},
    occurred_at TEXT NOT NULL,
    business_day {text} NOT NULL,
    reverses {text},
    settlement_id {text},
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, journal_id)
);
CREATE INDEX IF NOT EXISTS parking_pay_journals_day
    ON parking_pay_journals (tenant, operator_id, business_day, kind);
CREATE INDEX IF NOT EXISTS parking_pay_journals_session
    ON parking_pay_journals (tenant, session_id);
CREATE TABLE IF NOT EXISTS parking_pay_postings (
    tenant {text} NOT NULL,
    journal_id {text} NOT NULL,
    account {text} NOT NULL,
    amount BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS parking_pay_postings_journal
    ON parking_pay_postings (tenant, journal_id);
CREATE INDEX IF NOT EXISTS parking_pay_postings_account
    ON parking_pay_postings (tenant, account);
CREATE TABLE IF NOT EXISTS parking_pay_settlements (
    tenant {text} NOT NULL,
    settlement_id {text} NOT NULL,
    operator_id {text} NOT NULL,
    business_day {text} NOT NULL,
    revision INTEGER NOT NULL,
    gross BIGINT NOT NULL,
    discounts BIGINT NOT NULL,
    refunds BIGINT NOT NULL,
    net BIGINT NOT NULL,
    charges INTEGER NOT NULL,
    journal_id TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, settlement_id),
    UNIQUE (tenant, operator_id, business_day, revision)
)
"""
_TYPES: Final = {"sqlite": {"text": "TEXT"}, "postgresql": {"text": 'TEXT COLLATE "C"'}}
_DDL_LOCK: Final = 0x736D7061790A  # "smpay"


def create_tables(store: SqlEntityStore) -> None:
    """Create the payment tables and indexes if they are missing."""
    ddl = _DDL.format(**_TYPES[store.dialect.name])
    with store.writing() as cursor:
        if store.dialect.name == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
        for statement in ddl.split(";"):
            if statement.strip():
                cursor.execute(statement)
