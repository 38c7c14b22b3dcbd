"""Several worker processes serve one address over one database."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.serving import create_admin_key, running_server


@pytest.mark.slow
def test_two_workers_share_one_database(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'workers.db'}"
    key = create_admin_key(database_url)
    with running_server(database_url, "--workers", "2") as url:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
            for number in range(20):
                response = client.post(
                    "/ngsi-ld/v1/entities",
                    json={"id": f"urn:ngsi-ld:Streetlight:{number}", "type": "Streetlight"},
                )
                assert response.status_code == 201, response.text
            listed = client.get(
                "/ngsi-ld/v1/entities", params={"type": "Streetlight", "count": "true"}
            )
        assert listed.headers["NGSILD-Results-Count"] == "20"
