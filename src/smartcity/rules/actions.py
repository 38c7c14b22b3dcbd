"""Run a firing's actions once each, recording how each ended; a failing action never stops others.

Every action is idempotent by the firing's id, because a worker that replays changes after a
crash produces the same firings again: the firing is recorded under its `firing_id` before its
actions run and an action with an outcome is not run again; an alert is written under an id
derived from its rule and key; a device command is looked for among the device's commands
(created by `rule:<firing id>:<action>`) before it is sent; a webhook carries an
`Idempotency-Key` header; an incident fact carries a bus message id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson
import structlog

from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.broker.contexts import ActiveContext
from smartcity.broker.service import EntityService
from smartcity.bus.base import EventBus
from smartcity.core.causality import Context
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import ResourceNotFound, SmartCityError
from smartcity.ingest.devices import DeviceService
from smartcity.rules.alerts import alert_fact, alert_id, cleared_alert, raised_alert
from smartcity.rules.checkpoints import PENDING, FiringRecord, Outcome, SqlRuleState
from smartcity.rules.firing import ActionSpec, Firing

log = structlog.get_logger(__name__)

ALERTS_SUBJECT: Final = "rules.alerts"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
COMMAND_KEYS: Final = frozenset({"command", "deviceId", "targets", "params"})
"""A command action's own keys; any other key of its body is an argument of the command."""
ContextResolve = Callable[[Any], ActiveContext]


def alerts_subject(tenant: str) -> str:
    """Return the subject of a tenant's alert facts (`rules.alerts.<tenant>`, `_` default)."""
    return f"{ALERTS_SUBJECT}.{tenant or '_'}"


def rule_caller(firing: Firing) -> Caller:
    """Return the platform's own caller acting for a rule (the audit log names the rule)."""
    return Caller(f"rule:{firing.rule_id}", firing.tenant, frozenset(Role), PrincipalKind.SYSTEM)


def firing_context(firing: Firing, parent: Context | None) -> Context:
    """Return the causal context of a firing (its parent: the change that completed it)."""
    return Context(
        f"firing:{firing.firing_id}", parent.id if parent else None, f"rule:{firing.rule_id}"
    )


class ActionFailed(Exception):
    """An action could not be done; the message says why (recorded on the firing)."""


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """How webhooks are called: bounded, so a dead endpoint never holds the stream for long."""

    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5
    """Seconds before the second attempt, doubled for each further one."""
    allow_hosts: tuple[str, ...] | None = None
    """Hosts webhooks may call (None: any)."""


