"""The JSON-LD @context API: /ngsi-ld/v1/jsonldContexts (NGSI-LD clause 5.13)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.broker.context_hosting import HOSTED_PATH, ContextKind
from smartcity.core.errors import BadRequestData, InvalidRequest, UnsupportedMediaType
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.negotiation import JSON, JSON_LD, accepted

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD JSON-LD @contexts"])


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false")
    if value not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false, not {value!r}")
    return value == "true"


def _kind(request: Request) -> ContextKind | None:
    value = request.query_params.get("kind")
    if value is None:
        return None
    try:
        return ContextKind(value)
    except ValueError:
        kinds = ", ".join(kind.value for kind in ContextKind)
        raise BadRequestData(f"kind must be one of {kinds}, not {value!r}") from None


def _base_url(request: Request, public_url: str) -> str:
    return public_url.rstrip("/") or str(request.base_url).rstrip("/")


def _json(body: object, media: str, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media)


@router.post("/jsonldContexts", status_code=201, summary="Add a @context")
async def add_context(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Host a @context given as {"@context": ...}; its URL is in the Location header."""
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media not in (JSON, JSON_LD):
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'} is not supported; send the document "
            '{"@context": ...} as application/json or application/ld+json'
        )
    raw = await request.body()
    limit = platform.context_hosting.max_bytes
    if len(raw) > limit + 1024:
        raise BadRequestData(
            f"the body takes {len(raw)} bytes; at most {limit} are accepted for a @context"
        )
    if not raw:
        raise InvalidRequest('the request needs a JSON body {"@context": ...}')
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the body is not valid JSON: {error}") from None
    hosted = await run_in_threadpool(platform.context_hosting.add, caller, document)
    return Response(status_code=201, headers={"Location": HOSTED_PATH + hosted.id})


@router.get("/jsonldContexts", summary="List @contexts")
async def list_contexts(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """List the URLs of the hosted and cached @contexts (details=true: their metadata)."""
    media = accepted(request, geo=False)
    details, kind = _flag(request, "details"), _kind(request)
    base_url = _base_url(request, platform.settings.public_url)
    found = await run_in_threadpool(platform.context_hosting.list_contexts, caller, kind, base_url)
    if details:
        return _json([item.to_json() for item in found], media)
    return _json([item.url for item in found], media)


@router.get("/jsonldContexts/{context_id:path}", summary="Serve a @context")
async def serve_context(
    context_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Serve a hosted @context to anyone; details=true describes a stored one."""
    if _flag(request, "details"):
        media = accepted(request, geo=False)
        base_url = _base_url(request, platform.settings.public_url)
        found = await run_in_threadpool(
            platform.context_hosting.details, caller, context_id, base_url
        )
        return _json(found.to_json(), media)
    document = await run_in_threadpool(platform.context_hosting.serve, context_id)
    return _json(document, JSON_LD)


@router.delete("/jsonldContexts/{context_id:path}", status_code=204, summary="Delete a @context")
async def delete_context(
    context_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Delete a hosted @context; evict a cached one, or download it again with reload=true."""
    reload = _flag(request, "reload")
    await run_in_threadpool(
        lambda: platform.context_hosting.delete(caller, context_id, reload=reload)
    )
    return Response(status_code=204)
