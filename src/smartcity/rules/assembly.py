"""Build the rules' parts from the settings: the service, the change relay and the engine worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import structlog

from smartcity.auth.policy import AccessControl
from smartcity.broker.change_events import SUBJECT_PREFIX, ChangeRelay
from smartcity.broker.service import EntityService
from smartcity.bus.base import EventBus
from smartcity.config import Settings
from smartcity.core.clock import Clock
from smartcity.core.workers import Worker
from smartcity.ingest.devices import DeviceService
from smartcity.rules.actions import ActionRunner, ContextResolve, WebhookOptions
from smartcity.rules.checkpoints import SqlRuleState
from smartcity.rules.partition import RuntimeOptions, Services
from smartcity.rules.plug import EnginePlug
from smartcity.rules.runtime import RulesRuntime
from smartcity.rules.service import RuleService
from smartcity.rules.store import SqlRuleStore
from smartcity.storage.coordination import SqlCoordination
from smartcity.storage.history import SqlHistoryStore
from smartcity.storage.sqlbase import SqlEntityStore

log = structlog.get_logger(__name__)


@dataclass
class RuleParts:
    """What the platform holds of the rules."""

    service: RuleService
    coordination: SqlCoordination
    state: SqlRuleState
    relay: ChangeRelay | None = None
    runtime: RulesRuntime | None = None
    positions: dict[str, Callable[[], int]] = field(default_factory=dict)
    """The change-log readers to register with the pruner (what they have not consumed)."""

    @property
    def workers(self) -> list[Worker]:
        """Return the loops to run in this process."""
        return [w for w in (self.relay, self.runtime) if w is not None]


def runtime_options(settings: Settings) -> RuntimeOptions:
    """Return the engine workers' options from the settings."""
    return RuntimeOptions(
        partitions=settings.rules_partitions,
        lease_seconds=settings.rules_lease_seconds,
        checkpoint_events=settings.rules_checkpoint_events,
        checkpoint_seconds=settings.rules_checkpoint_seconds,
        advance_interval=settings.rules_advance_interval,
        ack_wait=settings.rules_ack_wait,
    )


def build_rules(
    settings: Settings,
    *,
    store: SqlEntityStore,
    entities: EntityService,
    resolve: ContextResolve,
    bus: EventBus,
    clock: Clock,
    history: SqlHistoryStore,
    access: AccessControl,
    devices: DeviceService | None,
    plug: EnginePlug,
    subject_prefix: str = SUBJECT_PREFIX,
) -> RuleParts:
    """Build the rule service always; the relay and the engine worker when rules are enabled.

    `subject_prefix` moves the change events to other subjects (benches and tests that share a
    NATS server with a running platform).
    """
    coordination = SqlCoordination(store)
    rules = SqlRuleStore(store)
    state = SqlRuleState(store, coordination)
    service = RuleService(rules, state, history, access, clock, plug, max_limit=settings.max_limit)
    parts = RuleParts(service, coordination, state)
    if not settings.rules_enabled:
        return parts
    relay = ChangeRelay(
        store,
        coordination,
        bus,
        lease_seconds=settings.rules_lease_seconds,
        subject_prefix=subject_prefix,
    )
    parts.relay = relay
    parts.positions = {
        "bus-relay": relay.position,
        "rules": lambda: state.oldest_position(store.last_change_seq()),
    }
    actions = ActionRunner(
        state,
        entities,
        resolve,
        bus,
        clock,
        devices=devices,
        webhooks=WebhookOptions(
            timeout=settings.rules_webhook_timeout,
            attempts=settings.rules_webhook_attempts,
            allow_hosts=(
                tuple(settings.rules_webhook_allow_hosts)
                if settings.rules_webhook_allow_hosts is not None
                else None
            ),
        ),
    )
    services = Services(
        store, rules, state, coordination, bus, plug, actions, clock, relay.database
    )
    options = runtime_options(settings)
    if subject_prefix != SUBJECT_PREFIX:
        options = replace(
            options,
            changes_filter=f"{subject_prefix}.>",
            group_prefix=subject_prefix.replace(".", "-") + "-rules",
        )
    parts.runtime = RulesRuntime(services, options)
    return parts
