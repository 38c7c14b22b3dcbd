"""NGSI-LD temporal endpoints: /ngsi-ld/v1/temporal/entities and their attribute instances."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.broker.params import entity_query
from smartcity.broker.temporal import TemporalPage
from smartcity.broker.temporal_params import (
    QUERY_PARAMETERS,
    RETRIEVE_PARAMETERS,
    check_parameters,
    temporal_options,
)
from smartcity.core.errors import BadRequestData
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.entities import check_entity_id
from smartcity.web.negotiation import accepted, ld_response, read_ld_request
from smartcity.web.operations import selector_params, text_member

router = APIRouter(prefix="/ngsi-ld/v1/temporal", tags=["NGSI-LD temporal"])


def _page_response(page: TemporalPage, body: object, media: str, source: object) -> Response:
    headers = {}
    if page.total is not None:
        headers["NGSILD-Results-Count"] = str(page.total)
    status = 200
    if page.cut is not None:
        # More instances matched than one response holds: say which time range was returned.
        status = 206
        headers["Content-Range"] = f"date-time {page.cut.first}-{page.cut.last}/*"
    return ld_response(body, media, source, status=status, headers=headers)


@router.post("/entities", status_code=201, summary="Create or add to a temporal representation")
async def upsert_temporal(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Add the instances given; 201 when the entity had no temporal representation, else 204."""
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    entity_id, created = await run_in_threadpool(platform.temporal.upsert, caller, ld.body, ld.ctx)
    if not created:
        return Response(status_code=204)
    location = "/ngsi-ld/v1/temporal/entities/" + quote(entity_id, safe=":")
    return Response(status_code=201, headers={"Location": location})


@router.get("/entities", summary="Query the temporal evolution of entities")
async def query_temporal(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Select entities as GET /entities does, and show their history in a time range."""
    params = dict(request.query_params)
    check_parameters(params, QUERY_PARAMETERS)
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    options = temporal_options(params, ld.ctx)
    selection = {key: value for key, value in params.items() if key not in ("attrs", "pick")}
    query = entity_query(
        caller.tenant, selection, ld.ctx, default_limit=platform.settings.default_limit
    )
    if options.attrs is not None:
        query.attrs = sorted(options.attrs)
    page = await run_in_threadpool(platform.temporal.query, caller, query, options, ld.ctx)
    return _page_response(page, page.bodies, media, ld.context_source)


TEMPORAL_Q_MEMBERS = ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN")
BODY_PARAMETERS = frozenset(
    {"limit", "offset", "count", "options", "format", "lastN", "aggrMethods",
     "aggrPeriodDuration", "pick", "omit", "datasetId"}
)  # fmt: skip


@router.post(
    "/entityOperations/query", summary="Query the temporal evolution of entities with a body"
)
async def query_temporal_by_body(
    request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Query with an NGSI-LD Query object (entities, attrs, q, geoQ, scopeQ, temporalQ)."""
    params: dict[str, Any] = dict(request.query_params)
    check_parameters(params, BODY_PARAMETERS)
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    body = ld.body
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('the body must be a Query object: {"type": "Query", ...}')
    params.update(selector_params(body.get("entities")))
    for key in ("attrs", "q", "scopeQ", "lang"):
        if key in body:
            params[key] = text_member(body[key], key, lists=key in ("attrs", "scopeQ"))
    temporal_q = body.get("temporalQ", {})
    if not isinstance(temporal_q, dict):
        raise BadRequestData("temporalQ must be an object: timerel, timeAt, endTimeAt, ...")
    for key, value in temporal_q.items():
        if key not in TEMPORAL_Q_MEMBERS:
            raise BadRequestData(f"temporalQ has no member {key!r}; it takes {TEMPORAL_Q_MEMBERS}")
        if key == "lastN" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        params[key] = text_member(value, f"temporalQ.{key}", lists=False)
    geo = body.get("geoQ")
    if geo is not None and not isinstance(geo, dict):
        raise BadRequestData("geoQ must be an object with georel, geometry and coordinates")
    options = temporal_options(params, ld.ctx)
    selection = {key: value for key, value in params.items() if key not in ("attrs", "pick")}
    query = entity_query(
        caller.tenant,
        selection,
        ld.ctx,
        default_limit=platform.settings.default_limit,
        geo_json=geo,
    )
    if options.attrs is not None:
        query.attrs = sorted(options.attrs)
    page = await run_in_threadpool(platform.temporal.query, caller, query, options, ld.ctx)
    return _page_response(page, page.bodies, media, ld.context_source)


@router.post("/entities/{entity_id:path}/attrs", status_code=204, summary="Add instances")
async def add_temporal_attributes(
    entity_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Add attribute instances to an entity's temporal representation."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    await run_in_threadpool(platform.temporal.add_attributes, caller, entity_id, ld.body, ld.ctx)
    return Response(status_code=204)


@router.patch(
    "/entities/{entity_id:path}/attrs/{attribute}/{instance_id}",
    status_code=204,
    summary="Correct an attribute instance",
)
async def update_temporal_instance(
    entity_id: str,
    attribute: str,
    instance_id: str,
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
) -> Response:
    """Replace one attribute instance, keeping its instanceId."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    await run_in_threadpool(
        platform.temporal.update_instance,
        caller,
        entity_id,
        attribute,
        instance_id,
        ld.body,
        ld.ctx,
    )
    return Response(status_code=204)


@router.delete(
    "/entities/{entity_id:path}/attrs/{attribute}/{instance_id}",
    status_code=204,
    summary="Delete an attribute instance",
)
async def delete_temporal_instance(
    entity_id: str,
    attribute: str,
    instance_id: str,
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
) -> Response:
    """Delete one attribute instance of an entity's history."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    await run_in_threadpool(
        platform.temporal.delete_instance, caller, entity_id, attribute, instance_id, ld.ctx
    )
    return Response(status_code=204)


@router.delete(
    "/entities/{entity_id:path}/attrs/{attribute}",
    status_code=204,
    summary="Delete an attribute's history",
)
async def delete_temporal_attribute(
    entity_id: str, attribute: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Delete the instances of an attribute (one datasetId, or all with deleteAll=true)."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    delete_all = request.query_params.get("deleteAll", "false")
    if delete_all not in ("true", "false"):
        raise BadRequestData(f"deleteAll must be true or false, not {delete_all!r}")
    dataset_id = request.query_params.get("datasetId")
    await run_in_threadpool(
        lambda: platform.temporal.delete_attribute(
            caller,
            entity_id,
            attribute,
            ld.ctx,
            dataset_id=dataset_id,
            delete_all=delete_all == "true",
        )
    )
    return Response(status_code=204)


# The entity-level routes come last: {entity_id:path} would also match ".../attrs/...".
@router.get("/entities/{entity_id:path}", summary="Retrieve the temporal evolution of an entity")
async def retrieve_temporal(
    entity_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Show one entity's history in a time range: normalized, temporalValues or aggregated."""
    check_entity_id(entity_id)
    params = dict(request.query_params)
    check_parameters(params, RETRIEVE_PARAMETERS)
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    options = temporal_options(params, ld.ctx)
    page = await run_in_threadpool(platform.temporal.retrieve, caller, entity_id, options, ld.ctx)
    return _page_response(page, page.bodies[0], media, ld.context_source)


@router.delete("/entities/{entity_id:path}", status_code=204, summary="Delete a history")
async def delete_temporal(entity_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Delete an entity's whole temporal representation (its current state is left alone)."""
    check_entity_id(entity_id)
    await run_in_threadpool(platform.temporal.delete_entity, caller, entity_id)
    return Response(status_code=204)
