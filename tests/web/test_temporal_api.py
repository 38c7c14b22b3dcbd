"""The temporal API over HTTP, on both backends: history of entities changed through the API."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from tests.web.conftest import admin_client

ENTITIES = "/ngsi-ld/v1/entities"
TEMPORAL = "/ngsi-ld/v1/temporal/entities"
SENSOR = "urn:ngsi-ld:Sensor:t1"
READINGS = [20.0, 21.0, 22.5, 19.0, 18.0, 25.0]  # one an hour from midnight


def hour(number: int) -> str:
    return f"2026-01-01T{number:02d}:00:00Z"


def observe(client: TestClient, entity_id: str = SENSOR, **headers: str) -> None:
    """Create a sensor and update its temperature once an hour (observedAt), through the API."""
    body = {
        "id": entity_id,
        "type": "Sensor",
        "temperature": {"value": READINGS[0], "observedAt": hour(0)},
    }
    assert client.post(ENTITIES, json=body, headers=headers).status_code == 201
    for number, value in enumerate(READINGS[1:], start=1):
        update = {"temperature": {"value": value, "observedAt": hour(number)}}
        response = client.patch(f"{ENTITIES}/{entity_id}/attrs", json=update, headers=headers)
        assert response.status_code == 204, response.text


def history(client: TestClient, entity_id: str = SENSOR, **params: str) -> Any:
    response = client.get(f"{TEMPORAL}/{entity_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_update_is_in_the_history_with_instance_ids(client: TestClient) -> None:
    observe(client)
    body = history(client)
    instances = body["temperature"]
    assert [i["value"] for i in instances] == READINGS
    assert [i["observedAt"] for i in instances] == [hour(n) for n in range(6)]
    assert len({i["instanceId"] for i in instances}) == 6
    assert body["type"] == "Sensor"


def test_timerel_and_last_n(client: TestClient) -> None:
    observe(client)
    after = history(client, timerel="after", timeAt=hour(3), format="temporalValues")
    assert after["temperature"]["values"] == [
        [19.0, "2026-01-01T03:00:00.000000Z"],
        [18.0, "2026-01-01T04:00:00.000000Z"],
        [25.0, "2026-01-01T05:00:00.000000Z"],
    ]
    before = history(client, timerel="before", timeAt=hour(2), format="temporalValues")
    assert [v for v, _ in before["temperature"]["values"]] == READINGS[:2]
    between = history(client, timerel="between", timeAt=hour(1), endTimeAt=hour(4))
    assert [i["value"] for i in between["temperature"]] == READINGS[1:4]
    last = history(client, lastN="2", options="temporalValues")
    assert [v for v, _ in last["temperature"]["values"]] == READINGS[-2:]


def test_aggregations_per_period_match_values_computed_by_hand(client: TestClient) -> None:
    observe(client)
    methods = "totalCount,distinctCount,sum,avg,min,max,stddev,sumsq"
    body = history(
        client,
        format="aggregatedValues",
        aggrMethods=methods,
        aggrPeriodDuration="PT2H",
        timerel="between",
        timeAt=hour(0),
        endTimeAt=hour(6),
    )
    temperature = body["temperature"]
    assert temperature["type"] == "Property"
    periods = [READINGS[0:2], READINGS[2:4], READINGS[4:6]]
    starts = [hour(0), hour(2), hour(4)]
    for position, values in enumerate(periods):
        begin, end = starts[position], hour(2 * position + 2)
        expected = {
            "totalCount": len(values),
            "distinctCount": len(set(values)),
            "sum": sum(values),
            "avg": sum(values) / len(values),
            "min": min(values),
            "max": max(values),
            "stddev": statistics.stdev(values),
            "sumsq": sum(v * v for v in values),
        }
        for method, value in expected.items():
            got, got_begin, got_end = temperature[method][position]
            assert math.isclose(got, value, rel_tol=1e-9), (method, position)
            shown = (begin.replace("Z", ".000000Z"), end.replace("Z", ".000000Z"))
            assert (got_begin, got_end) == shown
    whole = history(client, format="aggregatedValues", aggrMethods="avg,totalCount")
    assert whole["temperature"]["totalCount"][0][0] == 6
    assert math.isclose(whole["temperature"]["avg"][0][0], sum(READINGS) / 6)


def test_query_by_type_q_and_count(client: TestClient) -> None:
    observe(client)
    observe(client, "urn:ngsi-ld:Sensor:t2")
    response = client.get(
        TEMPORAL, params={"type": "Sensor", "lastN": "1", "count": "true", "limit": "1"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["NGSILD-Results-Count"] == "2"
    (only,) = response.json()
    assert only["id"] == SENSOR
    assert [i["value"] for i in only["temperature"]] == [25.0]
    response = client.get(TEMPORAL, params={"q": "temperature>24", "type": "Sensor"})
    assert [e["id"] for e in response.json()] == [SENSOR, "urn:ngsi-ld:Sensor:t2"]
    response = client.get(TEMPORAL, params={"q": "temperature<24", "type": "Sensor"})
    assert response.json() == []


QUERY = "/ngsi-ld/v1/temporal/entityOperations/query"


def test_query_with_a_body_answers_as_the_get_does(client: TestClient) -> None:
    observe(client)
    observe(client, "urn:ngsi-ld:Sensor:t2")
    body = {
        "type": "Query",
        "entities": [{"type": "Sensor"}],
        "attrs": ["temperature"],
        "q": "temperature>24",
        "temporalQ": {"timerel": "between", "timeAt": hour(1), "endTimeAt": hour(4)},
    }
    response = client.post(QUERY, json=body, params={"count": "true", "limit": "1"})
    assert response.status_code == 200, response.text
    assert response.headers["NGSILD-Results-Count"] == "2"
    (first,) = response.json()
    expected = client.get(
        TEMPORAL,
        params={
            "type": "Sensor",
            "attrs": "temperature",
            "q": "temperature>24",
            "timerel": "between",
            "timeAt": hour(1),
            "endTimeAt": hour(4),
            "limit": "1",
        },
    ).json()
    assert [first] == expected
    assert [i["value"] for i in first["temperature"]] == READINGS[1:4]
    last = {
        "type": "Query",
        "entities": [{"id": SENSOR, "type": "Sensor"}],
        "temporalQ": {"lastN": 2},
    }
    response = client.post(QUERY, json=last, params={"format": "temporalValues"})
    assert [v for v, _ in response.json()[0]["temperature"]["values"]] == READINGS[-2:]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"type": "Subscription"}, "Query object"),
        ({"type": "Query", "temporalQ": {"when": "now"}}, "no member 'when'"),
        ({"type": "Query", "entities": [{"type": "Sensor"}], "temporalQ": "x"}, "temporalQ"),
        ({"type": "Query", "entities": [{"type": "Sensor"}], "temporalQ": {"timerel": "after"}},
         "timeAt"),
    ],
)  # fmt: skip
def test_query_bodies_that_are_wrong_say_what_to_fix(
    client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    response = client.post(QUERY, json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


def test_query_by_body_keeps_tenants_apart(platform: Platform, client: TestClient) -> None:
    observe(client)
    key = platform.accounts.create_key(Caller.system("police"), "police-reader", ["admin"]).key
    body = {"type": "Query", "entities": [{"type": "Sensor"}]}
    response = client.post(QUERY, json=body, headers={"X-API-Key": key, "NGSILD-Tenant": "police"})
    assert response.status_code == 200
    assert response.json() == []  # another tenant's history is not there


def test_tenants_see_only_their_own_history(client: TestClient, platform: Platform) -> None:
    platform.accounts.grant(Caller.system("police"), "test-admin", ["admin"])
    observe(client, **{"NGSILD-Tenant": "police"})
    assert client.get(f"{TEMPORAL}/{SENSOR}").status_code == 404
    assert client.get(TEMPORAL, params={"type": "Sensor"}).json() == []
    police = client.get(f"{TEMPORAL}/{SENSOR}", headers={"NGSILD-Tenant": "police"})
    assert [i["value"] for i in police.json()["temperature"]] == READINGS


def test_deleted_entity_keeps_its_history_with_the_deletion(client: TestClient) -> None:
    observe(client)
    assert client.delete(f"{ENTITIES}/{SENSOR}").status_code == 204
    body = history(client, lastN="2", options="sysAttrs")
    assert "deletedAt" in body
    kept, deletion = body["temperature"]
    assert kept["value"] == READINGS[-1]
    assert deletion["value"] == "urn:ngsi-ld:null"
    assert deletion["deletedAt"] == body["deletedAt"]
    assert client.get(TEMPORAL, params={"type": "Sensor"}).json()[0]["id"] == SENSOR


def test_temporal_writes_corrections_and_deletions(client: TestClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Sensor:t9",
        "type": "Sensor",
        "temperature": [
            {"type": "Property", "value": 1, "observedAt": hour(1)},
            {"type": "Property", "value": 2, "observedAt": hour(2)},
        ],
    }
    created = client.post(TEMPORAL, json=body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"{TEMPORAL}/urn:ngsi-ld:Sensor:t9"
    assert client.post(TEMPORAL, json={**body, "temperature": []}).status_code == 204
    more = {"temperature": [{"value": 3, "observedAt": hour(3)}], "humidity": {"value": 40}}
    path = f"{TEMPORAL}/urn:ngsi-ld:Sensor:t9"
    assert client.post(f"{path}/attrs", json=more).status_code == 204
    instances = history(client, "urn:ngsi-ld:Sensor:t9")["temperature"]
    assert [i["value"] for i in instances] == [1, 2, 3]
    first, second = instances[0]["instanceId"], instances[1]["instanceId"]
    fix = {"temperature": [{"value": 1.5, "observedAt": hour(1)}]}
    assert client.patch(f"{path}/attrs/temperature/{first}", json=fix).status_code == 204
    assert client.delete(f"{path}/attrs/temperature/{second}").status_code == 204
    assert client.delete(f"{path}/attrs/temperature/{second}").status_code == 404
    instances = history(client, "urn:ngsi-ld:Sensor:t9")["temperature"]
    assert [(i["value"], i["instanceId"] == first) for i in instances] == [(1.5, True), (3, False)]
    assert client.delete(f"{path}/attrs/humidity").status_code == 204
    assert "humidity" not in history(client, "urn:ngsi-ld:Sensor:t9")
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    assert client.post(f"{path}/attrs", json=more).status_code == 404


def test_simplified_input_is_refused_with_a_hint(client: TestClient) -> None:
    body = {"id": "urn:ngsi-ld:Sensor:s", "type": "Sensor", "t": {"values": [[1, hour(1)]]}}
    response = client.post(TEMPORAL, json=body)
    assert response.status_code == 400
    assert "simplified" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "fix"),
    [
        ({"timerel": "during", "timeAt": hour(1)}, "before, after or between"),
        ({"timerel": "before"}, "needs timeAt"),
        ({"timerel": "after", "timeAt": "yesterday"}, "ISO 8601"),
        ({"timerel": "between", "timeAt": hour(2), "endTimeAt": hour(1)}, "later than"),
        ({"lastN": "0"}, "at least 1"),
        ({"format": "aggregatedValues"}, "needs aggrMethods"),
        ({"format": "aggregatedValues", "aggrMethods": "median"}, "unknown aggregation"),
        (
            {"format": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "P1M"},
            "months",
        ),
        ({"aggrMethods": "avg"}, "aggregatedValues"),
        ({"timeproperty": "seenAt"}, "timeproperty"),
        ({"options": "keyValues"}, "do not apply"),
        ({"colour": "red"}, "unknown query parameter"),
    ],
)
def test_bad_parameters_say_what_to_fix(
    client: TestClient, params: dict[str, str], fix: str
) -> None:
    observe(client)
    response = client.get(f"{TEMPORAL}/{SENSOR}", params=params)
    assert response.status_code == 400, response.text
    assert fix in response.json()["detail"]


def test_query_without_entity_selection_is_refused(client: TestClient) -> None:
    response = client.get(TEMPORAL, params={"timerel": "after", "timeAt": hour(0)})
    assert response.status_code == 400
    assert "entity selection" in response.json()["detail"]


def test_a_new_platform_on_the_same_database_loses_nothing(settings: Settings) -> None:
    with admin_client(build_platform(settings)) as first:
        observe(first)
    with admin_client(build_platform(settings)) as second:
        assert [i["value"] for i in history(second)["temperature"]] == READINGS
        update = {"temperature": {"value": 30.0, "observedAt": hour(7)}}
        assert second.patch(f"{ENTITIES}/{SENSOR}/attrs", json=update).status_code == 204
        assert history(second, lastN="1")["temperature"][0]["value"] == 30.0


def test_history_can_be_dropped_with_the_entity(settings: Settings) -> None:
    dropping = settings.model_copy(update={"temporal_keep_history_on_delete": False})
    with admin_client(build_platform(dropping)) as client:
        observe(client)
        assert client.delete(f"{ENTITIES}/{SENSOR}").status_code == 204
        assert client.get(f"{TEMPORAL}/{SENSOR}").status_code == 404


def test_retention_prunes_old_instances(settings: Settings) -> None:
    from smartcity.broker.temporal_workers import HistoryRetention

    keeping = settings.model_copy(update={"temporal_retention": "P30D"})
    platform = build_platform(keeping)
    with admin_client(platform) as client:
        observe(client)  # observed in January 2026: older than 30 days by the wall clock
        update = {"temperature": {"value": 1.0}}  # no observedAt: kept at the time received
        assert client.patch(f"{ENTITIES}/{SENSOR}/attrs", json=update).status_code == 204
        history(client)  # catch up
        (retention,) = [w for w in platform.workers if isinstance(w, HistoryRetention)]
        assert retention.prune_once() == 6
        assert [i["value"] for i in history(client)["temperature"]] == [1.0]


def test_more_instances_than_the_limit_is_a_partial_answer(settings: Settings) -> None:
    limited = settings.model_copy(update={"temporal_instance_limit": 2})
    with admin_client(build_platform(limited)) as client:
        observe(client)
        response = client.get(f"{TEMPORAL}/{SENSOR}")
        assert response.status_code == 206
        assert response.headers["Content-Range"] == (
            "date-time 2026-01-01T00:00:00.000000Z-2026-01-01T01:00:00.000000Z/*"
        )
        assert [i["value"] for i in response.json()["temperature"]] == READINGS[:2]


def test_attrs_and_dataset_selection(client: TestClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Sensor:d1",
        "type": "Sensor",
        "temperature": [
            {"value": 1, "observedAt": hour(1)},
            {"value": 2, "observedAt": hour(1), "datasetId": "urn:ngsi-ld:Dataset:backup"},
        ],
        "humidity": [{"value": 50, "observedAt": hour(1)}],
    }
    assert client.post(TEMPORAL, json=body).status_code == 201
    path = f"{TEMPORAL}/urn:ngsi-ld:Sensor:d1"
    only = client.get(path, params={"attrs": "humidity"}).json()
    assert set(only) == {"id", "type", "humidity"}
    backup = client.get(path, params={"datasetId": "urn:ngsi-ld:Dataset:backup"}).json()
    assert [i["value"] for i in backup["temperature"]] == [2]
    default = client.get(path, params={"datasetId": "@none", "format": "temporalValues"}).json()
    assert default["temperature"] == {
        "type": "Property",
        "values": [[1, "2026-01-01T01:00:00.000000Z"]],
    }
    both = client.get(path, params={"attrs": "temperature", "format": "temporalValues"}).json()
    assert [item.get("datasetId") for item in both["temperature"]] == [
        None,
        "urn:ngsi-ld:Dataset:backup",
    ]
    missing = client.get(path, params={"attrs": "pressure"})
    assert missing.status_code == 404


def test_history_is_read_within_the_callers_visibility(
    client: TestClient, platform: Platform
) -> None:
    observe(client)
    observe(client, "urn:ngsi-ld:Sensor:t2")
    system = Caller.system()
    police = {"X-API-Key": platform.accounts.create_key(system, "police-1", ["agency"]).key}
    lamp = "urn:ngsi-ld:Streetlight:1"
    device = {"X-API-Key": platform.accounts.create_key(system, "lamp-1", ["device"], [lamp]).key}
    by_type = {"type": "Sensor", "count": "true"}
    # Nothing shared yet: the agency sees no history, and not even how much there is.
    hidden = client.get(TEMPORAL, params=by_type, headers=police)
    assert (hidden.json(), hidden.headers["NGSILD-Results-Count"]) == ([], "0")
    assert client.get(f"{TEMPORAL}/{SENSOR}", headers=police).status_code == 404
    assert client.get(f"{TEMPORAL}/urn:ngsi-ld:Sensor:none", headers=police).status_code == 404
    shared = client.post(
        "/auth/shares",
        json={"agency": "police-1", "entityId": SENSOR, "expiresAt": "2099-01-01T00:00:00Z"},
    )
    assert shared.status_code == 201, shared.text
    seen = client.get(TEMPORAL, params=by_type, headers=police)
    assert [e["id"] for e in seen.json()] == [SENSOR]
    assert seen.headers["NGSILD-Results-Count"] == "1"
    # Devices and anonymous callers do not read history; no one without a role writes it.
    assert client.get(f"{TEMPORAL}/{SENSOR}", headers=device).status_code == 403
    del client.headers["X-API-Key"]
    assert client.get(f"{TEMPORAL}/{SENSOR}").status_code == 401
    write = client.post(f"{TEMPORAL}/{SENSOR}/attrs", json={}, headers=police)
    assert write.status_code == 403
