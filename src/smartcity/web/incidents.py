"""The operations center's incident API: /ops/v1/incidents, partner reports, alert intake.

A thin adapter: every rule (roles, tenants, the lifecycle, versions) is in
`smartcity.operations`; errors leave as ProblemDetails through the shared mapping.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.core.errors import BadRequestData, InvalidRequest
from smartcity.operations.alerts import AgencyReport, AlertFact, Intake
from smartcity.operations.incidents import TRANSITIONS, IncidentDraft
from smartcity.operations.present import event_json, incident_json
from smartcity.operations.taxonomy import SEVERITIES, as_json
from smartcity.platform import Platform
from smartcity.storage.incidents import STATUSES, IncidentFilter
from smartcity.web.deps import CallerDep, PlatformDep

router = APIRouter(prefix="/ops/v1", tags=["operations center"])
JSON = "application/json"


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return a JSON response."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


async def json_body(request: Request) -> dict[str, Any]:
    """Return the request's JSON object body."""
    raw = await request.body()
    if not raw:
        raise InvalidRequest("the request needs a JSON body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object")
    return body


def field(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """Return one member of a body, checked for its JSON type."""
    value = body.get(name, default)
    if value is None:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRequestData(f"{name!r} must be a {kind.__name__}")
    return value


def strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    """Return a list-of-texts member of a body."""
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestData(f"{name!r} must be a list of texts")
    return tuple(value)


def present(platform: Platform, incident: Any) -> dict[str, Any]:
    """Return an incident as JSON."""
    return incident_json(incident, platform.operations.incidents.procedures)


def _choices(
    request: Request, name: str, allowed: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    raw = request.query_params.get(name)
    if not raw:
        return ()
    values = tuple(v for v in raw.split(",") if v)
    if allowed is not None:
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise BadRequestData(f"unknown {name} {', '.join(unknown)}; use {', '.join(allowed)}")
    return values


def _bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    if not raw:
        return None
    try:
        parts = [float(x) for x in raw.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise BadRequestData("bbox must be minLon,minLat,maxLon,maxLat")
    return parts[0], parts[1], parts[2], parts[3]


def _whole(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadRequestData(f"{name} must be a whole number, 0 or more, not {raw!r}")
    return int(raw)


@router.get("/taxonomy", summary="Incident types, subtypes and severities")
async def taxonomy() -> Response:
    """Return the incident taxonomy (Korean and English names) and the severities."""
    return reply({"types": as_json(), "severities": list(SEVERITIES)})


@router.get("/incidents", summary="List incidents")
async def list_incidents(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """List the incidents the caller may see, newest first.

    Filters: `status`, `type`, `severity` (comma-separated), `zone`, `assignee`,
    `bbox=minLon,minLat,maxLon,maxLat`; paging with `limit`, `offset`, `count=true`.
    """
    where = IncidentFilter(
        statuses=_choices(request, "status", STATUSES),
        types=_choices(request, "type"),
        severities=_choices(request, "severity", SEVERITIES),
        zone=request.query_params.get("zone") or None,
        assignee=request.query_params.get("assignee") or None,
        bbox=_bbox(request.query_params.get("bbox")),
    )
    limit = _whole(request, "limit", platform.settings.default_limit)
    offset = _whole(request, "offset", 0)
    count = request.query_params.get("count") == "true"
    page, total = await run_in_threadpool(
        platform.operations.incidents.page, caller, where, limit, offset, count
    )
    headers = {"Total-Count": str(total)} if total is not None else None
    return reply([present(platform, i) for i in page], headers=headers)


@router.post("/incidents", status_code=201, summary="Open an incident (operators)")
async def create_incident(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Open an incident by hand: type, severity, title, and optionally subtype, description,
    location (GeoJSON), zone, related entity ids, assignee."""
    body = await json_body(request)
    draft = IncidentDraft(
        type=field(body, "type", str, ""),
        subtype=field(body, "subtype", str, ""),
        severity=field(body, "severity", str, "medium"),
        title=field(body, "title", str, ""),
        description=field(body, "description", str, ""),
        location=field(body, "location", dict),
        zone=field(body, "zone", str, ""),
        related=strings(body, "related"),
        assignee=field(body, "assignee", str, ""),
    )
    incident = await run_in_threadpool(platform.operations.incidents.create, caller, draft)
    return _created(platform, incident)


def _created(platform: Platform, incident: Any) -> Response:
    return reply(
        present(platform, incident),
        status=201,
        headers={"Location": f"/ops/v1/incidents/{incident.id}"},
    )


def _intake(platform: Platform, intake: Intake) -> Response:
    body = {"outcome": intake.outcome, "incident": present(platform, intake.incident)}
    status = 201 if intake.outcome == "created" else 200
    return reply(body, status, headers={"Location": f"/ops/v1/incidents/{intake.incident.id}"})


@router.post("/reports", summary="Report an incident as a partner agency (112, 119)")
async def agency_report(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Take a 112 or 119 report: `channel`, `reportId`, `location` (GeoJSON), and optionally
    `type`, `subtype`, `severity`, `description`, `zone`, `reportedAt`.

    The same (agency, reportId) again returns the incident it opened (200, `duplicate`).
    """
    body = await json_body(request)
    report = AgencyReport(
        channel=field(body, "channel", str, ""),
        report_id=field(body, "reportId", str, ""),
        type=field(body, "type", str, ""),
        subtype=field(body, "subtype", str, ""),
        severity=field(body, "severity", str, "high"),
        location=field(body, "location", dict),
        description=field(body, "description", str, ""),
        zone=field(body, "zone", str, ""),
        reported_at=field(body, "reportedAt", str, ""),
    )
    intake = await run_in_threadpool(platform.operations.intake.report, caller, report)
    return _intake(platform, intake)


@router.post("/alerts", summary="Take an alert (rule engines in another process)")
async def take_alert(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Merge an alert fact into a related open incident or open one (idempotent by alertId)."""
    alert = AlertFact.from_json(await json_body(request))
    intake = await run_in_threadpool(platform.operations.intake.open_or_merge, caller, alert)
    return _intake(platform, intake)


@router.get("/incidents/{incident_id}", summary="Get an incident")
async def get_incident(incident_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return one incident the caller may see (any other id: 404)."""
    incident = await run_in_threadpool(platform.operations.incidents.get, caller, incident_id)
    return reply(present(platform, incident))


@router.get("/incidents/{incident_id}/timeline", summary="An incident's timeline")
async def timeline(incident_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return every step of an incident: lifecycle, comments, SOP, shares, links and views."""
    events = await run_in_threadpool(platform.operations.incidents.timeline, caller, incident_id)
    return reply([event_json(e) for e in events])


async def _optional_body(request: Request) -> dict[str, Any]:
    return await json_body(request) if await request.body() else {}


def _transition_route(action: str) -> None:
    async def transition(
        incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
    ) -> Response:
        body = await _optional_body(request)
        incident = await run_in_threadpool(
            lambda: platform.operations.transition(
                caller,
                incident_id,
                action,
                expected_version=field(body, "version", int),
                note=field(body, "note", str, ""),
            )
        )
        return reply(present(platform, incident))

    transition.__doc__ = (
        f"{action.capitalize()} the incident; optional `version` (409 when it changed since) "
        "and `note` (closing an incident that is not resolved needs one). An action the "
        "incident's status does not allow: 409 with the allowed ones."
    )
    router.add_api_route(
        f"/incidents/{{incident_id}}/{action}",
        transition,
        methods=["POST"],
        summary=f"{action.capitalize()} an incident",
        name=f"incident_{action}",
    )


for _action in TRANSITIONS:
    _transition_route(_action)


@router.put("/incidents/{incident_id}/assignee", summary="Assign an incident")
async def assign(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Assign the incident to `assignee` ('' unassigns); optional `version`."""
    body = await json_body(request)
    incident = await run_in_threadpool(
        lambda: platform.operations.incidents.assign(
            caller,
            incident_id,
            field(body, "assignee", str, ""),
            expected_version=field(body, "version", int),
        )
    )
    return reply(present(platform, incident))


@router.post("/incidents/{incident_id}/comments", status_code=201, summary="Comment")
async def comment(
    incident_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Add `text` to the incident's timeline."""
    body = await json_body(request)
    event = await run_in_threadpool(
        platform.operations.incidents.comment, caller, incident_id, field(body, "text", str, "")
    )
    return reply(event_json(event), status=201)


@router.put("/incidents/{incident_id}/sop/{step_id}", summary="Tick an SOP step")
async def sop_step(
    incident_id: str, step_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Set a checklist step `done` (true or false), with an optional `note` and `version`."""
    body = await json_body(request)
    incident = await run_in_threadpool(
        lambda: platform.operations.incidents.check_step(
            caller,
            incident_id,
            step_id,
            field(body, "done", bool, True),
            note=field(body, "note", str, ""),
            expected_version=field(body, "version", int),
        )
    )
    return reply(present(platform, incident))
