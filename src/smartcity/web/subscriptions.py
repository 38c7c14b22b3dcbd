"""NGSI-LD subscription endpoints: /ngsi-ld/v1/subscriptions."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.broker.subscriptions import present
from smartcity.core.errors import BadRequestData, InvalidRequest, TooManyResults
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.negotiation import JSON_LD, accepted, ld_response, read_ld_request

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD subscriptions"])
_LIST_PARAMETERS = frozenset({"limit", "offset", "count"})


def check_subscription_id(subscription_id: str) -> None:
    """Refuse a subscription id that is not a URI."""
    scheme, _, rest = subscription_id.partition(":")
    if not scheme or not rest or not scheme[0].isalpha() or " " in subscription_id:
        raise BadRequestData(f"subscription id {subscription_id!r} is not a URI")


def _whole(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadRequestData(f"{name} must be a whole number, 0 or more, not {raw!r}")
    return int(raw)


@router.post("/subscriptions", status_code=201, summary="Create a subscription")
async def create_subscription(
    request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Create a subscription; 409 if its id is taken."""
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    subscription_id = await run_in_threadpool(
        platform.subscriptions.create, caller, ld.body, ld.ctx, ld.context_source
    )
    location = "/ngsi-ld/v1/subscriptions/" + quote(subscription_id, safe=":")
    return Response(status_code=201, headers={"Location": location})


@router.get("/subscriptions", summary="List subscriptions")
async def list_subscriptions(
    request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """List the tenant's subscriptions, paginated by limit and offset."""
    unknown = sorted(set(request.query_params) - _LIST_PARAMETERS)
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s) {unknown}")
    media = accepted(request, geo=False)
    ld = await read_ld_request(request, platform.contexts, with_body=False)
    limit = _whole(request, "limit", platform.settings.default_limit)
    if limit > platform.settings.max_limit:
        raise TooManyResults(f"limit must be at most {platform.settings.max_limit}")
    offset = _whole(request, "offset", 0)
    count = request.query_params.get("count", "false")
    if count not in ("true", "false"):
        raise BadRequestData(f"count must be true or false, not {count!r}")
    records, total = await run_in_threadpool(platform.subscriptions.page, caller, limit, offset)
    now = platform.clock.now()
    headers = {"NGSILD-Results-Count": str(total)} if count == "true" else {}
    if media == JSON_LD:
        # Each subscription carries the @context it was created with.
        items = [{"@context": record.context, **present(record, now)} for record in records]
        return Response(orjson.dumps(items), media_type=JSON_LD, headers=headers)
    body = [present(record, now) for record in records]
    return ld_response(body, media, ld.context_source, headers=headers)


@router.get("/subscriptions/{subscription_id:path}", summary="Retrieve a subscription")
async def retrieve_subscription(
    subscription_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Return one subscription with its status."""
    check_subscription_id(subscription_id)
    media = accepted(request, geo=False)
    record = await run_in_threadpool(platform.subscriptions.retrieve, caller, subscription_id)
    return ld_response(present(record, platform.clock.now()), media, record.context)


@router.patch(
    "/subscriptions/{subscription_id:path}", status_code=204, summary="Update a subscription"
)
async def update_subscription(
    subscription_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Change members of a subscription."""
    check_subscription_id(subscription_id)
    ld = await read_ld_request(request, platform.contexts, with_body=True)
    await run_in_threadpool(platform.subscriptions.update, caller, subscription_id, ld.body)
    return Response(status_code=204)


@router.delete(
    "/subscriptions/{subscription_id:path}", status_code=204, summary="Delete a subscription"
)
async def delete_subscription(
    subscription_id: str, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Delete a subscription; what it had not delivered is dropped."""
    check_subscription_id(subscription_id)
    await run_in_threadpool(platform.subscriptions.delete, caller, subscription_id)
    return Response(status_code=204)
