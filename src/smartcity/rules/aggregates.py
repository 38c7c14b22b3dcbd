"""Windows of readings per key and the aggregates over them.

A window's state is plain JSON-ready data (a list of items ``[t, seq, entity_id, type, v...]``
in event-time order), so `snapshot` can hand it over as it is. Time windows keep what is newer
than `size` before the newest reading (sliding) or cut time into blocks of `size` (tumbling);
count windows keep the last `count` readings (sliding) or blocks of `count` (tumbling).
"""

from __future__ import annotations

import bisect
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from smartcity.rules.model import Window

if TYPE_CHECKING:
    from smartcity.rules.accumulators import Accumulators

_CALL: Final = re.compile(r"\s*([a-z]+)\s*\(\s*([A-Za-z_][\w.:/#-]*)?\s*(?:,\s*([0-9.]+)\s*)?\)\s*")
_ATTR: Final = re.compile(r"\s*([A-Za-z_][\w.:/#-]*)\s*")
FUNCTIONS: Final = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "rate",
    "percentile",
    "distinct",
    "first",
    "last",
)
Item = list[Any]
FIRST_VALUE: Final = 4
"""Index of the first attribute value in an item (after t, seq, entity id and type)."""


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One aggregate: a function of one attribute's readings (``avg(averageVehicleSpeed)``)."""

    function: str
    attribute: str | None
    argument: float | None = None


def parse_aggregate(text: str) -> Aggregate:
    """Return the aggregate an expression names; a bare attribute name is its last reading."""
    plain = _ATTR.fullmatch(text)
    if plain is not None:
        return Aggregate("last", plain.group(1))
    match = _CALL.fullmatch(text)
    if match is None or match.group(1) not in FUNCTIONS:
        raise ValueError(
            f"{text!r} is not an aggregate: write an attribute name or one of "
            f"{', '.join(f + '(...)' for f in FUNCTIONS)}, e.g. avg(averageVehicleSpeed)"
        )
    function, attribute, argument = match.group(1), match.group(2), match.group(3)
    if function not in ("count", "rate") and attribute is None:
        raise ValueError(f"{function}() needs an attribute, e.g. {function}(fillingLevel)")
    if function == "percentile":
        if argument is None or not 0 <= float(argument) <= 100:
            raise ValueError("percentile needs a rank from 0 to 100, e.g. percentile(pm10, 95)")
    elif argument is not None:
        raise ValueError(f"{function}() takes one attribute, no number")
    return Aggregate(
        function,
        sys.intern(attribute) if attribute is not None else None,  # (`names.local_name`)
        float(argument) if argument is not None else None,
    )


def _numbers(items: Sequence[Item], column: int) -> list[float]:
    return [
        float(v) for item in items if type(v := item[column]) in (int, float) and not math.isnan(v)
    ]


def _percentile(values: list[float], rank: float) -> float | None:
    """Return a percentile by linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * rank / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def compute(
    aggregate: Aggregate, column: int | None, items: Sequence[Item], span: float | None
) -> Any:
    """Return an aggregate over a window's items (None when there is nothing to aggregate)."""
    function = aggregate.function
    if function == "count":
        if column is None:
            return len(items)
        return sum(1 for item in items if item[column] is not None)
    if function == "rate":
        hours = (span if span else _spread(items)) / 3600
        if column is None:
            return len(items) / hours if hours > 0 else None
        points = [(item[0], float(item[column])) for item in items if _numeric(item[column])]
        if len(points) < 2 or points[-1][0] <= points[0][0]:
            return None
        return (points[-1][1] - points[0][1]) / ((points[-1][0] - points[0][0]) / 3600)
    assert column is not None
    if function == "distinct":
        return len({distinct_key(item[column]) for item in items if item[column] is not None})
    if function in ("first", "last"):
        present = [item[column] for item in items if item[column] is not None]
        return (present[0] if function == "first" else present[-1]) if present else None
    values = _numbers(items, column)
    if not values:
        return None
    if function == "sum":
        return math.fsum(values)
    if function == "avg":
        return math.fsum(values) / len(values)
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    assert aggregate.argument is not None
    return _percentile(values, aggregate.argument)


def _numeric(value: Any) -> bool:
    return type(value) in (int, float) and not math.isnan(value)


