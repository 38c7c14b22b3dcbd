"""Entity-change events on the bus: the relay from the change log, and the message format.

The change log is the outbox: every committed change is in it, in commit order. The relay reads
it from its stored position and publishes each change on `entity.changed.<tenant>` (the default
tenant is `_`) with the message id `<database id>:<seq>`, then stores the new position. A relay
that dies between publishing and storing publishes the same changes again after a restart, and
the bus drops them as duplicates (within its duplicate window); a change is never skipped, since
the position moves only after the bus confirmed.

One relay publishes per database at a time: it holds the lease `bus.relay.entity-changed` and
stores its position fenced by the lease's epoch, so another process (PostgreSQL, several
workers) takes over only when the lease expired, from the position the last holder stored.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from contextlib import suppress
from typing import Any, Final

import orjson
import structlog

from smartcity.bus.base import EventBus, Outgoing
from smartcity.core.causality import Context
from smartcity.core.entity import StoredEntity
from smartcity.storage.base import ChangeKind, ChangeRecord, EntityStore
from smartcity.storage.coordination import SqlCoordination

log = structlog.get_logger(__name__)

SUBJECT_PREFIX: Final = "entity.changed"
SUBJECT_FILTER: Final = "entity.changed.>"
RELAY_LEASE: Final = "bus.relay.entity-changed"
RELAY_POSITION: Final = "bus.relay.entity-changed"
RELAY_ACTOR: Final = "system:change-log"
SEQ_HEADER: Final = "Smartcity-Change-Seq"
TENANT_HEADER: Final = "Smartcity-Tenant"
"""Headers that let a consumer skip a change without decoding it (a tenant it has no rule of)."""
FORMAT_VERSION: Final = 1


def tenant_token(tenant: str) -> str:
    """Return the subject token of a tenant (`_` for the default tenant)."""
    return tenant or "_"


def subject_for(tenant: str, prefix: str = SUBJECT_PREFIX) -> str:
    """Return the subject a tenant's entity changes are published on."""
    return f"{prefix}.{tenant_token(tenant)}"


def message_id(database: str, seq: int) -> str:
    """Return the bus message id of one logged change (the same at every publication)."""
    return f"{database}:{seq}"


def change_context(database: str, seq: int) -> Context:
    """Return the causal context of one logged change: the root of what it causes."""
    return Context(f"change:{message_id(database, seq)}", None, RELAY_ACTOR)


def encode_change(change: ChangeRecord) -> bytes:
    """Return the JSON message of a change: its fields, the entity in the stored form."""
    entity = change.entity
    return orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "seq": change.seq,
            "tenant": change.tenant,
            "kind": change.kind.value,
            "at": change.at,
            "entity": {
                "id": entity.id,
                "types": entity.types,
                "scopes": entity.scopes,
                "createdAt": entity.created_at,
                "modifiedAt": entity.modified_at,
                "attrs": entity.attrs,
            },
            "changed": change.changed,
            "previous": change.previous,
            "typesChanged": change.types_changed,
        }
    )


