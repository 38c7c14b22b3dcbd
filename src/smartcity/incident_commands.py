"""`smartcity incident ...`: list, show, acknowledge and close incidents on the database; send
and list their dispatch packages (112 escape routes, 119 site package, disaster) and request a
green wave.

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
from smartcity.operations.disaster import DisasterRequest
from smartcity.operations.dispatch import package_json
from smartcity.operations.police import EscapeRequest
from smartcity.operations.present import event_json, incident_json
from smartcity.operations.service import Operations
from smartcity.storage.incidents import STATUSES, IncidentFilter

HELP = """Incidents of the operations center (see docs/operations.md): list them, show one with
its SOP checklist and timeline, acknowledge or close one, send a dispatch package to an agency
and list the packages, request a green wave along a 119 package's route. Runs on the database
the settings name, as an operator `cli:<actor>` of --tenant."""
PACKAGES = ("escape-routes", "fire-site", "disaster")


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
    packages = actions.add_parser("packages", help="list an incident's dispatch packages")
    packages.add_argument("id")
    packages.add_argument("--json", action="store_true")
    send = actions.add_parser("send", help="send a dispatch package to an agency")
    send.add_argument("id")
    send.add_argument("kind", choices=PACKAGES)
    send.add_argument("--agency", default="", help="the agency principal (police, fire)")
    send.add_argument("--count", type=int, help="escape routes: how many")
    send.add_argument("--distance", type=float, help="escape routes: metres")
    send.add_argument("--mode", default="vehicle", choices=("vehicle", "foot"))
    send.add_argument("--hazard", default="", help="disaster: heavy-rain, flood, earthquake...")
    send.add_argument("--level", default="advisory", choices=("advisory", "warning"))
    send.add_argument("--radius", type=float, help="disaster: metres around the incident")
    wave = actions.add_parser("green-wave", help="ask the signals on a 119 route for priority")
    wave.add_argument("id")
    wave.add_argument("package")
    for parser in (listing, show, ack, close, packages, send, wave):
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
        elif args.action in ("packages", "send", "green-wave"):
            _dispatch(operations, caller, args)
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


def _dispatch(operations: Operations, caller: Caller, args: argparse.Namespace) -> None:
    if args.action == "packages":
        for package in operations.dispatch.packages(caller, args.id):
            if args.json:
                print(orjson.dumps(package_json(package)).decode())
            else:
                print(
                    f"{package.id}\t{package.created_at}\t{package.kind}\t"
                    f"{package.principal_name or '-'}\t{package.created_by}"
                )
        return
    if args.action == "green-wave":
        result = operations.fire.green_wave(caller, args.id, args.package)
        for signal in result["signals"]:
            why = signal.get("command") or signal.get("reason", "")
            print(f"{signal['signal']}\t{signal['outcome']}\t{why}")
        return
    if args.kind == "escape-routes":
        wanted = EscapeRequest(count=args.count, distance=args.distance, mode=args.mode)
        made = operations.police.send(caller, args.id, args.agency, wanted)
    elif args.kind == "fire-site":
        made = operations.fire.send(caller, args.id, args.agency)
    else:
        request = DisasterRequest(args.hazard, args.level, None, args.radius, args.agency)
        made = operations.disaster.send(caller, args.id, request)
    print(f"{made.id}\t{made.kind}\t{made.principal_name or '-'}")
