"""The HTTP southbound, as the FIWARE IoT Agents serve it: POST /iot/json and POST /iot/d.

A device posts its measures with its key and id in the query (`?k=<apikey>&i=<deviceId>`):
JSON measures to /iot/json, UltraLight 2.0 text to /iot/d. A wrong key and an unknown device
both answer 401, so that nobody without a valid key learns which devices exist; a valid key of
another device's group with an unknown id answers 404. A payload that cannot be accepted answers
400 with what is wrong, and is kept as a dead letter.
"""

from __future__ import annotations

from typing import Final

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from smartcity.core.errors import (
    BadRequestData,
    ResourceNotFound,
    TooManyRequests,
    Unauthorized,
)
from smartcity.ingest.agent import Inbound
from smartcity.ingest.device_model import PayloadFormat
from smartcity.web.deps import PlatformDep

router = APIRouter(prefix="/iot", tags=["IoT southbound (devices)"])
SOURCE: Final = "http"
MAX_BYTES: Final = 1024 * 1024


async def _accept(
    request: Request, platform: PlatformDep, payload_format: PayloadFormat
) -> Response:
    key = request.query_params.get("k", "")
    device_id = request.query_params.get("i", "")
    if not key or not device_id:
        raise Unauthorized("send the device's key and id as ?k=<apikey>&i=<deviceId>")
    limiter = platform.iot.http_limiter
    if limiter is not None:
        wait = limiter.take(f"{key}\x00{device_id}")
        if wait > 0:
            raise TooManyRequests(
                f"device {device_id} sends faster than {limiter.rate:g} requests a second; "
                "send several measures in one request, or slow down",
                retry_after=wait,
            )
    payload = await request.body()
    if len(payload) > MAX_BYTES:
        raise BadRequestData(f"the body is larger than {MAX_BYTES} bytes")
    agent = platform.iot.agent
    inbound = Inbound(
        source=SOURCE,
        api_key=key,
        device_id=device_id,
        payload=payload,
        received_at=agent.now(),
        payload_format=payload_format,
        topic=request.url.path,
    )
    (outcome,) = await agent.accept([inbound])
    rejected = outcome.rejected
    if rejected is None:
        body = {"readings": len(outcome.readings)}
        return Response(orjson.dumps(body), media_type="application/json")
    if outcome.device is None:
        if outcome.authentication is not None and outcome.authentication.key_known:
            raise ResourceNotFound(f"no device {device_id} is registered with this key")
        raise Unauthorized("unknown device or wrong key")
    extra = {"reason": rejected.reason, "stage": rejected.stage}
    if rejected.path:
        extra["path"] = rejected.path
    raise BadRequestData(rejected.message, **extra)


@router.post("/json", summary="Measures of a device, as JSON")
async def json_measures(request: Request, platform: PlatformDep) -> Response:
    """Accept `{"t": 21.5, "h": 40}` (or a list of such) from device `i` with key `k`."""
    return await _accept(request, platform, PayloadFormat.JSON)


@router.post("/d", summary="Measures of a device, as UltraLight 2.0")
async def ultralight_measures(request: Request, platform: PlatformDep) -> Response:
    """Accept `t|21.5|h|40` (groups separated by '#') from device `i` with key `k`."""
    return await _accept(request, platform, PayloadFormat.ULTRALIGHT)