def decode_change(data: bytes) -> ChangeRecord:
    """Return the change a message carries; raise ValueError if it is not one.

    Every rule partition decodes every change, so this is on the engine's path: the parsed
    lists and objects are taken as they are (checked, not copied).
    """
    try:
        doc: Any = orjson.loads(data)
        entity = doc["entity"]
        types, attrs, changed = entity["types"], entity["attrs"], doc["changed"]
        previous = doc.get("previous") or {}
        scopes = entity.get("scopes") or []
        if not (
            types.__class__ is list
            and attrs.__class__ is dict
            and changed.__class__ is list
            and previous.__class__ is dict
            and scopes.__class__ is list
        ):
            raise TypeError("types, scopes and changed are lists; attrs and previous objects")
        return ChangeRecord(
            int(doc["seq"]),
            str(doc["tenant"]),
            _KINDS[doc["kind"]],
            str(doc["at"]),
            StoredEntity(
                str(entity["id"]),
                types,
                attrs,
                scopes,
                str(entity.get("createdAt") or ""),
                str(entity.get("modifiedAt") or ""),
            ),
            changed,
            previous,
            bool(doc.get("typesChanged", False)),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not an entity-change message: {error!r}") from error


_KINDS: Final = {kind.value: kind for kind in ChangeKind}


def holder_name() -> str:
    """Return a name for this process as a lease holder (host, process, random)."""
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


class ChangeRelay:
    """Worker: publish the change log on the bus, once per change, in log order."""

    name = "entity-change-relay"

    def __init__(
        self,
        store: EntityStore,
        coordination: SqlCoordination,
        bus: EventBus,
        *,
        batch: int = 500,
        poll_interval: float = 0.5,
        lease_seconds: float = 15.0,
        holder: str | None = None,
        subject_prefix: str = SUBJECT_PREFIX,
    ) -> None:
        self.store = store
        self.coordination = coordination
        self.bus = bus
        self.batch = batch
        self.poll_interval = poll_interval
        """How often the log is read without a local commit (other processes' changes)."""
        self.lease_seconds = lease_seconds
        self.holder = holder or holder_name()
        self.subject_prefix = subject_prefix
        self.database = coordination.identity()
        self.published = 0
        self._epoch: int | None = None
        self._renewed_at = 0.0
        self._published_up_to: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        store.add_commit_listener(self._committed)

    def _committed(self) -> None:
        loop = self._loop
        if loop is not None:
            with suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake.set)

    def position(self) -> int:
        """Return the sequence number up to which the log was published (for the pruner).

        Before the first publication this is the head of the log's start (0): the pruner keeps
        everything until a relay has run once.
        """
        return self.coordination.position(RELAY_POSITION) or 0

    async def _lease(self) -> int | None:
        """Take or renew the lease when a third of it has passed; return the epoch held."""
        now = time.monotonic()
        if self._epoch is not None and now - self._renewed_at < self.lease_seconds / 3:
            return self._epoch
        epoch = await asyncio.to_thread(
            self.coordination.acquire, RELAY_LEASE, self.holder, self.lease_seconds
        )
        self._renewed_at = now
        if epoch != self._epoch:
            log.info("change relay lease", holder=self.holder, epoch=epoch)
            self._epoch = epoch
            self._published_up_to = None  # another relay may have moved it meanwhile
        return epoch

    async def step(self) -> int:
        """Publish one batch if this process holds the lease; return how many were published."""
        epoch = await self._lease()
        if epoch is None:
            return 0
        position = self._published_up_to
        if position is None:
            position = await asyncio.to_thread(self.position)
        changes = await asyncio.to_thread(self.store.changes_since, position, self.batch)
        if not changes:
            return 0
        await self.bus.publish_many([self.outgoing(change) for change in changes])
        saved = await asyncio.to_thread(
            self.coordination.save_position,
            RELAY_POSITION,
            changes[-1].seq,
            lease=RELAY_LEASE,
            holder=self.holder,
            epoch=epoch,
        )
        if not saved:
            log.warning("change relay lost its lease while publishing", holder=self.holder)
            self._epoch = self._published_up_to = None
            return 0
        self._published_up_to = changes[-1].seq
        self.published += len(changes)
        return len(changes)

    def outgoing(self, change: ChangeRecord) -> Outgoing:
        """Return the message of one logged change."""
        context = change_context(self.database, change.seq)
        return Outgoing(
            subject_for(change.tenant, self.subject_prefix),
            encode_change(change),
            msg_id=message_id(self.database, change.seq),
            headers={
                **context.headers(),
                SEQ_HEADER: str(change.seq),
                TENANT_HEADER: change.tenant,
            },
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until stopped; give the lease back on the way out."""
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    published = await self.step()
                except (ConnectionError, OSError, TimeoutError) as error:
                    log.warning("change relay cannot publish now", error=str(error))
                    published = 0
                if published >= self.batch:
                    continue
                waiters = [asyncio.ensure_future(e.wait()) for e in (stop, self._wake)]
                try:
                    await asyncio.wait(
                        waiters, timeout=self.poll_interval, return_when="FIRST_COMPLETED"
                    )
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            self._loop = None
            if self._epoch is not None:
                await asyncio.to_thread(self.coordination.release, RELAY_LEASE, self.holder)
