"""create_app(platform): the HTTP application over a built platform."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.responses import HTMLResponse, JSONResponse, Response

from smartcity import __version__
from smartcity.modules import WebHooks
from smartcity.platform import Platform
from smartcity.sim.service import attach_simulator
from smartcity.web import (
    auth,
    contexts,
    devices,
    entities,
    incident_stream,
    incidents,
    ingest,
    operations,
    rules,
    simulation,
    southbound,
    subscriptions,
    temporal,
    types,
    video,
)
from smartcity.web.deps import get_caller
from smartcity.web.errors import install_error_handlers
from smartcity.web.home import home_page
from smartcity.web.livemap import livemap_router
from smartcity.web.metrics import MetricsMiddleware, RequestMetrics, TrailingSlashMiddleware
from smartcity.web.platform_metrics import PlatformCollector

DESCRIPTION = """
The Changdong smart-city platform's NGSI-LD context broker (ETSI GS CIM 009).
창동 스마트시티 통합플랫폼의 NGSI-LD 컨텍스트 브로커.

Entities follow the FIWARE Smart Data Models; errors are RFC 9457 ProblemDetails with the
NGSI-LD error types.
"""


def create_app(platform: Platform, *, district: Path | None = None) -> FastAPI:
    """Build the FastAPI application; closing it closes the platform.

    `district` is the folder the simulator simulates (default: Changdong).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await platform.start()
        workers = asyncio.create_task(platform.run_workers(stop), name="platform-workers")
        try:
            yield
        finally:
            stop.set()
            await workers
            await platform.stop()
            platform.close()

    app = FastAPI(
        title="Changdong Smart City Platform",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.simulation = attach_simulator(platform, district)
    registry = CollectorRegistry()
    app.add_middleware(MetricsMiddleware, metrics=RequestMetrics(registry))
    registry.register(PlatformCollector(platform))
    app.add_middleware(TrailingSlashMiddleware)
    install_error_handlers(app)
    app.include_router(entities.router)
    app.include_router(operations.router)
    app.include_router(types.router)
    app.include_router(auth.router)
    app.include_router(contexts.router)
    app.include_router(subscriptions.router)
    app.include_router(temporal.router)
    app.include_router(devices.router)
    app.include_router(southbound.router)
    app.include_router(ingest.router)
    app.include_router(livemap_router(platform))
    app.include_router(simulation.router)
    hooks = WebHooks(caller=get_caller)
    for module in platform.modules:
        if module.spec.routers is not None and module.spec.name in platform.services:
            for router in module.spec.routers(platform.services[module.spec.name], hooks):
                app.include_router(router)
    app.include_router(rules.router)
    # Operations center; the stream before /incidents/{incident_id}.
    app.include_router(incident_stream.router)
    app.include_router(incidents.router)
    app.include_router(video.router)

    @app.get("/health", tags=["operations"], summary="Liveness and readiness")
    def health() -> JSONResponse:
        """Answer 200 when the store answers."""
        platform.store.get("", "urn:ngsi-ld:health:probe")
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/health/live", tags=["operations"], summary="Liveness")
    async def live() -> JSONResponse:
        """Answer 200 while the process serves requests; the store is not asked."""
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def metrics() -> Response:
        """Expose the request metrics in the Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(home_page(platform))

    return app


SETTINGS_VARIABLE = "SMARTCITY_WORKER_SETTINGS"


def app_from_environment() -> FastAPI:
    """Build the app in a worker process from the settings its parent left in the environment."""
    import os

    from smartcity.config import Settings
    from smartcity.logs import configure_logging
    from smartcity.platform import build_platform

    settings = Settings.model_validate_json(os.environ[SETTINGS_VARIABLE])
    configure_logging(settings.log_level, settings.log_format)
    return create_app(build_platform(settings))