class ActionRunner:
    """Execute firings' actions with the platform's services, recording every outcome."""

    def __init__(
        self,
        state: SqlRuleState,
        entities: EntityService,
        resolve: ContextResolve,
        bus: EventBus,
        clock: Clock,
        *,
        devices: DeviceService | None = None,
        webhooks: WebhookOptions | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.state = state
        self.entities = entities
        self.resolve = resolve
        self.bus = bus
        self.clock = clock
        self.devices = devices
        self.webhooks = webhooks or WebhookOptions()
        self._http = http

    async def close(self) -> None:
        """Close the HTTP client, if this runner opened it."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.webhooks.timeout, follow_redirects=False)
        return self._http

    async def execute(self, firing: Firing, parent: Context | None = None) -> FiringRecord:
        """Record a firing and run the actions that have not ended yet; return its record."""
        now = isoformat(self.clock.now())
        record = await asyncio.to_thread(self.state.record, firing, now)
        if record.status != PENDING:
            return record  # handled before (a replay after a restart)
        last = len(firing.actions) - 1
        for index, action in enumerate(firing.actions):
            if record.ended(index):
                continue
            outcome = await self._outcome(index, action, firing, parent)
            await asyncio.to_thread(
                self.state.add_outcome, firing.firing_id, outcome, last=index == last
            )
        if not firing.actions:
            await asyncio.to_thread(self.state.finish, firing.firing_id)
        found = await asyncio.to_thread(self.state.firing, firing.tenant, firing.firing_id)
        assert found is not None
        return found

    async def _outcome(
        self, index: int, action: ActionSpec, firing: Firing, parent: Context | None
    ) -> Outcome:
        try:
            detail = await self._run(index, action, firing, parent)
            status = "ok"
        except (ActionFailed, SmartCityError, ValueError, httpx.HTTPError, OSError) as error:
            detail, status = _reason(error), "error"
        except Exception as error:  # an action's bug must not stop the worker
            log.exception("rule action failed", rule=firing.rule_id, action=action.kind)
            detail, status = f"unexpected error: {error!r}", "error"
        if status == "error":
            log.warning(
                "rule action failed",
                rule=firing.rule_id,
                firing=firing.firing_id,
                action=action.kind,
                reason=detail,
            )
        return Outcome(index, action.kind, status, detail, isoformat(self.clock.now()))

    async def _run(
        self, index: int, action: ActionSpec, firing: Firing, parent: Context | None
    ) -> str:
        params = dict(action.params)
        if action.kind == "alert":
            return await asyncio.to_thread(self._alert, firing, params)
        if action.kind == "update":
            return await asyncio.to_thread(self._update, firing, params)
        if action.kind == "command":
            return await asyncio.to_thread(self._command, index, firing, params)
        if action.kind == "webhook":
            return await self._webhook(index, firing, params)
        if action.kind == "incident":
            return await self._incident(index, firing, params, parent)
        raise ActionFailed(f"unknown action kind {action.kind!r}")

    # -- alert ----------------------------------------------------------------------------------

    def _alert(self, firing: Firing, params: dict[str, Any]) -> str:
        caller = rule_caller(firing)
        if firing.kind == "clear":
            try:
                self.entities.retrieve(caller, alert_id(firing))
            except ResourceNotFound:
                return f"no alert {alert_id(firing)} to clear"
            body, mode = cleared_alert(firing), "update"
        else:
            body, mode = raised_alert(firing, params), "replace"
        result, _ = self.entities.batch_upsert(caller, [body], self._context_of, mode=mode)
        if result.errors:
            raise ActionFailed(f"alert not stored: {result.errors[0].error.detail}")
        return f"{'cleared' if firing.kind == 'clear' else 'raised'} {alert_id(firing)}"

    def _context_of(self, raw: Any) -> ActiveContext:
        return self.resolve(raw.get("@context") if isinstance(raw, dict) else None)

    # -- update ---------------------------------------------------------------------------------

    def _update(self, firing: Firing, params: dict[str, Any]) -> str:
        entity_id = params.get("entityId")
        attributes = params.get("attributes")
        if not isinstance(entity_id, str) or not isinstance(attributes, dict) or not attributes:
            raise ActionFailed("an update needs `entityId` and a non-empty `attributes` object")
        ctx = self.resolve(params.get("context"))
        self.entities.merge(rule_caller(firing), entity_id, dict(attributes), ctx)
        return f"updated {entity_id}: {', '.join(sorted(attributes))}"

    # -- command --------------------------------------------------------------------------------

    def _command(self, index: int, firing: Firing, params: dict[str, Any]) -> str:
        """Send a command to `deviceId`, or to the devices feeding each of the `targets`."""
        if self.devices is None:
            raise ActionFailed("device commands are not available in this process")
        name = params.get("command")
        if not isinstance(name, str) or not name:
            raise ActionFailed("a command needs its `command` name")
        arguments = params.get("params")
        if arguments is None:  # the rule may write the command's arguments beside its name
            arguments = {k: v for k, v in params.items() if k not in COMMAND_KEYS} or None
        # The command's creator names the firing and the action: a replay finds it.
        marker = f"rule:{firing.firing_id}:{index}"
        caller = Caller(marker, firing.tenant, frozenset(Role), PrincipalKind.SYSTEM)
        device_id = params.get("deviceId")
        if isinstance(device_id, str):
            return self._send(caller, marker, device_id, name, arguments)
        targets = params.get("targets")
        if not isinstance(targets, list):
            raise ActionFailed("a command needs a `deviceId` or a `target`")
        if not targets:
            return "no target entities: nothing to send"
        sent, missing = [], []
        for entity_id in targets:
            devices = self.devices.feeding(caller, str(entity_id))
            if not devices:
                missing.append(str(entity_id))
            for device in devices:
                sent.append(self._send(caller, marker, device.id, name, arguments))
        if not sent:
            raise ActionFailed(f"no registered device feeds {', '.join(missing)}")
        detail = "; ".join(sent)
        return f"{detail}; no device feeds {', '.join(missing)}" if missing else detail

    def _send(self, caller: Caller, marker: str, device_id: str, name: str, arguments: Any) -> str:
        assert self.devices is not None
        for earlier in self.devices.command_history(caller, device_id, 100):
            if earlier.created_by == marker:
                return f"command {earlier.id} was sent before"
        command = self.devices.send_command(caller, device_id, name, arguments)
        return f"command {command.id} ({name}) queued for {device_id}"

    # -- webhook --------------------------------------------------------------------------------

    async def _webhook(self, index: int, firing: Firing, params: dict[str, Any]) -> str:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ActionFailed("a webhook needs an http(s) `url`")
        host = httpx.URL(url).host
        allowed = self.webhooks.allow_hosts
        if allowed is not None and host not in allowed:
            raise ActionFailed(f"webhook host {host!r} is not in rules_webhook_allow_hosts")
        headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
        headers[IDEMPOTENCY_HEADER] = f"{firing.firing_id}:{index}"
        headers["Content-Type"] = "application/json"
        body = params.get("body")
        payload = orjson.dumps(body if body is not None else alert_fact(firing, params))
        options = self.webhooks
        pause = options.backoff
        last = "no attempt"
        for attempt in range(1, options.attempts + 1):
            try:
                response = await self._client().request(
                    str(params.get("method") or "POST"), url, content=payload, headers=headers
                )
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 300:
                    return f"{response.status_code} from {host} (attempt {attempt})"
                last = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the endpoint refuses this request: trying again will not help
            if attempt < options.attempts:
                await asyncio.sleep(pause)
                pause *= 2
        raise ActionFailed(f"webhook to {host} failed: {last}")

    # -- incident -------------------------------------------------------------------------------

    async def _incident(
        self, index: int, firing: Firing, params: dict[str, Any], parent: Context | None
    ) -> str:
        # The incident takes the category, subcategory and description of the firing's alert
        # unless its own action says otherwise.
        alert = next((spec.params for spec in firing.actions if spec.kind == "alert"), {})
        fact = alert_fact(firing, {**alert, **params})
        context = firing_context(firing, parent)
        await self.bus.publish(
            alerts_subject(firing.tenant),
            orjson.dumps(fact),
            msg_id=f"{firing.firing_id}:{index}",
            headers=context.child(f"{context.id}:{index}", context.actor).headers(),
        )
        return f"published {fact['type']} for {fact['alertId']}"


def _reason(error: BaseException) -> str:
    detail = getattr(error, "detail", None)
    return str(detail) if detail else str(error) or type(error).__name__
