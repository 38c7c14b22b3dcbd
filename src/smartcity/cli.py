"""The `smartcity` command: serve the platform, run the demo, check the configuration."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from smartcity import __version__
from smartcity.config import Settings, load_settings
from smartcity.core.errors import ConfigurationError

EPILOG = """examples:
  smartcity demo                                   the district on SQLite, its simulator running
  smartcity demo --scenario concert-night --speed 60   another scenario, an hour a minute
  smartcity serve --port 8080 --database-url postgresql://smartcity@127.0.0.1/smartcity
  SMARTCITY_LOG_LEVEL=debug smartcity serve        settings also come from SMARTCITY_* variables
  smartcity check --config city.toml               validate a configuration and its database
  smartcity user add alice --role admin            a user (the password is asked for)
  smartcity key create --name lamp-7 --role device --entity urn:ngsi-ld:Streetlight:7
  smartcity device import devices.csv              register devices in bulk (JSON or CSV)
  smartcity deadletters list --reason schema       input ingestion refused, and why
  smartcity rules apply rules.yaml                 store convergence-event rules (new versions)
  smartcity rules apply --builtin                  store the built-in rules in a tenant
  smartcity rules backtest dark-crowd --from 2026-11-27T18:00+09:00 --to 2026-11-28T00:00+09:00
  smartcity incident list --status new             incidents of the operations center
  smartcity district load                          load the Changdong district model
  smartcity district check --district ./my-town    read another district's files, summarise them
  smartcity import osm my-town.osm --out ./my-town --id my-town
  smartcity adapters run parking --once --fixture recorded.json   a dry poll, nothing stored
  smartcity simulate --scenario concert-night --speed max --until 19:00   the simulator alone
