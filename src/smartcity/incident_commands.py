"""`smartcity incident ...`: list, show, acknowledge and close incidents on the database.

The command acts as an operator named `cli:<actor>` (default: the login name) in `--tenant`,
so its steps appear on the incidents' timelines like any operator's.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

import orjson

from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.config import Settings
from smartcity.core.errors import SmartCityError
from smartcity.operations.present import event_json, incident_json
from smartcity.storage.incidents import STATUSES, IncidentFilter

HELP = """Incidents of the operations center (see docs/operations.md): list them, show one with
its SOP checklist and timeline, acknowledge or close one. Runs on the database the settings
name, as an operator `cli:<actor>` of --tenant."""


def add_commands(commands: Any) -> None:
    """Add `incident list|show|ack|close` to the command's parser."""
    incident = commands.add_parser(
        "incident", help="list, show, acknowledge or close incidents", description=HELP
    )
    actions = incident.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list incidents, newest first")
    listing.add_argument("--status", choices=STATUSES, action="append")
    listing.add_argument("--type", action="append", help="an incident type (repeatable)")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    show = actions.add_parser("show", help="show one incident and its timeline")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    ack = actions.add_parser("ack", help="acknowledge an incident")
    ack.add_argument("id")
    close = actions.add_parser("close", help="close an incident (ends its video shares)")
    close.add_argument("id")
    close.add_argument("--note", default="", help="why (required unless it is resolved)")
    for parser in (listing, show, ack, close):
        parser.add_argument("--tenant", default="", help="the tenant (default: the default one)")
        parser.add_argument("--actor", default="", help="who acts (default: your login name)")
        parser.add_argument("--database-url", help="the platform's database (default: settings)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `smartcity incident ACTION`."""
    from smartcity.platform import build_platform

    platform = build_platform(settings)
    operations = platform.operations
    actor = args.actor or getpass.getuser()
    caller = Caller(f"cli:{actor}", args.tenant, frozenset({Role.OPERATOR}), PrincipalKind.SYSTEM)
    procedures = operations.incidents.procedures
    try:
        if args.action == "list":
            where = IncidentFilter(statuses=tuple(args.status or ()), types=tuple(args.type or ()))
            page, total = operations.incidents.page(caller, where, args.limit, 0, count=True)
            for incident in page:
                if args.json:
                    print(orjson.dumps(incident_json(incident, procedures)).decode())
                else:
                    print(
                        f"{incident.id}\t{incident.created_at}\t{incident.status}\t"
                        f"{incident.severity}\t{incident.type}"
                        + (f"/{incident.subtype}" if incident.subtype else "")
                        + f"\t{incident.zone or '-'}\t{incident.title}"
                    )
            if not args.json:
                print(f"{total} incident(s)", file=sys.stderr)
        elif args.action == "show":
            incident = operations.incidents.get(caller, args.id)
            events = operations.incidents.timeline(caller, args.id)
            body = incident_json(incident, procedures)
            body["timeline"] = [event_json(e) for e in events]
            option = 0 if args.json else orjson.OPT_INDENT_2
            print(orjson.dumps(body, option=option).decode())
        else:
            action = "acknowledge" if args.action == "ack" else "close"
            note = getattr(args, "note", "")
            changed = operations.transition(caller, args.id, action, note=note)
            print(f"{changed.id}\t{changed.status}\tversion {changed.version}")
    except SmartCityError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 1
    finally:
        platform.close()
    return 0
