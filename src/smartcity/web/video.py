"""112 emergency video support API: cameras near an incident, shares, signed video links.

`GET /ops/v1/video/{token}` opens a link: it needs no other credential (a video player cannot
send one), but the link is signed, bound to its principal, short-lived, and checked against
its share every time it is opened. A camera whose `streamURL` is `demo:...` answers with a
generated still; any other is redirected to its video management system's URL.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.operations.cameras import attribute
from smartcity.operations.present import camera_json, share_json
from smartcity.operations.still import demo_frame
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.incidents import field, json_body, reply, strings

router = APIRouter(prefix="/ops/v1", tags=["operations center: video"])


@router.get("/incidents/{incident_id}/cameras", summary="Cameras near an incident")
async def cameras(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """List the cameras within `radius` metres (default and maximum: `ops_video_radius`) of an
    incident of a qualifying type, nearest first, with their view direction."""
    raw = request.query_params.get("radius")
    try:
        radius = float(raw) if raw else None
    except ValueError:
        raise BadRequestData(f"radius must be a number of metres, not {raw!r}") from None
    found = await run_in_threadpool(
        platform.operations.video.cameras_near, caller, incident_id, radius
    )
    return reply([camera_json(c) for c in found])


@router.get("/incidents/{incident_id}/shares", summary="An incident's video shares")
async def shares(incident_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """List the incident's shares (an agency: its own active ones)."""
    found = await run_in_threadpool(platform.operations.video.shares, caller, incident_id)
    now = isoformat(platform.clock.now())
    return reply([share_json(s, now) for s in found])


@router.post("/incidents/{incident_id}/shares", status_code=201, summary="Share cameras")
async def share(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Share `cameras` (ids from the cameras near the incident) with the agency principal
    named `agency` for `minutes` (default and maximum: `ops_video_share_minutes`)."""
    body = await json_body(request)
    made = await run_in_threadpool(
        lambda: platform.operations.video.share(
            caller,
            incident_id,
            field(body, "agency", str, ""),
            list(strings(body, "cameras")),
            field(body, "minutes", float),
        )
    )
    return reply(share_json(made, isoformat(platform.clock.now())), status=201)


@router.delete("/incidents/{incident_id}/shares/{share_id}", status_code=204, summary="End a share")
async def unshare(
    incident_id: str, share_id: str, platform: PlatformDep, caller: CallerDep
) -> Response:
    """End a video share now: its agency stops seeing the cameras, its links stop opening."""
    await run_in_threadpool(platform.operations.video.end_share, caller, incident_id, share_id)
    return Response(status_code=204)


@router.post("/incidents/{incident_id}/cameras/{camera_id}/link", summary="A signed video link")
async def link(
    incident_id: str, camera_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Issue a short-lived signed link to a camera's `live` or `recorded` (`at`) video. An
    agency gets one only for a camera shared with it for this incident (otherwise 404)."""
    body = await json_body(request) if await request.body() else {}
    issued = await run_in_threadpool(
        lambda: platform.operations.video.link(
            caller,
            incident_id,
            camera_id,
            field(body, "mode", str, "live"),
            field(body, "at", str, ""),
        )
    )
    href = f"/ops/v1/video/{quote(issued.token, safe='')}"
    return reply({"href": href, "expiresAt": issued.expires_at, "camera": camera_id})


@router.get("/video/{token}", summary="Open a signed video link")
async def video(token: str, platform: PlatformDep) -> Response:
    """Check the link and its share; log the view; serve or redirect to the camera's video."""
    claims, camera, url = await run_in_threadpool(platform.operations.video.open, token)
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if url.startswith("demo:"):
        direction = attribute(camera, "viewDirection")
        name = attribute(camera, "cameraName") or attribute(camera, "name") or camera.id
        frame = demo_frame(
            str(name),
            float(direction) if isinstance(direction, int | float) else None,
            isoformat(platform.clock.now()),
            claims,
        )
        return Response(frame, media_type="image/svg+xml", headers=headers)
    if not url:
        raise ResourceNotFound(f"camera {claims.camera_id} has no streamURL")
    if claims.mode == "recorded" and claims.at:
        url += ("&" if "?" in url else "?") + urlencode({"start": claims.at})
    return RedirectResponse(url, status_code=307, headers=headers)
