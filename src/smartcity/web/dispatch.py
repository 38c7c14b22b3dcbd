"""The linked services' API: dispatch packages (112 escape routes, 119 site, disaster,
vulnerable person), snapshots, green waves, SOS calls and the vulnerable-person registry.

A thin adapter over `smartcity.operations` (police, fire, disaster, vulnerable, dispatch): each
package route builds the package from the platform's data now and sends it (201), or with
`"dryRun": true` returns what it would send (200) without keeping anything.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from smartcity.core.errors import ResourceNotFound
from smartcity.operations.cameras import attribute
from smartcity.operations.disaster import DisasterRequest
from smartcity.operations.dispatch import package_json
from smartcity.operations.links import LinkClaims
from smartcity.operations.police import EscapeRequest
from smartcity.operations.still import demo_frame
from smartcity.operations.vulnerable import PersonDraft, person_json
from smartcity.web.deps import CallerDep, PlatformDep
from smartcity.web.incidents import field, json_body, reply

router = APIRouter(prefix="/ops/v1", tags=["operations center: linked services"])


async def _body(request: Request) -> dict[str, Any]:
    return await json_body(request) if await request.body() else {}


def _sent(made: Any) -> Response:
    body = package_json(made)
    headers = {"Location": f"/ops/v1/incidents/{made.incident_id}/packages/{made.id}"}
    return reply(body, status=201, headers=headers)


@router.get("/incidents/{incident_id}/packages", summary="An incident's dispatch packages")
async def packages(incident_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """List the packages sent about an incident (an agency: those sent to it)."""
    found = await run_in_threadpool(platform.operations.dispatch.packages, caller, incident_id)
    return reply([package_json(p) for p in found])


@router.get("/incidents/{incident_id}/packages/{package_id}", summary="One dispatch package")
async def package(
    incident_id: str, package_id: str, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Return one package as it was sent (any package not for the caller: 404)."""
    found = await run_in_threadpool(
        platform.operations.dispatch.package, caller, incident_id, package_id
    )
    return reply(package_json(found))


