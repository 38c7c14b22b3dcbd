"""The rules API: /rules/v1 (rules and their versions, firings, metrics, validation, backtests).

A thin adapter over `RuleService`, which checks roles: errors come back as ProblemDetails.
A rule is a JSON object in the engine's rule language with its `id`; the API adds its state
(`version`, `enabled`, who changed it when).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.rules.checkpoints import FiringRecord, firing_doc
from smartcity.rules.store import RuleRecord
from smartcity.web.bodies import json_body, json_response
from smartcity.web.deps import CallerDep, PlatformDep

router = APIRouter(prefix="/rules/v1", tags=["Convergence-event rules"])


def rule_public(record: RuleRecord) -> dict[str, Any]:
    """Return a rule as the API shows it."""
    return {
        "id": record.id,
        "version": record.version,
        "enabled": record.enabled,
        "rule": record.doc,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "updatedBy": record.updated_by,
    }


def firing_public(record: FiringRecord) -> dict[str, Any]:
    """Return a recorded firing as the API shows it."""
    return {
        **firing_doc(record.firing),
        "status": record.status,
        "recordedAt": record.recorded_at,
        "outcomes": [outcome.doc() for outcome in record.outcomes],
    }


def _rule_id_of(body: Any, path_id: str | None = None) -> str:
    if not isinstance(body, dict):
        raise BadRequestData("a rule is a JSON object with its `id`")
    rule_id = body.get("id", path_id)
    if not isinstance(rule_id, str) or not rule_id:
        raise BadRequestData("a rule needs an `id` (a string)")
    if path_id is not None and rule_id != path_id:
        raise BadRequestData(f"the rule's id {rule_id!r} is not the one in the path {path_id!r}")
    return rule_id


def _location(rule_id: str) -> str:
    return "/rules/v1/rules/" + quote(rule_id, safe="")


def _time(text: Any, name: str) -> datetime:
    if not isinstance(text, str):
        raise BadRequestData(f"`{name}` must be an ISO 8601 date and time with a time zone")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"`{name}` is not an ISO 8601 date and time: {text!r}") from None
    if moment.tzinfo is None:
        raise BadRequestData(f"`{name}` needs a time zone (Z or +09:00)")
    return moment


@router.get("/rules", summary="List the tenant's rules")
async def list_rules(platform: PlatformDep, caller: CallerDep) -> Response:
    """Return every rule of the tenant, by id."""
    records = await run_in_threadpool(platform.rules.list_rules, caller)
    return json_response([rule_public(record) for record in records])


@router.post("/rules", status_code=201, summary="Create a rule")
async def create_rule(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Store a new rule (version 1), enabled unless `?enabled=false`."""
    body = await json_body(request)
    rule_id = _rule_id_of(body)
    enabled = request.query_params.get("enabled", "true") != "false"
    record = await run_in_threadpool(
        lambda: platform.rules.create(caller, rule_id, body, enabled=enabled)
    )
    return json_response(rule_public(record), 201, {"Location": _location(rule_id)})


@router.post("/validate", summary="Validate a rule without storing it")
async def validate_rule(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return whether a rule may be stored, and what is wrong with it if not."""
    body = await json_body(request)
    rule_id = _rule_id_of(body)
    problems = await run_in_threadpool(platform.rules.validate, caller, rule_id, body)
    return json_response({"id": rule_id, "valid": not problems, "problems": problems})


@router.get("/rules/{rule_id}", summary="Show a rule")
async def get_rule(rule_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return a rule's current version and state."""
    record = await run_in_threadpool(platform.rules.get, caller, rule_id)
    return json_response(rule_public(record))


@router.get("/rules/{rule_id}/versions/{version}", summary="Show an older version of a rule")
async def get_version(
    rule_id: str, version: int, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Return one stored version of a rule's document."""
    await run_in_threadpool(platform.rules.get, caller, rule_id)  # checks role and existence
    doc = await run_in_threadpool(platform.rules.rules.version, caller.tenant, rule_id, version)
    if doc is None:
        raise ResourceNotFound(f"rule {rule_id} has no version {version}", instance=rule_id)
    return json_response({"id": rule_id, "version": version, "rule": doc})


@router.put("/rules/{rule_id}", summary="Change a rule (a new version)")
async def update_rule(
    rule_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Store a new version of a rule; it stays enabled or disabled as it was."""
    body = await json_body(request)
    _rule_id_of(body, rule_id)
    record = await run_in_threadpool(platform.rules.update, caller, rule_id, body)
    return json_response(rule_public(record))


@router.delete("/rules/{rule_id}", status_code=204, summary="Delete a rule")
async def delete_rule(rule_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Delete a rule (its versions and firings are kept)."""
    await run_in_threadpool(platform.rules.delete, caller, rule_id)
    return Response(status_code=204)


@router.post("/rules/{rule_id}/enable", summary="Enable a rule")
async def enable_rule(rule_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Run the rule from now on."""
    record = await run_in_threadpool(platform.rules.set_enabled, caller, rule_id, True)
    return json_response(rule_public(record))


@router.post("/rules/{rule_id}/disable", summary="Disable a rule")
async def disable_rule(rule_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Stop running the rule (it is kept)."""
    record = await run_in_threadpool(platform.rules.set_enabled, caller, rule_id, False)
    return json_response(rule_public(record))


@router.post("/rules/{rule_id}/backtest", summary="Backtest a rule over the history")
async def backtest_rule(
    rule_id: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> Response:
    """Run the rule (or the draft in `rule`) over the history `from`-`to`; nothing is acted on."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequestData('a backtest is {"from": ..., "to": ..., "rule": optional}')
    start, end = _time(body.get("from"), "from"), _time(body.get("to"), "to")
    draft = body.get("rule")
    result = await run_in_threadpool(
        lambda: platform.rules.backtest(caller, rule_id, start, end, doc=draft)
    )
    return json_response(
        {
            "rule": result.rule,
            "from": result.start,
            "to": result.end,
            "changes": result.changes,
            "firings": [firing_doc(firing) for firing in result.firings],
        }
    )


@router.get("/firings", summary="List firings")
async def list_firings(request: Request, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return the tenant's firings, newest first (`rule`, `since`, `until`, `limit`, `offset`)."""
    params = request.query_params
    try:
        limit, offset = int(params.get("limit", "100")), int(params.get("offset", "0"))
    except ValueError:
        raise BadRequestData("limit and offset must be whole numbers") from None
    records = await run_in_threadpool(
        lambda: platform.rules.firings(
            caller,
            rule_id=params.get("rule"),
            since=params.get("since"),
            until=params.get("until"),
            limit=limit,
            offset=offset,
        )
    )
    return json_response([firing_public(record) for record in records])


@router.get("/firings/{firing_id}", summary="Show a firing")
async def get_firing(firing_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return one firing with its evidence and what each action did."""
    record = await run_in_threadpool(platform.rules.firing, caller, firing_id)
    return json_response(firing_public(record))


@router.get("/metrics", summary="Rules and firings by status")
async def rule_metrics(platform: PlatformDep, caller: CallerDep) -> Response:
    """Return how many rules there are, how many are enabled, firings per rule and status."""
    return json_response(await run_in_threadpool(platform.rules.metrics, caller))
