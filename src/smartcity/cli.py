"""The `smartcity` command: serve the platform, run the demo, check the configuration."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from smartcity import __version__
from smartcity.config import Settings, load_settings
from smartcity.core.errors import ConfigurationError

EPILOG = """examples:
  smartcity demo                                   the district's seed data on SQLite
  smartcity serve --port 8080 --database-url postgresql://smartcity@127.0.0.1/smartcity
  SMARTCITY_LOG_LEVEL=debug smartcity serve        settings also come from SMARTCITY_* variables
  smartcity check --config city.toml               validate a configuration and its database
  smartcity district load                          load the Changdong district model
  smartcity district check --district ./my-town    read another district's files, summarise them
  smartcity import osm my-town.osm --out ./my-town --id my-town
"""

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
        "demo", help="run the platform with the whole Changdong district model loaded"
    )
    _add_server_options(demo)
    commands.add_parser("check", help="validate the configuration and reach the database")
    _add_district_commands(commands)
    return parser


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


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "database_url": getattr(args, "database_url", None),
        "log_level": getattr(args, "log_level", None),
        "log_format": getattr(args, "log_format", None),
        "workers": getattr(args, "workers", None),
        **extra,
    }
    return load_settings(args.config, **overrides)


def serve(settings: Settings, *, seed: bool = False, district: Path | None = None) -> None:
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
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(f"\n  창동 스마트시티 플랫폼 · Changdong Smart City Platform {__version__}", flush=True)
    print(f"  Dashboard:  {url}/", flush=True)
    print(f"  API docs:   {url}/docs", flush=True)
    print(f"  NGSI-LD:    {url}/ngsi-ld/v1/entities\n", flush=True)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.log_level == "debug",
        "log_config": None,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(platform), **options)
        return
    # Each worker process builds its own platform from the same settings.
    platform.close()
    os.environ[SETTINGS_VARIABLE] = settings.model_dump_json()
    uvicorn.run(
        "smartcity.web.app:app_from_environment", factory=True, workers=settings.workers, **options
    )


def check(settings: Settings) -> int:
    """Print the effective settings (secrets hidden) and try the database."""
    from smartcity.platform import build_resolver, open_store

    print(f"environment:  {settings.environment}")
    print(f"database:     {settings.redacted_database_url()}")
    print(f"listen:       {settings.host}:{settings.port}")
    offline = settings.context_offline
    print(f"@context:     {'offline' if offline else 'remote fetch allowed'}")
    try:
        store = open_store(settings.database_url, settings.database_schema)
        store.get("", "urn:ngsi-ld:check:probe")
        store.close()
        build_resolver(settings)
    except Exception as error:  # a check reports every failure, whatever its kind
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    print("configuration OK")
    return 0


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
            serve(_settings(args), seed=args.seed, district=args.district)
        elif args.command == "demo":
            serve(_settings(args), district=BUILTIN)
        elif args.command == "check":
            return check(_settings(args))
        elif args.command in ("district", "import"):
            return district_command(args)
    except ConfigurationError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