@router.post("/incidents/{incident_id}/packages/escape-routes", summary="112 dispatch package")
async def escape_routes(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Send the police (`agency`) the scene's snapshots and the suspect's possible escape
    routes with the cameras along each: `count` routes (default and maximum
    `ops_escape_routes`) up to `distance` metres (`ops_escape_distance`), `mode` vehicle or
    foot; `dryRun` returns them without sending."""
    body = await _body(request)
    wanted = EscapeRequest(
        count=field(body, "count", int),
        distance=field(body, "distance", float),
        mode=field(body, "mode", str, "vehicle"),
    )
    police = platform.operations.police
    if field(body, "dryRun", bool, False):
        return reply(await run_in_threadpool(police.preview, caller, incident_id, wanted))
    made = await run_in_threadpool(
        police.send, caller, incident_id, field(body, "agency", str, ""), wanted
    )
    return _sent(made)


@router.post("/incidents/{incident_id}/packages/fire-site", summary="119 site package")
async def fire_site(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Send fire and rescue (`agency`) the site package: building and its fire-risk grade,
    hydrants, the access route with its narrow and blocked streets and live traffic, cameras,
    signals; `dryRun` returns it without sending."""
    body = await _body(request)
    fire = platform.operations.fire
    if field(body, "dryRun", bool, False):
        return reply(await run_in_threadpool(fire.preview, caller, incident_id))
    made = await run_in_threadpool(fire.send, caller, incident_id, field(body, "agency", str, ""))
    return _sent(made)


@router.post(
    "/incidents/{incident_id}/packages/{package_id}/green-wave", summary="Request a green wave"
)
async def green_wave(
    incident_id: str, package_id: str, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Ask every traffic signal along a site package's route for priority (a device command
    each); return what each signal's command became."""
    result = await run_in_threadpool(
        platform.operations.fire.green_wave, caller, incident_id, package_id
    )
    return reply(result, status=202)


@router.post("/incidents/{incident_id}/packages/disaster", summary="Disaster package")
async def disaster(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Declare a `hazard` (heavy-rain, flood, earthquake, fine-dust) at a `level` (advisory,
    warning) over an `area` (GeoJSON polygon) or a `radius` around the incident: the package
    lists the facilities and people-related assets in it and queues the messages to send;
    optional `agency`; `dryRun` returns it without sending."""
    body = await _body(request)
    wanted = DisasterRequest(
        hazard=field(body, "hazard", str, ""),
        level=field(body, "level", str, "advisory"),
        area=field(body, "area", dict),
        radius=field(body, "radius", float),
        agency=field(body, "agency", str, ""),
    )
    support = platform.operations.disaster
    if field(body, "dryRun", bool, False):
        return reply(await run_in_threadpool(support.preview, caller, incident_id, wanted))
    made = await run_in_threadpool(support.send, caller, incident_id, wanted)
    return _sent(made)


@router.post("/incidents/{incident_id}/packages/vulnerable-person", summary="Resend an SOS package")
async def vulnerable_person(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Send an SOS incident's package, with the trail up to now, to an `agency`."""
    body = await json_body(request)
    made = await run_in_threadpool(
        platform.operations.vulnerable.send, caller, incident_id, field(body, "agency", str, "")
    )
    return _sent(made)


@router.get(
    "/incidents/{incident_id}/packages/{package_id}/snapshots/{camera_id}",
    summary="A scene snapshot of a 112 package",
)
async def snapshot(
    incident_id: str, package_id: str, camera_id: str, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Serve a snapshot of the package (a demo camera's generated still, else a redirect to
    the video system's frame at that moment); any camera not in the package: 404."""
    camera, at, _ = await run_in_threadpool(
        platform.operations.police.snapshot, caller, incident_id, package_id, camera_id
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    url = str(attribute(camera, "streamURL") or "")
    if url.startswith("demo:"):
        direction = attribute(camera, "viewDirection")
        name = attribute(camera, "cameraName") or attribute(camera, "name") or camera.id
        claims = LinkClaims(
            caller.tenant, incident_id, camera.id, caller.principal_id, caller.subject, "",
            "recorded", 0, at,
        )  # fmt: skip
        still = demo_frame(
            str(name), float(direction) if isinstance(direction, int | float) else None, at, claims
        )
        return Response(still, media_type="image/svg+xml", headers=headers)
    if not url:
        raise ResourceNotFound(f"camera {camera_id} has no streamURL")
    url += ("&" if "?" in url else "?") + urlencode({"start": at, "snapshot": "true"})
    return RedirectResponse(url, status_code=307, headers=headers)


@router.post("/sos", summary="An SOS from a registered wearable")
async def sos(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Take an SOS: `wearable` (the entity id of a registered person's wearable), optional
    `location` (GeoJSON; else the wearable's own) and `at`. Opens an incident (201) or joins
    the open one of that wearable (200)."""
    body = await json_body(request)
    incident, outcome = await run_in_threadpool(
        lambda: platform.operations.vulnerable.sos(
            caller,
            field(body, "wearable", str, ""),
            field(body, "location", dict),
            field(body, "at", str, ""),
        )
    )
    return reply(
        {"outcome": outcome, "incident": incident.id},
        status=201 if outcome == "created" else 200,
        headers={"Location": f"/ops/v1/incidents/{incident.id}"},
    )


@router.get("/persons", summary="Registered vulnerable persons (operators)")
async def persons(platform: PlatformDep, caller: CallerDep) -> Response:
    """List the registered persons, without their guardians' contacts."""
    found = await run_in_threadpool(platform.operations.vulnerable.registered, caller)
    return reply([person_json(p, contact=False) for p in found])


@router.post("/persons", status_code=201, summary="Register a vulnerable person (operators)")
async def register(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Register `kind` (child, dementia), `alias`, `wearable`, `guardianName`,
    `guardianPhone`, and optionally `birthYear` and `description`."""
    body = await json_body(request)
    birth = field(body, "birthYear", int)
    draft = PersonDraft(
        kind=field(body, "kind", str, ""),
        alias=field(body, "alias", str, ""),
        wearable=field(body, "wearable", str, ""),
        guardian_name=field(body, "guardianName", str, ""),
        guardian_phone=field(body, "guardianPhone", str, ""),
        birth_year=birth,
        description=field(body, "description", str, ""),
    )
    person = await run_in_threadpool(platform.operations.vulnerable.register, caller, draft)
    return reply(
        person_json(person, contact=True),
        status=201,
        headers={"Location": f"/ops/v1/persons/{person.id}"},
    )


@router.get("/persons/{person_id}", summary="One vulnerable person (operators)")
async def person(person_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return one person with the guardian's contact (the reading is audited)."""
    found = await run_in_threadpool(platform.operations.vulnerable.get, caller, person_id)
    return reply(person_json(found, contact=True))


@router.delete("/persons/{person_id}", status_code=204, summary="Remove a vulnerable person")
async def remove(person_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Remove a person's registration and data."""
    await run_in_threadpool(platform.operations.vulnerable.remove, caller, person_id)
    return Response(status_code=204)
