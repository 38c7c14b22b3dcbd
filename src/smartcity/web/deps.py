"""Dependencies shared by the routers, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from smartcity.auth.principal import Caller
from smartcity.platform import Platform
from smartcity.web.negotiation import tenant_of


async def get_platform(request: Request) -> Platform:
    """Return the platform the app was built with."""
    platform: Platform = request.app.state.platform
    return platform


async def get_caller(request: Request) -> Caller:
    """Return who calls, in the tenant the request names."""
    return Caller.system(await tenant_of(request))


PlatformDep = Annotated[Platform, Depends(get_platform)]
TenantDep = Annotated[str, Depends(tenant_of)]
CallerDep = Annotated[Caller, Depends(get_caller)]