"""
ROLES = ["admin", "operator", "analyst", "agency", "device", "public"]
DEMO_KEY_FILE = Path("var/demo-admin-key")
DEMO_RULES_LATENESS = 5.0
"""Wall seconds a demo reading waits for late ones (`rules_lateness`; see `demo_lateness`)."""
DEMO_PARKING_HISTORY_DAYS = 28
"""Weeks of parking history the demo writes before its run: the parking forecast learns them."""
SHUTDOWN_GRACE_SECONDS = 5

BUILTIN = Path("changdong (built in)")
DISTRICT_HELP = """A district is a folder of plain files (district.yaml, zones.geojson,
places.geojson, road_nodes.csv, road_links.csv, parking.csv): see docs/district.md. Without
--district, the Changdong model shipped with the platform is used."""


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument(
        "--database-url",
        help="sqlite:///path/to.db (default sqlite:///var/smartcity.db) or postgresql://user@host/db",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default info"
    )
    parser.add_argument("--log-format", choices=["console", "json"], help="default console")
    parser.add_argument(
        "--workers", type=int, help="HTTP worker processes (default 1; about one per core)"
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="switch access control off (development only; every request acts as the platform)",
    )


def _add_tenant_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tenant", default="", help="the NGSI-LD tenant (default: the default tenant)"
    )
    parser.add_argument(
        "--database-url", help="the platform's database (default from the settings)"
    )


def _add_account_commands(commands: Any) -> None:
    user = commands.add_parser(
        "user", help="manage users, and the roles and state of any principal"
    )
    user_commands = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = user_commands.add_parser(
        "add",
        help="create a user with roles in a tenant",
        description="Create a user. The password is asked for (or read from standard input "
        "with --password-stdin); it is never taken from the command line.",
    )
    add.add_argument("name", help="the user name (letters, digits, '.', '_', '-', '@')")
    _add_tenant_option(add)
    add.add_argument(
        "--role", action="append", required=True, choices=ROLES, help="a role (repeatable)"
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    listing = user_commands.add_parser("list", help="list the principals of a tenant")
    _add_tenant_option(listing)
    password = user_commands.add_parser(
        "password", help="set a user's password (asked for, or --password-stdin)"
    )
    password.add_argument("name")
    _add_tenant_option(password)
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    for action, text in (
        ("grant", "give a principal roles in a tenant"),
        ("revoke", "take roles of a principal in a tenant away"),
    ):
        change = user_commands.add_parser(action, help=text)
        change.add_argument("name")
        _add_tenant_option(change)
        change.add_argument(
            "--role", action="append", required=True, choices=ROLES, help="a role (repeatable)"
        )
    for action, text in (
        ("disable", "disable a principal: no login, none of its keys works"),
        ("enable", "enable a disabled principal again"),
    ):
        toggle = user_commands.add_parser(action, help=text)
        toggle.add_argument("name")
        _add_tenant_option(toggle)
    key = commands.add_parser("key", help="manage API keys (services and devices)")
    key_commands = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = key_commands.add_parser(
        "create",
        help="create an API key (printed once)",
        description="Create an API key for a service account or a device. The key is "
        "printed once; only its hash is stored. Send it as 'Authorization: ApiKey KEY' or "
        "'X-API-Key: KEY'.",
    )
    create.add_argument("--name", required=True, help="the service or device name")
    _add_tenant_option(create)
    create.add_argument(
        "--role", action="append", required=True, choices=ROLES, help="a role (repeatable)"
    )
    create.add_argument(
        "--entity",
        action="append",
        default=[],
        metavar="ID",
        help="an entity a device key may write (repeatable; required with --role device)",
    )
    key_list = key_commands.add_parser("list", help="list the API keys of a tenant")
    _add_tenant_option(key_list)
    revoke = key_commands.add_parser("revoke", help="revoke an API key by its prefix")
    revoke.add_argument("prefix", help="the key's public prefix (sck_...)")
    _add_tenant_option(revoke)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `smartcity` command."""
    parser = argparse.ArgumentParser(
        prog="smartcity",
        description="Changdong smart-city platform (창동 스마트시티 통합플랫폼): "
        "NGSI-LD context broker and district services.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"smartcity {__version__}")
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (or SMARTCITY_CONFIG); env vars win"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the platform's HTTP server")
    _add_server_options(serve)
    serve.add_argument("--seed", action="store_true", help="load the Changdong seed places first")
    serve.add_argument(
        "--district",
        type=Path,
        nargs="?",
        const=BUILTIN,
        metavar="PATH",
        help="load a district model first (no PATH: the shipped Changdong model)",
    )
    demo = commands.add_parser(
        "demo",
        help="run the platform with the Changdong district loaded and its simulator running",
        description="Load the district, register its simulated devices and serve the platform "
        "while the simulator drives them through MQTT (Mosquitto at SMARTCITY_INGEST_MQTT_URL) "
        "and the HTTP southbound.",
    )
    _add_server_options(demo)
    demo.add_argument("--scenario", default="normal-weekday", help="see smartcity simulate --list")
    demo.add_argument("--speed", default="1", help="simulated seconds per second, or 'max'")
    demo.add_argument("--seed", type=int, default=1, help="the simulator's seed")
    commands.add_parser("check", help="validate the configuration and reach the database")
    _add_account_commands(commands)
    _add_deadletter_commands(commands)
    _add_incident_commands(commands)
    _add_district_commands(commands)
    _add_device_commands(commands)
    workers = commands.add_parser(
        "workers",
        help="run the background workers (notifications) without the HTTP API, e.g. beside "
        "servers started with SMARTCITY_NOTIFICATIONS_ENABLED=false",
    )
    workers.add_argument("--database-url", help="the same database the servers use")
    workers.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default info"
    )
    _add_adapter_commands(commands)
    from smartcity.sim.simulate_args import add_simulate_command

    add_simulate_command(commands)
    return parser


def _add_adapter_commands(commands: Any) -> None:
    adapters = commands.add_parser(
        "adapters",
        help="list the open-data adapters (Seoul APIs) or poll one and print what it would store",
        description="The adapters poll Seoul's public APIs (parking, subway, bus, traffic). "
        "They run with the platform's workers when named in SMARTCITY_ADAPTERS_ENABLED; "
        "`run` polls one of them here without storing anything.",
    )
    actions = adapters.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="each adapter: enabled or not, key set or not, what it polls")
    run = actions.add_parser(
        "run",
        help="poll one adapter and print the entity updates it would store (a dry run)",
        description="Poll one adapter and print, as NGSI-LD entities, the updates it would "
        "store; refusals (dead letters) and failed requests go to stderr. Nothing is stored.",
    )
    run.add_argument("name", choices=["parking", "subway", "bus", "traffic"])
    run.add_argument("--once", action="store_true", help="poll once and exit (else every interval)")
    run.add_argument(
        "--fixture",
        type=Path,
        metavar="FILE",
        help="answer every request (each district, station, stop or link) with this file, "
        "a recorded response: no network, no key",
    )


