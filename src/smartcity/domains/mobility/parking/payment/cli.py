"""`smartcity parking-payment ...`: settle, reconcile, print receipts and check the ledger.

These run directly on the platform's database as the platform itself (a cron job or an
operator at the server), in one tenant.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.core.clock import SystemClock
from smartcity.domains.mobility.parking.payment import operations, receipts, settlement
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.platform import open_store
from smartcity.storage.sqlaccounts import SqlAccountStore

COMMAND = "parking-payment"


def add_parking_payment_commands(commands: Any) -> None:
    """Add the `parking-payment` command group to the `smartcity` subcommands."""
    group = commands.add_parser(
        COMMAND,
        help="settle parking revenue, reconcile incomplete sessions, print receipts",
        description="Parking payment on the platform's database, as the platform itself.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tenant", default="", help="the NGSI-LD tenant (default: default)")
    common.add_argument("--database-url", help="the platform's database (default: settings)")
    common.add_argument("--json", action="store_true", help="print JSON")
    settle = actions.add_parser(
        "settle",
        parents=[common],
        help="settle a business day per operator (again: posts only what is new)",
    )
    settle.add_argument("--day", help="YYYY-MM-DD in Asia/Seoul (default: yesterday)")
    settle.add_argument("--operator", help="one operator (default: every operator)")
    reconcile = actions.add_parser(
        "reconcile",
        parents=[common],
        help="flag sessions without exit older than --hours; list exits without entry",
    )
    reconcile.add_argument("--hours", type=int, default=24, help="default 24")
    receipt = actions.add_parser("receipt", parents=[common], help="print a session's receipt")
    receipt.add_argument("session", help="the session id")
    actions.add_parser("ledger-check", parents=[common], help="check that the ledger balances")


def parking_payment_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one `parking-payment` action; return the exit status."""
    store = open_store(args.database_url or settings.database_url, settings.database_schema)
    clock = SystemClock()
    try:
        service = PaymentService(store, AccessControl(SqlAccountStore(store), clock), clock)
        return _run(service, Caller.system(args.tenant), args)
    finally:
        store.close()


def _run(service: PaymentService, system: Caller, args: argparse.Namespace) -> int:
    if args.action == "settle":
        yesterday = datetime.now(KST).date() - timedelta(days=1)
        day = date.fromisoformat(args.day) if args.day else yesterday
        if args.operator:
            done = [settlement.settle(service, system, args.operator, day)]
        else:
            done = settlement.settle_day(service, system, day)
        for item in done:
            figures = item.figures
            _print(
                args,
                item.as_json(),
                f"{figures.business_day} {figures.operator_id}: gross {figures.gross:,} "
                f"discounts {figures.discounts:,} refunds {figures.refunds:,} "
                f"net {figures.net:,} won, {figures.charges} charges, "
                f"revision {item.revisions}{' (new)' if item.posted_now else ''}",
            )
        if not done:
            print(f"nothing to settle on {day.isoformat()}")
        return 0
    if args.action == "reconcile":
        report = operations.reconcile(service, system, timedelta(hours=args.hours))
        for stay in report.flagged:
            _print(
                args,
                {"sessionId": stay.session_id, "lotId": stay.lot_id, "entry": stay.entry_at},
                f"flagged {stay.session_id} lot {stay.lot_id} since {stay.entry_at}",
            )
        for orphan in report.orphan_exits:
            _print(args, orphan, f"exit without entry: {orjson.dumps(orphan).decode()}")
        if not args.json:
            print(f"{report.flagged_now} newly flagged, {len(report.flagged)} waiting")
        return 0
    if args.action == "receipt":
        body = receipts.receipt(service, system, args.session)
        _print(args, body, receipts.render_receipt(body))
        return 0
    check = service.ledger_check(system)
    _print(args, check, f"ledger sum {check['sum']} over {check['accounts']} accounts")
    sound = check["sum"] == 0 and not check["unbalancedJournals"] and not check["cardMismatches"]
    return 0 if sound else 1


def _print(args: argparse.Namespace, body: Any, text: str) -> None:
    print(orjson.dumps(body).decode() if args.json else text)
