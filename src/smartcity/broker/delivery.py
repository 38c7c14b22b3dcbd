"""Deliver queued notifications over HTTP and MQTT: leased, retried with backoff, recorded.

Each subscription's notifications go out in order, one at a time, but subscriptions do not wait
for each other: a slow or dead endpoint holds only its own queue (its head row is leased or
backed off), while up to `concurrency` other subscriptions are served at once.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiohttp
import aiomqtt
import orjson
import structlog

from smartcity.broker.matching import CompiledSubscription
from smartcity.broker.notifications import notification_id, notification_message
from smartcity.broker.notifier import SubscriptionCatalog, wait_any
from smartcity.core.clock import Clock, isoformat
from smartcity.storage.subscriptions import (
    ClaimedNotification,
    DeliveryOutcome,
    SubscriptionStore,
)

log = structlog.get_logger(__name__)
GATHER_DELAY = 0.005
"""Seconds to let wake-ups pile up before the next claim (fewer, larger transactions)."""
REFRESH_INTERVAL = 0.5
"""Seconds between checks that the subscriptions changed (another process may change them)."""


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How hard and how widely to try."""

    timeout: float = 5.0
    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    concurrency: int = 100
    poll_interval: float = 1.0

    @property
    def lease(self) -> float:
        """How long a claimed notification stays ours before another worker may retry it."""
        return 2 * self.timeout + 10.0

    def backoff(self, attempts: int) -> float:
        """Return the delay before attempt `attempts + 1` (exponential, capped, with jitter)."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1))
        return float(delay * random.uniform(0.8, 1.0))


class MqttPublisher:
    """Publish to MQTT brokers named by endpoint URIs, one connection per broker and user."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._clients: dict[tuple[str, str, int, str | None], aiomqtt.Client] = {}
        self._locks: dict[tuple[str, str, int, str | None], asyncio.Lock] = {}

    async def publish(self, uri: str, payload: bytes, qos: int) -> None:
        """Publish one message to the topic the URI's path names."""
        parts = urlsplit(uri)
        secure = parts.scheme == "mqtts"
        host = parts.hostname or "localhost"
        port = parts.port or (8883 if secure else 1883)
        key = (parts.scheme, host, port, parts.username)
        async with self._locks.setdefault(key, asyncio.Lock()):
            client = self._clients.get(key)
            if client is None:
                client = aiomqtt.Client(
                    host,
                    port,
                    username=unquote(parts.username) if parts.username else None,
                    password=unquote(parts.password) if parts.password else None,
                    timeout=self.timeout,
                    tls_context=ssl.create_default_context() if secure else None,
                )
                await client.__aenter__()
                self._clients[key] = client
        try:
            await client.publish(
                unquote(parts.path.lstrip("/")), payload, qos=qos, timeout=self.timeout
            )
        except aiomqtt.MqttError:
            if self._clients.get(key) is client:
                del self._clients[key]
                with suppress(Exception):
                    await client.__aexit__(None, None, None)
            raise

    async def close(self) -> None:
        """Disconnect from every broker."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with suppress(Exception):
                await client.__aexit__(None, None, None)


class Delivery:
    """Worker: send due notifications, record each attempt, retry failures with backoff."""

    name = "notification-delivery"

    def __init__(
        self,
        subscriptions: SubscriptionStore,
        catalog: SubscriptionCatalog,
        clock: Clock,
        options: DeliveryOptions | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.catalog = catalog
        self.clock = clock
        self.options = options or DeliveryOptions()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._refreshed = -REFRESH_INTERVAL

    def wake(self) -> None:
        """Look for due notifications now (callable from any thread)."""
        loop = self._loop
        if loop is not None:
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

    def _claim(self, limit: int, done: list[DeliveryOutcome]) -> list[ClaimedNotification]:
        """Record finished attempts and lease more, in one transaction."""
        if limit <= 0 and not done:
            return []
        now = time.monotonic()
        if now >= self._refreshed + REFRESH_INTERVAL:
            self.catalog.refresh()
            self._refreshed = now
        return self.subscriptions.claim(
            self.clock.now().timestamp(), limit, self.options.lease, done
        )

    def _subscription(self, item: ClaimedNotification) -> CompiledSubscription | None:
        found = self.catalog.index.get(item.tenant, item.subscription_id)
        return (
            found
            if found is not None
            else self.catalog.refresh().get(item.tenant, item.subscription_id)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop`; what is in flight then is finished or left for a retry."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        options = self.options
        in_flight: set[asyncio.Task[None]] = set()
        outcomes: list[DeliveryOutcome] = []
        mqtt = MqttPublisher(options.timeout)
        # aiohttp rather than httpx here: httpcore's pool does work per queued request per
        # connection, which at hundreds of notifications/s took seconds per request (measured).
        connector = aiohttp.TCPConnector(limit=options.concurrency, limit_per_host=0)
        limit = aiohttp.ClientTimeout(total=options.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=limit) as client:
            try:
                while not stop.is_set():
                    self._wake.clear()
                    done, outcomes[:] = list(outcomes), []
                    free = options.concurrency - len(in_flight)
                    claimed = await asyncio.to_thread(self._claim, free, done)
                    for item in claimed:
                        task = asyncio.create_task(self._deliver(item, client, mqtt, outcomes))
                        in_flight.add(task)
                        task.add_done_callback(self._finished(in_flight))
                    if claimed and len(claimed) == free:
                        continue
                    timeout = options.poll_interval
                    if not claimed and not in_flight and not outcomes:
                        due = await asyncio.to_thread(self.subscriptions.next_due)
                        if due is not None:
                            timeout = min(timeout, due - self.clock.now().timestamp())
                    await wait_any([stop, self._wake], timeout)
                    # Let more completions and new rows gather: one transaction for many.
                    await asyncio.sleep(GATHER_DELAY)
            finally:
                if in_flight:
                    await asyncio.wait(in_flight, timeout=options.timeout + 1)
                    for task in in_flight:
                        task.cancel()
                await asyncio.to_thread(self.subscriptions.complete, outcomes)
                await mqtt.close()
                self._loop = None

    def _finished(self, in_flight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self._wake.set()

        return done

    async def _deliver(
        self,
        item: ClaimedNotification,
        client: aiohttp.ClientSession,
        mqtt: MqttPublisher,
        outcomes: list[DeliveryOutcome],
    ) -> None:
        subscription = self.catalog.index.get(item.tenant, item.subscription_id)
        if subscription is None:  # created since the last refresh, or deleted
            subscription = await asyncio.to_thread(self._subscription, item)
        error: str | None
        if subscription is None:
            error = "the subscription no longer exists"
        else:
            error = await self._send(subscription, item, client, mqtt)
        attempts = item.attempts + 1
        now = self.clock.now()
        retry_at = None
        if error is not None and subscription is not None:
            if attempts < self.options.max_attempts:
                retry_at = now.timestamp() + self.options.backoff(attempts)
            log.info(
                "notification failed",
                subscription=item.subscription_id,
                attempts=attempts,
                error=error,
                retry=retry_at is not None,
            )
        outcomes.append(
            DeliveryOutcome(
                nid=item.nid,
                tenant=item.tenant,
                subscription_id=item.subscription_id,
                at=isoformat(now),
                error=error,
                retry_at=retry_at,
                attempts=attempts,
            )
        )

    async def _send(
        self,
        subscription: CompiledSubscription,
        item: ClaimedNotification,
        client: aiohttp.ClientSession,
        mqtt: MqttPublisher,
    ) -> str | None:
        """Send one notification; return None on success, else why it failed."""
        endpoint = subscription.endpoint
        uri = str(endpoint["uri"])
        body, headers = notification_message(
            subscription,
            notification_id(item.tenant, item.subscription_id, item.nid),
            item.data,
            isoformat(self.clock.now()),
        )
        timeout = float(endpoint.get("timeout", self.options.timeout))
        try:
            if uri.startswith("mqtt"):
                info = {i["key"]: i["value"] for i in endpoint.get("notifierInfo") or []}
                message = orjson.dumps({"metadata": headers, "body": orjson.Fragment(body)})
                await asyncio.wait_for(
                    mqtt.publish(uri, message, int(info.get("MQTT-QoS", "0"))), timeout
                )
                return None
            async with client.post(
                uri,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, aiomqtt.MqttError, OSError, TimeoutError) as error:
            return f"{type(error).__name__}: {error}"[:500]
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"
