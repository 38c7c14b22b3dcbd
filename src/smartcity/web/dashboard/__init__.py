"""The integrated operations center's dashboard: the live map with incidents, panels and KPIs."""

from smartcity.web.dashboard.routes import dashboard_router

__all__ = ["dashboard_router"]
