"""Alert facts from the bus into incidents: the rule engine's alerts, merged or opened.

The consumer joins the group `operations-alerts` on `ops_alert_subjects` (off when empty): the
tenant is the subject's last token (`_` is the default tenant) unless the body names one. An
alert the intake refuses (not JSON, a field missing, an unknown severity) becomes a dead letter
with the reason and is not delivered again; it can be fixed and replayed from the dead letters.
Any other failure (the database away) leaves the message to be delivered again. An alert about a
registered vulnerable person's wearable goes to that person's SOS instead (`wearables`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

import orjson
import structlog

from smartcity.auth.principal import Caller
from smartcity.bus.base import EventBus, Received
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import SmartCityError
from smartcity.ingest.deadletters import DeadLetterService
from smartcity.ingest.ports import RawInput, Rejected
from smartcity.operations.alerts import AlertFact, IncidentIntake, Intake

log = structlog.get_logger(__name__)
WearableAlerts = Callable[[Caller, AlertFact], Intake | None]
"""Takes an alert about a registered wearable as its SOS (see operations/vulnerable.py)."""
GROUP: Final = "operations-alerts"
SOURCE: Final = "operations:alerts"


def tenant_of(subject: str, body: object) -> str:
    """Return the tenant of an alert fact: the body's `tenant`, else the subject's last token."""
    if isinstance(body, dict) and isinstance(body.get("tenant"), str):
        return str(body["tenant"])
    last = subject.rsplit(".", 1)[-1]
    return "" if last == "_" else last


class AlertConsumer:
    """Take alert facts from the bus and open or merge incidents."""

    name = "incident-alerts"

    def __init__(
        self,
        bus: EventBus,
        subjects: str,
        intake: IncidentIntake,
        deadletters: DeadLetterService,
        clock: Clock,
        wearables: WearableAlerts | None = None,
    ) -> None:
        self.bus = bus
        self.subjects = subjects
        self.intake = intake
        self.deadletters = deadletters
        self.clock = clock
        self.wearables = wearables

    def take(self, subject: str, data: bytes) -> Intake | None:
        """Open or merge the incident of one alert fact (or note that an alert cleared: `kind`
        "clear"; None when no incident took it); Rejected when it is not acceptable."""
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            message = f"the alert fact is not JSON: {error}"
            raise Rejected("unparsable", message, stage="decode") from None
        caller = Caller.system(tenant_of(subject, body))
        try:
            if isinstance(body, dict) and body.get("kind") == "clear":
                alert_id, at = body.get("alertId"), body.get("observedAt", "")
                if not isinstance(alert_id, str) or not alert_id:
                    raise Rejected("invalid-alert", "a clear needs its alertId", stage="validate")
                return self.intake.clear(caller, alert_id, str(at))
            fact = AlertFact.from_json(body)
            taken = None if self.wearables is None else self.wearables(caller, fact)
            return taken if taken is not None else self.intake.open_or_merge(caller, fact)
        except SmartCityError as error:
            if error.status >= 500:
                raise
            raise Rejected("invalid-alert", error.detail, stage="validate") from None

    async def replay(self, raw: RawInput) -> str:
        """Take a dead letter of this consumer again (a replayer of the dead-letter service)."""
        subject = raw.topic or f"replay.{raw.tenant or '_'}"
        intake = await asyncio.to_thread(self.take, subject, raw.payload)
        return (
            "no incident took the alert"
            if intake is None
            else f"{intake.outcome} {intake.incident.id}"
        )

    async def _handle(self, message: Received) -> None:
        try:
            intake = await asyncio.to_thread(self.take, message.subject, message.data)
        except Rejected as rejected:
            raw = RawInput(
                tenant=tenant_of(message.subject, None),
                source=SOURCE,
                payload=message.data,
                received_at=isoformat(self.clock.now()),
                topic=message.subject,
                content_type="application/json",
            )
            await asyncio.to_thread(self.deadletters.record, raw, rejected)
            await message.term()
            return
        except Exception:
            log.exception("alert intake failed; delivered again", subject=message.subject)
            await message.nak(delay=1.0)
            return
        if intake is not None:
            log.info(
                "alert taken",
                incident=intake.incident.id,
                outcome=intake.outcome,
                subject=message.subject,
            )
        await message.ack()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume alert facts until stopped."""
        consumer = await self.bus.consumer(self.subjects, GROUP, ack_wait=30.0, max_deliver=10)
        try:
            while not stop.is_set():
                for message in await consumer.fetch(50, 0.5):
                    await self._handle(message)
        finally:
            await consumer.close()
