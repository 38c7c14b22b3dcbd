"""The engine's time handling: event time, lateness, watermark, timers, determinism."""

from __future__ import annotations

from datetime import timedelta

from smartcity.rules.engine import Engine
from tests.rules.engine_support import T0, Feed, brief, engine_for, iso, run

BINS = """
rules:
  - id: bin-full
    kind: threshold
    when: {type: WasteContainer}
    value: fillingLevel
    raise: ">= 0.9"
    clear: "< 0.8"
"""


def test_hysteresis_raises_at_ninety_and_clears_below_eighty() -> None:
    feed = Feed()
    levels = [0.5, 0.85, 0.91, 0.95, 0.85, 0.79, 0.92]
    changes = [
        feed.change(
            "WasteContainer",
            "urn:ngsi-ld:WasteContainer:b1",
            T0 + timedelta(minutes=i),
            fillingLevel=level,
        )
        for i, level in enumerate(levels)
    ]
    fired = run(engine_for(BINS), changes)
    assert brief(fired) == [
        ("bin-full", "raise", "urn:ngsi-ld:WasteContainer:b1", "2026-11-27T10:02:00Z"),
        ("bin-full", "clear", "urn:ngsi-ld:WasteContainer:b1", "2026-11-27T10:05:00Z"),
        ("bin-full", "raise", "urn:ngsi-ld:WasteContainer:b1", "2026-11-27T10:06:00Z"),
    ]
    assert fired[0].values == {"value": 0.91}
    assert fired[0].evidence[0].entity_type == "WasteContainer"


def test_late_readings_within_the_lateness_are_placed_by_event_time() -> None:
    feed = Feed()
    bin_id = "urn:ngsi-ld:WasteContainer:b1"
    at = [T0, T0 + timedelta(seconds=40), T0 + timedelta(seconds=20)]
    # Arrival order 0.5, 0.79, 0.95: by event time it is 0.5, 0.95, 0.79 (raise, then clear).
    changes = [
        feed.change("WasteContainer", bin_id, at[0], fillingLevel=0.5),
        feed.change("WasteContainer", bin_id, at[1], fillingLevel=0.79),
        feed.change("WasteContainer", bin_id, at[2], fillingLevel=0.95),
    ]
    engine = engine_for(BINS, lateness=30)
    fired = run(engine, changes)
    assert [(f.kind, f.at) for f in fired] == [
        ("raise", "2026-11-27T10:00:20Z"),
        ("clear", "2026-11-27T10:00:40Z"),
    ]
    assert engine.too_late == 0


def test_readings_later_than_the_lateness_are_counted_not_evaluated() -> None:
    feed = Feed()
    bin_id = "urn:ngsi-ld:WasteContainer:b1"
    engine = engine_for(BINS, lateness=10)
    run(
        engine, [feed.change("WasteContainer", bin_id, T0 + timedelta(minutes=5), fillingLevel=0.5)]
    )
    late = feed.change("WasteContainer", bin_id, T0, fillingLevel=0.99)
    assert engine.process(late) == []
    assert engine.too_late == 1
    assert engine.metrics()["tooLate"] == 1


def test_changes_wait_in_the_buffer_until_the_watermark_passes() -> None:
    feed = Feed()
    engine = engine_for(BINS, lateness=60)
    change = feed.change("WasteContainer", "urn:ngsi-ld:WasteContainer:b1", T0, fillingLevel=0.95)
    assert engine.process(change) == []
    assert engine.metrics()["buffered"] == 1
    fired = engine.advance(T0 + timedelta(seconds=61))
    assert [f.kind for f in fired] == ["raise"]


def test_only_watched_attributes_count() -> None:
    feed = Feed()
    bin_id = "urn:ngsi-ld:WasteContainer:b1"
    engine = engine_for(BINS)
    run(engine, [feed.change("WasteContainer", bin_id, T0, fillingLevel=0.5)])
    run(engine, [feed.change("WasteContainer", bin_id, T0 + timedelta(minutes=1), cargoWeight=3.0)])
    metrics = engine.metrics()["rules"]["bin-full"]
    assert (metrics["events"], metrics["matches"]) == (2, 1)


def test_other_types_never_reach_the_rule() -> None:
    feed = Feed()
    engine = engine_for(BINS)
    run(engine, [feed.change("Streetlight", "urn:ngsi-ld:Streetlight:l1", T0, powerState="on")])
    assert engine.metrics()["rules"]["bin-full"]["events"] == 0


