"""The benchmark's bookkeeping (no timing): docs sections, and how the IoT agent runs are judged."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.iot_agent import FULL, IotResult, Phase
from bench.iot_report import drop
from bench.sections import replace_section, sections, write_section

DOCS = """# Benchmarks

<!-- notifications:start -->
old notifications
<!-- notifications:end -->

<!-- iot-agent:start -->
old iot
<!-- iot-agent:end -->
tail
"""


def test_a_section_is_replaced_between_its_markers_only() -> None:
    updated = replace_section(DOCS, "iot-agent", "## new iot\n")
    assert "old iot" not in updated
    assert "<!-- iot-agent:start -->\n## new iot\n<!-- iot-agent:end -->\ntail\n" in updated
    assert "old notifications" in updated
    assert updated.startswith("# Benchmarks\n")


def test_a_missing_section_is_appended(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "benchmarks.md"
    write_section(docs, "ingest-writer", "writer figures")
    write_section(docs, "ingest-writer", "newer writer figures")
    text = docs.read_text()
    assert text.count("<!-- ingest-writer:start -->") == 1
    assert "newer writer figures" in text
    assert "\nwriter figures" not in text


def paced(rate: int, *, drain: float = 0.2, p95: float = 100.0, given_up: bool = False) -> Phase:
    """A paced run of 20 s that sent `rate`/s, settled `drain` s after its last send."""
    sent = rate * 20
    return Phase(
        "paced",
        rate,
        0.0,
        sent=sent,
        send_seconds=20.0,
        settle_seconds=20.0 + drain,
        stored=sent,
        latencies=[p95] * 100,
        commit_latencies=[p95 + 10] * 100,
        given_up=given_up,
    )


def test_kept_up_needs_the_offered_rate_and_a_quick_drain() -> None:
    assert paced(1000).kept_up
    assert not paced(1000, drain=3.0).kept_up
    assert not paced(1000, given_up=True).kept_up
    slow_publisher = paced(1000)
    slow_publisher.send_seconds = 25.0  # it could only offer 800/s
    assert not slow_publisher.kept_up


def test_the_sustained_rate_is_the_fastest_kept_up_within_the_latency_goal() -> None:
    flood = Phase("flood", None, 0.0, sent=100, settle_seconds=1.0)
    runs = [paced(500), paced(1000), paced(2000, p95=400.0), paced(4000, drain=5.0)]
    result = IotResult(FULL, [flood, *runs], [], (0, 0, 0), (0, 0, 0), 0.0)
    sustained = result.sustained
    assert sustained is not None
    assert sustained.rate == 1000
    assert result.sustained_to_commit is sustained
    # Under the goal by the history's modifiedAt, not up to the commit.
    late_commit = paced(500, p95=200.0)
    late_commit.commit_latencies = [300.0] * 100
    late = IotResult(FULL, [late_commit], [], (0, 0, 0), (0, 0, 0), 0.0)
    assert late.sustained is late_commit
    assert late.sustained_to_commit is None


def test_drop_is_the_share_of_handled_messages_per_second_lost() -> None:
    clean = Phase("flood", None, 0.0, sent=10_000, settle_seconds=10.0)
    malformed = Phase("flood", None, 0.1, sent=10_000, malformed=1_000, settle_seconds=12.5)
    assert drop(clean, malformed) == pytest.approx(20.0)


def test_sections_are_found_by_name_so_a_full_run_keeps_those_it_does_not_measure() -> None:
    document = replace_section(replace_section("# Benchmarks\n", "livemap", "map"), "a-b", "x\ny")
    assert sections(document) == {"livemap": "map", "a-b": "x\ny"}
