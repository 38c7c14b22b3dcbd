"""The IoT agent: device messages in, standardized readings out on the bus, the rest dead-lettered.

For each message (MQTT or HTTP): authenticate the device by its key, decode the payload (JSON or
UltraLight), map its fields to attributes, standardize them (units, times, places, Smart Data
Models schema) and build one `Reading` per measure, observed when the payload says or else when
it arrived. Readings of a batch of messages go to the bus in one `publish_many`; whatever is
rejected goes to the dead letters with the raw payload. A message is all or nothing: if one of
its measures is rejected, none is published, so that replaying the dead letter after fixing the
device's mapping stores each measure exactly once.

Answers to commands (`/cmdexe`) settle the device's open command instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from smartcity.bus.base import EventBus, Outgoing
from smartcity.core.clock import Clock, isoformat
from smartcity.ingest.codecs import (
    Measure,
    decode_json_measures,
    decode_json_results,
    decode_json_value,
    decode_ul_measures,
    decode_ul_results,
)
from smartcity.ingest.commands import CommandBook
from smartcity.ingest.device_model import Device, PayloadFormat
from smartcity.ingest.devices import Authentication, DeviceService
from smartcity.ingest.health import Sightings
from smartcity.ingest.mapping import map_measure
from smartcity.ingest.ports import DeadLetterSink, RawInput, Rejected, Standardizer
from smartcity.ingest.readings import Reading, subject_for

ATTRS: Final = "attrs"
CMDEXE: Final = "cmdexe"
REPLAY: Final = "replay"
READING_KEY: Final = b"smartcity-reading-id"
"""Reading ids are keyed BLAKE2b hashes of the message (as UUIDs): the same message yields the
same ids, so the bus drops a reading published twice (e.g. a dead letter replayed twice)."""

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One device message as it arrived, before anything was checked."""

    source: str
    """'mqtt' or 'http'."""
    api_key: str
    device_id: str
    payload: bytes
    received_at: str
    kind: str = ATTRS
    """'attrs' (measures) or 'cmdexe' (an answer to a command)."""
    attribute: str | None = None
    """The field of a single-attribute topic (`/<key>/<id>/attrs/<field>`)."""
    payload_format: PayloadFormat | None = None
    """What the topic prefix (`/json/...`, `/ul/...`) or the HTTP path says; else the device's."""
    topic: str | None = None
    """The topic or path it came on, with the key masked."""

    def raw(self, tenant: str) -> RawInput:
        """The input as a dead letter keeps it (never the key)."""
        return RawInput(
            tenant=tenant,
            source=self.source,
            payload=self.payload,
            received_at=self.received_at,
            device_id=self.device_id,
            topic=self.topic,
            content_type=_content_type(self.payload_format),
            meta={
                "kind": self.kind,
                "attribute": self.attribute,
                "format": None if self.payload_format is None else self.payload_format.value,
            },
        )


@dataclass(slots=True)
class Outcome:
    """What became of one message."""

    inbound: Inbound
    authentication: Authentication | None = None
    readings: list[Reading] = field(default_factory=list)
    rejected: Rejected | None = None
    ignored: list[str] = field(default_factory=list)
    """Fields of the message that no mapping names (dropped, counted)."""

    @property
    def device(self) -> Device | None:
        """The device that sent it, when it authenticated."""
        return None if self.authentication is None else self.authentication.device

    @property
    def tenant(self) -> str:
        """The tenant it belongs to (or would, for a dead letter)."""
        return "" if self.authentication is None else self.authentication.tenant


@dataclass(slots=True)
class AgentStats:
    """Counters since the agent started."""

    received: int = 0
    readings: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejected messages by reason."""
    ignored_fields: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Fields dropped for want of a mapping, by (tenant, device, field)."""


def _content_type(payload_format: PayloadFormat | None) -> str | None:
    if payload_format == PayloadFormat.JSON:
        return "application/json"
    if payload_format == PayloadFormat.ULTRALIGHT:
        return "text/plain"
    return None


