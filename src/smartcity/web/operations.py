"""NGSI-LD batch operations and query by body: /ngsi-ld/v1/entityOperations/*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.broker.contexts import ActiveContext, ContextResolver
from smartcity.broker.params import entity_query, parse_options, render_options
from smartcity.broker.present import present, present_features
from smartcity.broker.service import BatchResult
from smartcity.core.errors import BadRequestData
from smartcity.web.deps import PlatformDep, TenantDep
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
async def batch_create(request: Request, platform: PlatformDep, tenant: TenantDep) -> Response:
    """Create many entities; 201 with their ids, or 207 with per-entity errors."""
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    context_of = batch_contexts(request, platform.contexts, ld)
    result = await run_in_threadpool(platform.entities.batch_create, tenant, ld.body, context_of)
    return batch_response(result, ok_status=201, ok_body=result.success)


@router.post("/upsert", summary="Batch upsert")
async def batch_upsert(request: Request, platform: PlatformDep, tenant: TenantDep) -> Response:
    """Create or replace (options=replace, default) or update (options=update) many entities."""
    options = parse_options(request.query_params.get("options"))
    if {"replace", "update"} <= options:
        raise BadRequestData("options may be replace or update, not both")
    mode = "update" if "update" in options else "replace"
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    context_of = batch_contexts(request, platform.contexts, ld)
    result, created = await run_in_threadpool(
        lambda: platform.entities.batch_upsert(tenant, ld.body, context_of, mode=mode)
    )
    if created and not result.errors:
        return batch_response(result, ok_status=201, ok_body=created)
    return batch_response(result, ok_status=204)


@router.post("/update", summary="Batch update")
async def batch_update(request: Request, platform: PlatformDep, tenant: TenantDep) -> Response:
    """Append or update attributes of many existing entities (options=noOverwrite)."""
    options = parse_options(request.query_params.get("options"))
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    context_of = batch_contexts(request, platform.contexts, ld)
    result = await run_in_threadpool(
        lambda: platform.entities.batch_update(
            tenant, ld.body, context_of, overwrite="noOverwrite" not in options
        )
    )
    return batch_response(result, ok_status=204)


@router.post("/delete", summary="Batch delete")
async def batch_delete(request: Request, platform: PlatformDep, tenant: TenantDep) -> Response:
    """Delete many entities by id."""
    ld = await read_ld_request(request, platform.contexts, with_body=True, body_is_list=True)
    result = await run_in_threadpool(platform.entities.batch_delete, tenant, ld.body)
    return batch_response(result, ok_status=204)


@router.post("/query", summary="Query entities with a body")
async def query_by_body(request: Request, platform: PlatformDep, tenant: TenantDep) -> Response:
    """Query with an NGSI-LD Query object in the body (type Query: entities, attrs, q, geoQ)."""
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    body = ld.body
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('the body must be a Query object: {"type": "Query", ...}')
    params: dict[str, Any] = {
        key: value for key, value in request.query_params.items() if key in ("limit", "offset")
    }
    selectors = body.get("entities") or []
    if not isinstance(selectors, list):
        raise BadRequestData("entities must be an array of {id, idPattern, type} selectors")
    types = [s["type"] for s in selectors if isinstance(s, dict) and "type" in s]
    ids = [s["id"] for s in selectors if isinstance(s, dict) and "id" in s]
    patterns = [s["idPattern"] for s in selectors if isinstance(s, dict) and "idPattern" in s]
    if types:
        params["type"] = ",".join(types)
    if ids:
        params["id"] = ids
    if patterns:
        params["idPattern"] = "|".join(f"(?:{p})" for p in patterns)
    for key in ("attrs", "q", "scopeQ", "lang"):
        if key in body:
            params[key] = ",".join(body[key]) if isinstance(body[key], list) else body[key]
    options = parse_options(request.query_params.get("options"), request.query_params.get("format"))
    geo = body.get("geoQ")
    if geo is not None and not isinstance(geo, dict):
        raise BadRequestData("geoQ must be an object with georel, geometry and coordinates")
    query = entity_query(
        tenant, params, ld.ctx, default_limit=platform.settings.default_limit, geo_json=geo
    )
    query.count = query.count or "count" in options or request.query_params.get("count") == "true"
    page = await run_in_threadpool(platform.entities.query, query)
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
