"""The live map page: the district's devices and their latest readings, updated as they change."""

from smartcity.web.livemap.routes import livemap_router

__all__ = ["livemap_router"]
