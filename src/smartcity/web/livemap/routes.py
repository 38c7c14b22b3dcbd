"""The live map: its page and files, the district's style and GeoJSON, and the change stream.

The stream is server-sent events read from the change log (see broker/changefeed.py), not
from the bus: the log holds every committed change in commit order with a sequence number,
so an event id is a position a reconnecting browser can resume from without a gap (the bus
carries readings before they are stored, some of which the broker may refuse).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import FileResponse, HTMLResponse, Response, StreamingResponse

from smartcity.auth.principal import Caller
from smartcity.broker.changefeed import FeedBatch, local_name
from smartcity.broker.contexts import ActiveContext
from smartcity.core.errors import BadRequestData, ResourceNotFound, SmartCityError
from smartcity.platform import Platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.model import District
from smartcity.sim.seed import data_path
from smartcity.web.deps import CallerDep, PlatformDep, get_caller
from smartcity.web.livemap.assets import MapAssets, map_assets
from smartcity.web.livemap.catalog import LAYERS, layer_types
from smartcity.web.livemap.rendered import RenderedChanges
from smartcity.web.livemap.style import (
    district_bounds,
    map_style,
    places_geojson,
    roads_geojson,
    zones_geojson,
)

EVENT_STREAM = "text/event-stream"
GEO_JSON = "application/geo+json"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
RETRY_MS = 3000
"""How long a browser waits before it reconnects a dropped stream."""


def livemap_router(platform: Platform) -> APIRouter:
    """Build the map's router; fail now if MapLibre or the district's files are missing."""
    assets = map_assets()
    # The district's entities are written under this @context: the page reads them with it.
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    setting = platform.settings.map_district
    district = load_district(Path(setting) if setting else None)
    geojson = {
        "zones": orjson.dumps(zones_geojson(district)),
        "roads": orjson.dumps(roads_geojson(district)),
        "places": orjson.dumps(places_geojson(district)),
    }
    router = APIRouter(tags=["live map"])
    _page_routes(router, assets)
    _district_routes(router, district, geojson)
    router.add_api_route("/map/layers", layers, methods=["GET"], summary="The map's layers")
    rendered = RenderedChanges()

    async def map_stream(
        request: Request,
        platform: PlatformDep,
        caller: CallerDep,
        after: AfterQuery = None,
        last_event_id: LastEventIdHeader = None,
    ) -> StreamingResponse:
        return await stream(request, platform, caller, after, last_event_id, rendered)

    map_stream.__doc__ = stream.__doc__
    router.add_api_route(
        "/map/stream",
        map_stream,
        methods=["GET"],
        summary="Live entity changes (server-sent events)",
        response_class=StreamingResponse,
    )
    return router


def static_file(path: Path | None, missing: str, cache: str) -> FileResponse:
    """Serve one of a page's own files; `missing` is the 404's detail when there is none."""
    if path is None:
        raise ResourceNotFound(missing)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": cache},
    )


def _page_routes(router: APIRouter, assets: MapAssets) -> None:
    page = assets.files["livemap.html"].read_text(encoding="utf-8")

    @router.get("/map", include_in_schema=False)
    def map_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/map/static/{name}", include_in_schema=False)
    def map_file(name: str) -> FileResponse:
        missing = f"the map serves no file {name!r}"
        return static_file(assets.path(name), missing, "public, max-age=300")


def _district_routes(router: APIRouter, district: District, geojson: dict[str, bytes]) -> None:
    @router.get("/map/style.json", summary="The MapLibre style of the district")
    def style(
        request: Request,
        platform: PlatformDep,
        cluster: Annotated[
            bool, Query(description="gather the devices' points into clusters (the dashboard)")
        ] = False,
    ) -> Response:
        """Draw the district's zones, roads and places from GeoJSON: no tiles, no glyphs."""
        base = platform.settings.public_url or str(request.base_url)
        settings = platform.settings
        style = map_style(
            district,
            base.rstrip("/"),
            CHANGDONG_CONTEXT_URL,
            cluster=cluster,
            tiles=settings.map_tile_url,
            attribution=settings.map_tile_attribution,
        )
        return Response(orjson.dumps(style), media_type="application/json")

    @router.get("/map/district/{name}.geojson", summary="The district's zones, roads or places")
    def district_layer(name: str) -> Response:
        """Return the zones, the road graph's links or the places as a FeatureCollection."""
        body = geojson.get(name)
        if body is None:
            raise ResourceNotFound(f"no district layer {name!r}: zones, roads or places")
        return Response(body, media_type=GEO_JSON)

    @router.get("/map/district.json", summary="The district the map draws")
    def district_summary() -> dict[str, Any]:
        """Return the district's id, names and bounds."""
        return {
            "id": district.id,
            "name": {"ko": district.name_ko, "en": district.name_en},
            "bounds": district_bounds(district),
        }