def _add_device_commands(commands: Any) -> None:
    from smartcity.ingest.device_cli import add_device_commands
    from smartcity.rules.commands import add_rules_commands

    common = argparse.ArgumentParser(add_help=False)
    _add_tenant_option(common)
    add_device_commands(commands, common)
    add_rules_commands(commands, common)
    from smartcity.domains.mobility.parking.payment.cli import add_parking_payment_commands

    add_parking_payment_commands(commands)


def device_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run `smartcity device ...` directly on the database."""
    from smartcity.core.errors import SmartCityError
    from smartcity.ingest.device_cli import run_device_command
    from smartcity.platform import build_platform

    platform = build_platform(settings)
    try:
        return run_device_command(platform.iot.devices, args)
    except SmartCityError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 1
    finally:
        platform.close()


def rules_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run `smartcity rules ...` directly on the database."""
    from smartcity.core.errors import SmartCityError
    from smartcity.logs import configure_logging
    from smartcity.platform import build_platform
    from smartcity.rules.commands import run_rules_command

    configure_logging(settings.log_level, settings.log_format)  # to stderr: stdout is the data
    platform = build_platform(settings)
    try:
        return run_rules_command(platform.rules, args)
    except SmartCityError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 1
    finally:
        platform.close()


DEADLETTER_HELP = """Dead letters are the readings ingestion refused (unknown device, bad key,
unparsable payload, out-of-range value, schema violation, ...), kept with the raw payload and
the reason. list, show and discard work on the database directly. replay asks the running
server (--url), which holds the IoT agent and the bus: fix the cause first (re-map the
device), then replay; each letter records whether it went through or why it still fails.
"""


def _add_filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="only this device id")
    parser.add_argument("--source", help="only this source (mqtt, http, adapter:<name>)")
    parser.add_argument("--reason", help="only this reason (unknown-device, schema, ...)")
    parser.add_argument("--since", help="received at or after (ISO 8601)")
    parser.add_argument("--until", help="received before (ISO 8601)")


def _add_incident_commands(commands: Any) -> None:
    from smartcity.incident_commands import add_commands

    add_commands(commands)


def _add_deadletter_commands(commands: Any) -> None:
    deadletters = commands.add_parser(
        "deadletters",
        help="list, show, replay or discard the input ingestion refused",
        description=DEADLETTER_HELP,
    )
    actions = deadletters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="list dead letters, newest first, with counts per reason"
    )
    _add_tenant_option(listing)
    _add_filter_options(listing)
    listing.add_argument("--status", choices=["new", "replayed", "discarded"])
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    show = actions.add_parser("show", help="show one dead letter with its raw payload")
    show.add_argument("id", help="the dead letter's id (from list)")
    _add_tenant_option(show)
    show.add_argument(
        "--raw", action="store_true", help="write only the payload's bytes to standard output"
    )
    discard = actions.add_parser("discard", help="discard dead letters (purged later)")
    discard.add_argument("id", nargs="+", help="dead letter ids")
    _add_tenant_option(discard)
    replay = actions.add_parser(
        "replay",
        help="replay dead letters through the running server (after fixing their cause)",
        description="Replay dead letters by id, or the oldest new ones a filter matches, "
        "through the running server. The API key (operator or admin) comes from "
        "SMARTCITY_API_KEY or --api-key-file, never from the command line.",
    )
    replay.add_argument("id", nargs="*", help="dead letter ids (or give a filter)")
    _add_filter_options(replay)
    replay.add_argument(
        "--tenant", default="", help="the NGSI-LD tenant (default: the default tenant)"
    )
    replay.add_argument("--limit", type=int, help="replay at most this many (filter only)")
    replay.add_argument(
        "--url", help="the server's address (default: public_url, else http://host:port)"
    )
    replay.add_argument("--api-key-file", type=Path, help="file holding the API key")


