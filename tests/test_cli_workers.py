"""`smartcity workers`: notifications sent by a process of their own, beside an API process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from smartcity.config import Settings
from smartcity.platform import build_platform
from tests.sink import running_sink
from tests.web.conftest import admin_client
from tests.web.test_notifications import create_light, set_power, subscribe, values


def test_a_workers_process_notifies_changes_made_by_another_process(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    api = Settings(database_url=database, context_offline=True, notifications_enabled=False)
    environment = {
        **os.environ,
        "SMARTCITY_CONTEXT_OFFLINE": "true",
        "SMARTCITY_NOTIFICATION_POLL_INTERVAL": "0.05",
    }
    with running_sink() as sink, admin_client(build_platform(api)) as client:
        subscribe(client, sink.url + "/elsewhere")
        workers = subprocess.Popen(
            [sys.executable, "-m", "smartcity.cli", "workers", "--database-url", database],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            create_light(client, 1, "on")
            set_power(client, 1, "off")
            assert values(sink.wait_for("/elsewhere", 2, timeout=20)) == ["on", "off"]
        finally:
            workers.send_signal(signal.SIGINT)
            _, errors = workers.communicate(timeout=15)
        assert workers.returncode == 0, errors.decode()
