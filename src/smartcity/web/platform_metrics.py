"""Prometheus metrics of the platform's state, read from the database when scraped.

The request metrics (`metrics.py`) say how the API answers; these say how the city's data
flows: how far each reader of the change log is behind, devices by health, dead letters,
incidents, and each rule's firings and evaluation counters. They are counts kept in the
database, so every server process reports the same figures and a restart loses none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from smartcity.platform import Platform

log = structlog.get_logger(__name__)

RULE_COUNTERS = (
    ("events", "smartcity_rule_events", "Changes a rule looked at"),
    ("matches", "smartcity_rule_matches", "Changes that passed a rule's filters"),
    ("seconds", "smartcity_rule_evaluation_seconds", "Time spent evaluating a rule"),
)
"""Evaluation counters of the rules, as of each rule's last checkpoint."""


class PlatformCollector(Collector):
    """Reads the platform's counts at each scrape; a part that fails is left out and logged."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def describe(self) -> Iterable[Metric]:
        """Describe nothing up front (so registering reads nothing from the database)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every family whose part could be read."""
        parts: tuple[Callable[[], list[Metric]], ...] = (
            self._change_log,
            self._devices,
            self._dead_letters,
            self._incidents,
            self._rules,
        )
        for part in parts:
            try:
                yield from part()
            except Exception:
                log.exception("a platform metric could not be read", part=part.__name__)

    def _change_log(self) -> list[Metric]:
        last = self.platform.store.last_change_seq()
        newest = GaugeMetricFamily(
            "smartcity_change_log_last_seq", "Sequence number of the newest committed change"
        )
        newest.add_metric([], last)
        behind = GaugeMetricFamily(
            "smartcity_change_log_behind",
            "Changes a reader of the change log has not consumed yet",
            labels=["reader"],
        )
        for reader, position in self.platform.change_log.positions().items():
            behind.add_metric([reader], max(0, last - position))
        return [newest, behind]

    def _devices(self) -> list[Metric]:
        devices = GaugeMetricFamily(
            "smartcity_devices", "Registered devices by health", labels=["tenant", "health"]
        )
        for tenant, health, count in self.platform.iot.devices.store.health_counts():
            devices.add_metric([tenant, health], count)
        return [devices]

    def _dead_letters(self) -> list[Metric]:
        letters = GaugeMetricFamily(
            "smartcity_dead_letters",
            "Dead letters by source and status",
            labels=["tenant", "source", "status"],
        )
        store = self.platform.deadletters.store
        for tenant, source, status, count in store.status_counts():
            letters.add_metric([tenant, source, status], count)
        return [letters]

    def _incidents(self) -> list[Metric]:
        incidents = GaugeMetricFamily(
            "smartcity_incidents",
            "Incidents by status and severity",
            labels=["tenant", "status", "severity"],
        )
        for tenant, status, severity, count in self.platform.operations.store.status_counts():
            incidents.add_metric([tenant, status, severity], count)
        return [incidents]

    def _rules(self) -> list[Metric]:
        state = self.platform.rule_parts.state
        firings = CounterMetricFamily(
            "smartcity_rule_firings",
            "Firings of a rule by how their actions ended",
            labels=["tenant", "rule", "status"],
        )
        for tenant, rule, status, count in state.all_counts():
            firings.add_metric([tenant, rule, status], count)
        families: list[Metric] = [firings]
        saved = state.all_rule_metrics()
        for key, name, text in RULE_COUNTERS:
            family = CounterMetricFamily(name, text, labels=["tenant", "rule"])
            for tenant, rule, counters in saved:
                family.add_metric([tenant, rule], float(counters.get(key, 0)))
            families.append(family)
        return families
