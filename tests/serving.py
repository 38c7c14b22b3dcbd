"""Run the real `smartcity serve` in a subprocess for tests that need a server on a port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import build_platform

TEST_SECRET = "test-secret-for-signing-bearer-tokens-0123456789"


def create_admin_key(database_url: str, tenant: str = "", name: str = "test-admin") -> str:
    """Create an admin API key in the server's database (as `smartcity key create` does)."""
    platform = build_platform(
        Settings(database_url=database_url, context_offline=True, auth_secret=TEST_SECRET)
    )
    try:
        return platform.accounts.create_key(Caller.system(tenant), name, ["admin"]).key
    finally:
        platform.close()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


PORT_ATTEMPTS = 3
"""Tries of a new free port when another test process took the chosen one first (xdist)."""


@contextmanager
def running_server(database_url: str, *extra: str, timeout: float = 30.0) -> Iterator[str]:
    """Start the server on a free port, wait until /health answers, yield its base URL."""
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        process = _start_server(port, database_url, extra)
        try:
            url = _wait_for_health(process, port, timeout)
        except _PortTaken:
            _stop(process)
            if attempt == PORT_ATTEMPTS - 1:
                raise RuntimeError(f"no free port after {PORT_ATTEMPTS} tries") from None
            continue
        except BaseException:
            _stop(process)
            raise
        try:
            yield url
        finally:
            _stop(process)
        return


class _PortTaken(Exception):
    """The port was free when chosen but taken before the server bound it."""


def _start_server(port: int, database_url: str, extra: tuple[str, ...]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "smartcity.cli",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--log-level",
        "warning",
        *extra,
    ]
    environment = {
        **os.environ,
        "SMARTCITY_CONTEXT_OFFLINE": "true",
        "SMARTCITY_AUTH_SECRET": TEST_SECRET,
    }
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait_for_health(process: subprocess.Popen[bytes], port: int, timeout: float) -> str:
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            if "address already in use" in output.lower():
                raise _PortTaken(port)
            raise RuntimeError(f"the server exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer /health within {timeout} s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()
