"""Running aggregates of sliding windows agree with aggregates computed afresh."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.rules.aggregates import Windowing, compute, parse_aggregate
from smartcity.rules.engine import Engine
from smartcity.rules.firing import RuleEngine
from smartcity.rules.model import Window

AGGREGATES = {
    "n": "count()",
    "present": "count(x)",
    "total": "sum(x)",
    "mean": "avg(x)",
    "low": "min(x)",
    "high": "max(x)",
    "p90": "percentile(x, 90)",
    "kinds": "distinct(x)",
    "first": "first(x)",
    "last": "last(x)",
    "trend": "rate(x)",
}
readings = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.one_of(st.none(), st.integers(-50, 50), st.sampled_from(["a", "b"]), st.booleans()),
    ),
    max_size=60,
)


@given(readings, st.sampled_from([Window(size=60.0), Window(count=5), Window(size=300.0)]))
def test_running_aggregates_equal_fresh_ones(steps: list[tuple[int, Any]], window: Window) -> None:
    parsed = {name: parse_aggregate(text) for name, text in AGGREGATES.items()}
    windowing = Windowing(window, parsed)
    state: dict[str, Any] = {}
    moment = 0.0
    for seq, (forward, value) in enumerate(steps):
        moment += forward
        windowing.add(state, [moment, seq, "e", "T", value])
        items = state["items"]
        running = windowing.values(items, state)
        fresh = {
            name: compute(aggregate, column, items, windowing.size)
            for name, aggregate, column in windowing.plan
        }
        for name in AGGREGATES:
            expected, got = fresh[name], running[name]
            if isinstance(expected, float) and not math.isnan(expected):
                assert got == pytest.approx(expected, abs=1e-9), name
            else:
                assert got == expected, name


def test_the_engine_is_a_rule_engine() -> None:
    engine: RuleEngine = Engine()
    assert engine.snapshot()["format"] == 1
