"""Interoperability: the third-party ngsildclient drives a running broker."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.serving import create_admin_key, running_server

SESSION = Path(__file__).with_name("ngsildclient_session.py")
REPOSITORY = Path(__file__).resolve().parents[2]


def interop_python() -> str:
    """Return the Python of the environment that has ngsildclient (see `make interop-env`)."""
    configured = os.environ.get("SMARTCITY_INTEROP_PYTHON")
    default = REPOSITORY / ".venv-interop" / "bin" / "python"
    if configured:
        return configured
    if default.exists():
        return str(default)
    if os.environ.get("SMARTCITY_REQUIRE_SERVICES") == "1":
        pytest.fail("ngsildclient's environment is missing: run `make interop-env`")
    pytest.skip("ngsildclient's environment is missing: run `make interop-env`")


@pytest.mark.slow
def test_ngsildclient_create_query_upsert_delete(tmp_path: Path) -> None:
    python = interop_python()
    database_url = f"sqlite:///{tmp_path / 'interop.db'}"
    key = create_admin_key(database_url)
    with running_server(database_url) as url:
        port = url.rsplit(":", 1)[1]
        # The key goes to the child through argv; a test key for a throwaway database.
        completed = subprocess.run(
            [python, str(SESSION), "127.0.0.1", port, key],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report == {
        "created": 37,
        "upsert_ok": True,
        "after_upsert": 99,
        "query": [
            "urn:ngsi-ld:OffStreetParking:changdong-station",
            "urn:ngsi-ld:OffStreetParking:lot-1",
            "urn:ngsi-ld:OffStreetParking:lot-4",
            "urn:ngsi-ld:OffStreetParking:lot-5",
        ],
        "count": 6,
        "exists_after_delete": False,
    }
