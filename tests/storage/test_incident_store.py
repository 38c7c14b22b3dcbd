"""The incident store on both backends: rows round-trip, versions guard, keys are unique."""

from __future__ import annotations

import pytest

from smartcity.core.errors import Conflict
from smartcity.storage.base import EntityStore
from smartcity.storage.incidents import Incident, IncidentFilter, SopStep, TimelineEvent, VideoShare
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlincidents import SqlIncidentStore

AT = "2026-11-27T09:00:00.000000Z"


def incident(incident_id: str = "INC-1", tenant: str = "dobong", **changes: object) -> Incident:
    values: dict[str, object] = {
        "id": incident_id,
        "tenant": tenant,
        "type": "crime",
        "subtype": "assault",
        "severity": "high",
        "status": "new",
        "title": "폭행",
        "description": "서울아레나 앞",
        "location": {"type": "Point", "coordinates": [127.0469, 37.6533]},
        "lon": 127.0469,
        "lat": 37.6533,
        "zone": "changdong-4",
        "source": "alert",
        "source_ref": "a1",
        "reported_by": "",
        "assignee": "",
        "related": ("urn:ngsi-ld:Camera:gate-1",),
        "alerts": ("a1",),
        "sop": {"check-cameras": SopStep(True, "kim", AT, "ok"), "notify-police": SopStep()},
        "version": 1,
        "created_at": AT,
        "updated_at": AT,
        "causes": ({"entityId": "urn:ngsi-ld:Camera:gate-1", "seq": 7},),
    }
    values.update(changes)
    return Incident(**values)  # type: ignore[arg-type]


@pytest.fixture
def incidents(store: EntityStore) -> SqlIncidentStore:
    assert isinstance(store, SqlEntityStore)
    SqlIncidentStore(store)  # creating the tables twice is harmless
    return SqlIncidentStore(store)


def test_an_incident_round_trips_with_its_timeline(incidents: SqlIncidentStore) -> None:
    stored = incident()
    with incidents.write() as tx:
        tx.insert(stored, ["alert:a1"])
        tx.append([TimelineEvent("dobong", "INC-1", AT, "system", "created", {"n": 1})])
    assert incidents.get("dobong", "INC-1") == stored
    assert incidents.get("nowon", "INC-1") is None
    with incidents.write() as tx:
        assert tx.incident_for_key("dobong", "alert:a1") == stored
        assert tx.incident_for_key("nowon", "alert:a1") is None
    events = incidents.timeline("dobong", "INC-1")
    assert [(e.kind, e.details) for e in events] == [("created", {"n": 1})]
    assert incidents.events_after(0, 10, tenant="nowon") == []
    assert incidents.last_seq() == events[0].seq


def test_a_stale_version_changes_nothing(incidents: SqlIncidentStore) -> None:
    with incidents.write() as tx:
        tx.insert(incident())
    with incidents.write() as tx:
        tx.update(incident(status="acknowledged", version=2), expected_version=1)

    def stale() -> None:
        with incidents.write() as tx:
            tx.append([TimelineEvent("dobong", "INC-1", AT, "x", "closed")])
            tx.update(incident(status="closed", version=2), expected_version=1)

    with pytest.raises(Conflict):
        stale()
    current = incidents.get("dobong", "INC-1")
    assert current is not None
    assert current.status == "acknowledged"
    assert incidents.timeline("dobong", "INC-1") == []  # the failed transaction left nothing


def test_an_idempotency_key_names_one_incident(incidents: SqlIncidentStore) -> None:
    with incidents.write() as tx:
        tx.insert(incident(), ["alert:a1"])
    with pytest.raises(Exception), incidents.write() as tx:  # noqa: B017, PT011
        tx.insert(incident("INC-2"), ["alert:a1"])
    assert incidents.get("dobong", "INC-2") is None


def test_filters_and_shares(incidents: SqlIncidentStore) -> None:
    with incidents.write() as tx:
        tx.insert(incident("INC-1"))
        tx.insert(incident("INC-2", type="fire", zone="changdong-1", lon=127.2, lat=37.7))
        tx.insert(incident("INC-3", status="closed", reported_by="p-police"))
        tx.add_share(
            VideoShare("s1", "dobong", "INC-1", "p-police", "police", ("c1", "c2"), ("g1", "g2"),
                       "kim", AT, "2026-11-27T09:30:00.000000Z")
        )  # fmt: skip

    def ids(where: IncidentFilter) -> list[str]:
        return sorted(i.id for i in incidents.page("dobong", where, 10, 0))

    assert ids(IncidentFilter(types=("fire",))) == ["INC-2"]
    assert ids(IncidentFilter(statuses=("new",), zone="changdong-4")) == ["INC-1"]
    assert ids(IncidentFilter(bbox=(127.0, 37.6, 127.1, 37.7))) == ["INC-1", "INC-3"]
    assert ids(IncidentFilter(ids=())) == []
    assert incidents.count("dobong", IncidentFilter(ids=("INC-2", "INC-9"))) == 1
    assert incidents.reported_by("dobong", "p-police") == ["INC-3"]
    (share,) = incidents.shares("dobong", principal_id="p-police")
    assert share.camera_ids == ("c1", "c2")
    assert share.active_at(AT)
    with incidents.write() as tx:
        tx.end_shares("dobong", "INC-1", AT)
    (ended,) = incidents.shares("dobong", "INC-1")
    assert ended.ended_at == AT
    assert not ended.active_at(AT)
    incidents.save_position("reader", 7)
    incidents.save_position("reader", 9)
    assert incidents.position("reader") == 9
    assert incidents.position("other") == 0
