"""Feed gaps: when the engine heard nothing at all (it was stopped, or a simulation jumped hours
ahead), absence rules count silence from when the feed came back, not against every device."""

from __future__ import annotations

from datetime import datetime, timedelta

from smartcity.rules.engine import Engine
from smartcity.rules.firing import Firing
from smartcity.storage.base import ChangeRecord
from tests.rules.engine_support import T0, Feed, engine_for, iso

MINUTE = timedelta(minutes=1)
RULES = """
rules:
  - id: silent-detector
    kind: absence
    when: {type: TrafficFlowObserved}
    after: 3m
"""
A = "urn:ngsi-ld:TrafficFlowObserved:a"
B = "urn:ngsi-ld:TrafficFlowObserved:b"


def readings(feed: Feed, ids: list[str], start: datetime, minutes: int) -> list[ChangeRecord]:
    return [
        feed.change("TrafficFlowObserved", entity_id, start + n * MINUTE, intensity=n)
        for n in range(minutes)
        for entity_id in ids
    ]


def silences(fired: list[Firing]) -> list[tuple[str, str, str]]:
    return [(f.kind, f.key, f.at) for f in fired]


def step(engine: Engine, until: datetime, start: datetime) -> list[Firing]:
    """Move the engine's clock on minute by minute, as a worker's clock does."""
    fired: list[Firing] = []
    moment = start
    while moment <= until:
        fired.extend(engine.advance(moment))
        moment += MINUTE
    return fired


def test_a_simulation_that_jumps_hours_ahead_raises_only_the_device_still_silent() -> None:
    engine, feed = engine_for(RULES), Feed()
    later = T0 + timedelta(hours=12)
    fired = engine.advance(T0)  # the worker's clock runs
    for change in readings(feed, [A, B], T0, 10) + readings(feed, [A], later, 10):
        fired.extend(engine.process(change))
    # Both stopped at 10:09 and the feed with them; at 22:00 only A came back.
    assert silences(fired) == [("raise", B, iso(later + 3 * MINUTE))]
    assert fired[0].values["lastSeen"] == iso(T0 + 9 * MINUTE)


def test_a_device_that_stops_while_others_are_heard_is_silent_at_once() -> None:
    engine, feed = engine_for(RULES), Feed()
    changes = readings(feed, [A, B], T0, 10) + readings(feed, [A], T0 + 10 * MINUTE, 10)
    fired = [firing for change in changes for firing in engine.process(change)]
    assert silences(fired) == [("raise", B, iso(T0 + 12 * MINUTE))]


def test_a_worker_that_resumes_after_a_stop_gives_the_devices_their_interval() -> None:
    engine, feed = engine_for(RULES), Feed()
    for change in readings(feed, [A, B], T0, 10):
        engine.process(change)
    saved = engine.snapshot()
    # The platform was stopped for two hours; a worker restores the checkpoint and goes on.
    restarted = engine_for(RULES)
    restarted.restore(saved)
    back = T0 + timedelta(hours=2)
    restarted.resume(back)
    fired = step(restarted, back, back)
    for change in readings(feed, [A], back + MINUTE, 5):
        fired.extend(restarted.process(change))
    fired.extend(step(restarted, back + 6 * MINUTE, back + MINUTE))
    assert silences(fired) == [("raise", B, iso(back + 3 * MINUTE))]
    # A restore keeps the gap: the same engine restored again answers the same.
    again = engine_for(RULES)
    again.restore(restarted.snapshot())
    assert again.gaps == restarted.gaps
    assert restarted.gaps[-1] == ((T0 + 9 * MINUTE).timestamp(), back.timestamp())


def test_without_a_resume_the_stop_counts_as_every_devices_silence() -> None:
    engine, feed = engine_for(RULES), Feed()
    for change in readings(feed, [A, B], T0, 10):
        engine.process(change)
    fired = step(engine, T0 + timedelta(hours=2), T0 + timedelta(hours=2))
    assert silences(fired) == [
        ("raise", A, iso(T0 + 12 * MINUTE)),
        ("raise", B, iso(T0 + 12 * MINUTE)),
    ]


def test_changes_alone_count_a_quiet_stretch_as_silence() -> None:
    # A backtest, or a worker catching up from the log: no clock moves the engine's time.
    engine, feed = engine_for(RULES), Feed()
    later = T0 + timedelta(hours=12)
    fired = []
    for change in readings(feed, [A, B], T0, 10) + readings(feed, [A], later, 10):
        fired.extend(engine.process(change))
    assert silences(fired) == [
        ("raise", A, iso(T0 + 12 * MINUTE)),
        ("raise", B, iso(T0 + 12 * MINUTE)),
        ("clear", A, iso(later)),
    ]
