"""Changes of the map's stream rendered once, whatever number of browsers follow it."""

from __future__ import annotations

import threading

import orjson

from smartcity.broker.contexts import ActiveContext
from smartcity.broker.render import render_entity
from smartcity.storage.base import ChangeKind, ChangeRecord


class RenderedChanges:
    """The JSON of recent changes by sequence number, shared by the streams of one app.

    Every follower reads the same log records and renders each the same way (concise form
    under the district's @context): which changes a follower gets depends on who it is, what a
    change says does not. Rendering once keeps the cost of a change flat as followers are added.
    """

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._json: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def __contains__(self, seq: object) -> bool:
        with self._lock:
            return seq in self._json

    def json(self, change: ChangeRecord, ctx: ActiveContext) -> bytes:
        """Return one change as the stream sends it (rendered now if not yet)."""
        with self._lock:
            found = self._json.get(change.seq)
        if found is not None:
            return found
        body = orjson.dumps(_change(change, ctx))
        with self._lock:
            self._json[change.seq] = body
            while len(self._json) > self.capacity:
                del self._json[next(iter(self._json))]  # the oldest first
        return body

    def event(self, changes: list[ChangeRecord], ctx: ActiveContext) -> bytes:
        """Return the `data` of a `changes` event."""
        return b'{"changes":[' + b",".join(self.json(c, ctx) for c in changes) + b"]}"


def _change(change: ChangeRecord, ctx: ActiveContext) -> dict[str, object]:
    if change.kind == ChangeKind.DELETE:
        return {"seq": change.seq, "kind": "delete", "id": change.entity.id}
    entity = render_entity(change.entity, ctx, form="concise")
    entity["modifiedAt"] = change.entity.modified_at
    return {"seq": change.seq, "kind": change.kind.value, "entity": entity}
