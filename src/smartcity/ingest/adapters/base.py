"""The open-data adapter contract: what one poller of a public API fetches and what it makes.

An adapter knows one API: which requests to send (its targets: districts, stations, stops, road
links), how to read the answer's envelope, and how to map each record to an entity update of a
Smart Data Models type. It does not publish, standardize or keep dead letters itself: the runner
does that for every adapter the same way (`runner.py`), so an adapter stays a small mapping.

A poll never raises for a bad answer: every failed request becomes a `PollFailure` in the result
(the runner backs off), and every record or body it cannot read also becomes a dead letter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from smartcity.ingest.ports import RawInput, Rejected

if TYPE_CHECKING:
    from smartcity.ingest.adapters.http import Fetcher

T = TypeVar("T")


class PollFailure(Exception):
    """One request of a poll failed; the adapter backs off before its next poll."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        """timeout, transport, http, too-large, api (an error envelope) or malformed."""
        self.message = message
        """What happened, with the URL's secrets redacted."""


class ApiError(PollFailure):
    """The API answered with an error envelope (bad key, quota exceeded, server error...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__("api", f"{code}: {message}")
        self.code = code


class Malformed(PollFailure):
    """The answer, or one record of it, is not in the API's documented shape."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__("malformed", message)
        self.path = path


@dataclass(frozen=True, slots=True)
class EntityUpdate:
    """New attributes of one entity, mapped from one record of an API's answer."""

    entity_id: str
    entity_type: str
    attributes: dict[str, Any]
    """Normalized NGSI-LD attributes (units as UN/CEFACT codes, UTC times, [lon, lat])."""
    context: list[str]
    """@context URLs the attribute names are terms of."""
    record: dict[str, Any]
    """The record it was mapped from, kept for a dead letter if standardization refuses it."""


@dataclass
class PollResult:
    """What one poll made: entity updates, dead letters to keep, and the requests that failed."""

    updates: list[EntityUpdate] = field(default_factory=list)
    rejected: list[tuple[RawInput, Rejected]] = field(default_factory=list)
    failures: list[PollFailure] = field(default_factory=list)
    requests: int = 0
    """How many HTTP requests the poll sent."""


class Adapter(Protocol):
    """A poller of one public API."""

    name: str
    """Short name used in settings, logs, the CLI and the readings' source ('adapter:<name>')."""
    interval: float
    """Seconds between two polls when all is well."""

    def describe(self) -> str:
        """Say in one line what it polls (targets, never secrets)."""
        ...

    def secrets(self) -> list[str]:
        """Return the secrets that may appear in its URLs, to redact them everywhere."""
        ...

    async def poll(self, fetcher: Fetcher, received_at: str) -> PollResult:
        """Fetch every target once and map the answers; never raise for a bad answer."""
        ...

    def records(self, target: str, body: bytes) -> list[dict[str, Any]]:
        """Read the records of one answer for `target` (for a replay); Malformed otherwise."""
        ...

    def map_record(
        self, target: str, record: dict[str, Any], received_at: str
    ) -> list[EntityUpdate]:
        """Map one record of `target` with the current settings (for a replay); Rejected
        otherwise."""
        ...


def record_bytes(record: dict[str, Any]) -> bytes:
    """Serialize one API record for a dead letter (UTF-8 JSON, Korean text kept readable)."""
    return orjson.dumps(record, default=str)


@dataclass
class PollContext:
    """Helps an adapter fill its PollResult: failures, dead letters, raw inputs.

    Every dead letter keeps, beside the adapter, its `kind` ('body': a whole answer, 'record':
    one record of it) and its `target` (the district, station, stop or link asked), so a replay
    can read it again the way the poll did (`Adapter.records`, `Adapter.map_record`).
    """

    adapter: str
    tenant: str
    received_at: str
    fetcher: Fetcher
    result: PollResult = field(default_factory=PollResult)

    async def fetch(
        self,
        url: str,
        parse: Callable[[bytes], T],
        *,
        params: dict[str, str] | None = None,
        entity_type: str,
        target: str,
    ) -> T | None:
        """GET a URL and parse it; on failure record it (and a dead letter if malformed)."""
        self.result.requests += 1
        try:
            fetched = await self.fetcher.get(url, params=params)
        except PollFailure as failure:
            self.result.failures.append(failure)
            return None
        try:
            return parse(fetched.body)
        except Malformed as failure:
            self.result.failures.append(failure)
            raw = self.raw(fetched.body, fetched.url, fetched.content_type, entity_type)
            raw.meta.update(kind="body", target=target)
            rejected = Rejected("unparsable", failure.message, stage="decode", path=failure.path)
            self.result.rejected.append((raw, rejected))
            return None
        except PollFailure as failure:
            self.result.failures.append(failure)
            return None

    def raw(self, payload: bytes, url: str, content_type: str | None, entity_type: str) -> RawInput:
        """Return the RawInput of what arrived from `url` (already redacted)."""
        return RawInput(
            tenant=self.tenant,
            source=f"adapter:{self.adapter}",
            payload=payload,
            received_at=self.received_at,
            topic=url,
            content_type=content_type,
            meta={"adapter": self.adapter, "entityType": entity_type},
        )

    def map_records(
        self,
        records: Iterable[dict[str, Any]],
        mapper: Callable[[dict[str, Any]], Iterable[EntityUpdate]],
        *,
        url: str,
        entity_type: str,
        target: str,
    ) -> None:
        """Map each record; a record the mapper refuses becomes a dead letter with the reason."""
        for record in records:
            try:
                updates = list(mapper(record))  # all of a record's updates, or none
            except Rejected as rejected:
                raw = self.raw(record_bytes(record), url, "application/json", entity_type)
                raw.meta.update(kind="record", target=target)
                self.result.rejected.append((raw, rejected))
            else:
                self.result.updates.extend(updates)


def refuse(reason: str, message: str, path: str | None = None) -> Rejected:
    """Return the Rejected of a record that cannot be mapped (stage 'map')."""
    return Rejected(reason, message, stage="map", path=path)
