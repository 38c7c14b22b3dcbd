"""The mobility module's HTTP API (/mobility/v1/parking/...), its guidance and operator pages.

A thin adapter: every decision is taken by `ParkingService` and `ReservationService`. No
`from __future__ import annotations` here: FastAPI reads the endpoints' annotations, which name
`CallerDep`, an alias local to `routers` (the caller dependency comes from the web layer).
"""

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.responses import FileResponse, HTMLResponse, JSONResponse

from smartcity.auth.principal import Caller
from smartcity.core.durations import parse_duration
from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.domains.mobility.parking.gate import GateRead
from smartcity.domains.mobility.parking.payment.api import payment_router
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.domains.mobility.service import MobilityService
from smartcity.modules import WebHooks

PREFIX: Final = "/mobility/v1/parking"
PAGE_FILES: Final = {
    "guidance.js": "text/javascript",
    "guidance.css": "text/css",
    "operator.js": "text/javascript",
    "operator.css": "text/css",
}
_SHORT: Final = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?$")


class ReservationCreate(BaseModel):
    """A reservation request: which shared site, from when to when."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=256)
    start: AwareDatetime
    end: AwareDatetime


class GateReads(BaseModel):
    """A batch of plate reads from a lot's gates."""

    model_config = ConfigDict(extra="forbid")

    reads: list[GateRead] = Field(min_length=1, max_length=1000)


def parse_near(text: str) -> tuple[float, float]:
    """Read "longitude,latitude" in WGS84 degrees."""
    parts = text.split(",")
    try:
        lon, lat = (float(part) for part in parts)
    except ValueError:
        raise BadRequestData(
            f"near={text!r}: give longitude,latitude in degrees, e.g. near=127.0515,37.6512"
        ) from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequestData(f"near={text!r} is not a position (longitude first, then latitude)")
    return lon, lat