def _add_district_commands(commands: Any) -> None:
    district = commands.add_parser(
        "district",
        help="load, check or generate a district model (places, roads, devices)",
        description=DISTRICT_HELP,
    )
    actions = district.add_subparsers(dest="action", required=True, metavar="ACTION")
    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--district", type=Path, help="district folder (default: the shipped Changdong model)"
    )
    load = actions.add_parser(
        "load",
        parents=[folder],
        help="upsert the district's entities into the database (only what changed)",
    )
    load.add_argument("--database-url", help="sqlite:///path/to.db or postgresql://user@host/db")
    actions.add_parser(
        "check", parents=[folder], help="read and check the files, print what they hold"
    )
    generate = actions.add_parser(
        "generate",
        parents=[folder],
        help="write the generated devices and assets to a GeoJSON file",
        description="Write the generated assets to a file. Put it in the district folder as "
        "assets.geojson to freeze them (or replace them by a real register) for later loads.",
    )
    generate.add_argument("--out", type=Path, required=True, help="GeoJSON file to write")
    generate.add_argument("--seed", type=int, help="another seed than district.yaml's")
    importer = commands.add_parser("import", help="import data from other sources")
    sources = importer.add_subparsers(dest="source", required=True, metavar="SOURCE")
    osm = sources.add_parser(
        "osm",
        help="write district files from a local OpenStreetMap .osm file (needs smartcity[osm])",
        description="Build the road graph, zones (administrative boundaries), places and "
        "parking lots of a district from an OpenStreetMap XML extract you already have. "
        "Nothing is downloaded. Needs: pip install 'smartcity[osm]'.",
    )
    osm.add_argument("file", type=Path, help="the .osm XML file")
    osm.add_argument("--out", type=Path, required=True, help="folder to write the district to")
    osm.add_argument("--id", default="district", help="district id (lowercase, digits, '-')")


def _demo_simulator(args: argparse.Namespace) -> dict[str, Any]:
    """Return the settings that run the simulator in the demo."""
    from smartcity.sim.clock import parse_speed

    try:
        speed = parse_speed(args.speed)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    return {
        "sim_enabled": True,
        "sim_scenario": args.scenario,
        "sim_speed": speed,
        "sim_seed": args.seed,
        "sim_parking_history_days": DEMO_PARKING_HISTORY_DAYS,
        "ingest_mqtt_enabled": True,
        "rules_enabled": True,
        # A reading waits this long (event time) for late ones before it meets the rules:
        # the rule sets' minute would hold every demo alert back by a minute.
        "rules_lateness": demo_lateness(speed),
    }


def demo_lateness(speed: float) -> float:
    """Return the event-time seconds a demo reading waits for late ones: `DEMO_RULES_LATENESS`
    of wall time at the simulator's speed (at most an hour).

    The simulator sends its devices' readings by MQTT and HTTP; one path may lag the other by a
    second or two, which at 60x is minutes of simulated time. With a lateness of seconds the
    lagging readings came too late for the rules, and devices on that path looked silent.
    """
    return min(DEMO_RULES_LATENESS * max(speed, 1.0), 3600.0)


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "database_url": getattr(args, "database_url", None),
        "log_level": getattr(args, "log_level", None),
        "log_format": getattr(args, "log_format", None),
        "workers": getattr(args, "workers", None),
        "auth": False if getattr(args, "no_auth", False) else None,
        **extra,
    }
    return load_settings(args.config, **overrides)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise ConfigurationError("the two passwords differ")
    return password


def accounts_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run `smartcity user ...` or `smartcity key ...` directly on the database."""
    from smartcity.auth.principal import Caller
    from smartcity.core.errors import SmartCityError
    from smartcity.platform import build_platform

    platform = build_platform(settings)
    accounts = platform.accounts
    system = Caller.system(args.tenant)
    try:
        if args.command == "user" and args.action == "add":
            password = _read_password(args.password_stdin)
            view = accounts.add_user(system, args.name, password, args.role)
            print(f"user {view.name} created with roles {', '.join(sorted(view.roles))}")
        elif args.command == "user" and args.action == "password":
            accounts.set_password(system, args.name, _read_password(args.password_stdin))
            print(f"password of {args.name} changed")
        elif args.command == "user" and args.action == "grant":
            view = accounts.grant(system, args.name, args.role)
            print(f"{view.name} has the roles {', '.join(sorted(view.roles))} in this tenant")
        elif args.command == "user" and args.action == "revoke":
            accounts.revoke(system, args.name, args.role)
            print(f"{args.name} no longer has the roles {', '.join(args.role)} in this tenant")
        elif args.command == "user" and args.action in ("disable", "enable"):
            accounts.set_disabled(system, args.name, args.action == "disable")
            print(f"{args.name} {args.action}d")
        elif args.command == "user":
            for view in accounts.principals(system):
                state = " (disabled)" if view.disabled else ""
                print(f"{view.name}\t{view.kind}\t{','.join(sorted(view.roles))}{state}")
        elif args.action == "create":
            created = accounts.create_key(system, args.name, args.role, args.entity)
            print(f"API key for {created.principal.name} (shown once, keep it safe):")
            print(created.key)
        elif args.action == "list":
            for key in accounts.keys(system):
                state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                print(f"{key.prefix}\t{key.principal}\t{key.created_at}\t{state}")
        else:
            accounts.revoke_key(system, args.prefix)
            print(f"key {args.prefix} revoked")
    except SmartCityError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 1
    finally:
        platform.close()
    return 0


def deadletters_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run `smartcity deadletters ACTION`."""
    from smartcity import deadletter_commands as run
    from smartcity.core.errors import SmartCityError

    try:
        if args.action == "replay":
            return run.replay(settings, args)
        return run.local(settings, args)
    except SmartCityError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 1


