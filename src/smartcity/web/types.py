"""NGSI-LD type and attribute discovery: /ngsi-ld/v1/types and /ngsi-ld/v1/attributes."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.negotiation import accepted, ld_response, read_ld_request

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD discovery"])


def _details(request: Request) -> bool:
    value = request.query_params.get("details", "false")
    if value not in ("true", "false"):
        raise BadRequestData(f"details must be true or false, not {value!r}")
    return value == "true"


def _list_id(kind: str, names: list[str]) -> str:
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]
    return f"urn:ngsi-ld:{kind}:{digest}"


@router.get("/types", summary="List entity types")
async def list_types(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """List the entity types present (details=true adds their attribute names)."""
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    summaries = await run_in_threadpool(platform.entities.type_summaries, caller)
    body: Any
    if _details(request):
        body = [
            {
                "id": summary.type,
                "type": "EntityType",
                "typeName": ld.ctx.compact(summary.type),
                "attributeNames": [ld.ctx.compact(name) for name in summary.attributes],
            }
            for summary in summaries
        ]
    else:
        names = [ld.ctx.compact(summary.type) for summary in summaries]
        body = {
            "id": _list_id("EntityTypeList", names),
            "type": "EntityTypeList",
            "typeList": names,
        }
    return ld_response(body, media, ld.context_source)


@router.get("/types/{type_name}", summary="Describe an entity type")
async def type_info(
    type_name: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Count the entities of a type and describe the attributes they use."""
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    type_iri = ld.ctx.expand(type_name)
    entities = await run_in_threadpool(platform.entities.entities_of_type, caller, type_iri)
    if not entities:
        raise ResourceNotFound(f"no entity has the type {type_name}", instance=type_iri)
    kinds: dict[str, set[str]] = {}
    for entity in entities:
        for name, instances in entity.attrs.items():
            kinds.setdefault(name, set()).update(str(i.get("type")) for i in instances)
    body = {
        "id": type_iri,
        "type": "EntityTypeInfo",
        "typeName": ld.ctx.compact(type_iri),
        "entityCount": len(entities),
        "attributeDetails": [
            {
                "id": name,
                "type": "Attribute",
                "attributeName": ld.ctx.compact(name),
                "attributeTypes": sorted(kinds[name]),
            }
            for name in sorted(kinds)
        ],
    }
    return ld_response(body, media, ld.context_source)


@router.get("/attributes", summary="List attributes")
async def list_attributes(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """List the attribute names present (details=true adds the types that use them)."""
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    summaries = await run_in_threadpool(platform.entities.attribute_summaries, caller)
    body: Any
    if _details(request):
        body = [
            {
                "id": summary.name,
                "type": "Attribute",
                "attributeName": ld.ctx.compact(summary.name),
                "typeNames": [ld.ctx.compact(t) for t in summary.types],
            }
            for summary in summaries
        ]
    else:
        names = [ld.ctx.compact(summary.name) for summary in summaries]
        body = {
            "id": _list_id("AttributeList", names),
            "type": "AttributeList",
            "attributeList": names,
        }
    return ld_response(body, media, ld.context_source)


@router.get("/attributes/{attribute}", summary="Describe an attribute")
async def attribute_info(
    attribute: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Describe one attribute: how many entities have it, of which types, as what."""
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    name = ld.ctx.expand(attribute)
    summaries = await run_in_threadpool(platform.entities.attribute_summaries, caller)
    summary = next((s for s in summaries if s.name == name), None)
    if summary is None:
        raise ResourceNotFound(f"no entity has the attribute {attribute}", instance=name)
    kinds: set[str] = set()
    for type_iri in summary.types:
        for entity in await run_in_threadpool(platform.entities.entities_of_type, caller, type_iri):
            kinds.update(str(i.get("type")) for i in entity.attrs.get(name, []))
    body = {
        "id": name,
        "type": "Attribute",
        "attributeName": ld.ctx.compact(name),
        "attributeCount": summary.count,
        "attributeTypes": sorted(kinds),
        "typeNames": [ld.ctx.compact(t) for t in summary.types],
    }
    return ld_response(body, media, ld.context_source)
