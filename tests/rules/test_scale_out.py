"""Scale-out: engine worker processes on PostgreSQL and NATS share the rules; one is killed.

Two worker processes (each with a change relay too) share four partitions; one is killed with
SIGKILL mid-stream and started again later. The firings recorded must be exactly those of one
engine run over the whole change log without interruption: none lost, none doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcity.auth.principal import Caller
from smartcity.platform import Platform
from smartcity.rules.checkpoints import DONE
from tests.bus.conftest import _delete_stream, require_nats, run
from tests.rules.support import (
    open_platform,
    postgres_settings,
    reading_time,
    threshold_rule,
    write_reading,
)
from tests.rules.threshold_engine import ThresholdPlug

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ("", "gangbuk", "nowon")
SENSORS = 4
STEPS = 40
WAVE = [20, 35, 40, 25, 36, 10, 31, 29, 33, 12]


class Workers:
    """Worker processes of one test, by name, each logging to a file of its own."""

    def __init__(self, schema: str, stream: str, prefix: str, logs: Path) -> None:
        self.args = [schema, stream, prefix]
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def start(self, name: str) -> None:
        """Start worker `name` and wait until it runs."""
        self.starts += 1
        log = self.logs / f"worker-{name}-{self.starts}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.rules.worker_process", *self.args, name],
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.running[name] = process
        deadline = time.monotonic() + 60
        while b"ready\n" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {name} did not start:\n{log.read_text()}")
            time.sleep(0.05)

    def kill(self, name: str) -> None:
        """Kill worker `name` at once (no checkpoint, no lease given back)."""
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        """Stop every worker cleanly (kill one that does not stop)."""
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.running.clear()


@pytest.fixture
def scale_out(postgres_schema: str, tmp_path: Path) -> Iterator[tuple[Platform, Workers]]:
    require_nats()
    token = uuid.uuid4().hex[:10]
    stream, prefix = f"test_rules_{token}", f"r{token}"
    platform = open_platform(postgres_settings(postgres_schema, rules_enabled=False))
    workers = Workers(postgres_schema, stream, prefix, tmp_path)
    try:
        yield platform, workers
    finally:
        workers.stop_all()
        platform.close()
        run(_delete_stream(stream, prefix), timeout=30)


def all_partitions_started(platform: Platform) -> bool:
    """Tell whether each of the four partitions has been taken once."""
    return all(platform.rule_parts.state.checkpoint(p) is not None for p in range(4))


def recorded(platform: Platform) -> list[str]:
    """Return every recorded firing id (a list: a double would show)."""
    state = platform.rule_parts.state
    return [r.firing.firing_id for t in TENANTS for r in state.firings(t, limit=10_000)]


def expected(platform: Platform) -> set[str]:
    """Return what one engine fires over the whole change log, uninterrupted."""
    engine = ThresholdPlug().build(platform.rule_parts.service.rules.enabled())
    fired: set[str] = set()
    for change in platform.store.changes_since(0, 1_000_000):
        fired.update(firing.firing_id for firing in engine.process(change))
    return fired


def wait(condition: object, seconds: float = 60.0) -> None:
    """Wait until `condition()` holds, or fail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {seconds} s")


@pytest.mark.nats
@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_killed_mid_stream_loses_and_doubles_no_firing(
    scale_out: tuple[Platform, Workers],
) -> None:
    platform, workers = scale_out
    for tenant in TENANTS:
        caller = Caller.system(tenant)
        platform.rules.create(caller, "hot", threshold_rule(30))
        platform.rules.create(caller, "very-hot", threshold_rule(34))
    workers.start("a")
    workers.start("b")
    wait(lambda: all_partitions_started(platform))
    for step in range(STEPS):
        for tenant in TENANTS:
            for sensor in range(SENSORS):
                value = WAVE[(step + sensor) % len(WAVE)]
                entity = f"urn:ngsi-ld:WeatherObserved:{sensor}"
                write_reading(platform, tenant, entity, value, reading_time(step))
        if step == STEPS // 3:
            workers.kill("a")
        if step == 2 * STEPS // 3:
            workers.start("a")
        time.sleep(0.05)
    wanted = expected(platform)
    assert len(wanted) > 200
    wait(lambda: len(recorded(platform)) >= len(wanted), seconds=120)
    time.sleep(2.0)  # anything doubled or late would show now
    got = recorded(platform)
    assert len(got) == len(set(got))
    assert set(got) == wanted
    statuses = {
        r.status for t in TENANTS for r in platform.rule_parts.state.firings(t, limit=10_000)
    }
    assert statuses == {DONE}
    # Each rule's counters, saved with the checkpoints, took every change once: the killed
    # worker's count since its last checkpoint is replaced by its successor's replay.
    workers.stop_all()
    for tenant in TENANTS:
        evaluation = platform.rules.metrics(Caller.system(tenant))["evaluation"]
        events = {rule: counters["events"] for rule, counters in evaluation.items()}
        assert events == {"hot": STEPS * SENSORS, "very-hot": STEPS * SENSORS}
