"""The NATS JetStream bus: one durable stream, durable pull consumers, explicit acknowledgements.

The stream (name and subjects from the settings) is created or updated when the bus starts and
keeps messages on disk (limits retention: up to `max_age`), so whatever `publish` returned for
survives a restart of the platform or of the NATS server. A consumer group is a durable pull
consumer whose durable name is the group: members of one group, in one process or several,
pull from the same consumer and so share its messages; a member that dies without acknowledging
loses nothing, the server delivers again after `ack_wait`.

Every message carries a `Nats-Msg-Id` (the caller's msg_id, or one generated here), so that a
publish retried after a lost acknowledgement (a reconnect) is stored once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from types import MappingProxyType
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from smartcity.bus.base import Outgoing, Received
from smartcity.bus.subjects import check_filter, check_subject

log = structlog.get_logger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
_MIN_FETCH_WAIT = 0.01
"""A pull request must expire in the future: shorter waits are rounded up to this."""
_PULL_MARGIN = 0.05
"""Seconds past a pull request's expiry for its last deliveries to come in."""
_ANSWER_WAIT = 2.0
"""Seconds to wait at most for the answer to a request for what is there now (a round trip;
longer only when the connection is being re-made)."""
_STATUS = "Status"
"""The header of the server's status messages on a pull inbox (no messages, expired...)."""


class BusUnavailable(ConnectionError):
    """The bus did not confirm a publish in time (the server is unreachable or refused it)."""


def redacted(url: str) -> str:
    """Return a NATS URL without credentials, for logs."""
    scheme, _, rest = url.rpartition("://")
    host = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{host}" if scheme else host


