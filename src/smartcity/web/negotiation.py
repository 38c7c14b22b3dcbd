"""Content negotiation for NGSI-LD: @context from Link header or body, Accept, tenants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.broker.contexts import ActiveContext, ContextResolver
from smartcity.broker.core_context import CORE_CONTEXT_URL
from smartcity.core.errors import (
    BadRequestData,
    InvalidRequest,
    NotAcceptable,
    UnsupportedMediaType,
)

JSON = "application/json"
JSON_LD = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
LINK_PATTERN = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def context_from_link(header: str | None) -> str | None:
    """Return the @context URL of a Link header with rel json-ld#context, if any."""
    if not header:
        return None
    for match in LINK_PATTERN.finditer(header):
        url, attributes = match.group(1), match.group(2)
        if CONTEXT_REL in attributes:
            return url.strip()
    return None


async def tenant_of(request: Request) -> str:
    """Return the tenant named by NGSILD-Tenant ('' for the default tenant)."""
    tenant = request.headers.get("NGSILD-Tenant", "")
    if tenant and not TENANT_PATTERN.match(tenant):
        raise BadRequestData(
            "NGSILD-Tenant must be 1 to 64 letters, digits, '_' or '-'", instance=tenant
        )
    return tenant


@dataclass(slots=True)
class LdRequest:
    """What a request says about JSON-LD: its active context, the source, and the body."""

    ctx: ActiveContext
    context_source: Any
    body: Any = None


async def resolve(resolver: ContextResolver, context: Any) -> ActiveContext:
    """Resolve a context; only a first fetch of a remote one leaves the event loop."""
    at_hand = resolver.cached(context)
    if at_hand is not None:
        return at_hand
    return await run_in_threadpool(resolver.resolve, context)


async def read_ld_request(
    request: Request, resolver: ContextResolver, *, with_body: bool, body_is_list: bool = False
) -> LdRequest:
    """Read the body (if any) and resolve the @context the request names."""
    link = context_from_link(request.headers.get("Link"))
    if not with_body:
        return LdRequest(await resolve(resolver, link), link or CORE_CONTEXT_URL)
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media not in (JSON, JSON_LD, MERGE_PATCH):
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'} is not supported; send application/json "
            "(with the @context in a Link header) or application/ld+json (@context in the body)"
        )
    raw = await request.body()
    if not raw:
        raise InvalidRequest("the request needs a JSON body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the body is not valid JSON: {error}") from None
    if media == JSON_LD:
        if link is not None:
            raise BadRequestData(
                "with Content-Type application/ld+json the @context goes in the body, "
                "not in a Link header"
            )
        if body_is_list:
            # Each entity of a batch carries its own @context; resolved per entity.
            return LdRequest(await resolve(resolver, None), CORE_CONTEXT_URL, body)
        if not isinstance(body, dict) or "@context" not in body:
            raise BadRequestData("an application/ld+json body must have an @context member")
        source = body.pop("@context")
        return LdRequest(await resolve(resolver, source), source, body)
    if isinstance(body, dict) and "@context" in body:
        raise BadRequestData(
            "an application/json body must not have an @context member; put the @context URL "
            "in a Link header or send the body as application/ld+json"
        )
    if isinstance(body, list) and any(
        isinstance(item, dict) and "@context" in item for item in body
    ):
        raise BadRequestData(
            "entities in an application/json batch must not have an @context member; "
            "use application/ld+json"
        )
    return LdRequest(await resolve(resolver, link), link or CORE_CONTEXT_URL, body)


def accepted(request: Request, *, geo: bool = True) -> str:
    """Choose the response media type from the Accept header."""
    header = request.headers.get("Accept", "")
    if not header:
        return JSON
    offered = [JSON, JSON_LD, GEO_JSON] if geo else [JSON, JSON_LD]
    best: tuple[float, str] | None = None
    for part in header.split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        media = pieces[0].lower()
        quality = 1.0
        for parameter in pieces[1:]:
            if parameter.startswith("q="):
                try:
                    quality = float(parameter[2:])
                except ValueError:
                    quality = 0.0
        candidates = (
            offered if media in ("*/*", "application/*") else [m for m in offered if m == media]
        )
        for candidate in candidates:
            if quality > 0 and (best is None or quality > best[0]):
                best = (quality, candidate)
    if best is None:
        raise NotAcceptable(
            f"cannot answer with {header}; this endpoint offers " + ", ".join(offered)
        )
    return best[1]


def link_header(context_source: Any) -> str:
    """Return a Link header naming the context of a response body."""
    url = context_source if isinstance(context_source, str) else CORE_CONTEXT_URL
    return f'<{url}>; rel="{CONTEXT_REL}"; type="{JSON_LD}"'


def ld_response(
    content: Any,
    media: str,
    context_source: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Serialise an NGSI-LD body in the chosen media type, with the context where it belongs."""
    all_headers = dict(headers or {})
    if media == JSON_LD:
        if isinstance(content, dict):
            content = {"@context": context_source, **content}
        elif isinstance(content, list):
            content = [
                {"@context": context_source, **item} if isinstance(item, dict) else item
                for item in content
            ]
    else:
        all_headers["Link"] = link_header(context_source)
    return Response(
        orjson.dumps(content), status_code=status, media_type=media, headers=all_headers
    )
