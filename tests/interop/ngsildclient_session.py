"""Drive the broker with the third-party ngsildclient (runs in its own environment).

Usage: python ngsildclient_session.py HOST PORT API_KEY
Prints one JSON line with what each step observed; exits non-zero on any failure.
"""

import json
import sys
from typing import Any

from ngsildclient import Client, Entity


class ApiKey:
    """Send the platform's API key with every request (a requests auth callable)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request: Any) -> Any:
        request.headers["X-API-Key"] = self.key
        return request


def parking(name: str, available: int, lat: float, lon: float) -> Entity:
    entity = Entity("OffStreetParking", name)
    entity.prop("availableSpotNumber", available)
    entity.prop("totalSpotNumber", 120)
    entity.prop("name", f"창동 주차장 {name}")
    entity.gprop("location", (lat, lon))
    return entity


def main() -> None:
    host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = Client(hostname=host, port=port, verbose=False, custom_auth=ApiKey(key))
    report = {}

    first = parking("changdong-station", 37, 37.6531, 127.0477)
    client.create(first)
    fetched = client.get(first.id, asdict=True)
    report["created"] = fetched["availableSpotNumber"]["value"]

    batch = [parking(f"lot-{n}", n * 10, 37.65 + n / 1000, 127.05) for n in range(1, 6)]
    upserted = client.upsert(batch)
    report["upsert_ok"] = bool(upserted)
    batch[0]["availableSpotNumber"].value = 99
    client.upsert([batch[0]])
    report["after_upsert"] = client.get(batch[0].id, asdict=True)["availableSpotNumber"]["value"]

    found = client.query(type="OffStreetParking", q="availableSpotNumber>35")
    report["query"] = sorted(entity.id for entity in found)
    report["count"] = client.count(type="OffStreetParking")

    client.delete(first)
    report["exists_after_delete"] = client.exists(first.id)
    client.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
