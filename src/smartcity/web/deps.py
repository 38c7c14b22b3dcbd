"""Dependencies shared by the routers, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from smartcity.auth.principal import Caller
from smartcity.core.errors import Unauthorized
from smartcity.platform import Platform
from smartcity.web.negotiation import tenant_of

API_KEY_HEADER = "X-API-Key"
# Declared for the OpenAPI document (the Authorize button of /docs); credential_of reads them.
_BEARER = HTTPBearer(auto_error=False, description="a token from POST /auth/login")
_API_KEY = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="an API key (or 'Authorization: ApiKey')"
)


async def get_platform(request: Request) -> Platform:
    """Return the platform the app was built with."""
    platform: Platform = request.app.state.platform
    return platform


def credential_of(request: Request) -> tuple[str, str] | None:
    """Return ('bearer', token) or ('key', api key) from the request's headers, if any."""
    header = request.headers.get("Authorization", "").strip()
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return "bearer", value
        if scheme.lower() == "apikey" and value:
            return "key", value
        raise Unauthorized("the Authorization header must be 'Bearer <token>' or 'ApiKey <key>'")
    key = request.headers.get(API_KEY_HEADER, "").strip()
    return ("key", key) if key else None


async def get_caller(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
    _api_key: Annotated[str | None, Security(_API_KEY)] = None,
) -> Caller:
    """Return who calls, in the tenant the request names.

    No credential: the anonymous caller (public role). A credential that is not valid: 401,
    never a silent downgrade. A valid one without a role in the tenant reads as the public.
    """
    platform: Platform = request.app.state.platform
    tenant = await tenant_of(request)
    if not platform.settings.auth:
        return Caller.system(tenant)
    credential = credential_of(request)
    if credential is None:
        return Caller.anonymous(tenant)
    kind, secret = credential
    accounts = platform.accounts
    if kind == "bearer":
        return await run_in_threadpool(accounts.caller_for_token, secret, tenant)
    return await run_in_threadpool(accounts.caller_for_key, secret, tenant)


PlatformDep = Annotated[Platform, Depends(get_platform)]
TenantDep = Annotated[str, Depends(tenant_of)]
CallerDep = Annotated[Caller, Depends(get_caller)]