class _NatsReceived:
    """One JetStream delivery; settling it twice is harmless."""

    __slots__ = ("_consumer", "_msg", "_settled")

    def __init__(self, msg: Msg, consumer: NatsConsumer) -> None:
        self._msg = msg
        self._consumer = consumer
        self._settled = False

    @property
    def subject(self) -> str:
        return self._msg.subject

    @property
    def data(self) -> bytes:
        return self._msg.data

    @property
    def headers(self) -> Mapping[str, str]:
        headers = self._msg.headers or {}
        return MappingProxyType({k: v for k, v in headers.items() if k != MSG_ID_HEADER})

    @property
    def msg_id(self) -> str | None:
        return (self._msg.headers or {}).get(MSG_ID_HEADER)

    @property
    def delivery_count(self) -> int:
        return int(self._msg.metadata.num_delivered)

    def _settle(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        self._consumer._held.discard(self)
        return True

    async def ack(self) -> None:
        """Done with it: never deliver it again."""
        if self._settle():
            await self._msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        """Deliver it again after `delay` seconds (at once without one)."""
        if self._settle():
            await self._msg.nak(delay=delay if delay and delay > 0 else None)

    async def term(self) -> None:
        """Give up on it: never deliver it again."""
        if self._settle():
            await self._msg.term()


class NatsConsumer:
    """One member of a durable pull consumer, pulling with the JetStream pull protocol itself.

    The client library's `fetch` waits for each message of a batch in a task of its own, which
    costs some 40 µs of CPU a message; here one subscription on private inboxes takes the
    deliveries in a callback (some 17 µs a message, acknowledgement included). A `fetch` asks
    (`$JS.API.CONSUMER.MSG.NEXT`) for what is there now (`no_wait`: the server sends it, then
    says "no messages" if it was less than the batch); when nothing was, it waits up to `wait`
    for one message, then asks for what came with it. Each request answers on an inbox of its
    own, so the end of one is never taken for another's. A `fetch` that returns nothing had
    asked while nothing was there: everything stored before it began was delivered (the rule
    partitions rely on it), and a member keeps nothing it did not hand out.
    """

    def __init__(self, nc: Client, stream: str, group: str) -> None:
        self._nc = nc
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{group}"
        self._inbox = nc.new_inbox()
        self._subscription: Subscription | None = None
        self._arrived: deque[Msg] = deque()
        self._wake = asyncio.Event()
        self._requests = 0
        self._ended: set[str] = set()
        """The inboxes of requests the server ended (no messages, expired, a limit)."""
        self._lingering_until = 0.0
        """When the last waiting request expires (the server ends it then)."""
        self._held: set[_NatsReceived] = set()
        self._closed = False

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(self._inbox + ".*", cb=self._delivered)

    async def _delivered(self, msg: Msg) -> None:
        if not msg.data and msg.headers and msg.headers.get(_STATUS):
            self._ended.add(msg.subject)  # 404 no messages, 408 expired, 409 a limit
        else:
            self._arrived.append(msg)
        self._wake.set()

    async def _ask(self, batch: int, expires: float | None) -> str:
        """Send a pull request (waiting up to `expires`, else only for what is there now)."""
        self._requests += 1
        reply = f"{self._inbox}.{self._requests}"
        request: dict[str, Any] = {"batch": batch}
        if expires is None:
            request["no_wait"] = True
        else:
            request["expires"] = int(expires * 1e9)
            self._lingering_until = asyncio.get_running_loop().time() + expires
        await self._nc.publish(self._api, orjson.dumps(request), reply=reply)
        return reply

    async def _until_answered(self, reply: str, count: int, deadline: float) -> bool:
        """Wait until `count` messages are in, or request `reply` ended; False at deadline."""
        loop = asyncio.get_running_loop()
        while len(self._arrived) < count and reply not in self._ended:
            remaining = deadline - loop.time()
            if remaining <= 0:
                self._ended.clear()
                return False
            self._wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
        self._ended.clear()  # this one, and the late ends of requests no one waits for now
        return True

    async def fetch(self, max_messages: int, wait: float) -> list[Received]:
        """Wait up to `wait` seconds for messages; return what arrived (maybe nothing)."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if self._closed:
            raise RuntimeError("fetch from a closed consumer")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        if not self._arrived:
            answer_by = loop.time() + _ANSWER_WAIT
            reply = await self._ask(max_messages, None)
            await self._until_answered(reply, max_messages, answer_by)
        if not self._arrived and loop.time() < deadline:
            reply = await self._ask(1, max(deadline - loop.time(), _MIN_FETCH_WAIT))
            await self._until_answered(reply, 1, deadline)
            if self._arrived and max_messages > 1:  # one came: and what came with it
                answer_by = loop.time() + _ANSWER_WAIT
                reply = await self._ask(max_messages - 1, None)
                await self._until_answered(reply, max_messages, answer_by)
        taken = [self._arrived.popleft() for _ in range(min(max_messages, len(self._arrived)))]
        received = [_NatsReceived(msg, self) for msg in taken]
        self._held.update(received)
        return list(received)

    async def close(self) -> None:
        """Leave the group: give back what this member holds, so others get it at once."""
        if self._closed:
            return
        self._closed = True
        # Let a waiting request end first (within the last fetch's wait): what it brought after
        # the inbox was gone would wait out `ack_wait` before anyone got it.
        linger = self._lingering_until + _PULL_MARGIN - asyncio.get_running_loop().time()
        if linger > 0:
            await asyncio.sleep(min(linger, 5.0))
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except nats.errors.Error as error:
                log.debug("pull inbox not removed", error=str(error))
        held = list(self._held) + [_NatsReceived(msg, self) for msg in self._arrived]
        self._arrived.clear()
        for received in held:
            try:
                await received.nak()
            except nats.errors.Error:
                break  # disconnected: the server delivers them again after ack_wait anyway


class NatsBus:
    """The EventBus on NATS JetStream (see the module)."""

    name = "nats"

    def __init__(
        self,
        url: str,
        stream: str,
        subjects: Sequence[str],
        *,
        duplicate_window: float = 120.0,
        max_age: float = 7 * 24 * 3600.0,
        publish_timeout: float = 10.0,
        confirm_timeout: float = 2.0,
        connect_timeout: float = 3.0,
        max_ack_pending: int = 20_000,
    ) -> None:
        for pattern in subjects:
            check_filter(pattern)
        self.url = url
        self.stream = stream
        self.subjects = list(subjects)
        self.duplicate_window = duplicate_window
        self.max_age = max_age
        self.publish_timeout = publish_timeout
        self.confirm_timeout = confirm_timeout
        """How long one attempt waits for confirmations before sending the rest again."""
        self.connect_timeout = connect_timeout
        self.max_ack_pending = max_ack_pending
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    # -- connection -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (reconnecting for ever after) and create or update the stream."""
        if self._nc is not None and not self._nc.is_closed:
            return
        where = redacted(self.url)

        async def disconnected() -> None:
            if self._nc is not None:  # not our own close()
                log.warning("NATS disconnected; reconnecting", server=where)

        async def reconnected() -> None:
            log.info("NATS reconnected", server=where)

        async def failed(error: Exception) -> None:
            log.warning("NATS connection error", server=where, error=str(error))

        self._nc = await nats.connect(
            servers=[url.strip() for url in self.url.split(",")],
            name="smartcity",
            connect_timeout=self.connect_timeout,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=failed,
        )
        self._js = self._nc.jetstream(timeout=self.publish_timeout)
        await self._ensure_stream()
        log.info("NATS JetStream bus started", server=where, stream=self.stream)

    async def _ensure_stream(self) -> None:
        js = self._jetstream()
        config = StreamConfig(
            name=self.stream,
            subjects=self.subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age,
            duplicate_window=self.duplicate_window,
        )
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            return
        current = info.config
        if (
            sorted(current.subjects or []) != sorted(self.subjects)
            or current.max_age != self.max_age
            or current.duplicate_window != self.duplicate_window
        ):
            await js.update_stream(config)

    async def close(self) -> None:
        """Disconnect after flushing what is buffered; durable consumers stay on the server."""
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()

    async def delete_stream(self) -> None:
        """Delete the stream and everything in it (tests and operators' clean-ups)."""
        await self._jetstream().delete_stream(self.stream)

    def _client(self) -> Client:
        if self._nc is None:
            raise RuntimeError("the NATS bus is not started (or closed)")
        return self._nc

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the NATS bus is not started (or closed)")
        return self._js

    # -- publishing -------------------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish one message; return once the stream has stored it."""
        await self.publish_many([Outgoing(subject, data, msg_id, headers or {})])

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish messages pipelined (all sent, then all confirmations awaited), in order.

        What is not confirmed (timeout, reconnect) is sent again with the same Nats-Msg-Id,
        so that the stream keeps one copy, until `publish_timeout` has passed.
        """
        for message in messages:
            check_subject(message.subject)
        outgoing = [
            (message, _headers_of(message, message.msg_id or uuid.uuid4().hex))
            for message in messages
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        pause = 0.05
        while outgoing:
            attempt_seconds = min(self.confirm_timeout, deadline - loop.time())
            outgoing = await self._send(outgoing, attempt_seconds)
            if not outgoing:
                return
            if loop.time() + pause >= deadline:
                raise BusUnavailable(
                    f"NATS did not confirm {len(outgoing)} message(s) within "
                    f"{self.publish_timeout:g} s (stream {self.stream})"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _send(
        self, outgoing: list[tuple[Outgoing, dict[str, str]]], seconds: float
    ) -> list[tuple[Outgoing, dict[str, str]]]:
        """Send each message once; return those the stream did not confirm."""
        js = self._jetstream()
        futures: list[asyncio.Future[PubAck] | None] = []
        for message, headers in outgoing:
            try:
                futures.append(
                    await js.publish_async(message.subject, message.data, headers=dict(headers))
                )
            except nats.errors.MaxPayloadError as error:
                _cancel(futures)
                raise ValueError(f"message on {message.subject!r} is too large: {error}") from error
            except nats.errors.Error as error:
                log.debug("publish not sent", subject=message.subject, error=str(error))
                futures.append(None)
        waiting = [future for future in futures if future is not None]
        if waiting:
            await asyncio.wait(waiting, timeout=max(seconds, 0.0))
        unconfirmed: list[tuple[Outgoing, dict[str, str]]] = []
        for item, future in zip(outgoing, futures, strict=True):
            if future is not None and future.done() and not future.cancelled():
                refusal = future.exception()
                if refusal is None:
                    continue
                if isinstance(refusal, nats.js.errors.NoStreamResponseError):
                    _cancel(futures)
                    raise ValueError(
                        f"no stream holds subject {item[0].subject!r} "
                        f"(stream {self.stream} holds {self.subjects})"
                    ) from refusal
                log.debug("publish refused", subject=item[0].subject, error=str(refusal))
            unconfirmed.append(item)
        _cancel(futures)
        return unconfirmed

    # -- consuming --------------------------------------------------------------------------

    async def consumer(
        self,
        subjects: str,
        group: str,
        *,
        ack_wait: float = 30.0,
        max_deliver: int = 5,
    ) -> NatsConsumer:
        """Join the durable pull consumer `group` (created, or its settings updated)."""
        check_filter(subjects)
        if ack_wait <= 0 or max_deliver < 1:
            raise ValueError("ack_wait must be positive and max_deliver at least 1")
        js = self._jetstream()
        try:
            info = await js.consumer_info(self.stream, group)
        except nats.js.errors.NotFoundError:
            info = None
        if info is not None and info.config.filter_subject != subjects:
            raise ValueError(
                f"consumer group {group!r} consumes {info.config.filter_subject!r}, "
                f"not {subjects!r}"
            )
        if info is None or (info.config.ack_wait, info.config.max_deliver) != (
            ack_wait,
            max_deliver,
        ):
            await js.add_consumer(
                self.stream,
                ConsumerConfig(
                    name=group,
                    durable_name=group,
                    filter_subject=subjects,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=ack_wait,
                    max_deliver=max_deliver,
                    max_ack_pending=self.max_ack_pending,
                ),
            )
        consumer = NatsConsumer(self._client(), self.stream, group)
        await consumer.start()
        return consumer


def _headers_of(message: Outgoing, msg_id: str) -> dict[str, str]:
    headers: dict[str, Any] = dict(message.headers)
    headers[MSG_ID_HEADER] = msg_id
    return headers


def _cancel(futures: list[asyncio.Future[PubAck] | None]) -> None:
    """Stop waiting for confirmations (releasing the client's slots for them)."""
    for future in futures:
        if future is not None and not future.done():
            future.cancel()
