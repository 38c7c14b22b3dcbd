"""Turn logged entity changes into queued notifications: the notifier worker and its catalog.

The notifier reads the change log from its stored position, matches each change against the
subscriptions of the change's tenant, and writes the notifications due into the outbox in the
same transaction that advances its position: a change is notified once, whatever crashes when.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import datetime
from typing import Any

import structlog

from smartcity.auth.policy import AccessControl, Permission
from smartcity.broker.contexts import ActiveContext
from smartcity.broker.matching import CompiledSubscription, SubscriptionIndex, compile_subscription
from smartcity.broker.notifications import entity_data, notification_data
from smartcity.core.clock import Clock
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import SmartCityError
from smartcity.storage.base import ChangeRecord, EntityQuery, EntityStore
from smartcity.storage.subscriptions import (
    NewNotification,
    SubscriptionRecord,
    SubscriptionStore,
)

log = structlog.get_logger(__name__)
ContextResolve = Callable[[Any], ActiveContext]


async def wait_any(events: Iterable[asyncio.Event], seconds: float) -> None:
    """Return when one of the events is set or after `seconds`."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=max(seconds, 0.0), return_when="FIRST_COMPLETED")
    finally:
        for waiter in waiters:
            waiter.cancel()


class SubscriptionCatalog:
    """Every stored subscription, compiled and indexed; reloaded when the stored version moves."""

    def __init__(self, store: SubscriptionStore, resolve: ContextResolve) -> None:
        self.store = store
        self.resolve = resolve
        self.index = SubscriptionIndex()
        self._version: int | None = None
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Reload at the next refresh, whatever the version says."""
        self._version = None

    def refresh(self) -> SubscriptionIndex:
        """Return the current index, reloading it if any subscription changed (any process)."""
        with self._lock:
            version = self.store.version()
            if version != self._version:
                compiled = (self._compile(record) for record in self.store.load_all())
                self.index = SubscriptionIndex(c for c in compiled if c is not None)
                self._version = version
            return self.index

    def _compile(self, record: SubscriptionRecord) -> CompiledSubscription | None:
        try:
            ctx = self.resolve(record.context)
        except SmartCityError as error:
            # Better notify with core-context names than not at all; the cause is logged.
            log.warning(
                "subscription @context unavailable", subscription=record.id, error=str(error)
            )
            ctx = self.resolve(None)
        try:
            jsonld_context = record.doc.get("jsonldContext")
            render_ctx = self.resolve(jsonld_context) if jsonld_context else None
            return compile_subscription(record, ctx, render_ctx)
        except (SmartCityError, ValueError, TypeError, KeyError) as error:
            log.error("subscription cannot be compiled", subscription=record.id, error=str(error))
            return None


class OwnerCheck:
    """Whether a subscription's owner may still manage subscriptions in its tenant.

    A subscription is a standing read: once its owner is disabled, removed from the tenant or
    left without a role that manages subscriptions, it notifies nothing more (until an admin
    re-enables the owner). Answers are kept a few seconds: the notifier asks for every match.
    """

    def __init__(self, access: AccessControl, ttl: float = 5.0) -> None:
        self.access = access
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    def allows(self, record: SubscriptionRecord) -> bool:
        """Tell whether this subscription may notify now."""
        key = (record.tenant, record.owner)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        allowed = self.access.principal_may(
            record.tenant, record.owner, Permission.MANAGE_SUBSCRIPTIONS
        )
        if not allowed and (cached is None or cached[1]):
            log.warning(
                "subscription owner may no longer manage subscriptions: not notifying",
                tenant=record.tenant,
                subscription=record.id,
            )
        self._cache[key] = (now, allowed)
        return allowed


class Notifier:
    """Worker: match new changes against subscriptions and queue the notifications due."""

    name = "subscription-notifier"

    def __init__(
        self,
        entities: EntityStore,
        subscriptions: SubscriptionStore,
        catalog: SubscriptionCatalog,
        clock: Clock,
        owners: OwnerCheck,
        *,
        batch: int = 500,
        poll_interval: float = 1.0,
        periodic_interval: float = 0.5,
        max_periodic_entities: int = 1000,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.entities = entities
        self.subscriptions = subscriptions
        self.catalog = catalog
        self.clock = clock
        self.owners = owners
        self.batch = batch
        self.poll_interval = poll_interval
        self.periodic_interval = periodic_interval
        self.max_periodic_entities = max_periodic_entities
        self.on_queued = on_queued
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        entities.add_commit_listener(self._changed)

    def _changed(self) -> None:
        loop = self._loop
        if loop is not None:
            with suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake.set)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def step(self) -> int:
        """Handle one batch of logged changes; return how many changes it read."""
        position = self.subscriptions.position()
        heads = self.entities.change_heads_since(position, self.batch)
        if not heads:
            return 0
        # The subscriptions as they are now, read after the changes: a subscription turned on
        # before a change was committed is in the index (read before the changes, it could miss
        # the change of an update that came between the two reads).
        index = self.catalog.refresh()
        now = self._now()
        queued: list[NewNotification] = []
        # Only the changes some subscription may select are read whole.
        wanted = [h.seq for h in heads if index.candidates_of(h.tenant, h.entity_id, h.types)]
        for change in self.entities.changes_at(wanted) if wanted else ():
            queued.extend(self._notifications(index, change, now))
        if not self.subscriptions.write_notifications(position, heads[-1].seq, queued, now):
            # Another process handled these changes first; its throttling marks win.
            self.catalog.invalidate()
            return len(heads)
        if queued and self.on_queued is not None:
            self.on_queued()
        return len(heads)

    def _notifications(
        self, index: SubscriptionIndex, change: ChangeRecord, now: float
    ) -> Iterable[NewNotification]:
        for subscription in index.matches(change, now):
            record = subscription.record
            if subscription.throttling and now < record.last_notified_at + subscription.throttling:
                continue
            if not self.owners.allows(record):
                continue
            try:
                data = notification_data(subscription, change)
            except Exception:  # one odd entity must not stop every subscription's notifications
                log.exception("cannot render notification", subscription=record.id)
                continue
            record.last_notified_at = now
            yield NewNotification(
                record.tenant, record.id, f"c:{change.seq}", [data], bool(subscription.throttling)
            )

    def periodic(self) -> int:
        """Queue the periodic notifications (timeInterval) that are due; return how many."""
        now = self._now()
        queued: list[NewNotification] = []
        for subscription in self.catalog.refresh():
            if not subscription.time_interval or not subscription.live(now):
                continue
            record = subscription.record
            if not self.owners.allows(record):
                continue
            created = datetime.fromisoformat(record.created_at.replace("Z", "+00:00")).timestamp()
            period = int((now - created) // subscription.time_interval)
            start = created + period * subscription.time_interval
            if period < 1 or record.last_notified_at >= start:
                continue
            entities = self._current(subscription)
            record.last_notified_at = now
            if entities:
                data = [entity_data(subscription, entity) for entity in entities]
                queued.append(
                    NewNotification(
                        record.tenant,
                        record.id,
                        f"t:{period}",
                        data,
                        remember=True,
                        not_before=start,
                    )
                )
        count = self.subscriptions.write_periodic(queued, now)
        if count and self.on_queued is not None:
            self.on_queued()
        return count

    def _current(self, subscription: CompiledSubscription) -> list[StoredEntity]:
        """Return the entities a periodic subscription selects now."""
        found: dict[str, StoredEntity] = {}
        for selector in subscription.selectors:
            page = self.entities.query(
                EntityQuery(
                    tenant=subscription.record.tenant,
                    ids=[selector.entity_id] if selector.entity_id else None,
                    id_pattern=selector.id_pattern.pattern if selector.id_pattern else None,
                    types=selector.types,
                    q=subscription.q,
                    scope_q=subscription.scope_q,
                    geo=subscription.geo,
                    geoproperty=subscription.geo.query.geoproperty if subscription.geo else None,
                    limit=self.max_periodic_entities,
                )
            )
            for entity in page.entities:
                found.setdefault(entity.id, entity)
        return list(found.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Queue notifications as changes commit (and poll for other processes') until stop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        next_periodic = 0.0
        try:
            while not stop.is_set():
                self._wake.clear()
                handled = await asyncio.to_thread(self.step)
                if self._loop.time() >= next_periodic:
                    await asyncio.to_thread(self.periodic)
                    next_periodic = self._loop.time() + self.periodic_interval
                if handled >= self.batch:
                    continue
                timeout = min(self.poll_interval, next_periodic - self._loop.time())
                await wait_any([stop, self._wake], timeout)
        finally:
            self._loop = None
