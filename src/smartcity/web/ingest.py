"""Ingestion endpoints: /ingest/v1/deadletters (list, show, replay, discard)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from smartcity.core.errors import BadRequestData, InvalidRequest, TooManyResults
from smartcity.ingest.deadletters import ReplayReport
from smartcity.storage.deadletters import DeadLetter, DeadLetterFilter
from smartcity.web.deps import CallerDep, PlatformDep

router = APIRouter(prefix="/ingest/v1", tags=["ingestion: dead letters"])
COUNT_HEADER = "NGSILD-Results-Count"


class Body(BaseModel):
    """A request body: unknown members are refused."""

    model_config = ConfigDict(extra="forbid")


class Filter(Body):
    """Which dead letters (every member optional)."""

    deviceId: str | None = None
    source: str | None = None
    reason: str | None = None
    status: str | None = None
    since: str | None = Field(default=None, description="received at or after (ISO 8601)")
    until: str | None = Field(default=None, description="received before (ISO 8601)")

    def to_filter(self) -> DeadLetterFilter:
        """Return the service's filter."""
        return DeadLetterFilter(
            device_id=self.deviceId,
            source=self.source,
            reason=self.reason,
            status=self.status,
            since=self.since,
            until=self.until,
        )


class ReplayRequest(Body):
    """Dead letters to replay: by id, or the oldest `limit` new ones a filter matches."""

    ids: list[str] | None = Field(default=None, min_length=1)
    filter: Filter | None = None
    limit: int | None = Field(default=None, ge=1)


def _summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "receivedAt": letter.received_at,
        "source": letter.source,
        "deviceId": letter.device_id,
        "topic": letter.topic,
        "contentType": letter.content_type,
        "reason": letter.reason,
        "stage": letter.stage,
        "path": letter.path,
        "message": letter.message,
        "status": letter.status,
        "attempts": letter.attempts,
        "lastReplayAt": letter.last_replay_at,
        "lastReplayResult": letter.last_replay_result,
        "resolvedAt": letter.resolved_at,
        "payloadBytes": len(letter.payload),
    }


def _detail(letter: DeadLetter) -> dict[str, Any]:
    try:
        payload, encoding = letter.payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(letter.payload).decode("ascii"), "base64"
    return {
        **_summary(letter),
        "meta": letter.meta,
        "payload": payload,
        "payloadEncoding": encoding,
    }


def _report(report: ReplayReport) -> dict[str, Any]:
    return {
        "matched": report.matched,
        "replayed": report.count("replayed"),
        "failed": report.count("failed"),
        "errors": report.count("error"),
        "skipped": report.count("skipped"),
        "notFound": report.count("not-found"),
        "outcomes": [
            {
                "id": item.id,
                "outcome": item.outcome,
                "detail": item.detail,
                "reason": item.reason,
                "path": item.path,
            }
            for item in report.outcomes
        ],
    }


_FILTER_PARAMETERS = frozenset({"deviceId", "source", "reason", "status", "since", "until"})
_LIST_PARAMETERS = _FILTER_PARAMETERS | {"limit", "offset", "count"}


def _known_parameters(request: Request, known: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s) {unknown}; known: {sorted(known)}")


def _query_filter(
    device_id: str | None,
    source: str | None,
    reason: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
) -> DeadLetterFilter:
    return DeadLetterFilter(device_id, source, reason, status, since, until)


@router.get("/deadletters", summary="List dead letters")
async def list_dead_letters(
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    device_id: str | None = Query(default=None, alias="deviceId"),
    source: str | None = None,
    reason: str | None = None,
    status: str | None = Query(default=None, description="new, replayed or discarded"),
    since: str | None = Query(default=None, description="received at or after (ISO 8601)"),
    until: str | None = Query(default=None, description="received before (ISO 8601)"),
    limit: int | None = Query(default=None, ge=1),
    offset: int = Query(default=0, ge=0),
    count: bool = False,
) -> Response:
    """List the tenant's dead letters, newest first (without payloads: see one by id)."""
    _known_parameters(request, _LIST_PARAMETERS)
    limit = limit or platform.settings.default_limit
    if limit > platform.settings.max_limit:
        raise TooManyResults(f"limit must be at most {platform.settings.max_limit}")
    where = _query_filter(device_id, source, reason, status, since, until)
    page = await run_in_threadpool(
        lambda: platform.deadletters.page(caller, where, limit=limit, offset=offset, count=count)
    )
    headers = {COUNT_HEADER: str(page.total)} if page.total is not None else {}
    return JSONResponse([_summary(letter) for letter in page.letters], headers=headers)


@router.get("/deadletters/reasons", summary="Count dead letters per reason")
async def count_dead_letters(
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    device_id: str | None = Query(default=None, alias="deviceId"),
    source: str | None = None,
    status: str | None = Query(default=None, description="new, replayed or discarded"),
    since: str | None = None,
    until: str | None = None,
) -> JSONResponse:
    """Return how many of the tenant's dead letters there are per reason, and in all."""
    _known_parameters(request, _FILTER_PARAMETERS - {"reason"})
    where = _query_filter(device_id, source, None, status, since, until)
    counts = await run_in_threadpool(platform.deadletters.counts_by_reason, caller, where)
    return JSONResponse({"total": sum(counts.values()), "byReason": counts})


@router.get("/deadletters/{letter_id}", summary="Show one dead letter with its payload")
async def show_dead_letter(letter_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Return one dead letter; the payload as text when it is UTF-8, else base64."""
    letter = await run_in_threadpool(platform.deadletters.get, caller, letter_id)
    return JSONResponse(_detail(letter))


@router.post("/deadletters/replay", summary="Replay dead letters")
async def replay_dead_letters(
    body: ReplayRequest, platform: PlatformDep, caller: CallerDep
) -> JSONResponse:
    """Run dead letters through ingestion again (after fixing the device, say).

    Give `ids`, or a `filter` (the oldest `limit` new letters it matches are replayed). Each
    letter records the outcome: replayed, or still failing with the new reason.
    """
    if (body.ids is None) == (body.filter is None):
        raise BadRequestData("give either ids or a filter")
    where = body.filter.to_filter() if body.filter is not None else None
    report = await platform.deadletters.replay(caller, ids=body.ids, where=where, limit=body.limit)
    return JSONResponse(_report(report))


@router.post("/deadletters/{letter_id}/discard", status_code=204, summary="Discard a dead letter")
async def discard_dead_letter(letter_id: str, platform: PlatformDep, caller: CallerDep) -> Response:
    """Mark a new dead letter discarded (it is purged after the retention period)."""
    await run_in_threadpool(platform.deadletters.discard, caller, [letter_id])
    return Response(status_code=204)
