"""Rule lifecycle in the engine (reload, versions, enable) and state across a restart."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.rules.backtest import backtest
from smartcity.rules.engine import Engine
from smartcity.rules.loader import load_rule_set_text
from smartcity.storage.base import ChangeRecord
from tests.rules.engine_support import T0, Feed, brief, engine_for, point, run

MINUTE = timedelta(minutes=1)
RULES = """
zones:
  west: {type: Polygon, coordinates: [[[127.00, 37.60], [127.05, 37.60],
      [127.05, 37.70], [127.00, 37.70], [127.00, 37.60]]]}
rules:
  - id: bin-full
    kind: threshold
    when: {type: WasteContainer}
    value: fillingLevel
    raise: ">= 0.9"
    clear: "< 0.8"
  - id: crowd-window
    kind: aggregate
    when: {type: CrowdFlowObserved}
    key: {zone: [west]}
    window: {size: 10m}
    aggregates: {people: sum(peopleCount), cams: distinct(id)}
    having: people>=100
  - id: hourly-crowd
    kind: aggregate
    when: {type: CrowdFlowObserved}
    window: {size: 30m, tumbling: true}
    aggregates: {people: avg(peopleCount)}
    having: people>=30
  - id: silent-bin
    kind: absence
    when: {type: WasteContainer}
    after: 20m
  - id: fall-then-still
    kind: sequence
    sequence:
      first: {type: CrowdFlowObserved, q: detectedEvent=="fall"}
      then: {type: CrowdFlowObserved, q: peopleCount==0}
      within: 5m
  - id: fall-unanswered
    kind: sequence
    sequence:
      first: {type: CrowdFlowObserved, q: detectedEvent=="fall"}
      then: {type: CrowdFlowObserved, q: peopleCount>=3}
      within: 4m
      absent: true
  - id: lamp-near-crowd
    kind: match
    when: {type: CrowdFlowObserved, q: peopleCount>=40}
    require: [{type: Streetlight, near: 300, q: powerState=="off"}]
    suppress: 3m
    actions:
      - command: {command: brighten}
        target: {type: Streetlight, near: 300}