async def layers(platform: PlatformDep, caller: CallerDep) -> dict[str, Any]:
    """Return the layers, the entity types of each the caller may see, and where to stream from.

    A page reads this first, then the entities (NGSI-LD API), then streams changes from
    `position`: what changes while it loads comes again in the stream.
    """
    position = await run_in_threadpool(platform.changes.position, caller)
    summaries = await run_in_threadpool(platform.entities.type_summaries, caller)
    present = [s.type for s in summaries]
    shown = layer_types()
    settings = platform.settings
    return {
        "position": position,
        "tenant": caller.tenant,
        "authenticated": caller.authenticated,
        "pageSize": settings.max_limit,
        "staleMinutes": settings.map_stale_minutes,
        "layers": [
            {"id": layer.id, "types": [t for t in present if local_name(t) in layer.types]}
            for layer in LAYERS
        ],
        # How many of each: a page plans its reads (in parallel) before the first one returns.
        "counts": {s.type: s.count for s in summaries if local_name(s.type) in shown},
    }


AfterQuery = Annotated[
    int | None, Query(ge=0, description="start after this change (default: from now)")
]
LastEventIdHeader = Annotated[str | None, Header(alias="Last-Event-ID")]


async def stream(
    request: Request,
    platform: Platform,
    caller: Caller,
    after: int | None,
    last_event_id: str | None,
    rendered: RenderedChanges,
) -> StreamingResponse:
    """Stream the changes of the map's entities the caller may see, as server-sent events.

    Each `changes` event carries the newest state of the entities that changed (NGSI-LD
    concise form under the district's @context, with the entity's modifiedAt) and an id to
    resume from: a client reconnecting with Last-Event-ID gets every change after it.
    `reset`: the changes after it are no longer kept, reload the entities. `denied`: the
    credential no longer grants what it did, reconnect (and be told why). `heartbeat`: nothing
    changed, here is the position.
    """
    resumed = _resume_position(last_event_id, after)
    # Asked even when resuming: it refuses a caller who may not read, before the stream starts.
    now = await run_in_threadpool(platform.changes.position, caller)
    position = now if resumed is None else resumed
    return StreamingResponse(
        _events(request, platform, caller, position, rendered),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _resume_position(last_event_id: str | None, after: int | None) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not text.isdigit():
        raise BadRequestData(f"Last-Event-ID must be an event id of this stream, not {text!r}")
    return int(text)


def _event(name: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _changes_event(batch: FeedBatch, ctx: ActiveContext, rendered: RenderedChanges) -> bytes:
    data = rendered.event(batch.changes, ctx)
    return f"id: {batch.position}\nevent: changes\ndata: ".encode() + data + b"\n\n"


async def _still_allowed(request: Request, caller: Caller) -> bool:
    """Tell whether the request's credential still grants the roles the stream began with."""
    try:
        now = await get_caller(request)
    except SmartCityError:
        return False
    return now.roles == caller.roles and now.tenant == caller.tenant


async def _events(
    request: Request, platform: Platform, caller: Caller, after: int, rendered: RenderedChanges
) -> AsyncIterator[bytes]:
    settings = platform.settings
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    loop = asyncio.get_running_loop()
    recheck = max(settings.auth_cache_seconds, 1.0)
    next_check = loop.time() + recheck
    yield f"retry: {RETRY_MS}\n\n".encode()
    batches = platform.changes.follow(
        caller, after, layer_types(), heartbeat=settings.stream_heartbeat
    )
    async for batch in batches:
        if batch.lost:
            reason = "the changes after this position are no longer kept: reload the entities"
            yield _event("reset", {"position": batch.position, "reason": reason})
            return
        if loop.time() >= next_check:
            next_check = loop.time() + recheck
            if not await _still_allowed(request, caller):
                yield _event("denied", {"reason": "the credential no longer grants this stream"})
                return
        if batch.changes:
            yield await run_in_threadpool(_changes_event, batch, ctx, rendered)
        else:
            yield _event("heartbeat", {"position": batch.position}, batch.position)
