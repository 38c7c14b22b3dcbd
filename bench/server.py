"""The server under test as a real subprocess, and the fresh databases it runs on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

from bench.cpu import process_cpu_seconds
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import build_platform

API_KEY_VARIABLE = "SMARTCITY_BENCH_API_KEY"
"""Where the admin key the load generators send is kept (spawned processes inherit it)."""


def create_bench_key(database_url: str) -> str:
    """Create an admin API key in the database and publish it to the load generators."""
    platform = build_platform(Settings(database_url=database_url, context_offline=True))
    try:
        key = platform.accounts.create_key(Caller.system(), "bench-admin", ["admin"]).key
    finally:
        platform.close()
    os.environ[API_KEY_VARIABLE] = key
    return key


def auth_headers() -> dict[str, str]:
    """Return the header with the benchmark's API key (requests are authenticated, as in use)."""
    key = os.environ.get(API_KEY_VARIABLE)
    return {"X-API-Key": key} if key else {}


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def with_database(url: str, name: str) -> str:
    """Return a postgresql:// URL pointed at another database of the same server."""
    return urlsplit(url)._replace(path="/" + name).geturl()


@contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    """Create a fresh, empty database (dropping a leftover one), yield its URL, drop it."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def postgres_setting(admin_url: str, name: str) -> str:
    """Return one setting of the server (SHOW name)."""
    with psycopg.connect(admin_url) as connection:
        row = connection.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    return str(row[0]) if row else "?"


def postgres_version(admin_url: str) -> str:
    """Return the server's version (e.g. '15.20')."""
    return postgres_setting(admin_url, "server_version").split()[0]


class Server:
    """`smartcity serve` on a free port, started and stopped around a block."""

    def __init__(self, database_url: str, log_path: Path) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Return the server process id."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def cpu_seconds(self) -> float:
        """Return the CPU seconds the server has used so far (every thread)."""
        return process_cpu_seconds(self.pid)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until /health answers 200."""
        command = str(Path(sys.executable).with_name("smartcity"))
        create_bench_key(self.database_url)
        env = {
            **os.environ,
            "SMARTCITY_CONTEXT_OFFLINE": "true",
            "SMARTCITY_LOG_LEVEL": "warning",
        }
        args = [command, "serve", "--port", str(self.port), "--database-url", self.database_url]
        args += ["--log-level", "warning"]
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited at start; see {self.log_path}")
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the server did not answer /health in {timeout:g} s; see {self.log_path}"
        )

    def stop(self) -> None:
        """Stop the server (SIGINT, then SIGKILL after 15 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
