"""Running aggregates of sliding windows: updated as readings enter and leave, not recomputed.

A busy window (every parking spot of a district over ten minutes) holds a thousand readings;
recomputing its aggregates after each reading would cost a thousand steps per change. Running
sums, counts of distinct values, monotonic queues for min and max and a sorted list for
percentiles cost a few steps each. Readings reach a window in event-time order (the engine's
reorder buffer sees to it); if one ever does not, the accumulators are rebuilt from the items.
Their state is JSON-ready data kept beside the window's items.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from smartcity.rules.aggregates import Aggregate, Item, compute, distinct_key

_RUNNING = frozenset({"count", "sum", "avg", "min", "max", "distinct", "percentile"})


def _number(value: Any) -> bool:
    return type(value) in (int, float) and value == value  # not NaN, not bool


class Accumulators:
    """The running aggregates of one rule's sliding windows."""

    def __init__(self, plan: Sequence[tuple[str, Aggregate, int | None]]) -> None:
        self.plan = [
            (name, aggregate, column)
            for name, aggregate, column in plan
            if aggregate.function in _RUNNING and column is not None
        ]
        self.other = [
            (name, aggregate, column)
            for name, aggregate, column in plan
            if not (aggregate.function in _RUNNING and column is not None)
        ]

    def fresh(self) -> dict[str, Any]:
        """Return the accumulators of an empty window."""
        acc: dict[str, Any] = {}
        for name, aggregate, _ in self.plan:
            function = aggregate.function
            if function == "count":
                acc[name] = 0
            elif function in ("sum", "avg"):
                acc[name] = [0.0, 0]
            elif function == "distinct":
                acc[name] = {}
            else:
                acc[name] = []
        return acc

    def add(self, acc: dict[str, Any], item: Item) -> None:
        """Take a reading that entered the window at its end."""
        for name, aggregate, column in self.plan:
            assert column is not None
            value = item[column]
            if value is None:
                continue
            function = aggregate.function
            if function == "count":
                acc[name] += 1
            elif function == "distinct":
                counts = acc[name]
                key = distinct_key(value)
                counts[key] = counts.get(key, 0) + 1
            elif not _number(value):
                continue
            elif function in ("sum", "avg"):
                running = acc[name]
                running[0] += value
                running[1] += 1
            elif function == "percentile":
                bisect.insort(acc[name], value)
            else:
                queue = acc[name]
                if function == "min":
                    while queue and queue[-1][2] >= value:
                        queue.pop()
                else:
                    while queue and queue[-1][2] <= value:
                        queue.pop()
                queue.append([item[0], item[1], value])

    def remove(self, acc: dict[str, Any], item: Item) -> None:
        """Forget a reading that left the window at its start."""
        for name, aggregate, column in self.plan:
            assert column is not None
            value = item[column]
            if value is None:
                continue
            function = aggregate.function
            if function == "count":
                acc[name] -= 1
            elif function == "distinct":
                counts = acc[name]
                key = distinct_key(value)
                left = counts.get(key, 0) - 1
                if left > 0:
                    counts[key] = left
                else:
                    counts.pop(key, None)
            elif not _number(value):
                continue
            elif function in ("sum", "avg"):
                running = acc[name]
                running[1] -= 1
                running[0] = running[0] - value if running[1] else 0.0
            elif function == "percentile":
                values = acc[name]
                at = bisect.bisect_left(values, value)
                if at < len(values) and values[at] == value:
                    del values[at]
            else:
                queue = acc[name]
                if queue and queue[0][0] == item[0] and queue[0][1] == item[1]:
                    del queue[0]

    def rebuild(self, items: Sequence[Item]) -> dict[str, Any]:
        """Return the accumulators of a window's items, computed afresh."""
        acc = self.fresh()
        for item in items:
            self.add(acc, item)
        return acc

    def values(
        self, acc: dict[str, Any], items: Sequence[Item], span: float | None
    ) -> dict[str, Any]:
        """Return every aggregate of a window from its accumulators (and items, for the rest)."""
        out: dict[str, Any] = {}
        for name, aggregate, _ in self.plan:
            function = aggregate.function
            running = acc[name]
            if function == "count":
                out[name] = running
            elif function == "distinct":
                out[name] = len(running)
            elif function == "sum":
                out[name] = running[0] if running[1] else None
            elif function == "avg":
                out[name] = running[0] / running[1] if running[1] else None
            elif function == "percentile":
                out[name] = _percentile(running, aggregate.argument or 0.0)
            else:
                out[name] = running[0][2] if running else None
        for name, aggregate, column in self.other:
            out[name] = compute(aggregate, column, items, span)
        return out


def _percentile(ordered: list[float], rank: float) -> float | None:
    if not ordered:
        return None
    position = (len(ordered) - 1) * rank / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
