"""JSON in and out of the platform's own (non NGSI-LD) APIs: a request's body, a response."""

from __future__ import annotations

from typing import Any, Final

import orjson
from fastapi import Request
from starlette.responses import Response

from smartcity.core.errors import InvalidRequest

JSON: Final = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return `body` as a JSON response."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


async def json_body(request: Request) -> Any:
    """Return the request's JSON body; InvalidRequest when it has none or it is not JSON."""
    raw = await request.body()
    if not raw:
        raise InvalidRequest("the request needs a JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the body is not JSON: {error}") from None
