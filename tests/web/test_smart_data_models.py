"""Every Smart Data Models normalized example through the HTTP API: create, read, query back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.broker.test_codec_examples import EXAMPLES, INVALID, UNAVAILABLE

QUERY = "/ngsi-ld/v1/entityOperations/query"
LD_JSON = {"Content-Type": "application/ld+json", "Accept": "application/ld+json"}


def _scalar_attribute(example: dict[str, Any]) -> tuple[str, Any] | None:
    for name, attribute in example.items():
        if name in ("id", "type") or not isinstance(attribute, dict):
            continue
        value = attribute.get("value")
        plain = isinstance(value, (int, float, str)) and not isinstance(value, bool)
        if attribute.get("type") == "Property" and plain and not set(str(value)) & {'"', "\\"}:
            return name, value
    return None


def _q_literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _query(client: TestClient, context: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(
        QUERY, content=orjson.dumps({"@context": context, "type": "Query", **body}), headers=LD_JSON
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.parent.name)
def test_example_through_the_api(client: TestClient, path: Path) -> None:
    document = json.loads(path.read_text())
    context = document["@context"]
    example = {key: value for key, value in document.items() if key != "@context"}
    name = path.parent.name
    created = client.post("/ngsi-ld/v1/entities", content=orjson.dumps(document), headers=LD_JSON)
    if name in UNAVAILABLE:
        assert created.status_code == 503, created.text
        assert created.json()["type"].endswith("LdContextNotAvailable")
        return
    if name in INVALID:
        assert created.status_code == 400, created.text
        assert INVALID[name] in created.json()["detail"]
        return
    assert created.status_code == 201, created.text

    by_id = _query(client, context, {"entities": [{"id": example["id"], "type": example["type"]}]})
    assert [{k: v for k, v in e.items() if k != "@context"} for e in by_id] == [example]
    if isinstance(context, list) and len(context) == 1:
        link = f'<{context[0]}>; rel="http://www.w3.org/ns/json-ld#context"'
        url = "/ngsi-ld/v1/entities/" + quote(example["id"], safe="")
        shown = client.get(url, headers={"Link": link})
        assert shown.status_code == 200
        assert shown.json() == example

    simplified = _query(client, context, {"entities": [{"type": example["type"]}]})
    assert [e["id"] for e in simplified] == [example["id"]]
    key_values = client.post(
        QUERY + "?options=keyValues",
        content=orjson.dumps(
            {
                "@context": context,
                "type": "Query",
                "entities": [{"id": example["id"], "type": example["type"]}],
            }
        ),
        headers=LD_JSON,
    ).json()[0]
    for attribute, value in example.items():
        if attribute in ("id", "type"):
            assert key_values[attribute] == value
        elif isinstance(value, dict) and value.get("type") in ("Property", "GeoProperty"):
            assert key_values[attribute] == value["value"], attribute
        elif isinstance(value, dict) and value.get("type") == "Relationship":
            assert key_values[attribute] == value["object"], attribute

    chosen = _scalar_attribute(example)
    if chosen is not None:
        attribute, value = chosen
        q = f"{attribute}=={_q_literal(value)}"
        matched = _query(client, context, {"entities": [{"type": example["type"]}], "q": q})
        assert [e["id"] for e in matched] == [example["id"]], q
        missed = _query(
            client, context, {"entities": [{"type": example["type"]}], "q": f"!{attribute}"}
        )
        assert missed == []
