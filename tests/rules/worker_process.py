"""A rules worker process for the scale-out tests: relay + engine worker on PostgreSQL and NATS.

Run as `python -m tests.rules.worker_process SCHEMA STREAM PREFIX HOLDER`; it runs until it is
killed (SIGKILL: a crash) or terminated (SIGTERM: a clean stop).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import replace

from smartcity.broker.change_events import ChangeRelay
from smartcity.logs import configure_logging
from smartcity.rules.actions import ActionRunner
from smartcity.rules.assembly import runtime_options
from smartcity.rules.partition import Services
from smartcity.rules.runtime import RulesRuntime
from tests.bus.conftest import nats_url
from tests.rules.support import open_platform, postgres_settings
from tests.rules.threshold_engine import ThresholdPlug


async def serve(schema: str, stream: str, prefix: str, holder: str) -> None:
    """Run the relay and the engine worker until SIGTERM."""
    settings = postgres_settings(
        schema,
        rules_enabled=False,
        bus_url=nats_url(),
        bus_stream=stream,
        bus_subjects=[f"{prefix}.>"],
    )
    platform = open_platform(settings)
    await platform.start()
    parts = platform.rule_parts
    relay = ChangeRelay(
        platform.store,
        parts.coordination,
        platform.bus,
        lease_seconds=settings.rules_lease_seconds,
        subject_prefix=f"{prefix}.changed",
        holder=f"{holder}-relay",
        poll_interval=0.1,
    )
    actions = ActionRunner(
        parts.state, platform.entities, platform.contexts.resolve, platform.bus, platform.clock
    )
    services = Services(
        platform.store,
        parts.service.rules,
        parts.state,
        parts.coordination,
        platform.bus,
        ThresholdPlug(),
        actions,
        platform.clock,
        relay.database,
    )
    options = replace(
        runtime_options(settings),
        changes_filter=f"{prefix}.changed.>",
        group_prefix=f"{prefix}-rules",
        ack_wait=5.0,
        checkpoint_events=50,
    )
    runtime = RulesRuntime(services, options, holder=holder)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await asyncio.gather(relay.run(stop), runtime.run(stop))
    await platform.stop()
    platform.close()


if __name__ == "__main__":
    configure_logging("info", "console")
    asyncio.run(serve(*sys.argv[1:5]))
