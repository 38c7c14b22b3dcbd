"""Replay the adapters' dead letters: read them again with the settings as they are now.

A dead letter of an adapter (source `adapter:<name>`) is one of three kinds, said in its meta:
- `body`: a whole answer that could not be read; it is read again (`Adapter.records`), every
  record mapped; the records that still fail become dead letters of their own;
- `record`: one record that could not be mapped (say, a lot the settings did not know); it is
  mapped again (`Adapter.map_record`), so "fix the settings, then replay" works;
- `update`: an update the standardizer refused; it is standardized again (after the schema
  folders or the standardizer changed).
What comes out is standardized and published on the bus like a poll's readings. A letter that
still fails raises Rejected, and the dead-letter service records the new outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from smartcity.bus.base import EventBus, Outgoing
from smartcity.ingest.adapters.base import Adapter, EntityUpdate, Malformed, PollFailure, PollResult
from smartcity.ingest.adapters.runner import prepare
from smartcity.ingest.ports import DeadLetterSink, RawInput, Rejected, Standardizer
from smartcity.ingest.readings import subject_for


class AdapterReplayer:
    """The dead-letter service's replayer for every source `adapter:<name>`."""

    def __init__(
        self,
        adapters: Mapping[str, Adapter],
        standardizer: Standardizer,
        bus: EventBus,
        dead_letters: DeadLetterSink,
    ) -> None:
        self.adapters = adapters
        self.standardizer = standardizer
        self.bus = bus
        self.dead_letters = dead_letters

    async def __call__(self, raw: RawInput) -> str | None:
        """Replay one dead letter; return what was published, or raise Rejected."""
        name = str(raw.meta.get("adapter") or raw.source.removeprefix("adapter:"))
        adapter = self.adapters.get(name)
        if adapter is None:
            raise Rejected("unmapped", f"there is no adapter {name!r} to replay it", stage="replay")
        kind = raw.meta.get("kind")
        target = str(raw.meta.get("target", ""))
        if kind == "update":
            result = PollResult(updates=[_stored_update(raw)])
        elif kind == "record":
            record = _record(raw.payload)
            result = PollResult(updates=adapter.map_record(target, record, raw.received_at))
        elif kind == "body":
            result = self._body(adapter, raw, target)
        else:
            raise Rejected(
                "unmapped", f"a dead letter of kind {kind!r} cannot be replayed", stage="replay"
            )
        prepared = prepare(name, raw.tenant, result, self.standardizer, raw.received_at)
        if kind != "body" and prepared.rejected:
            raise prepared.rejected[0][1]
        if prepared.rejected:
            await asyncio.to_thread(self.dead_letters.record_many, prepared.rejected)
        if prepared.readings:
            subject = subject_for(raw.tenant)
            await self.bus.publish_many(
                [Outgoing(subject, r.to_bytes(), msg_id=r.id) for r in prepared.readings]
            )
        note = f"{len(prepared.readings)} readings published"
        if prepared.rejected:
            note += f", {len(prepared.rejected)} records kept as new dead letters"
        return note

    def _body(self, adapter: Adapter, raw: RawInput, target: str) -> PollResult:
        try:
            records = adapter.records(target, raw.payload)
        except Malformed as failure:
            raise Rejected(
                "unparsable", failure.message, stage="decode", path=failure.path
            ) from None
        except PollFailure as failure:
            raise Rejected(failure.kind, failure.message, stage="decode") from None
        result = PollResult()
        for record in records:
            try:
                result.updates.extend(adapter.map_record(target, record, raw.received_at))
            except Rejected as rejected:
                letter = RawInput(
                    tenant=raw.tenant,
                    source=raw.source,
                    payload=orjson.dumps(record, default=str),
                    received_at=raw.received_at,
                    topic=raw.topic,
                    content_type="application/json",
                    meta={**raw.meta, "kind": "record"},
                )
                result.rejected.append((letter, rejected))
        return result


def _record(payload: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise Rejected("unparsable", f"the record is not JSON: {error}", stage="decode") from None
    if not isinstance(record, dict):
        raise Rejected("unparsable", "the record is not a JSON object", stage="decode")
    return record


def _stored_update(raw: RawInput) -> EntityUpdate:
    meta = raw.meta
    try:
        return EntityUpdate(
            entity_id=str(meta["entityId"]),
            entity_type=str(meta["entityType"]),
            attributes=dict(meta["attributes"]),
            context=[str(url) for url in meta.get("context") or []],
            record=_record(raw.payload),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise Rejected(
            "unmapped", f"the dead letter lacks the update it refused ({error})", stage="replay"
        ) from None
