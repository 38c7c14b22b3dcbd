"""112 emergency video support over HTTP: the police see exactly the shared cameras, for the
share's time, through signed links; guessed ids, tampered or expired links and closed
incidents open nothing; every link and view is on the timeline and in the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from smartcity.auth.principal import Caller
from smartcity.core.clock import ManualClock
from smartcity.platform import Platform
from smartcity.storage.accounts import AuditFilter
from tests.web.access_city import City
from tests.web.ops_city import (
    ENTITIES,
    INCIDENTS,
    TENANT,
    camera_id,
    city,
    clock,
    open_incident,
    platform,
)

__all__ = ["city", "clock", "platform"]
GATES = [camera_id("gate-1"), camera_id("gate-2")]


def share(city: City, incident: dict[str, Any], cameras: list[str], minutes: float = 30) -> Any:
    body = {"agency": "police", "cameras": cameras, "minutes": minutes}
    return city.call("operator", "POST", f"{INCIDENTS}/{incident['id']}/shares", body)


def link(city: City, who: str, incident_id: str, camera: str) -> Any:
    return city.call(who, "POST", f"{INCIDENTS}/{incident_id}/cameras/{camera}/link", {})


def visible_cameras(city: City, who: str) -> list[str]:
    response = city.call(who, "GET", f"{ENTITIES}?type=Camera")
    assert response.status_code == 200, response.text
    return sorted(entity["id"] for entity in response.json())


def test_cameras_near_an_incident_nearest_first_with_view_direction(city: City) -> None:
    incident = open_incident(city)
    response = city.call("operator", "GET", f"{INCIDENTS}/{incident['id']}/cameras")
    assert response.status_code == 200, response.text
    cameras = response.json()
    assert [c["id"] for c in cameras] == [*GATES, camera_id("plaza")]  # "far" is 900 m away
    assert [round(c["distance"]) for c in cameras] == [40, 150, 300]
    assert [c["viewDirection"] for c in cameras] == [180.0, 0.0, 180.0]
    assert [c["facesIncident"] for c in cameras] == [True, False, True]
    near = city.call("operator", "GET", f"{INCIDENTS}/{incident['id']}/cameras?radius=100")
    assert [c["id"] for c in near.json()] == [GATES[0]]
    assert city.call("police", "GET", f"{INCIDENTS}/{incident['id']}/cameras").status_code == 403
    traffic = open_incident(city, type="traffic", subtype="accident")
    refused = city.call("operator", "GET", f"{INCIDENTS}/{traffic['id']}/cameras")
    assert refused.status_code == 409
    assert "does not qualify" in refused.json()["detail"]


def test_the_police_see_exactly_the_shared_cameras(city: City, platform: Platform) -> None:
    incident = open_incident(city)
    other = open_incident(city, title="다른 사건")
    assert visible_cameras(city, "police") == []
    granted = share(city, incident, GATES)
    assert granted.status_code == 201, granted.text
    assert granted.json()["active"] is True
    # The police see that incident and those two cameras, nothing else.
    assert [i["id"] for i in city.call("police", "GET", INCIDENTS).json()] == [incident["id"]]
    assert city.call("police", "GET", f"{INCIDENTS}/{other['id']}").status_code == 404
    assert visible_cameras(city, "police") == GATES
    assert visible_cameras(city, "fire") == []
    shares = city.call("police", "GET", f"{INCIDENTS}/{incident['id']}/shares").json()
    assert [s["cameras"] for s in shares] == [GATES]
    for camera in GATES:
        issued = link(city, "police", incident["id"], camera)
        assert issued.status_code == 200, issued.text
        opened = city.client.get(issued.json()["href"])
        assert opened.status_code == 200
        assert opened.headers["content-type"].startswith("image/svg+xml")
        assert camera in opened.text
    # Guessing: a near camera not shared, a camera that does not exist, another incident.
    for camera in (camera_id("plaza"), camera_id("far"), camera_id("does-not-exist")):
        assert link(city, "police", incident["id"], camera).status_code == 404
    assert link(city, "police", other["id"], GATES[0]).status_code == 404
    assert link(city, "fire", incident["id"], GATES[0]).status_code == 404
    assert link(city, "analyst", incident["id"], GATES[0]).status_code == 403
    events = city.call("operator", "GET", f"{INCIDENTS}/{incident['id']}/timeline").json()
    views = [(e["event"], e["actor"], e["details"].get("camera")) for e in events[1:]]
    assert views == [
        ("share-granted", "operator", None),
        ("link-issued", "police", GATES[0]),
        ("camera-viewed", "police", GATES[0]),
        ("link-issued", "police", GATES[1]),
        ("camera-viewed", "police", GATES[1]),
    ]
    audit = platform.access.accounts.audit(AuditFilter(TENANT, limit=1000))
    recorded = [(r.principal, r.action, r.target) for r in audit if r.action.startswith("video")]
    assert ("police", "video.view", GATES[1]) in recorded
    assert ("operator", "video.share", GATES[0]) in recorded


def test_closing_the_incident_ends_the_share_and_its_links(city: City) -> None:
    incident = open_incident(city)
    assert share(city, incident, GATES).status_code == 201
    href = link(city, "police", incident["id"], GATES[0]).json()["href"]
    closed = city.call("operator", "POST", f"{INCIDENTS}/{incident['id']}/close", {"note": "검거"})
    assert closed.status_code == 200, closed.text
    assert city.client.get(href).status_code == 403
    assert visible_cameras(city, "police") == []
    assert city.call("police", "GET", INCIDENTS).json() == []
    assert link(city, "police", incident["id"], GATES[0]).status_code == 404
    shares = city.call("operator", "GET", f"{INCIDENTS}/{incident['id']}/shares").json()
    assert [s["active"] for s in shares] == [False]
    kinds = [
        e["event"]
        for e in city.call("operator", "GET", f"{INCIDENTS}/{incident['id']}/timeline").json()
    ]
    assert kinds[-2:] == ["closed", "share-ended"]
    reopened = city.call("operator", "POST", f"{INCIDENTS}/{incident['id']}/reopen")
    assert reopened.status_code == 200
    assert visible_cameras(city, "police") == []  # a reopened incident shares anew


def test_shares_and_links_expire(city: City, clock: ManualClock) -> None:
    incident = open_incident(city)
    assert share(city, incident, GATES, minutes=10).status_code == 201
    href = link(city, "police", incident["id"], GATES[0]).json()["href"]
    clock.advance(timedelta(minutes=6))  # the link's 5 minutes are over, the share's 10 not
    assert city.client.get(href).status_code == 403
    href = link(city, "police", incident["id"], GATES[0]).json()["href"]
    assert city.client.get(href).status_code == 200
    clock.advance(timedelta(minutes=5))  # the share is over
    assert city.client.get(href).status_code == 403
    assert link(city, "police", incident["id"], GATES[0]).status_code == 404
    assert visible_cameras(city, "police") == []
    assert city.call("police", "GET", INCIDENTS).json() == []


def test_tampered_links_open_nothing(city: City) -> None:
    incident = open_incident(city)
    assert share(city, incident, [GATES[0]]).status_code == 201
    href = link(city, "police", incident["id"], GATES[0]).json()["href"]
    token = href.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (f"{forged}.{signature}", f"{payload}.{signature[:-1]}x", payload, "nonsense"):
        response = city.client.get(f"/ops/v1/video/{bad}")
        assert response.status_code == 403, bad


def test_an_end_to_end_share_refuses_what_it_should(city: City) -> None:
    incident = open_incident(city)
    url = f"{INCIDENTS}/{incident['id']}/shares"
    cases = [
        ({"agency": "police", "cameras": [camera_id("far")]}, 400),  # not near the incident
        ({"agency": "analyst", "cameras": GATES}, 400),  # not an agency
        ({"agency": "police", "cameras": []}, 400),
        ({"agency": "police", "cameras": GATES, "minutes": 600}, 400),  # longer than allowed
    ]
    for body, status in cases:
        assert city.call("operator", "POST", url, body).status_code == status, body
    assert (
        city.call("police", "POST", url, {"agency": "police", "cameras": GATES}).status_code == 403
    )
    made = share(city, incident, GATES).json()
    ended = city.call("operator", "DELETE", f"{url}/{made['id']}")
    assert ended.status_code == 204
    assert visible_cameras(city, "police") == []


def test_operators_are_redirected_to_the_video_system(city: City) -> None:
    incident = open_incident(city)
    issued = link(city, "operator", incident["id"], camera_id("plaza"))
    assert issued.status_code == 200, issued.text
    opened = city.client.get(issued.json()["href"], follow_redirects=False)
    assert opened.status_code == 307
    assert opened.headers["location"] == "https://vms.example/streams/plaza"
    recorded = city.call(
        "operator",
        "POST",
        f"{INCIDENTS}/{incident['id']}/cameras/{camera_id('plaza')}/link",
        {"mode": "recorded", "at": "2026-11-27T08:55:00Z"},
    )
    opened = city.client.get(recorded.json()["href"], follow_redirects=False)
    assert opened.headers["location"].endswith("?start=2026-11-27T08%3A55%3A00Z")
    # A disabled operator's links stop working.
    city.platform.accounts.set_disabled(Caller.system(TENANT), "operator", True)
    assert city.client.get(issued.json()["href"]).status_code == 403


def test_an_agency_sees_only_its_own_video_events(city: City) -> None:
    incident = open_incident(city)
    url = f"{INCIDENTS}/{incident['id']}"
    assert share(city, incident, [GATES[0]]).status_code == 201
    to_fire = {"agency": "fire", "cameras": [GATES[1]], "minutes": 30}
    assert city.call("operator", "POST", f"{url}/shares", to_fire).status_code == 201
    assert link(city, "fire", incident["id"], GATES[1]).status_code == 200
    assert link(city, "fire", incident["id"], GATES[0]).status_code == 404
    assert visible_cameras(city, "fire") == [GATES[1]]
    assert city.call("police", "POST", f"{url}/comments", {"text": "도착"}).status_code == 201
    assert city.call("analyst", "POST", f"{url}/comments", {"text": "x"}).status_code == 403
    seen = city.call("police", "GET", f"{url}/timeline").json()
    assert [(e["event"], e["actor"]) for e in seen] == [
        ("created", "operator"),
        ("share-granted", "operator"),
        ("commented", "police"),
    ]
    assert len(city.call("operator", "GET", f"{url}/timeline").json()) == 5
