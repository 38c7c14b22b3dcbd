"""Tests for the `parking-payment` command group."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.clock import SystemClock
from smartcity.domains.mobility.parking.payment.cli import (
    add_parking_payment_commands,
    parking_payment_command,
)
from smartcity.domains.mobility.parking.payment.model import CardKind, Transaction, TransactionKind
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import EXAMPLE_TARIFF
from smartcity.storage.sqlaccounts import SqlAccountStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.domains.mobility.parking.payment.conftest import START, minutes


def run(database: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_parking_payment_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["parking-payment", *argv])
    settings = Settings(database_url=f"sqlite:///{database}")
    return parking_payment_command(settings, args)


def test_settle_receipt_and_ledger_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "city.db"
    store = SqliteEntityStore(database)
    clock = SystemClock()
    service = PaymentService(store, AccessControl(SqlAccountStore(store), clock), clock)
    system = Caller.system("")
    service.register_lot(system, "lot-1", "op-1", EXAMPLE_TARIFF)
    service.issue_card(system, "card-1", CardKind.POSTPAID)
    [_, left] = service.submit(
        system,
        [
            Transaction(TransactionKind.ENTRY, "lot-1", "gate", 1, START, "card-1"),
            Transaction(TransactionKind.EXIT, "lot-1", "gate", 2, START + minutes(55), "card-1"),
        ],
    )
    store.close()
    assert left.session_id is not None
    day = START.date().isoformat()
    assert run(database, "settle", "--day", day) == 0
    assert "net 2,500 won, 1 charges, revision 1 (new)" in capsys.readouterr().out
    assert run(database, "settle", "--day", day, "--json") == 0
    assert orjson.loads(capsys.readouterr().out)["postedNow"] is False
    assert run(database, "receipt", left.session_id) == 0
    assert "2,500원" in capsys.readouterr().out
    assert run(database, "reconcile", "--hours", "1") == 0
    assert "0 newly flagged" in capsys.readouterr().out
    assert run(database, "ledger-check") == 0
    assert "ledger sum 0" in capsys.readouterr().out
