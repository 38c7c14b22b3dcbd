"""The engine worker: takes partitions of the rules by lease and runs each (see `partition`).

Every worker (one per process that runs rules) announces itself with a lease of its own
(`rules.worker.<holder>`), counts the live workers and holds at most its share of the
partitions (rounded up): it takes free ones (a dead worker's, once their leases expired) and
gives back extra ones when more workers joined, after a last checkpoint. So a worker killed
mid-stream loses nothing: its partitions go to the others within the lease time, and each is
restored from its checkpoint and caught up from the change log.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from contextlib import suppress
from dataclasses import dataclass

import structlog

from smartcity.broker.change_events import holder_name
from smartcity.rules.partition import PartitionRunner, RuntimeOptions, Services, lease_name

log = structlog.get_logger(__name__)

WORKER_LEASE_PREFIX = "rules.worker."


@dataclass(slots=True)
class _Owned:
    runner: PartitionRunner
    stop: asyncio.Event
    task: asyncio.Task[None]


class RulesRuntime:
    """Worker: run this process's share of the rule partitions."""

    name = "rules-engine"

    def __init__(
        self,
        services: Services,
        options: RuntimeOptions | None = None,
        *,
        holder: str | None = None,
        manage_interval: float | None = None,
    ) -> None:
        self.services = services
        self.options = options or RuntimeOptions()
        self.holder = holder or holder_name()
        self.manage_interval = manage_interval or max(self.options.lease_seconds / 5, 0.2)
        self.owned: dict[int, _Owned] = {}

    def _order(self) -> list[int]:
        """Return the partitions in an order of this worker's own (workers try apart)."""
        return sorted(
            range(self.options.partitions),
            key=lambda p: hashlib.sha256(f"{self.holder}:{p}".encode()).digest(),
        )

    async def manage_once(self) -> None:
        """Announce this worker, reap ended partitions, give back or take partitions."""
        coordination, options = self.services.coordination, self.options
        await asyncio.to_thread(
            coordination.acquire,
            WORKER_LEASE_PREFIX + self.holder,
            self.holder,
            options.lease_seconds,
        )
        for partition, owned in list(self.owned.items()):
            if owned.task.done():
                del self.owned[partition]
                if not owned.task.cancelled() and owned.task.exception() is not None:
                    log.error(
                        "rule partition failed",
                        partition=partition,
                        error=repr(owned.task.exception()),
                    )
                with suppress(Exception):
                    await asyncio.to_thread(
                        coordination.release, lease_name(partition), self.holder
                    )
        live = await asyncio.to_thread(coordination.live, WORKER_LEASE_PREFIX)
        share = math.ceil(options.partitions / max(len(live), 1))
        while len(self.owned) > share:
            partition = max(self.owned)
            await self._give_back(partition)
        for partition in self._order():
            if len(self.owned) >= share:
                break
            if partition in self.owned:
                continue
            epoch = await asyncio.to_thread(
                coordination.acquire, lease_name(partition), self.holder, options.lease_seconds
            )
            if epoch is not None:
                self._take(partition, epoch)

    def _take(self, partition: int, epoch: int) -> None:
        runner = PartitionRunner(partition, epoch, self.holder, self.services, self.options)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop), name=f"rules-p{partition}")
        self.owned[partition] = _Owned(runner, stop, task)

    async def _give_back(self, partition: int) -> None:
        owned = self.owned.pop(partition)
        owned.stop.set()
        with suppress(Exception):
            await owned.task
        await asyncio.to_thread(
            self.services.coordination.release, lease_name(partition), self.holder
        )
        log.info("rule partition given back", partition=partition, holder=self.holder)

    async def run(self, stop: asyncio.Event) -> None:
        """Run partitions until `stop`; then checkpoint them and give their leases back."""
        try:
            while not stop.is_set():
                await self.manage_once()
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.manage_interval)
        finally:
            for partition in list(self.owned):
                await self._give_back(partition)
            with suppress(Exception):
                await asyncio.to_thread(
                    self.services.coordination.release,
                    WORKER_LEASE_PREFIX + self.holder,
                    self.holder,
                )
            await self.services.actions.close()

    def counts(self) -> dict[str, int]:
        """Return how many changes and firings this worker's partitions handled."""
        return {
            "partitions": len(self.owned),
            "handled": sum(o.runner.handled for o in self.owned.values()),
            "fired": sum(o.runner.fired for o in self.owned.values()),
        }
