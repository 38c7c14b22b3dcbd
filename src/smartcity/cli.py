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
"""


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
    demo = commands.add_parser("demo", help="run the platform with the Changdong seed data")
    _add_server_options(demo)
    commands.add_parser("check", help="validate the configuration and reach the database")
    workers = commands.add_parser(
        "workers",
        help="run the background workers (notifications) without the HTTP API, e.g. beside "
        "servers started with SMARTCITY_NOTIFICATIONS_ENABLED=false",
    )
    workers.add_argument("--database-url", help="the same database the servers use")
    workers.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default info"
    )
    return parser


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


def serve(settings: Settings, *, seed: bool) -> None:
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


def run_workers(settings: Settings) -> None:
    """Run the platform's background workers until interrupted (SIGINT or SIGTERM)."""
    import asyncio
    import signal

    from smartcity.logs import configure_logging
    from smartcity.platform import build_platform

    configure_logging(settings.log_level, settings.log_format)
    platform = build_platform(settings.model_copy(update={"notifications_enabled": True}))

    async def until_stopped() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await platform.run_workers(stop)

    try:
        asyncio.run(until_stopped())
    finally:
        platform.close()


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


def main(argv: list[str] | None = None) -> int:
    """Run the `smartcity` command."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            serve(_settings(args), seed=args.seed)
        elif args.command == "demo":
            serve(_settings(args), seed=True)
        elif args.command == "check":
            return check(_settings(args))
        elif args.command == "workers":
            run_workers(_settings(args))
    except ConfigurationError as error:
        print(f"smartcity: {error.detail}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
