"""Patterns, windows and keys: sequences, absences, counts, tumbling blocks, zones and cells."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.rules.engine_support import T0, Feed, Rel, brief, engine_for, iso, point, run

MINUTE = timedelta(minutes=1)
CAM = "CrowdFlowObserved"


def test_a_followed_by_b_within_t_on_the_same_key() -> None:
    engine = engine_for("""
rules:
  - id: violence-then-running
    kind: sequence
    sequence:
      first: {type: CrowdFlowObserved, q: detectedEvent=="violence"}
      then: {type: CrowdFlowObserved, q: detectedEvent=="running"}
      within: 2m
""")
    feed = Feed()
    changes = [
        feed.change(CAM, "c1", T0, detectedEvent="violence"),
        feed.change(CAM, "c2", T0 + MINUTE, detectedEvent="running"),  # other key
        feed.change(CAM, "c1", T0 + 90 * timedelta(seconds=1), detectedEvent="running"),
        feed.change(CAM, "c2", T0 + 10 * MINUTE, detectedEvent="violence"),
        feed.change(CAM, "c2", T0 + 13 * MINUTE, detectedEvent="running"),  # too late
    ]
    fired = run(engine, changes)
    assert brief(fired) == [("violence-then-running", "fire", "c1", "2026-11-27T10:01:30Z")]
    assert fired[0].values["gap"] == 90
    assert [e.entity_id for e in fired[0].evidence] == ["c1", "c1"]


def test_a_followed_by_b_within_a_distance() -> None:
    engine = engine_for("""
rules:
  - id: smoke-then-crowd
    kind: sequence
    sequence:
      first: {type: CrowdFlowObserved, q: detectedEvent=="smoke"}
      then: {type: CrowdFlowObserved, q: peopleCount>=50}
      within: 10m
      distance: 200
""")
    feed = Feed()
    changes = [
        feed.change(CAM, "c1", T0, detectedEvent="smoke", location=point(127.0400, 37.6500)),
        feed.change(CAM, "far", T0 + MINUTE, peopleCount=80, location=point(127.0500, 37.6500)),
        feed.change(
            CAM, "near", T0 + 2 * MINUTE, peopleCount=80, location=point(127.0410, 37.6500)
        ),
    ]
    assert [(f.key, f.values["then"]) for f in run(engine, changes)] == [("c1", "near")]


def test_a_not_followed_by_b_fires_when_the_time_runs_out() -> None:
    engine = engine_for("""
rules:
  - id: alarm-not-acknowledged
    kind: sequence
    sequence:
      first: {type: Device, q: deviceState=="alarm"}
      then: {type: Device, q: deviceState=="acknowledged"}
      within: 5m
      absent: true
""")
    feed = Feed()
    changes = [
        feed.change("Device", "d1", T0, deviceState="alarm"),
        feed.change("Device", "d2", T0, deviceState="alarm"),
        feed.change("Device", "d1", T0 + 2 * MINUTE, deviceState="acknowledged"),
        feed.change("Device", "d3", T0 + 20 * MINUTE, deviceState="ok"),  # moves time on
    ]
    assert brief(run(engine, changes)) == [
        ("alarm-not-acknowledged", "fire", "d2", "2026-11-27T10:05:00Z")
    ]


def test_n_occurrences_within_t() -> None:
    engine = engine_for("""
rules:
  - id: three-falls
    kind: aggregate
    when: {type: CrowdFlowObserved, q: detectedEvent=="fall"}
    key: global
    window: {size: 10m}
    aggregates: {falls: count(), cameras: distinct(id)}
    having: falls>=3
""")
    feed = Feed()
    times = [0, 4, 12, 15, 18]
    changes = [
        feed.change(CAM, f"c{i}", T0 + m * MINUTE, detectedEvent="fall")
        for i, m in enumerate(times)
    ]
    fired = run(engine, changes)
    assert [(f.kind, f.at, f.values["falls"]) for f in fired] == [
        ("raise", "2026-11-27T10:18:00Z", 3)
    ]
    assert fired[0].values["cameras"] == 3


def test_tumbling_count_windows_and_aggregates() -> None:
    engine = engine_for("""
rules:
  - id: noisy-blocks
    kind: aggregate
    when: {type: NoiseLevelObserved}
    window: {count: 4, tumbling: true}
    aggregates:
      loud: max(LAeq)
      p50: percentile(LAeq, 50)
      mean: avg(LAeq)
      total: sum(LAeq)
      low: min(LAeq)
      per_hour: rate()
      trend: rate(LAeq)
    having: p50>=60
""")
    feed = Feed()
    levels = [50, 62, 70, 64, 40, 41, 42, 43]
    changes = [
        feed.change("NoiseLevelObserved", "n1", T0 + i * MINUTE, LAeq=v)
        for i, v in enumerate(levels)
    ]
    fired = run(engine, changes)
    assert len(fired) == 1
    values = fired[0].values
    assert values["loud"] == 70
    assert values["p50"] == 63
    assert values["mean"] == pytest.approx(61.5)
    assert (values["total"], values["low"]) == (246, 50)
    assert values["per_hour"] == pytest.approx(4 / (3 / 60))
    assert values["trend"] == pytest.approx(14 / (3 / 60))
    assert fired[0].at == iso(T0 + 3 * MINUTE)


def test_a_tumbling_time_block_closes_when_the_watermark_passes_its_end() -> None:
    engine = engine_for("""