def demo_admin_key(platform: Any) -> str:
    """Return the demo's admin key: the one kept under var/ if it still works, else a new one."""
    from smartcity.auth.principal import Caller
    from smartcity.core.errors import Unauthorized

    try:
        kept = DEMO_KEY_FILE.read_text().strip()
        if "admin" in platform.accounts.caller_for_key(kept, "").roles:
            return kept
    except (FileNotFoundError, Unauthorized):
        pass
    name = "demo-admin"
    system = Caller.system()
    if platform.accounts.store.principal_by_name(name) is not None:
        name = f"demo-admin-{platform.clock.now():%Y%m%d%H%M%S}"
    key: str = platform.accounts.create_key(system, name, ["admin"]).key
    DEMO_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(DEMO_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def serve(
    settings: Settings, *, seed: bool = False, district: Path | None = None, demo: bool = False
) -> None:
    """Build the platform and serve it until interrupted."""
    import structlog
    import uvicorn

    from smartcity.logs import configure_logging
    from smartcity.platform import build_platform
    from smartcity.sim.seed import load_seed
    from smartcity.web.app import SETTINGS_VARIABLE, create_app

    configure_logging(settings.log_level, settings.log_format)
    log = structlog.get_logger("smartcity")
    platform = build_platform(settings)
    if seed:
        count = load_seed(platform)
        log.info("seed loaded", entities=count)
    if district is not None or settings.seed_demo_data:
        from smartcity.sim.district import load_district
        from smartcity.sim.loader import load_district_into

        path = None if district in (None, BUILTIN) else district
        report = load_district_into(platform, load_district(path))
        log.info(
            "district loaded",
            district=report.district,
            entities=report.total,
            created=report.created,
            updated=report.updated,
        )
    if demo:
        from smartcity.auth.principal import Caller
        from smartcity.rules.commands import install_builtin_rules

        counts = install_builtin_rules(platform.rules, Caller.system())
        log.info("built-in rules installed", **counts)
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(f"\n  창동 스마트시티 플랫폼 · Changdong Smart City Platform {__version__}", flush=True)
    print(f"  Dashboard:  {url}/", flush=True)
    print(f"  Live map:   {url}/map", flush=True)
    print(f"  API docs:   {url}/docs", flush=True)
    print(f"  NGSI-LD:    {url}/ngsi-ld/v1/entities", flush=True)
    if settings.sim_enabled:
        speed = "max" if settings.sim_speed == float("inf") else f"{settings.sim_speed:g}x"
        print(f"  Simulator:  {url}/sim/v1/status ({settings.sim_scenario}, {speed})", flush=True)
    print(flush=True)
    if not settings.auth:
        print("  ACCESS CONTROL IS OFF (--no-auth): development only\n", flush=True)
    elif demo and settings.environment == "development":
        # Printed to the terminal only, never as a log field.
        key = demo_admin_key(platform)
        print(f"  Admin API key (demo): {key}", flush=True)
        # The fragment stays in the browser: the map keeps the key for the tab.
        print(f"  Live map, signed in:  {url}/map#key={key}", flush=True)
        print("  Send it as 'Authorization: ApiKey <key>' or 'X-API-Key: <key>'\n", flush=True)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.log_level == "debug",
        "log_config": None,
        # Event streams (the live map) end when the server stops, except in worker processes
        # (--workers) where nothing tells them: connections still open after this are closed.
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
    }
    if settings.workers == 1:
        from smartcity.platform import freeze_startup_objects

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                # Open event streams end first, so that their connections can close.
                platform.changes.close()
                super().handle_exit(sig, frame)

        path = None if district in (None, BUILTIN) else district
        app = create_app(platform, district=path)
        freeze_startup_objects()
        Server(uvicorn.Config(app, **options)).run()
        return
    # Each worker process builds its own platform from the same settings.
    platform.close()
    values = settings.model_dump(mode="json")
    if settings.auth_secret is not None:  # dumped as asterisks otherwise
        values["auth_secret"] = settings.auth_secret.get_secret_value()
    os.environ[SETTINGS_VARIABLE] = json.dumps(values)
    uvicorn.run(
        "smartcity.web.app:app_from_environment", factory=True, workers=settings.workers, **options
    )


