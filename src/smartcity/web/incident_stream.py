"""Live incident changes as server-sent events: /ops/v1/incidents/stream.

Read from the incident timeline (numbered in commit order), not the bus, so an event id is a
position a reconnecting client resumes from with Last-Event-ID. Each event is filtered by what
the caller may see now: an agency sees only the incidents it reported or shares with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from smartcity.auth.principal import Caller
from smartcity.core.errors import BadRequestData
from smartcity.operations.facts import fact
from smartcity.operations.incidents import shows
from smartcity.platform import Platform
from smartcity.web.deps import CallerDep, PlatformDep

router = APIRouter(prefix="/ops/v1", tags=["operations center"])
RETRY_MS = 3000
BATCH = 200


def _frame(name: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _read(platform: Platform, caller: Caller, after: int) -> tuple[list[bytes], int]:
    """Return the frames of the caller's visible events after a position, and the new one."""
    operations = platform.operations
    events = operations.store.events_after(after, BATCH, tenant=caller.tenant)
    if not events:
        return [], after
    visible = operations.incidents.visible_ids(caller)
    frames = [
        _frame("incident", fact(e, operations.store.get(e.tenant, e.incident_id)), e.seq)
        for e in events
        if (visible is None or e.incident_id in visible) and shows(caller, e)
    ]
    return frames, events[-1].seq


@router.get(
    "/incidents/stream",
    summary="Live incident changes (server-sent events)",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Stream `incident` events (a timeline event with the incident as it is now) for the
    caller's tenant and visibility; `heartbeat` when nothing happened. Resume with
    Last-Event-ID (or `after`); without either the stream starts from now."""
    raw = last_event_id or request.query_params.get("after")
    if raw is not None and not raw.strip().isdigit():
        raise BadRequestData(f"Last-Event-ID must be an event id of this stream, not {raw!r}")
    # Asked first: a caller who may not read incidents is refused before the stream starts.
    await run_in_threadpool(platform.operations.incidents.visible_ids, caller)
    if raw is not None:
        position = int(raw)
    else:
        position = await run_in_threadpool(platform.operations.store.last_seq)
    return StreamingResponse(
        _events(request, platform, caller, position),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, platform: Platform, caller: Caller, position: int
) -> AsyncIterator[bytes]:
    settings = platform.settings
    yield f"retry: {RETRY_MS}\n\n".encode()
    last_sent = time.monotonic()
    # Woken by this process's incident writes at once; writes of other processes are found by
    # reading again every `ops_stream_poll_interval`.
    # At most one read per `stream_min_interval`: a burst of writes is read in one go.
    last_read = 0.0
    with platform.operations.commits.watch() as committed:
        while not await request.is_disconnected():
            pause = settings.stream_min_interval - (time.monotonic() - last_read)
            if pause > 0:
                await asyncio.sleep(pause)
            committed.clear()
            last_read = time.monotonic()
            frames, position = await run_in_threadpool(_read, platform, caller, position)
            for frame in frames:
                yield frame
            if frames:
                last_sent = time.monotonic()
                continue
            if time.monotonic() - last_sent >= settings.stream_heartbeat:
                last_sent = time.monotonic()
                yield _frame("heartbeat", {"position": position}, position)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(committed.wait(), settings.ops_stream_poll_interval)