rules:
  - id: hourly-crowd
    kind: aggregate
    when: {type: CrowdFlowObserved}
    window: {size: 1h, tumbling: true}
    aggregates: {people: sum(peopleCount)}
    having: people>=100
""")
    feed = Feed()
    changes = [feed.change(CAM, "c1", T0 + i * 10 * MINUTE, peopleCount=30) for i in range(5)]
    assert run(engine, changes) == []
    fired = engine.advance(T0 + timedelta(hours=1, seconds=1))
    assert [(f.at, f.values["people"]) for f in fired] == [("2026-11-27T11:00:00Z", 150)]


def test_keys_by_relationship_zone_and_grid() -> None:
    engine = engine_for("""
zones:
  west: {type: Polygon, coordinates: [[[127.00, 37.60], [127.05, 37.60],
      [127.05, 37.70], [127.00, 37.70], [127.00, 37.60]]]}
  east: {type: Polygon, coordinates: [[[127.05, 37.60], [127.10, 37.60],
      [127.10, 37.70], [127.05, 37.70], [127.05, 37.60]]]}
rules:
  - id: lot-filling
    kind: aggregate
    when: {type: ParkingSpot, q: status=="occupied"}
    key: {relationship: refParkingSite}
    window: {size: 1h}
    aggregates: {taken: distinct(id)}
    having: taken>=2
  - id: zone-crowd
    kind: aggregate
    when: {type: CrowdFlowObserved}
    key: {zone: "*"}
    window: {count: 1}
    aggregates: {people: last(peopleCount)}
    having: people>=10
  - id: cell-crowd
    kind: aggregate
    when: {type: CrowdFlowObserved}
    key: {grid: 250}
    window: {count: 1}
    aggregates: {people: last(peopleCount)}
    having: people>=10
""")
    feed = Feed()
    lot = Rel("urn:ngsi-ld:OffStreetParking:arena")
    changes = [
        feed.change("ParkingSpot", "s1", T0, status="occupied", refParkingSite=lot),
        feed.change("ParkingSpot", "s2", T0 + MINUTE, status="occupied", refParkingSite=lot),
        feed.change(CAM, "c1", T0 + 2 * MINUTE, peopleCount=20, location=point(127.07, 37.65)),
    ]
    fired = run(engine, changes)
    keys = {(f.rule_id, f.key) for f in fired}
    assert ("lot-filling", "urn:ngsi-ld:OffStreetParking:arena") in keys
    assert ("zone-crowd", "east") in keys
    cell = next(f for f in fired if f.rule_id == "cell-crowd")
    assert cell.key.startswith("grid:250:")
    assert cell.location is not None
    assert cell.location["type"] == "Polygon"


def test_suppression_keeps_one_firing_per_key_per_period() -> None:
    engine = engine_for("""
rules:
  - id: sos
    kind: match
    when: {type: Device, q: sos==true}
    suppress: 10m
""")
    feed = Feed()
    minutes = [0, 1, 5, 11, 12]
    changes = [feed.change("Device", "w1", T0 + m * MINUTE, sos=True) for m in minutes]
    changes.insert(2, feed.change("Device", "w2", T0 + 2 * MINUTE, sos=True))
    fired = run(engine, changes)
    assert [(f.key, f.at) for f in fired] == [
        ("w1", "2026-11-27T10:00:00Z"),
        ("w2", "2026-11-27T10:02:00Z"),
        ("w1", "2026-11-27T10:11:00Z"),
    ]
    assert engine.metrics()["rules"]["sos"]["suppressed"] == 3


def test_schedules_by_weekday_hours_and_calendar() -> None:
    engine = engine_for("""
calendars:
  arena-event-days: [2026-11-27]
rules:
  - id: event-evening
    kind: match
    when: {type: Device, q: sos==true}
    schedule: {calendar: arena-event-days, hours: "18:00-02:00", days: [fri]}
""")
    feed = Feed()
    # 2026-11-27 is a Friday; 10:00Z is 19:00 in Seoul, 16:30Z is 01:30 on Saturday
    # (still Friday evening).
    moments = [
        T0,
        T0 + timedelta(hours=6, minutes=30),
        T0 + timedelta(hours=8),
        T0 - timedelta(hours=2),
    ]
    changes = [feed.change("Device", f"w{i}", m, sos=True) for i, m in enumerate(moments)]
    assert [f.key for f in run(engine, changes)] == ["w0", "w1"]


def test_joins_with_current_state_follow_the_change_stream() -> None:
    engine = engine_for("""
rules:
  - id: dark-crowd
    kind: match
    when: {type: CrowdFlowObserved, q: peopleCount>=50}
    require:
      - {type: Streetlight, near: 100, q: powerState=="off", count: ">= 2"}
""")
    feed = Feed()
    here = (127.05, 37.65)
    changes = [
        feed.change("Streetlight", "l1", T0, powerState="off", location=point(127.0501, 37.65)),
        feed.change("Streetlight", "l2", T0, powerState="on", location=point(127.0502, 37.65)),
        feed.change(CAM, "c1", T0 + MINUTE, peopleCount=60, location=point(*here)),
        feed.change("Streetlight", "l2", T0 + 2 * MINUTE, powerState="off"),
        feed.change(CAM, "c1", T0 + 3 * MINUTE, peopleCount=70),
    ]
    assert [f.at for f in run(engine, changes)] == ["2026-11-27T10:03:00Z"]
