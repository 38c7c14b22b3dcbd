"""NGSI-LD entity endpoints: /ngsi-ld/v1/entities and their attributes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.broker.merge import UpdateResult
from smartcity.broker.params import (
    NO_OVERWRITE,
    READ_OPTIONS,
    entity_query,
    parse_options,
    render_options,
    require_filter,
)
from smartcity.broker.present import present, present_feature, present_features
from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.negotiation import GEO_JSON, accepted, ld_response, read_ld_request

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD entities"])


def check_entity_id(entity_id: str) -> None:
    """Refuse an entity id that is not a URI."""
    scheme, _, rest = entity_id.partition(":")
    if not scheme or not rest or not scheme[0].isalpha() or " " in entity_id:
        raise BadRequestData(f"entity id {entity_id!r} is not a URI (e.g. urn:ngsi-ld:Type:id)")


def update_response(result: UpdateResult) -> Response:
    """204 when every attribute was written, else 207 with what was not and why."""
    if not result.not_updated:
        return Response(status_code=204)
    body = {
        "updated": result.updated,
        "notUpdated": [
            {"attributeName": item.attribute, "reason": item.reason} for item in result.not_updated
        ],
    }
    return ld_response(body, "application/json", None, status=207)


@router.get("/entities", summary="Query entities")
async def query_entities(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Query entities by id, type, attributes, q, scopeQ and geo-query, paginated."""
    params = dict(request.query_params)
    require_filter(params)
    media = accepted(request)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    options = parse_options(params.get("options"), params.get("format"), allowed=READ_OPTIONS)
    query = entity_query(
        caller.tenant, params, ld.ctx, default_limit=platform.settings.default_limit
    )
    query.count = query.count or "count" in options
    page = await run_in_threadpool(platform.entities.query, caller, query)
    shown = render_options(params, ld.ctx, options)
    headers = {"NGSILD-Results-Count": str(page.total)} if page.total is not None else {}
    if media == GEO_JSON:
        body: Any = present_features(page.entities, ld.ctx, shown)
    else:
        body = [present(entity, ld.ctx, shown) for entity in page.entities]
    return ld_response(body, media, ld.context_source, headers=headers)


@router.post("/entities", status_code=201, summary="Create an entity")
async def create_entity(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Create one entity; 409 if the id is taken."""
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    entity_id = await run_in_threadpool(platform.entities.create, caller, ld.body, ld.ctx)
    location = "/ngsi-ld/v1/entities/" + quote(entity_id, safe=":")
    return Response(status_code=201, headers={"Location": location})


@router.post("/entities/{entity_id:path}/attrs", summary="Append attributes")
async def append_attributes(
    entity_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Add attributes; options=noOverwrite keeps existing ones."""
    check_entity_id(entity_id)
    options = parse_options(request.query_params.get("options"), allowed=NO_OVERWRITE)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    result = await run_in_threadpool(
        lambda: platform.entities.append_attributes(
            caller, entity_id, ld.body, ld.ctx, overwrite="noOverwrite" not in options
        )
    )
    return update_response(result)


@router.patch("/entities/{entity_id:path}/attrs", summary="Update attributes")
async def update_attributes(
    entity_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Change existing attributes; the others are reported as not updated."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    result = await run_in_threadpool(
        platform.entities.update_attributes, caller, entity_id, ld.body, ld.ctx
    )
    return update_response(result)


@router.patch(
    "/entities/{entity_id:path}/attrs/{attribute}",
    status_code=204,
    summary="Partially update an attribute",
)
async def partial_update_attribute(
    entity_id: str, attribute: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Change some members of one attribute."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    await run_in_threadpool(
        platform.entities.partial_update_attribute, caller, entity_id, attribute, ld.body, ld.ctx
    )
    return Response(status_code=204)


@router.put(
    "/entities/{entity_id:path}/attrs/{attribute}", status_code=204, summary="Replace an attribute"
)
async def replace_attribute(
    entity_id: str, attribute: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Replace one attribute whole."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    await run_in_threadpool(
        platform.entities.replace_attribute, caller, entity_id, attribute, ld.body, ld.ctx
    )
    return Response(status_code=204)


@router.delete(
    "/entities/{entity_id:path}/attrs/{attribute}", status_code=204, summary="Delete an attribute"
)
async def delete_attribute(
    entity_id: str, attribute: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Delete an attribute (one datasetId, or all instances with deleteAll=true)."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    dataset_id = request.query_params.get("datasetId")
    delete_all = request.query_params.get("deleteAll", "false")
    if delete_all not in ("true", "false"):
        raise BadRequestData(f"deleteAll must be true or false, not {delete_all!r}")
    await run_in_threadpool(
        lambda: platform.entities.delete_attribute(
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
@router.get("/entities/{entity_id:path}", summary="Retrieve an entity")
async def retrieve_entity(
    entity_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Return one entity in the representation asked for."""
    check_entity_id(entity_id)
    media = accepted(request)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    params = dict(request.query_params)
    shown = render_options(params, ld.ctx)
    entity = await run_in_threadpool(platform.entities.retrieve, caller, entity_id)
    if shown.attrs is not None and not (shown.attrs & entity.attrs.keys()):
        raise ResourceNotFound(f"entity {entity_id} has none of the attributes asked for")
    if media == GEO_JSON:
        return ld_response(present_feature(entity, ld.ctx, shown), media, ld.context_source)
    return ld_response(present(entity, ld.ctx, shown), media, ld.context_source)


@router.delete("/entities/{entity_id:path}", status_code=204, summary="Delete an entity")
async def delete_entity(entity_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Delete one entity."""
    check_entity_id(entity_id)
    await run_in_threadpool(platform.entities.delete, caller, entity_id)
    return Response(status_code=204)


@router.patch("/entities/{entity_id:path}", status_code=204, summary="Merge an entity")
async def merge_entity(
    entity_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Merge-patch: add or change the attributes given; urn:ngsi-ld:null deletes one."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    await run_in_threadpool(platform.entities.merge, caller, entity_id, ld.body, ld.ctx)
    return Response(status_code=204)


@router.put("/entities/{entity_id:path}", status_code=204, summary="Replace an entity")
async def replace_entity(
    entity_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Replace every attribute of an entity."""
    check_entity_id(entity_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    await run_in_threadpool(platform.entities.replace, caller, entity_id, ld.body, ld.ctx)
    return Response(status_code=204)
