"""What the subscription store keeps (subscriptions, the notification outbox) and its Protocol.

Three tables: `subscriptions` (what each client asked for, with its delivery status),
`notifications` (the outbox: one row per notification due, deleted once delivered, kept with
`failed` set once its retries are spent) and `subscription_state` (the notifier's position in
the change log and a version counter bumped by every subscription change, so each process knows
when to reload its subscriptions). A notification row is written in the same transaction that
advances the notifier's position, so a change is turned into notifications exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class DeliveryStatus:
    """How delivery has gone for one subscription."""

    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None
    last_status: str | None = None
    """'ok' or 'failed': how the last attempt went (None before the first)."""


@dataclass(slots=True)
class SubscriptionRecord:
    """One stored subscription: the client's document, its @context and its delivery status."""

    tenant: str
    id: str
    doc: dict[str, Any]
    """The subscription as accepted (terms as the client wrote them), without status members."""
    context: Any
    """The @context it was created with (URL, list or object); terms in `doc` use it."""
    created_at: str
    modified_at: str
    since_seq: int = 0
    """Changes up to this log sequence number happened before the subscription existed."""
    status: DeliveryStatus = field(default_factory=DeliveryStatus)
    last_notified_at: float = 0.0
    """When (epoch seconds) a notification was last written for it (for throttling)."""
    owner: str = ""
    """The principal that created it ('' for the platform itself): it notifies only while its
    owner may still manage subscriptions in the tenant."""


@dataclass(slots=True)
class NewNotification:
    """A notification due: rendered entities for one subscription, for one cause."""

    tenant: str
    subscription_id: str
    cause: str
    """What it notifies, unique per subscription: 'c:<change seq>' or 't:<period number>'."""
    data: list[dict[str, Any]]
    remember: bool = False
    """Record the time on the subscription (it is throttled or periodic)."""
    not_before: float = 0.0
    """Periodic: skipped if the subscription was notified at or after this time (epoch)."""


@dataclass(slots=True)
class ClaimedNotification:
    """An outbox row this process leased for delivery."""

    nid: int
    tenant: str
    subscription_id: str
    data: list[dict[str, Any]]
    attempts: int
    created: float


@dataclass(slots=True)
class DeliveryOutcome:
    """How one delivery attempt went, to be recorded."""

    nid: int
    tenant: str
    subscription_id: str
    at: str
    """When the attempt ended (NGSI-LD timestamp)."""
    error: str | None = None
    """None when delivered; else why it failed."""
    retry_at: float | None = None
    """For a failure: when to try again (epoch seconds); None gives up (kept as failed)."""
    attempts: int = 1


class SubscriptionStore(Protocol):
    """Subscriptions per tenant, the notification outbox and the notifier's position."""

    def create(self, record: SubscriptionRecord) -> bool:
        """Add a subscription; False if its id is taken in its tenant."""
        ...

    def get(self, tenant: str, subscription_id: str) -> SubscriptionRecord | None:
        """Return one subscription or None."""
        ...

    def page(self, tenant: str, limit: int, offset: int) -> tuple[list[SubscriptionRecord], int]:
        """Return one page of a tenant's subscriptions (by id) and how many there are."""
        ...

    def replace(self, record: SubscriptionRecord) -> bool:
        """Store a changed subscription (document, context, modifiedAt); False if absent."""
        ...

    def delete(self, tenant: str, subscription_id: str) -> bool:
        """Remove a subscription and its undelivered notifications; False if absent."""
        ...

    def load_all(self) -> list[SubscriptionRecord]:
        """Return every subscription of every tenant."""
        ...

    def version(self) -> int:
        """Return a number that changes whenever any subscription is created, changed or gone."""
        ...

    def position(self) -> int:
        """Return the change-log sequence number the notifier has handled up to."""
        ...

    def write_notifications(
        self,
        expected_position: int,
        new_position: int,
        notifications: Sequence[NewNotification],
        now: float,
    ) -> bool:
        """Queue notifications and move the position, atomically; False if it moved meanwhile."""
        ...

    def write_periodic(self, notifications: Sequence[NewNotification], now: float) -> int:
        """Queue periodic notifications (a cause already queued is skipped); return how many."""
        ...

    def claim(
        self, now: float, limit: int, lease: float, done: Sequence[DeliveryOutcome] = ()
    ) -> list[ClaimedNotification]:
        """Record `done` (as `complete`), then lease the oldest due notification of up to
        `limit` subscriptions that have none leased; one transaction."""
        ...

    def complete(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Record delivery attempts: drop delivered rows, reschedule or fail the others."""
        ...

    def next_due(self) -> float | None:
        """Return when the earliest undelivered, unfailed notification falls due."""
        ...

    def queued(self, tenant: str, subscription_id: str) -> tuple[int, int]:
        """Return how many notifications of a subscription wait, and how many failed."""
        ...
