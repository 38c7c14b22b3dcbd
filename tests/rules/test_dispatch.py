"""The rule index skips no rule that could act on a change: the firings of meeting every rule."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.rules.compiled import RuleRuntime
from smartcity.rules.engine import Engine
from smartcity.rules.events import Event
from smartcity.rules.firing import Firing
from smartcity.rules.loader import builtin_rule_set, load_rule_set_text, merge_rule_sets
from smartcity.rules.model import RuleSet
from smartcity.rules.names import local_name, name_map
from smartcity.rules.windowed import ThresholdRule, WindowedRule
from smartcity.storage.base import ChangeKind, ChangeRecord
from tests.rules.engine_support import T0, Feed

TYPES = ["TrafficFlowObserved", "Streetlight", "CrowdFlowObserved", "WasteContainer"]
TEMPLATES = [
    "{{id: r{n}, kind: threshold, when: {{type: WasteContainer}}, value: fillingLevel, "
    'raise: ">= 0.{a}", clear: "< 0.{b}"}}',
    "{{id: r{n}, kind: threshold, when: {{type: TrafficFlowObserved, watch: [intensity]}}, "
    'value: averageVehicleSpeed, raise: "< {s}", for: {p}m}}',
    "{{id: r{n}, kind: threshold, when: {{type: TrafficFlowObserved}}, key: {{grid: 300}}, "
    'value: averageVehicleSpeed, raise: "< {s}", clear: ">= 30"}}',
    "{{id: r{n}, kind: threshold, when: {{type: TrafficFlowObserved}}, window: {{count: 3}}, "
    'value: avg(averageVehicleSpeed), raise: "< {s}", for: 2m}}',
    "{{id: r{n}, kind: aggregate, when: {{type: TrafficFlowObserved, q: congested==true}}, "
    'key: global, window: {{size: 5m}}, aggregates: {{c: count()}}, having: "c>={c}"}}',
    "{{id: r{n}, kind: aggregate, when: {{type: TrafficFlowObserved}}, window: {{size: 2m}}, "
    "aggregates: {{v: avg(averageVehicleSpeed), n: count(), k: distinct(congested)}}, "
    'having: "v<{s};n>={c}"}}',
    "{{id: r{n}, kind: match, when: {{type: CrowdFlowObserved, "
    'q: detectedEvent=="{event}"}}, suppress: {p}m}}',
    "{{id: r{n}, kind: match, tenants: [other], when: {{type: CrowdFlowObserved, "
    'q: detectedEvent=="{event}"}}}}',
    "{{id: r{n}, kind: sequence, sequence: {{first: {{type: CrowdFlowObserved, "
    'q: detectedEvent=="{event}"}}, then: {{type: CrowdFlowObserved, '
    'q: detectedEvent=="{event}"}}, within: {p}m}}}}',
    "{{id: r{n}, kind: absence, when: {{type: {kind}}}, after: {p}m}}",
    "{{id: r{n}, kind: state, when: {{type: Streetlight}}, "
    'condition: {{q: powerState=="off";illuminanceLevel<0.{a}}}}}',
    "{{id: r{n}, kind: state, when: {{type: [Streetlight, TrafficFlowObserved]}}, "
    "condition: {{q: illuminanceLevel<0.{a}|averageVehicleSpeed<{s}}}, for: 1m}}",
]
EVENTS = ["violence", "running", "fall", "none"]
BUILT_IN = builtin_rule_set()


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    """Return rules that often share filters, with varied thresholds, in any id order."""
    lines = []
    count = draw(st.integers(1, 14))
    names = draw(st.permutations(range(count)))
    for n in range(count):
        template = draw(st.sampled_from(TEMPLATES))
        lines.append(
            "  - "
            + template.format(
                n=f"{names[n]:02d}",
                a=draw(st.integers(1, 9)),
                b=draw(st.integers(1, 9)),
                s=draw(st.sampled_from([15, 30, 45])),
                c=draw(st.integers(1, 4)),
                p=draw(st.integers(1, 5)),
                event=draw(st.sampled_from(EVENTS)),
                kind=draw(st.sampled_from(TYPES)),
            )
        )
    generated = load_rule_set_text("rules:\n" + "\n".join(lines), "test")
    if draw(st.booleans()):
        return merge_rule_sets([BUILT_IN, generated])
    return generated


def _reading(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    if kind == "TrafficFlowObserved":
        values: dict[str, Any] = {
            "averageVehicleSpeed": draw(st.sampled_from([10, 20, 35, 50])),
            "intensity": draw(st.integers(0, 40)),
            "congested": draw(st.booleans()),
        }
    elif kind == "Streetlight":
        values = {
            "powerState": draw(st.sampled_from(["on", "off"])),
            "illuminanceLevel": draw(st.sampled_from([0.05, 0.3, 0.6, 0.95])),
        }
    elif kind == "CrowdFlowObserved":
        values = {"detectedEvent": draw(st.sampled_from(EVENTS)), "peopleCount": 3}
    else:
        values = {"fillingLevel": draw(st.sampled_from([0.1, 0.5, 0.85, 0.95]))}
    names = draw(st.lists(st.sampled_from(sorted(values)), min_size=1, unique=True))
    chosen = {name: values[name] for name in names}
    chosen["location"] = {
        "type": "Point",
        "coordinates": [127.047 + draw(st.integers(0, 4)) * 0.003, 37.653],
    }
    return chosen


@st.composite
def feeds(draw: st.DrawFn) -> list[ChangeRecord]:
    """Return partial updates (so watch lists matter), creates and deletes of two tenants."""
    tenants = {"changdong": Feed("changdong"), "other": Feed("other")}
    out: list[ChangeRecord] = []
    seconds = 0
    for _ in range(draw(st.integers(1, 60))):
        tenant = draw(st.sampled_from(sorted(tenants)))
        feed = tenants[tenant]
        kind = draw(st.sampled_from(TYPES))
        entity_id = f"urn:ngsi-ld:{kind}:{draw(st.integers(0, 2))}"
        seconds += draw(st.integers(0, 90))
        change = feed.change(
            kind, entity_id, T0 + timedelta(seconds=seconds), **_reading(draw, kind)
        )
        if draw(st.integers(0, 15)) == 0:
            feed.entities.pop(entity_id)
            change.kind = ChangeKind.DELETE
        change.seq = len(out) + 1
        out.append(change)
    return out


class EveryRule(Engine):
    """The engine as it was before the index: each change meets every rule of its type."""

    def _index(self) -> None:
        super()._index()
        for runtime in self.rules.values():
            if isinstance(runtime, ThresholdRule):
                runtime.reading_only = False  # the general path of thresholds, too
            if isinstance(runtime, WindowedRule):
                runtime.twin = None  # each rule keeps its own windows

    def _apply(self, change: ChangeRecord, moment: float) -> list[Firing]:
        self._apply_state(change)
        entries: list[tuple[str, RuleRuntime, str]] = []
        for rule_id in sorted(self.rules):
            if self.enabled.get(rule_id, True):
                runtime = self.rules[rule_id]
                for role, check in runtime.triggers():
                    entries.extend((name, runtime, role) for name in sorted(check.types))
        if change.kind == ChangeKind.DELETE:
            for type_iri in change.entity.types:
                for name, runtime, _ in entries:
                    if name == local_name(type_iri):
                        runtime.forget(change.tenant, change.entity)
            return []
        fired: list[Firing] = []
        for type_iri in change.entity.types:
            type_name = local_name(type_iri)
            event = Event(
                change.tenant,
                change.entity,
                name_map(change.entity),
                change.changed,
                change.kind == ChangeKind.CREATE,
                moment,
                change.seq,
                type_name,
            )
            for name, runtime, role in entries:
                if name != type_name:
                    continue
                if runtime.tenants is not None and change.tenant not in runtime.tenants:
                    continue
                runtime.metrics.events += 1
                started = time.perf_counter()
                fired.extend(runtime.on_event(role, event) or ())
                runtime.timed(started)
        return fired


def _run(engine: Engine, changes: list[ChangeRecord], end: bool = True) -> list[Firing]:
    fired: list[Firing] = []
    for change in changes:
        fired.extend(engine.process(change))
    if end:
        fired.extend(engine.advance(T0 + timedelta(hours=2)))
    return fired


def _pause(engine: Engine, what: str, rule: str) -> Engine:
    """Restore the engine from its snapshot, turn a rule off or on, or load without it."""
    if what == "restore":
        again = type(engine)(engine.rule_set, lateness=engine.lateness)
        again.restore(engine.snapshot())
        return again
    if what == "toggle":
        engine.enable(rule, not engine.enabled[rule])
    if what == "drop" and len(engine.rule_set.rules) > 1:
        kept = [r for r in engine.rule_set.rules if r.id != rule]
        engine.load(engine.rule_set.model_copy(update={"rules": kept}))
    return engine


def _counts(engine: Engine) -> dict[str, tuple[int, int, int]]:
    rules = engine.metrics()["rules"]
    return {rule: (m["events"], m["matches"], m["firings"]) for rule, m in rules.items()}


@settings(max_examples=150)
@given(
    rule_sets(),
    feeds(),
    st.sampled_from([0.0, 45.0]),
    st.lists(
        st.tuples(
            st.integers(0, 60), st.sampled_from(["restore", "toggle", "drop"]), st.integers(0, 3)
        ),
        max_size=4,
    ),
)
def test_the_index_and_twins_give_the_firings_of_every_rule_alone(
    rule_set: RuleSet,
    changes: list[ChangeRecord],
    lateness: float,
    pauses: list[tuple[int, str, int]],
) -> None:
    """Rules met through the index, windows shared by twins: as if each rule met every change."""
    indexed: Engine = Engine(rule_set, lateness=lateness)
    every: Engine = EveryRule(rule_set, lateness=lateness)
    ours: list[Firing] = []
    theirs: list[Firing] = []
    done = 0
    for at, what, which in sorted(pauses):
        ours += _run(indexed, changes[done:at], end=False)
        theirs += _run(every, changes[done:at], end=False)
        rule = sorted(indexed.rules)[which % len(indexed.rules)]
        indexed, every = _pause(indexed, what, rule), _pause(every, what, rule)
        done = max(done, at)
    ours += _run(indexed, changes[done:])
    theirs += _run(every, changes[done:])
    assert ours == theirs
    assert indexed.snapshot() == every.snapshot()
    if not pauses:
        assert _counts(indexed) == _counts(every)


def test_a_rule_turned_off_and_on_is_indexed_again() -> None:
    rule_set = load_rule_set_text(
        "rules:\n"
        "  - {id: full, kind: threshold, when: {type: WasteContainer}, value: fillingLevel, "
        'raise: ">= 0.9"}\n'
        "  - {id: fuller, kind: threshold, when: {type: WasteContainer}, value: fillingLevel, "
        'raise: ">= 0.95"}\n'
    )
    engine = Engine(rule_set, lateness=0)
    feed = Feed()
    engine.enable("fuller", False)
    first = engine.process(feed.change("WasteContainer", "urn:bin:1", T0, fillingLevel=0.99))
    assert [f.rule_id for f in first] == ["full"]
    engine.enable("fuller", True)
    later = T0 + timedelta(minutes=1)
    second = engine.process(feed.change("WasteContainer", "urn:bin:2", later, fillingLevel=0.99))
    assert [f.rule_id for f in second] == ["full", "fuller"]
    assert engine.rule_metrics()[("", "full")]["events"] == 2  # counted by the gate
    assert engine.metrics()["rules"]["fuller"]["events"] == 1
    assert engine.metrics()["rules"]["full"]["events"] == 2


def test_twins_whose_lead_started_afresh_keep_windows_of_their_own() -> None:
    twins = "\n".join(
        f"  - {{id: d{n}, kind: threshold, when: {{type: TrafficFlowObserved}}, "
        f'window: {{size: 10m}}, value: avg(averageVehicleSpeed), raise: "< {limit}"}}'
        for n, limit in enumerate((20, 25, 30))
    )
    rule_set = load_rule_set_text("rules:\n" + twins)
    indexed, every = Engine(rule_set, lateness=0), EveryRule(rule_set, lateness=0)
    assert [isinstance(r, WindowedRule) and bool(r.twin) for r in indexed.rules.values()] == [
        True
    ] * 3
    feed = Feed()
    speeds = [40, 35, 30, 22, 18, 26, 10, 8, 5]
    changes = [
        feed.change(
            "TrafficFlowObserved",
            "urn:detector:1",
            T0 + timedelta(minutes=i),
            **{"averageVehicleSpeed": speed},
        )
        for i, speed in enumerate(speeds)
    ]
    ours, theirs = _run(indexed, changes[:3], end=False), _run(every, changes[:3], end=False)
    for engine in (indexed, every):
        engine.enable("d0", False)
    ours += _run(indexed, changes[3:5], end=False)
    theirs += _run(every, changes[3:5], end=False)
    for engine in (indexed, every):
        engine.enable("d0", True)  # the lead starts afresh; d1 and d2 had shared one window
    ours += _run(indexed, changes[5:])
    theirs += _run(every, changes[5:])
    assert ours == theirs
    assert [f.rule_id for f in ours if f.kind == "raise"] == ["d2", "d0", "d1"]
    assert indexed.snapshot() == every.snapshot()