def parse_at(text: str | None) -> datetime | None:
    """Read an ISO 8601 time; one without an offset is Korean local time (KST)."""
    if text is None or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(
            f"at={text!r}: give an ISO 8601 time, e.g. 2026-11-27T19:00+09:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=KST)


def parse_stay(text: str) -> timedelta:
    """Read a stay: "PT2H", "2h", "1h30m", "90m" or minutes ("120")."""
    raw = text.strip().lower()
    if raw.isdigit():
        return timedelta(minutes=int(raw))
    if raw.upper().startswith("P"):
        try:
            return parse_duration(raw.upper())
        except Exception:
            pass
    else:
        match = _SHORT.match(raw)
        if raw and match is not None and any(match.groups()):
            return timedelta(hours=int(match[1] or 0), minutes=int(match[2] or 0))
    raise BadRequestData(f"duration={text!r}: give e.g. 2h, 90m, PT2H or minutes (120)")


def routers(service: MobilityService, hooks: WebHooks) -> Sequence[APIRouter]:
    """Return the module's routers: the parking API, the guidance and operator pages."""
    CallerDep = Annotated[Caller, Depends(hooks.caller)]
    parking = service.parking
    api = APIRouter(prefix=PREFIX, tags=["parking"])

    @api.get("/guidance", summary="Where to park near a place at a time")
    async def guidance(
        caller: CallerDep,
        near: Annotated[str, Query(description="longitude,latitude of the destination")],
        at: Annotated[str | None, Query(description="arrival, ISO 8601 (default: now)")] = None,
        duration: Annotated[str, Query(description="stay: 2h, 90m, PT2H")] = "2h",
        lang: Literal["ko", "en"] = "ko",
        limit: Annotated[int, Query(ge=1, le=25)] = 5,
    ) -> JSONResponse:
        """Rank parking sites by walking distance, with space now and at arrival, and fees."""
        answer = await run_in_threadpool(
            parking.guidance,
            caller,
            parse_near(near),
            parse_at(at),
            parse_stay(duration),
            lang,
            limit,
        )
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    @api.get("/sites/{site_id}/availability", summary="A site's live availability")
    async def availability(caller: CallerDep, site_id: str) -> dict[str, Any]:
        """Return free spaces now, or STALE when the site's source stopped updating."""
        return await run_in_threadpool(parking.availability, caller, site_id)

    @api.post("/sites/{site_id}/gate-reads", summary="Count plate reads at a lot's gates")
    async def gate_reads(caller: CallerDep, site_id: str, body: GateReads) -> dict[str, Any]:
        """Fold entry and exit reads into the lot's counts (the lot's gate device, operators)."""
        return await run_in_threadpool(parking.record_gate_reads, caller, site_id, body.reads)

    @api.post("/reservations", status_code=201, summary="Reserve a shared-parking space")
    async def reserve(caller: CallerDep, body: ReservationCreate) -> JSONResponse:
        """Reserve a space for a window inside the site's shared hours; 409 when none is left."""
        made = await run_in_threadpool(
            parking.reservations.reserve, caller, body.site, body.start, body.end
        )
        location = f"{PREFIX}/reservations/{made.id}"
        return JSONResponse(made.as_json(), status_code=201, headers={"Location": location})

    @api.get("/reservations", summary="Your reservations (all, for operators)")
    async def reservations(
        caller: CallerDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """List the caller's reservations, newest first."""
        found = await run_in_threadpool(parking.reservations.list_for, caller, limit, offset)
        return [r.as_json() for r in found]

    @api.get("/reservations/{reservation_id}", summary="One of your reservations")
    async def reservation(caller: CallerDep, reservation_id: str) -> dict[str, Any]:
        """Return a reservation the caller holds."""
        found = await run_in_threadpool(parking.reservations.get, caller, reservation_id)
        return found.as_json()

    @api.post("/reservations/{reservation_id}/cancel", summary="Cancel a reservation")
    async def cancel(caller: CallerDep, reservation_id: str) -> dict[str, Any]:
        """Cancel a reservation whose car has not arrived."""
        done = await run_in_threadpool(parking.reservations.cancel, caller, reservation_id)
        return done.as_json()

    @api.post("/reservations/{reservation_id}/check-in", summary="Check the car in")
    async def check_in(caller: CallerDep, reservation_id: str) -> dict[str, Any]:
        """Mark the reserved car arrived (it is then not released as a no-show)."""
        done = await run_in_threadpool(parking.reservations.check_in, caller, reservation_id)
        return done.as_json()

    @api.get("/operator/overview", summary="A lot operator's lots, occupancy, revenue, settlement")
    async def operator_overview(
        caller: CallerDep,
        days: Annotated[int, Query(ge=1, le=92, description="days of revenue")] = 14,
        lang: Literal["ko", "en"] = "ko",
    ) -> JSONResponse:
        """Return the caller's lots with occupancy trend and forecast, revenue and settlements."""
        body = await run_in_threadpool(service.operator.overview, caller, days, lang)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return [api, payment_router(service.payment, hooks.caller), _page_router()]


def _page_router() -> APIRouter:
    folder = Path(str(resources.files("smartcity.domains.mobility").joinpath("page")))
    page = (folder / "guidance.html").read_text(encoding="utf-8")
    operator_page = (folder / "operator.html").read_text(encoding="utf-8")
    router = APIRouter(include_in_schema=False)

    @router.get("/mobility/parking")
    def guidance_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/mobility/parking/operator")
    def operator_dashboard() -> HTMLResponse:
        # The page holds no data: it signs in and reads /operator/overview with the token.
        return HTMLResponse(operator_page, headers={"Cache-Control": "no-cache"})

    @router.get("/mobility/parking/static/{name}")
    def page_file(name: str) -> FileResponse:
        media_type = PAGE_FILES.get(name)
        if media_type is None:
            raise ResourceNotFound(f"the parking page serves no file {name!r}")
        return FileResponse(folder / name, media_type=media_type)

    return router
