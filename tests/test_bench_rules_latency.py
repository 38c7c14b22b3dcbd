"""The rules latency benchmark: every crossing written raises or clears its alert, on SQLite
with the load generator in the platform's process and on PostgreSQL from a process of its own
(whose commits the relay hears through LISTEN/NOTIFY)."""

from __future__ import annotations

import psycopg
import pytest
from bench.rules_latency import RulesSizes, run_rules_latency, section

from tests.conftest import check_service, postgres_url

SMALL = RulesSizes(rate=500, seconds=2.0, sensors=50, crossing_every=25, quiet_wait=0)


@pytest.mark.parametrize(
    ("backend", "writer"),
    [("sqlite", "thread"), pytest.param("postgres", "process", marks=pytest.mark.postgres)],
)
def test_each_crossing_raises_or_clears_its_alert(backend: str, writer: str) -> None:
    if backend == "postgres":
        check_service("PostgreSQL", lambda: psycopg.connect(postgres_url()).close())
    result = run_rules_latency(backend, "memory", SMALL, postgres_url())
    assert result.writer == writer
    assert result.written >= SMALL.rate  # two seconds at 500/s, give or take a batch
    assert result.expected_alerts >= result.written // SMALL.crossing_every - 1
    assert result.alerts == result.expected_alerts
    assert len(result.latencies) == result.alerts
    # Heard at once: not at the relay's next poll (0.5 s) on PostgreSQL.
    assert result.percentile(0.5) < 150
    text = section([result], SMALL, "today")
    assert f"| {backend} | memory | {writer} | 500 |" in text
