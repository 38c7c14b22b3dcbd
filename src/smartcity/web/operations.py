"""NGSI-LD batch operations and query by body: /ngsi-ld/v1/entityOperations/*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.broker.contexts import ActiveContext, ContextResolver
from smartcity.broker.params import (
    NO_OVERWRITE,
    READ_OPTIONS,
    UPSERT_OPTIONS,
    entity_query,
    parse_options,
    render_options,
)
from smartcity.broker.present import present, present_features
from smartcity.broker.service import BatchResult
from smartcity.core.errors import BadRequestData, OperationNotSupported
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.negotiation import (
    GEO_JSON,
    JSON_LD,
    LdRequest,
    accepted,
    ld_response,
    read_ld_request,
)

router = APIRouter(prefix="/ngsi-ld/v1/entityOperations", tags=["NGSI-LD batch operations"])


def batch_contexts(
    request: Request, resolver: ContextResolver, ld: LdRequest
) -> Callable[[Any], ActiveContext]:
    """Return the @context of each entity of a batch: its own in JSON-LD, else the request's."""
    if request.headers.get("Content-Type", "").split(";")[0].strip().lower() != JSON_LD:
        return lambda _raw: ld.ctx

    def context_of(raw: Any) -> ActiveContext:
        if not isinstance(raw, dict) or "@context" not in raw:
            raise BadRequestData("each entity of an application/ld+json batch needs an @context")
        return resolver.resolve(raw["@context"])

    return context_of


def batch_response(result: BatchResult, *, ok_status: int, ok_body: Any = None) -> Response:
    """All succeeded: ok_status (with ok_body); otherwise 207 with successes and errors."""
    if not result.errors:
        if ok_body is None:
            return Response(status_code=ok_status)
        return ld_response(ok_body, "application/json", None, status=ok_status)
    body = {
        "success": result.success,
        "errors": [
            {"entityId": item.entity_id, "error": item.error.to_problem()} for item in result.errors
        ],
    }
    return ld_response(body, "application/json", None, status=207)


@router.post("/create", summary="Batch create")
async def batch_create(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Create many entities; 201 with their ids, or 207 with per-entity errors."""
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    context_of = batch_contexts(request, platform.contexts, ld)
    result = await run_in_threadpool(platform.entities.batch_create, caller, ld.body, context_of)
    return batch_response(result, ok_status=201, ok_body=result.success)


@router.post("/upsert", summary="Batch upsert")
async def batch_upsert(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Create or replace (options=replace, default) or update (options=update) many entities."""
    options = parse_options(request.query_params.get("options"), allowed=UPSERT_OPTIONS)
    if {"replace", "update"} <= options:
        raise BadRequestData("options may be replace or update, not both")
    mode = "update" if "update" in options else "replace"
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    context_of = batch_contexts(request, platform.contexts, ld)
    result, created = await run_in_threadpool(
        lambda: platform.entities.batch_upsert(caller, ld.body, context_of, mode=mode)
    )
    if created and not result.errors:
        return batch_response(result, ok_status=201, ok_body=created)
    return batch_response(result, ok_status=204)


@router.post("/update", summary="Batch update")
async def batch_update(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Append or update attributes of many existing entities (options=noOverwrite)."""
    options = parse_options(request.query_params.get("options"), allowed=NO_OVERWRITE)
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    context_of = batch_contexts(request, platform.contexts, ld)
    result = await run_in_threadpool(
        lambda: platform.entities.batch_update(
            caller, ld.body, context_of, overwrite="noOverwrite" not in options
        )
    )
    return batch_response(result, ok_status=204)


@router.post("/delete", summary="Batch delete")
async def batch_delete(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Delete many entities by id."""
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    result = await run_in_threadpool(platform.entities.batch_delete, caller, ld.body)
    return batch_response(result, ok_status=204)


def text_member(value: Any, name: str, *, lists: bool) -> str:
    """Return a Query member that is a string (or, where `lists`, a list of strings) as text."""
    if isinstance(value, str):
        return value
    if lists and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    shape = "a string or a list of strings" if lists else "a string"
    raise BadRequestData(f"{name} must be {shape}")


def selector_params(selectors: Any) -> dict[str, Any]:
    """Turn the Query's entity selectors into query parameters (selectors are alternatives)."""
    if selectors is None:
        return {}
    if not isinstance(selectors, list) or not all(isinstance(s, dict) for s in selectors):
        raise BadRequestData("entities must be an array of {id, idPattern, type} selectors")
    for selector in selectors:
        for key, value in selector.items():
            if key not in ("id", "idPattern", "type"):
                raise BadRequestData(f"an entity selector has no member {key!r}")
            if not isinstance(value, str) or not value:
                raise BadRequestData(f"the {key} of an entity selector must be a string")
    if len(selectors) == 1:
        return dict(selectors[0]) | ({"id": [selectors[0]["id"]]} if "id" in selectors[0] else {})
    if all(set(selector) == {"type"} for selector in selectors):
        return {"type": ",".join(selector["type"] for selector in selectors)}
    if all(set(selector) == {"id", "type"} for selector in selectors):
        types = {selector["type"] for selector in selectors}
        if len(types) == 1:
            return {"type": types.pop(), "id": [selector["id"] for selector in selectors]}
    raise OperationNotSupported(
        "several entity selectors are supported when they name only types, or ids of one "
        "type; send one query per selector otherwise"
    )


@router.post("/query", summary="Query entities with a body")
async def query_by_body(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Query with an NGSI-LD Query object in the body (type Query: entities, attrs, q, geoQ)."""
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    body = ld.body
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('the body must be a Query object: {"type": "Query", ...}')
    params: dict[str, Any] = {
        key: value for key, value in request.query_params.items() if key in ("limit", "offset")
    }
    params.update(selector_params(body.get("entities")))
    for key in ("attrs", "q", "scopeQ", "lang"):
        if key in body:
            params[key] = text_member(body[key], key, lists=key in ("attrs", "scopeQ"))
    options = parse_options(
        request.query_params.get("options"),
        request.query_params.get("format"),
        allowed=READ_OPTIONS,
    )
    geo = body.get("geoQ")
    if geo is not None and not isinstance(geo, dict):
        raise BadRequestData("geoQ must be an object with georel, geometry and coordinates")
    query = entity_query(
        caller.tenant, params, ld.ctx, default_limit=platform.settings.default_limit, geo_json=geo
    )
    count = request.query_params.get("count", "false")
    if count not in ("true", "false"):
        raise BadRequestData(f"count must be true or false, not {count!r}")
    query.count = query.count or "count" in options or count == "true"
    page = await run_in_threadpool(platform.entities.query, caller, query)
    shown = render_options({k: v for k, v in params.items() if isinstance(v, str)}, ld.ctx, options)
    media = accepted(request)
    headers = {"NGSILD-Results-Count": str(page.total)} if page.total is not None else {}
    if media == GEO_JSON:
        return ld_response(
            present_features(page.entities, ld.ctx, shown),
            media,
            ld.context_source,
            headers=headers,
        )
    return ld_response(
        [present(entity, ld.ctx, shown) for entity in page.entities],
        media,
        ld.context_source,
        headers=headers,
    )
