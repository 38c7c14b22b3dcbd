"""What the figures were measured on: CPU, cores, memory, software versions, date."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import psycopg

from bench.server import postgres_setting, postgres_version


@dataclass(frozen=True)
class Machine:
    """The machine and software a run measured."""

    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    python: str
    sqlite: str
    postgres: str
    autovacuum: str
    shared_buffers: str
    packages: str
    commit: str
    date: str


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def describe_machine(postgres_admin_url: str | None) -> Machine:
    """Describe this machine and the software versions in use."""
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("fastapi", "starlette", "uvicorn", "psycopg", "httpx")
    )
    missing = [name for name in ("uvloop", "httptools") if find_spec(name) is None]
    if missing:
        packages += f" ({' and '.join(missing)} not installed: asyncio loop, h11 parser)"
    postgres, autovacuum, shared_buffers = "not used", "?", "?"
    if postgres_admin_url:
        try:
            postgres = postgres_version(postgres_admin_url)
            autovacuum = postgres_setting(postgres_admin_url, "autovacuum")
            shared_buffers = postgres_setting(postgres_admin_url, "shared_buffers")
        except psycopg.Error:
            postgres = "unreachable"
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=_memory_gib(),
        kernel=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        postgres=postgres,
        autovacuum=autovacuum,
        shared_buffers=shared_buffers,
        packages=packages,
        commit=_commit(),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
