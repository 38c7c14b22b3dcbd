"""Map the platform's errors (and the framework's) to RFC 9457 ProblemDetails responses."""

from __future__ import annotations

import math

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from smartcity.core.errors import (
    NGSI_LD_ERRORS,
    InvalidRequest,
    SmartCityError,
    TooManyRequests,
)

PROBLEM = "application/problem+json"
log = structlog.get_logger(__name__)


CHALLENGE = 'Bearer realm="smartcity", ApiKey realm="smartcity"'


def problem_response(error: SmartCityError) -> Response:
    """Return the ProblemDetails response for one error (a 401 says how to authenticate)."""
    headers = {"WWW-Authenticate": CHALLENGE} if error.status == 401 else None
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
    return Response(
        orjson.dumps(error.to_problem()),
        status_code=error.status,
        media_type=PROBLEM,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error leave the API as ProblemDetails."""

    async def platform_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, SmartCityError)
        return problem_response(error)

    async def validation_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        return problem_response(InvalidRequest(problems))

    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        kinds = {404: "ResourceNotFound", 405: "InvalidRequest", 406: "InvalidRequest"}
        body = {
            "type": NGSI_LD_ERRORS + kinds.get(error.status_code, "InvalidRequest"),
            "title": str(error.detail),
            "status": error.status_code,
            "detail": str(error.detail),
        }
        return Response(
            orjson.dumps(body),
            status_code=error.status_code,
            media_type=PROBLEM,
            headers=dict(error.headers or {}),
        )

    async def unexpected_error(request: Request, error: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path, method=request.method)
        return problem_response(SmartCityError("the server failed; the error has been logged"))

    app.add_exception_handler(SmartCityError, platform_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
