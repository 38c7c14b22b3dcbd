"""Dependencies shared by the routers, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from smartcity.platform import Platform
from smartcity.web.negotiation import tenant_of


async def get_platform(request: Request) -> Platform:
    """Return the platform the app was built with."""
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
TenantDep = Annotated[str, Depends(tenant_of)]
