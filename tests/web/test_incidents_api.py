"""/ops/v1/incidents: create, list and filter, lifecycle over HTTP, reports, alerts, roles."""

from __future__ import annotations

from smartcity.core.errors import NGSI_LD_ERRORS
from tests.web.access_city import City
from tests.web.ops_city import ARENA, INCIDENTS, city, clock, open_incident, platform

__all__ = ["city", "clock", "platform"]


def test_an_operator_runs_an_incident_through_its_lifecycle(city: City) -> None:
    incident = open_incident(city)
    assert incident["status"] == "new"
    assert incident["actions"] == ["acknowledge", "start", "close"]
    assert incident["typeName"] == {"ko": "범죄", "en": "Crime"}
    assert incident["sop"][0]["name"]["ko"] == "주변 CCTV 확인"
    url = f"{INCIDENTS}/{incident['id']}"
    acknowledged = city.call("operator", "POST", f"{url}/acknowledge", {"version": 1})
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["version"] == 2
    stale = city.call("operator", "POST", f"{url}/start", {"version": 1})
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"
    assert "someone changed it" in stale.json()["detail"]
    again = city.call("operator", "POST", f"{url}/acknowledge")
    assert again.status_code == 409
    assert again.json()["allowed"] == ["start", "resolve", "close"]
    assert again.json()["type"] == NGSI_LD_ERRORS + "Conflict"
    response = city.call("operator", "PUT", f"{url}/assignee", {"assignee": "창동지구대"})
    assert response.json()["assignee"] == "창동지구대"
    response = city.call("operator", "PUT", f"{url}/sop/notify-police", {"done": True})
    assert [s["done"] for s in response.json()["sop"]][2] is True
    missing_step = city.call("operator", "PUT", f"{url}/sop/dance", {"done": True})
    assert missing_step.status_code == 404
    assert city.call("operator", "POST", f"{url}/comments", {"text": "출동"}).status_code == 201
    for action in ("start", "resolve", "close"):
        response = city.call("operator", "POST", f"{url}/{action}")
        assert response.status_code == 200, response.text
    timeline = city.call("analyst", "GET", f"{url}/timeline").json()
    assert [e["event"] for e in timeline] == [
        "created", "acknowledged", "assigned", "sop-checked", "commented",
        "started", "resolved", "closed",
    ]  # fmt: skip
    assert {e["actor"] for e in timeline} == {"operator"}


def test_lists_filter_by_status_type_severity_zone_and_box(city: City) -> None:
    first = open_incident(city)
    open_incident(city, type="fire", subtype="building", severity="critical", zone="changdong-1")
    far = {"type": "Point", "coordinates": [127.2, 37.7]}
    open_incident(city, type="traffic", subtype="accident", severity="low", location=far)
    city.call("operator", "POST", f"{INCIDENTS}/{first['id']}/acknowledge")

    def ids(query: str) -> int:
        response = city.call("analyst", "GET", f"{INCIDENTS}?{query}&count=true")
        assert response.status_code == 200, response.text
        return int(response.headers["Total-Count"])

    assert ids("status=new") == 2
    assert ids("type=fire,traffic") == 2
    assert ids("severity=critical") == 1
    assert ids("zone=changdong-4") == 2
    box = f"{ARENA[0] - 0.01},{ARENA[1] - 0.01},{ARENA[0] + 0.01},{ARENA[1] + 0.01}"
    assert ids(f"bbox={box}") == 2
    assert city.call("analyst", "GET", f"{INCIDENTS}?status=lost").status_code == 400
    assert city.call("analyst", "GET", f"{INCIDENTS}?bbox=1,2,3").status_code == 400


def test_roles_and_tenants_are_enforced(city: City) -> None:
    incident = open_incident(city)
    url = f"{INCIDENTS}/{incident['id']}"
    body = {"type": "crime", "severity": "high", "title": "x"}
    assert city.call("anonymous", "POST", INCIDENTS, body).status_code == 401
    assert city.call("analyst", "POST", INCIDENTS, body).status_code == 403
    assert city.call("police", "POST", INCIDENTS, body).status_code == 403
    assert city.call("analyst", "POST", f"{url}/acknowledge").status_code == 403
    assert city.call("intruder", "GET", url).status_code == 403
    assert city.call("intruder", "GET", url, tenant="nowon").status_code == 404
    assert city.call("police", "GET", url).status_code == 404
    assert city.call("police", "GET", INCIDENTS).json() == []
    bad = city.call("operator", "POST", INCIDENTS, {**body, "type": "ufo"})
    assert bad.status_code == 400
    assert "unknown incident type" in bad.json()["detail"]


def test_partner_reports_are_idempotent_and_seen_by_their_agency(city: City) -> None:
    report = {
        "channel": "112",
        "reportId": "S-2026-112-0042",
        "subtype": "robbery",
        "location": {"type": "Point", "coordinates": list(ARENA)},
        "description": "편의점 강도 신고",
    }
    first = city.call("police", "POST", "/ops/v1/reports", report)
    assert first.status_code == 201, first.text
    second = city.call("police", "POST", "/ops/v1/reports", report)
    assert second.status_code == 200
    assert second.json()["outcome"] == "duplicate"
    incident = first.json()["incident"]
    assert incident["source"] == "112"
    assert incident["type"] == "crime"
    assert [i["id"] for i in city.call("police", "GET", INCIDENTS).json()] == [incident["id"]]
    assert city.call("fire", "GET", f"{INCIDENTS}/{incident['id']}").status_code == 404
    assert city.call("analyst", "POST", "/ops/v1/reports", report).status_code == 403
    no_place = city.call("fire", "POST", "/ops/v1/reports", {"channel": "119", "reportId": "1"})
    assert no_place.status_code == 400


def test_alerts_open_and_merge_incidents_once(city: City) -> None:
    alert = {
        "alertId": "urn:ngsi-ld:Alert:smoke-1",
        "ruleId": "smoke-near-arena",
        "category": "fire",
        "subCategory": "smoke",
        "severity": "high",
        "observedAt": "2026-11-27T09:00:00Z",
        "location": {"type": "Point", "coordinates": list(ARENA)},
        "related": ["urn:ngsi-ld:Camera:gate-1"],
    }
    first = city.call("operator", "POST", "/ops/v1/alerts", alert)
    assert first.status_code == 201, first.text
    assert city.call("operator", "POST", "/ops/v1/alerts", alert).json()["outcome"] == "duplicate"
    second = city.call("operator", "POST", "/ops/v1/alerts", {**alert, "alertId": "smoke-2"})
    assert second.json()["outcome"] == "merged"
    assert second.json()["incident"]["alerts"] == ["urn:ngsi-ld:Alert:smoke-1", "smoke-2"]
    invalid = city.call("operator", "POST", "/ops/v1/alerts", {**alert, "observedAt": "soon"})
    assert invalid.status_code == 400
    assert city.call("police", "POST", "/ops/v1/alerts", alert).status_code == 403