def distinct_key(value: Any) -> str:
    """Return the key a value counts under in distinct() (JSON object keys are strings)."""
    if type(value) is str:
        return "s" + value
    if type(value) in (int, float):
        return "n" + repr(float(value))
    if type(value) is bool:
        return "b" + str(value)
    return "j" + json.dumps(value, sort_keys=True, default=str)


def _spread(items: Sequence[Item]) -> float:
    return items[-1][0] - items[0][0] if len(items) > 1 else 0.0


class Windowing:
    """How one rule keeps its window per key and reads its aggregates."""

    def __init__(self, window: Window | None, aggregates: dict[str, Aggregate]) -> None:
        self.window = window
        self.aggregates = aggregates
        columns: list[str] = []
        for aggregate in aggregates.values():
            if aggregate.attribute is not None and aggregate.attribute not in columns:
                columns.append(aggregate.attribute)
        self.columns = columns
        """The attributes each item keeps, in order (values start at FIRST_VALUE)."""
        self._at = {name: FIRST_VALUE + index for index, name in enumerate(columns)}
        self.plan: list[tuple[str, Aggregate, int | None]] = [
            (name, aggregate, self._at.get(aggregate.attribute or ""))
            for name, aggregate in aggregates.items()
        ]
        self.size = window.size if window else None
        self.count = window.count if window else None
        self.tumbling = bool(window and window.tumbling)
        self.running: Accumulators | None = None
        if window is not None and not self.tumbling:
            from smartcity.rules.accumulators import Accumulators

            self.running = Accumulators(self.plan)

    def values(self, items: Sequence[Item], state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return every aggregate over some items (a sliding window's from its accumulators)."""
        span = self.size
        if self.running is not None and state is not None:
            return self.running.values(state["acc"], items, span)
        return {name: compute(agg, column, items, span) for name, agg, column in self.plan}

    def block_of(self, moment: float) -> float:
        """Return the start of the tumbling time block that holds a moment."""
        assert self.size is not None
        return math.floor(moment / self.size) * self.size

    def add(self, state: dict[str, Any], item: Item) -> list[list[Item]]:
        """Put a reading in a key's window; return the tumbling blocks it closed (oldest first)."""
        items: list[Item] | None = state.get("items")
        if items is None:
            items = state["items"] = []
        closed: list[list[Item]] = []
        moment = item[0]
        if self.tumbling and self.size is not None:
            start = self.block_of(moment)
            current = state.get("block")
            if current is not None and start > current:
                if items:
                    closed.append(items)
                items = state["items"] = []
            if current is None or start >= current:
                state["block"] = start
            elif start < current:
                return closed  # older than the open block: its block already closed
        in_order = _insert(items, item)
        if self.tumbling and self.count is not None and len(items) >= self.count:
            closed.append(items)
            state["items"] = []
        elif self.running is not None:
            if in_order and "acc" in state:
                self.running.add(state["acc"], item)
                self.evict(state, items[-1][0])
            else:
                self.evict(state, items[-1][0])
                state["acc"] = self.running.rebuild(state["items"])
        return closed

    def evict(self, state: dict[str, Any], newest: float) -> None:
        """Drop what fell out of a sliding window (and from its accumulators)."""
        items: list[Item] = state.get("items", [])
        first = 0
        if self.size is not None:
            cut = newest - self.size
            while first < len(items) and items[first][0] <= cut:
                first += 1
        elif self.count is not None and len(items) > self.count:
            first = len(items) - self.count
        if first:
            acc = state.get("acc")
            if self.running is not None and acc is not None:
                for gone in items[:first]:
                    self.running.remove(acc, gone)
            del items[:first]

    def close_due(self, state: dict[str, Any], watermark: float) -> list[Item] | None:
        """Close the open tumbling time block if the watermark passed its end."""
        block = state.get("block")
        if self.size is None or block is None or watermark < block + self.size:
            return None
        items = state.get("items") or []
        state["items"] = []
        state["block"] = None
        return items or None


def _insert(items: list[Item], item: Item) -> bool:
    """Insert an item in event-time order; tell whether it went at the end."""
    if not items or items[-1][0] <= item[0]:
        items.append(item)
        return True
    items.insert(bisect.bisect_right([i[0] for i in items], item[0]), item)
    return False
