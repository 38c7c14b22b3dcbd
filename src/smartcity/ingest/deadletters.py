"""The dead-letter service: keep refused input, let operators list, replay and discard it.

Ingestion hands what it refuses to `record` / `record_many` (the `DeadLetterSink` port); they
need no caller, since the platform itself records. Everything else acts for a `Caller`, in the
caller's tenant only: reading needs `read-dead-letters` (admin, operator, analyst), replaying
and discarding `manage-dead-letters` (admin, operator).

Replay hands each letter's raw input back to the part of ingestion it came from: a replayer
registered for its source (`register_replayer("mqtt", ...)`, `"adapter:"` for every adapter).
The IoT agent's replayer runs the whole pipeline again with the device's current mapping, so
"fix the device, then replay" works. A replayer returns a short note on success and raises
`Rejected` when the input still fails; the letter records either outcome.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Final

import structlog

from smartcity.auth.policy import Permission, require
from smartcity.auth.principal import Caller
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import (
    BadRequestData,
    OperationNotSupported,
    ResourceNotFound,
    TooManyResults,
)
from smartcity.ingest.normalize import parse_moment
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.storage.deadletters import (
    DISCARDED,
    NEW,
    REPLAYED,
    STATUSES,
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStore,
    ReplayRecord,
)

log = structlog.get_logger(__name__)

Replayer = Callable[[RawInput], Awaitable[str | None]]
"""Run one raw input through ingestion again; return a note (e.g. the reading's id) or raise
Rejected if it still fails."""

REPLAY_BATCH: Final = 100
"""Letters one replay request handles unless it says otherwise."""
MAX_MESSAGE: Final = 2000
"""Characters of a refusal's message kept (a message is for people, not a dump)."""


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """One page of a tenant's dead letters."""

    letters: list[DeadLetter]
    total: int | None
    """How many match the filter (when asked for)."""


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What became of one dead letter on replay."""

    id: str
    outcome: str
    """'replayed', 'failed' (refused again), 'error' (the replayer broke), 'skipped' (not new
    any more) or 'not-found'."""
    detail: str = ""
    reason: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of one replay request."""

    outcomes: list[ReplayOutcome]
    matched: int
    """How many letters the request named or its filter matched (only `limit` are replayed)."""

    def count(self, outcome: str) -> int:
        """Return how many letters had this outcome."""
        return sum(1 for item in self.outcomes if item.outcome == outcome)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class DeadLetterService:
    """Dead letters of every tenant: the DeadLetterSink of ingestion, and their management."""

    def __init__(
        self,
        store: DeadLetterStore,
        clock: Clock,
        *,
        max_limit: int = 1000,
        retention: timedelta | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_limit = max_limit
        self.retention = retention
        """Replayed and discarded letters are purged this long after (None: kept)."""
        self._replayers: dict[str, Replayer] = {}
        self._in_flight: set[str] = set()
        """Letters being replayed by this process (a second request skips them)."""

    # -- the sink ---------------------------------------------------------------------------

    def record(self, raw: RawInput, rejected: Rejected) -> str:
        """Store one dead letter durably; return its id."""
        return self.record_many([(raw, rejected)])[0]

    def record_many(self, items: list[tuple[RawInput, Rejected]]) -> list[str]:
        """Store many in one transaction; return their ids in order."""
        letters = [self._letter(raw, rejected) for raw, rejected in items]
        self.store.add_many(letters)
        # Debug only: at thousands of readings a second a bad batch must not flood the log;
        # the letters themselves are the record.
        for letter in letters:
            log.debug(
                "dead letter",
                id=letter.id,
                tenant=letter.tenant,
                source=letter.source,
                device=letter.device_id,
                reason=letter.reason,
                stage=letter.stage,
                path=letter.path,
            )
        return [letter.id for letter in letters]

    def _letter(self, raw: RawInput, rejected: Rejected) -> DeadLetter:
        meta = dict(raw.meta)
        try:
            received_at = isoformat(parse_moment(raw.received_at, UTC))
        except (ValueError, OverflowError, TypeError):
            # Kept as given beside the time it was recorded, so the list still sorts.
            meta["receivedAtAsGiven"] = str(raw.received_at)
            received_at = isoformat(self.clock.now())
        return DeadLetter(
            id=str(uuid.uuid4()),
            tenant=raw.tenant,
            received_at=received_at,
            source=raw.source,
            payload=bytes(raw.payload),
            reason=rejected.reason,
            stage=rejected.stage,
            message=_clip(rejected.message),
            device_id=raw.device_id,
            topic=raw.topic,
            content_type=raw.content_type,
            path=rejected.path,
            meta=meta,
        )

    # -- reading ----------------------------------------------------------------------------

    def check_filter(self, where: DeadLetterFilter) -> DeadLetterFilter:
        """Return the filter with its times in the stored format; BadRequestData if invalid."""
        if where.status is not None and where.status not in STATUSES:
            raise BadRequestData(
                f"status must be one of {', '.join(STATUSES)}, not {where.status!r}"
            )
        times: dict[str, str | None] = {}
        for name in ("since", "until"):
            value = getattr(where, name)
            if value is None:
                times[name] = None
                continue
            try:
                moment = parse_moment(value, UTC)
            except (ValueError, OverflowError) as error:
                raise BadRequestData(
                    f"{name} must be an ISO 8601 time such as 2026-11-28T09:00:00+09:00, "
                    f"not {value!r}"
                ) from error
            times[name] = isoformat(moment)
        return DeadLetterFilter(
            device_id=where.device_id,
            source=where.source,
            reason=where.reason,
            status=where.status,
            since=times["since"],
            until=times["until"],
        )

    def _limit(self, limit: int, offset: int) -> None:
        if limit < 1 or offset < 0:
            raise BadRequestData("limit must be 1 or more and offset 0 or more")
        if limit > self.max_limit:
            raise TooManyResults(f"limit must be at most {self.max_limit}")

    def page(
        self,
        caller: Caller,
        where: DeadLetterFilter,
        *,
        limit: int = 20,
        offset: int = 0,
        count: bool = False,
    ) -> DeadLetterPage:
        """Return one page of the caller's tenant's dead letters, newest first."""
        require(caller, Permission.READ_DEAD_LETTERS)
        self._limit(limit, offset)
        where = self.check_filter(where)
        letters = self.store.page(caller.tenant, where, limit, offset)
        total = self.store.count(caller.tenant, where) if count else None
        return DeadLetterPage(letters, total)

    def counts_by_reason(self, caller: Caller, where: DeadLetterFilter) -> dict[str, int]:
        """Return how many of the tenant's dead letters matching a filter there are per reason."""
        require(caller, Permission.READ_DEAD_LETTERS)
        return self.store.counts_by_reason(caller.tenant, self.check_filter(where))

    def get(self, caller: Caller, letter_id: str) -> DeadLetter:
        """Return one dead letter of the caller's tenant; ResourceNotFound otherwise."""
        require(caller, Permission.READ_DEAD_LETTERS)
        letter = self.store.get(caller.tenant, letter_id)
        if letter is None:
            raise ResourceNotFound(f"no dead letter {letter_id} in this tenant")
        return letter

    # -- discarding and replaying -----------------------------------------------------------

    def discard(self, caller: Caller, letter_ids: Sequence[str]) -> int:
        """Discard `new` dead letters of the caller's tenant; return how many were.

        A single id that is not there (or not new) is an error, so a typo is noticed.
        """
        require(caller, Permission.MANAGE_DEAD_LETTERS)
        changed = self.store.discard(caller.tenant, list(letter_ids), isoformat(self.clock.now()))
        if len(letter_ids) == 1 and not changed:
            letter = self.get(caller, letter_ids[0])
            raise BadRequestData(f"dead letter {letter.id} is {letter.status}, not new")
        return changed

    def register_replayer(self, source_prefix: str, replayer: Replayer) -> None:
        """Replay through `replayer` the letters whose source starts with `source_prefix`."""
        self._replayers[source_prefix] = replayer

    def replayer_for(self, source: str) -> Replayer | None:
        """Return the replayer of a source (the longest registered prefix wins), or None."""
        matching = [prefix for prefix in self._replayers if source.startswith(prefix)]
        return self._replayers[max(matching, key=len)] if matching else None

    async def replay(
        self,
        caller: Caller,
        *,
        ids: Sequence[str] | None = None,
        where: DeadLetterFilter | None = None,
        limit: int | None = None,
    ) -> ReplayReport:
        """Replay dead letters named by id, or the oldest `limit` `new` ones a filter matches
        (default: up to 100, and never more than the maximum page size).

        Every letter's source needs a replayer; if one has none, nothing is replayed and the
        error names the sources.
        """
        require(caller, Permission.MANAGE_DEAD_LETTERS)
        if (ids is None) == (where is None):
            raise BadRequestData("replay takes either ids or a filter, not both or neither")
        limit = min(REPLAY_BATCH, self.max_limit) if limit is None else limit
        self._limit(limit, 0)
        outcomes: list[ReplayOutcome] = []
        if ids is not None:
            letters, outcomes, matched = await asyncio.to_thread(
                self._named, caller.tenant, ids, limit
            )
        else:
            assert where is not None
            letters, matched = await asyncio.to_thread(self._matching, caller.tenant, where, limit)
        missing = sorted(
            {letter.source for letter in letters if self.replayer_for(letter.source) is None}
        )
        if missing:
            raise OperationNotSupported(
                f"no replayer for source {', '.join(missing)}: the part of ingestion that "
                "received it (the IoT agent, the adapter) registers one when it runs in this "
                "process; nothing was replayed"
            )
        for letter in letters:
            outcomes.append(await self._replay_one(letter))
        return ReplayReport(outcomes, matched)

    def _named(
        self, tenant: str, ids: Sequence[str], limit: int
    ) -> tuple[list[DeadLetter], list[ReplayOutcome], int]:
        if len(ids) > limit:
            raise TooManyResults(f"at most {limit} dead letters can be replayed at once")
        letters: list[DeadLetter] = []
        outcomes: list[ReplayOutcome] = []
        for letter_id in dict.fromkeys(ids):
            letter = self.store.get(tenant, letter_id)
            if letter is None:
                outcomes.append(ReplayOutcome(letter_id, "not-found", "no such dead letter"))
            elif letter.status != NEW:
                outcomes.append(ReplayOutcome(letter_id, "skipped", f"already {letter.status}"))
            else:
                letters.append(letter)
        return letters, outcomes, len(ids)

    def _matching(
        self, tenant: str, where: DeadLetterFilter, limit: int
    ) -> tuple[list[DeadLetter], int]:
        where = self.check_filter(where)
        if where.status not in (None, NEW):
            raise BadRequestData(f"only new dead letters can be replayed, not {where.status}")
        where = DeadLetterFilter(
            device_id=where.device_id,
            source=where.source,
            reason=where.reason,
            status=NEW,
            since=where.since,
            until=where.until,
        )
        matched = self.store.count(tenant, where)
        # The newest page, replayed oldest first: readings keep their order.
        letters = self.store.page(tenant, where, limit, max(0, matched - limit))
        return list(reversed(letters)), matched

    async def _replay_one(self, letter: DeadLetter) -> ReplayOutcome:
        if letter.id in self._in_flight:
            return ReplayOutcome(letter.id, "skipped", "being replayed by another request")
        self._in_flight.add(letter.id)
        try:
            return await self._replay_now(letter)
        finally:
            self._in_flight.discard(letter.id)

    async def _replay_now(self, letter: DeadLetter) -> ReplayOutcome:
        replayer = self.replayer_for(letter.source)
        assert replayer is not None
        raw = RawInput(
            tenant=letter.tenant,
            source=letter.source,
            payload=letter.payload,
            received_at=letter.received_at,
            device_id=letter.device_id,
            topic=letter.topic,
            content_type=letter.content_type,
            meta=dict(letter.meta),
        )
        at = isoformat(self.clock.now())
        try:
            note = await replayer(raw)
        except Rejected as refused:
            result = _clip(f"failed: {refused.reason} at {refused.stage}: {refused.message}")
            record = ReplayRecord(
                letter.id,
                at,
                result,
                replayed=False,
                reason=refused.reason,
                stage=refused.stage,
                path=refused.path,
                message=_clip(refused.message),
            )
            outcome = ReplayOutcome(
                letter.id, "failed", refused.message, refused.reason, refused.path
            )
        except Exception as error:  # a broken replayer must not stop the others
            log.exception("replay failed", id=letter.id, source=letter.source)
            result = _clip(f"error: {type(error).__name__}: {error}")
            record = ReplayRecord(letter.id, at, result, replayed=False)
            outcome = ReplayOutcome(letter.id, "error", result)
        else:
            record = ReplayRecord(letter.id, at, _clip(f"ok: {note}" if note else "ok"), True)
            outcome = ReplayOutcome(letter.id, REPLAYED, note or "")
        changed = await asyncio.to_thread(self.store.record_replays, letter.tenant, [record])
        if not changed:  # discarded meanwhile: the replay happened, the status stays
            return ReplayOutcome(letter.id, "skipped", f"{DISCARDED} during the replay")
        return outcome

    # -- retention --------------------------------------------------------------------------

    def purge(self) -> int:
        """Delete replayed and discarded letters older than the retention; return how many."""
        if self.retention is None:
            return 0
        return self.store.purge(isoformat(self.clock.now() - self.retention))