def reading_id(
    tenant: str, device_id: str, payload: bytes, observed_at: Any, received_at: str, index: int
) -> str:
    """A reading's id: the same message and measure always give the same id.

    A measure that says when it was observed is the same reading however often the broker
    delivers it (after a restart), so the bus keeps it once; one without a time is told apart
    by when it arrived.
    """
    moment = received_at if observed_at is None else f"observed {observed_at}"
    name = f"{tenant}\x00{device_id}\x00{moment}\x00{index}\x00".encode() + payload
    digest = bytearray(hashlib.blake2b(name, digest_size=16, key=READING_KEY).digest())
    digest[6] = (digest[6] & 0x0F) | 0x80  # UUID version 8 (custom), RFC 9562
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(digest)))


class IotAgent:
    """Turns device messages into readings on the bus, or dead letters."""

    def __init__(
        self,
        devices: DeviceService,
        standardizer: Standardizer,
        dead_letters: DeadLetterSink,
        bus: EventBus,
        sightings: Sightings,
        commands: CommandBook,
        clock: Clock,
    ) -> None:
        self.devices = devices
        self.standardizer = standardizer
        self.dead_letters = dead_letters
        self.bus = bus
        self.sightings = sightings
        self.commands = commands
        self.clock = clock
        self.stats = AgentStats()

    def now(self) -> str:
        """The receive time to stamp on a message arriving now."""
        return isoformat(self.clock.now())

    async def accept(self, batch: Sequence[Inbound]) -> list[Outcome]:
        """Handle a batch of messages; return once its readings are on the bus and its
        rejections are dead letters (only then may the messages be acknowledged)."""
        if not batch:
            return []
        outcomes = await asyncio.to_thread(self._handle_all, batch)
        readings = [reading for outcome in outcomes for reading in outcome.readings]
        if readings:
            await self.bus.publish_many(
                [Outgoing(subject_for(r.tenant), r.to_bytes(), msg_id=r.id) for r in readings]
            )
        letters = [
            (outcome.inbound.raw(outcome.tenant), outcome.rejected)
            for outcome in outcomes
            if outcome.rejected is not None
        ]
        if letters:
            await asyncio.to_thread(self.dead_letters.record_many, letters)
        self._count(outcomes, len(readings))
        return outcomes

    def _count(self, outcomes: list[Outcome], readings: int) -> None:
        self.stats.received += len(outcomes)
        self.stats.readings += readings
        for outcome in outcomes:
            device = outcome.device
            if outcome.rejected is not None:
                self.stats.rejected[outcome.rejected.reason] += 1
            if device is not None and outcome.rejected is None:
                self.sightings.saw(device, outcome.inbound.received_at)
            for name in outcome.ignored:
                key = (outcome.tenant, outcome.inbound.device_id, name)
                if key not in self.stats.ignored_fields:
                    log.info(
                        "field without a mapping ignored",
                        tenant=outcome.tenant,
                        device=outcome.inbound.device_id,
                        field=name,
                    )
                self.stats.ignored_fields[key] += 1

    def _handle_all(self, batch: Sequence[Inbound]) -> list[Outcome]:
        return [self.handle(inbound) for inbound in batch]

    def handle(self, inbound: Inbound) -> Outcome:
        """Authenticate, decode, map and standardize one message (nothing is published)."""
        authentication = self.devices.authenticate(inbound.api_key, inbound.device_id)
        outcome = Outcome(inbound, authentication)
        if authentication.device is None:
            outcome.rejected = authentication.rejected
            return outcome
        try:
            if inbound.kind == CMDEXE:
                self._answer(authentication.device, inbound)
            else:
                outcome.readings, outcome.ignored = self.readings(
                    authentication.device, inbound, inbound.source
                )
        except Rejected as rejected:
            outcome.rejected = rejected
        return outcome

    def readings(
        self, device: Device, inbound: Inbound, source: str
    ) -> tuple[list[Reading], list[str]]:
        """Build the readings of one message of a device (Rejected if any measure fails)."""
        measures = self.decode(device, inbound)
        target = device.spec.entity
        readings, ignored = [], []
        for index, measure in enumerate(measures):
            moment = inbound.received_at if measure.observed_at is None else measure.observed_at
            mapped = map_measure(device, measure, moment)
            attributes = self.standardizer.standardize(
                device.tenant, target.type, mapped.attributes, target.context
            )
            readings.append(
                Reading(
                    id=reading_id(
                        device.tenant,
                        device.id,
                        inbound.payload,
                        measure.observed_at,
                        inbound.received_at,
                        index,
                    ),
                    tenant=device.tenant,
                    entity_id=target.id,
                    entity_type=target.type,
                    attributes=attributes,
                    received_at=inbound.received_at,
                    source=source,
                    device_id=device.id,
                    context=list(target.context),
                )
            )
            ignored.extend(mapped.ignored)
        return readings, ignored

    def decode(self, device: Device, inbound: Inbound) -> list[Measure]:
        """Decode a message's measures as the device (or its topic) says they are encoded."""
        payload_format = inbound.payload_format or device.spec.protocol
        if inbound.attribute is not None:
            if payload_format == PayloadFormat.JSON:
                value = decode_json_value(inbound.payload)
            else:
                value = _ul_value(inbound)
            return [Measure({inbound.attribute: value})]
        if payload_format == PayloadFormat.ULTRALIGHT:
            return decode_ul_measures(inbound.payload)
        return decode_json_measures(inbound.payload, device.spec.timestamp_field)

    def _answer(self, device: Device, inbound: Inbound) -> None:
        payload_format = inbound.payload_format or device.spec.protocol
        if payload_format == PayloadFormat.ULTRALIGHT:
            results = decode_ul_results(inbound.payload)
        else:
            results = decode_json_results(inbound.payload)
        unknown = [r.name for r in results if r.name not in device.spec.commands]
        if unknown:
            raise Rejected(
                "unmapped",
                f"device {device.id} answered command(s) {', '.join(unknown)} that it does not "
                f"accept (it accepts {', '.join(device.spec.commands) or 'none'})",
                stage="map",
            )
        self.commands.answered(device, results)

    # -- replay -------------------------------------------------------------------------------

    async def replay(self, raw: RawInput) -> str | None:
        """Run a dead letter of the MQTT or HTTP southbound through the pipeline again, with
        the device as registered now; publish its readings and name them (Rejected if it
        fails again).

        Replay is an operator's decision: the device's key is not checked again (a dead letter
        never keeps it), only that the device is registered in the dead letter's tenant.
        """
        device_id = raw.device_id or ""
        device = await asyncio.to_thread(self.devices.device_for_replay, raw.tenant, device_id)
        if device is None:
            raise Rejected(
                "unknown-device",
                f"no device {device_id} is registered in this tenant; register it, then replay",
                stage="authenticate",
            )
        meta = raw.meta or {}
        format_name = meta.get("format")
        inbound = Inbound(
            source=raw.source,
            api_key="",
            device_id=device_id,
            payload=raw.payload,
            received_at=raw.received_at,
            kind=str(meta.get("kind") or ATTRS),
            attribute=meta.get("attribute"),
            payload_format=None if format_name is None else PayloadFormat(format_name),
            topic=raw.topic,
        )
        if inbound.kind == CMDEXE:
            await asyncio.to_thread(self._answer, device, inbound)
            return "command answer applied"
        readings, _ = await asyncio.to_thread(self.readings, device, inbound, REPLAY)
        await self.bus.publish_many(
            [Outgoing(subject_for(r.tenant), r.to_bytes(), msg_id=r.id) for r in readings]
        )
        return f"{len(readings)} reading(s): {', '.join(r.id for r in readings)}"


def _ul_value(inbound: Inbound) -> str:
    """The text value of a single-attribute UltraLight message."""
    try:
        text = inbound.payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Rejected(
            "unparsable", "the value is not UTF-8 text", stage="decode", path=inbound.attribute
        ) from None
    if not text:
        raise Rejected(
            "unparsable",
            f"the value of {inbound.attribute} is empty",
            stage="decode",
            path=inbound.attribute,
        )
    return text
