"""The dashboard's page and files; its data comes from the existing APIs.

The page embeds the live map (its script, style and stream, with clustering on) and adds the
operations center over it: incidents from `/ops/v1/incidents` and their stream, the incident
panel, KPI tiles and charts from the temporal API. It has no endpoint of its own for data:
every rule about who sees what stays in the services behind those APIs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, HTMLResponse

from smartcity.web.livemap.routes import static_file

FILES = ("dashboard.html", "dashboard.js", "dashboard.css", "charts.js", "linked.js")
"""The dashboard's own files (MapLibre and the live map's script come from /map/static)."""


def dashboard_files() -> dict[str, Path]:
    """Return the dashboard's files by the name they are served under."""
    folder = resources.files("smartcity.web.dashboard").joinpath("static")
    return {name: Path(str(folder.joinpath(name))) for name in FILES}


def dashboard_router() -> APIRouter:
    """Build the router of the dashboard page (`/ops`) and its files (`/ops/static/...`)."""
    files = dashboard_files()
    page = files["dashboard.html"].read_text(encoding="utf-8")
    router = APIRouter(tags=["operations center: dashboard"])

    @router.get("/ops", include_in_schema=False)
    def dashboard_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/ops/static/{name}", include_in_schema=False)
    def dashboard_file(name: str) -> FileResponse:
        missing = f"the dashboard serves no file {name!r}"
        return static_file(files.get(name), missing, "no-cache")

    return router