def test_same_input_gives_the_same_firings() -> None:
    def once() -> list[tuple[str, str, str, str]]:
        feed = Feed()
        changes = [
            feed.change(
                "WasteContainer",
                f"urn:ngsi-ld:WasteContainer:b{i % 3}",
                T0 + timedelta(seconds=i * 7),
                fillingLevel=(i * 37 % 100) / 100,
            )
            for i in range(60)
        ]
        return brief(run(engine_for(BINS, lateness=30), changes))

    first = once()
    assert first
    assert once() == first


def test_a_deleted_device_is_not_reported_silent() -> None:
    from smartcity.storage.base import ChangeKind, ChangeRecord

    engine = engine_for(
        """
rules:
  - {id: silent, kind: absence, when: {type: WasteContainer}, after: 10m}
"""
    )
    feed = Feed()
    first = feed.change("WasteContainer", "b1", T0, fillingLevel=0.2)
    other = feed.change("WasteContainer", "b2", T0, fillingLevel=0.2)
    gone = ChangeRecord(
        9, "changdong", ChangeKind.DELETE, "2026-11-27T10:01:00Z", first.entity, [], {}
    )
    fired = run(engine, [first, other, gone], until=T0 + timedelta(minutes=30))
    assert [(f.key, f.kind) for f in fired] == [("b2", "raise")]


def test_no_lateness_fires_at_once_and_the_clock_delay_keeps_late_arrivals() -> None:
    rule_set = engine_for(BINS).rule_set
    prompt = Engine(rule_set, lateness=0, clock_delay=5)
    strict = Engine(rule_set, lateness=0)
    feed = Feed()
    bins = [
        feed.change("WasteContainer", f"urn:ngsi-ld:WasteContainer:b{n}", T0, fillingLevel=0.95)
        for n in range(2)
    ]
    assert brief(prompt.process(bins[0])) == [("bin-full", "raise", bins[0].entity.id, iso(T0))]
    assert len(strict.process(bins[0])) == 1
    # The clock moved on 3 s while the second reading (of the same moment) was on its way.
    prompt.advance(T0 + timedelta(seconds=3))
    strict.advance(T0 + timedelta(seconds=3))
    assert len(prompt.process(bins[1])) == 1
    assert strict.process(bins[1]) == []
    assert (prompt.too_late, strict.too_late) == (0, 1)


def test_a_change_no_rule_reads_does_not_move_the_engines_time() -> None:
    engine = Engine(engine_for(BINS).rule_set, lateness=0)
    feed = Feed()
    later = T0 + timedelta(seconds=2)
    assert engine.process(feed.change("Alert", "urn:ngsi-ld:Alert:1", later, severity="high")) == []
    reading = feed.change("WasteContainer", "urn:ngsi-ld:WasteContainer:b1", T0, fillingLevel=0.95)
    assert brief(engine.process(reading)) == [("bin-full", "raise", reading.entity.id, iso(T0))]
    assert (engine.changes, engine.too_late) == (2, 0)


def test_a_reading_on_the_deadline_is_in_time_whatever_the_lateness_or_the_order() -> None:
    # Two air sensors report every five minutes at the same moments; the rule calls one silent
    # after five minutes without a reading. Each reading comes exactly on its deadline, so
    # nothing is silent: with any lateness, and whichever of a moment's readings comes first
    # (with no lateness the watermark is on that moment when the second one comes).
    rules = """
rules:
  - id: air-silent
    kind: absence
    when: {type: AirQualityObserved}
    after: 5m
"""
    for lateness in (0.0, 60.0):
        engine, feed = engine_for(rules, lateness=lateness), Feed()
        changes = [
            feed.change("AirQualityObserved", f"urn:ngsi-ld:AirQualityObserved:{name}", at, pm10=40)
            for step in range(4)
            for at in [T0 + timedelta(minutes=5 * step)]
            for name in (("a", "b") if step % 2 else ("b", "a"))
        ]
        assert run(engine, changes) == [], lateness
        # When the readings stop, each is silent five minutes after its last one.
        last = T0 + timedelta(minutes=15)
        fired = engine.advance(last + timedelta(minutes=5, seconds=1 + lateness))
        assert [(f.kind, f.at) for f in fired] == [("raise", iso(last + timedelta(minutes=5)))] * 2