"""


def build_changes(steps: list[tuple[int, int, int, int]]) -> list[ChangeRecord]:
    """Return changes from (kind, entity number, minutes forward, value) steps."""
    feed = Feed()
    moment = T0
    out = []
    for kind, number, forward, value in steps:
        moment += forward * MINUTE
        if kind == 0:
            out.append(
                feed.change("WasteContainer", f"bin{number}", moment, fillingLevel=value / 10)
            )
        elif kind == 1:
            out.append(
                feed.change(
                    "CrowdFlowObserved",
                    f"cam{number}",
                    moment,
                    peopleCount=value * 7,
                    detectedEvent="fall" if value % 4 == 0 else "none",
                    location=point(127.01 + number * 0.001, 37.65),
                )
            )
        else:
            out.append(
                feed.change(
                    "Streetlight",
                    f"lamp{number}",
                    moment,
                    powerState="off" if value % 2 else "on",
                    location=point(127.011 + number * 0.001, 37.65),
                )
            )
    return out


steps = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 7), st.integers(0, 10)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60)
@given(steps, st.integers(0, 60), st.sampled_from([0.0, 120.0]))
def test_snapshot_and_restore_give_the_same_firings_as_one_engine(
    plan: list[tuple[int, int, int, int]], cut: int, lateness: float
) -> None:
    changes = build_changes(plan)
    cut = min(cut, len(changes))
    end = T0 + timedelta(hours=12)

    whole = engine_for(RULES, lateness)
    expected = run(whole, changes, until=end)

    first = engine_for(RULES, lateness)
    fired = [f for c in changes[:cut] for f in first.process(c)]
    saved = json.loads(json.dumps(first.snapshot()))
    second = engine_for(RULES, lateness)
    second.restore(saved)
    fired += run(second, changes[cut:], until=end)
    assert brief(fired) == brief(expected)
    assert [f.values for f in fired] == [f.values for f in expected]
    assert [f.actions for f in fired] == [f.actions for f in expected]


def test_reload_keeps_the_state_of_unchanged_rules_and_versions_changed_ones() -> None:
    feed = Feed()
    engine = engine_for(RULES)
    run(engine, [feed.change("WasteContainer", "b1", T0, fillingLevel=0.95)])
    changed = RULES.replace('raise: ">= 0.9"', 'raise: ">= 0.92"')
    report = engine.load_yaml(changed)
    assert report.changed == ("bin-full",)
    assert "silent-bin" in report.kept
    infos = {info.id: info for info in engine.rule_infos()}
    assert infos["bin-full"].version == 2
    assert infos["silent-bin"].version == 1
    # bin-full starts afresh (raises again); silent-bin still knows b1 was seen at T0.
    fired = run(engine, [feed.change("WasteContainer", "b1", T0 + MINUTE, fillingLevel=0.95)])
    assert brief(fired) == [("bin-full", "raise", "b1", "2026-11-27T10:01:00Z")]
    assert engine.rules["silent-bin"].states["changdong\x1fb1"]["last"] == (T0 + MINUTE).timestamp()
    report = engine.load_yaml(RULES)
    assert report.changed == ("bin-full",)
    assert {i.id: i.version for i in engine.rule_infos()}["bin-full"] == 3


def test_removed_rules_are_reported_and_forgotten() -> None:
    engine = engine_for(RULES)
    report = engine.load(load_rule_set_text("rules: []"))
    assert "bin-full" in report.removed
    assert engine.rule_infos() == []


def test_disabled_rules_see_nothing_and_start_afresh() -> None:
    feed = Feed()
    engine = engine_for(RULES)
    run(engine, [feed.change("WasteContainer", "b1", T0, fillingLevel=0.95)])
    engine.enable("bin-full", False)
    assert run(engine, [feed.change("WasteContainer", "b1", T0 + MINUTE, fillingLevel=0.5)]) == []
    engine.enable("bin-full")
    fired = run(engine, [feed.change("WasteContainer", "b1", T0 + 2 * MINUTE, fillingLevel=0.95)])
    assert [(f.rule_id, f.kind) for f in fired] == [("bin-full", "raise")]


def test_metrics_count_events_matches_firings_and_time() -> None:
    feed = Feed()
    engine = engine_for(RULES)
    run(
        engine,
        [feed.change("WasteContainer", "b1", T0 + i * MINUTE, fillingLevel=0.95) for i in range(3)],
    )
    metrics = engine.metrics()["rules"]["bin-full"]
    assert (metrics["events"], metrics["matches"], metrics["firings"], metrics["actions"]) == (
        3,
        3,
        1,
        0,
    )
    assert metrics["evaluationSeconds"] >= 0


def test_backtest_reports_firings_and_counts_per_key() -> None:
    rule_set = load_rule_set_text(
        RULES.replace("  - id: bin-full\n", "  - id: bin-full\n    enabled: false\n")
    )
    feed = Feed()
    changes = [
        feed.change(
            "WasteContainer", f"b{i % 2}", T0 + i * MINUTE, fillingLevel=0.95 if i % 4 < 2 else 0.5
        )
        for i in range(12)
    ]
    report = backtest(rule_set, changes, rules=["bin-full"], lateness=0)
    assert report.changes == 12
    assert report.counts() == {"bin-full": {"clear": 6, "raise": 6}}
    assert report.per_key() == {"bin-full": {"b0": 3, "b1": 3}}
    summary = report.summary()
    assert summary["firings"][0] == {
        "rule": "bin-full",
        "kind": "raise",
        "key": "b0",
        "at": "2026-11-27T10:00:00Z",
        "severity": "medium",
        "values": {"value": 0.95},
    }
    json.dumps(summary)


def test_a_snapshot_of_an_engine_with_other_rules_keeps_only_what_still_fits() -> None:
    feed = Feed()
    engine = engine_for(RULES)
    run(engine, [feed.change("WasteContainer", "b1", T0, fillingLevel=0.95)])
    saved = engine.snapshot()
    other = Engine(
        load_rule_set_text(RULES.replace('raise: ">= 0.9"', 'raise: ">= 0.93"')), lateness=0
    )
    other.restore(saved)
    assert other.rules["bin-full"].states == {}
    assert other.rules["silent-bin"].states != {}


def test_prime_types_are_the_joined_and_the_watched_for_silence() -> None:
    engine = engine_for(RULES)
    assert engine.kept_types == {"Streetlight"}
    assert engine.prime_types == {"Streetlight", "WasteContainer"}