def run_workers(settings: Settings) -> None:
    """Run the platform's background workers until interrupted (SIGINT or SIGTERM)."""
    import asyncio
    import signal

    from smartcity.logs import configure_logging
    from smartcity.platform import build_platform, freeze_startup_objects

    configure_logging(settings.log_level, settings.log_format)
    platform = build_platform(settings.model_copy(update={"notifications_enabled": True}))
    freeze_startup_objects()  # rule partitions run here: long-lived state, short-lived changes

    async def until_stopped() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await platform.start()
        try:
            await platform.run_workers(stop)
        finally:
            await platform.stop()

    try:
        asyncio.run(until_stopped())
    finally:
        platform.close()


def check(settings: Settings) -> int:
    """Print the effective settings (secrets hidden) and try the database."""
    from smartcity.platform import build_resolver, build_standardizer, open_store

    print(f"environment:  {settings.environment}")
    print(f"database:     {settings.redacted_database_url()}")
    print(f"listen:       {settings.host}:{settings.port}")
    offline = settings.context_offline
    print(f"@context:     {'offline' if offline else 'remote fetch allowed'}")
    print(f"access:       {'control on' if settings.auth else 'CONTROL OFF (development only)'}")
    try:
        store = open_store(settings.database_url, settings.database_schema)
        store.get("", "urn:ngsi-ld:check:probe")
        store.close()
        build_resolver(settings)
        build_standardizer(settings)
    except Exception as error:  # a check reports every failure, whatever its kind
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    print("configuration OK")
    return 0


def adapters_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run `smartcity adapters list` or `smartcity adapters run NAME`."""
    from smartcity.ingest.adapters import commands
    from smartcity.logs import configure_logging
    from smartcity.platform import build_standardizer

    configure_logging(settings.log_level, settings.log_format)  # to stderr: stdout is the data
    if args.action == "list":
        commands.list_adapters(settings)
        return 0
    standardizer = build_standardizer(settings)
    return commands.run_adapter(
        settings, args.name, standardizer, once=args.once, fixture=args.fixture
    )


def district_command(args: argparse.Namespace) -> int:
    """Run `smartcity district ACTION` or `smartcity import osm`."""
    from smartcity.sim import commands

    if args.command == "import":
        commands.import_osm_with_progress(args.file, args.out, args.id)
        return 0
    if args.action == "check":
        return 0 if commands.check_district(args.district) else 1
    if args.action == "generate":
        count = commands.write_assets(args.district, args.out, args.seed)
        print(f"wrote {count} assets to {args.out}")
        return 0
    from smartcity.platform import build_platform

    platform = build_platform(_settings(args))
    try:
        commands.load_with_progress(platform, args.district)
    finally:
        platform.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the `smartcity` command."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            # The live map draws the district the server loads.
            drawn = str(args.district) if args.district not in (None, BUILTIN) else None
            serve(_settings(args, map_district=drawn), seed=args.seed, district=args.district)
        elif args.command == "demo":
            serve(_settings(args, **_demo_simulator(args)), district=BUILTIN, demo=True)
        elif args.command == "simulate":
            from smartcity.sim.commands_simulate import run_simulate

            return run_simulate(_settings(args), args)
        elif args.command == "check":
            return check(_settings(args))
        elif args.command in ("user", "key"):
            return accounts_command(_settings(args), args)
        elif args.command == "device":
            return device_command(_settings(args), args)
        elif args.command == "rules":
            return rules_command(_settings(args), args)
        elif args.command == "parking-payment":
            from smartcity.domains.mobility.parking.payment.cli import parking_payment_command

            return parking_payment_command(_settings(args), args)
        elif args.command == "deadletters":
            return deadletters_command(_settings(args), args)
        elif args.command == "incident":
            from smartcity.incident_commands import run as run_incident

            return run_incident(_settings(args), args)
        elif args.command in ("district", "import"):
            return district_command(args)
        elif args.command == "workers":
            run_workers(_settings(args))
        elif args.command == "adapters":
            return adapters_command(_settings(args), args)
    except ConfigurationError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
