"""`smartcity adapters list|run`: what the adapters would poll, and one dry poll of one of them.

A dry run polls the API (or answers every request from a fixture file, when there is no network
or no key) and prints, as NGSI-LD entities, the updates it would store: nothing is published,
stored or kept as a dead letter. What it would refuse and why is printed to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TextIO

import httpx
import orjson
from pydantic import SecretStr

from smartcity.config import ADAPTER_KEYS, Settings
from smartcity.core.clock import Clock, SystemClock
from smartcity.core.errors import ConfigurationError
from smartcity.ingest.adapters import ADAPTER_NAMES, build_adapter
from smartcity.ingest.adapters.runner import Prepared, poll_adapter
from smartcity.ingest.ports import Standardizer

FIXTURE_KEY = "fixture"
"""The key a dry run from a fixture file uses when none is configured (nothing is sent)."""


def list_adapters(settings: Settings, out: TextIO | None = None) -> None:
    """Print every adapter: enabled or not, whether its key is set, what it polls."""
    out = out or sys.stdout
    enabled = set(settings.adapters_enabled)
    for name in ADAPTER_NAMES:
        key_setting = ADAPTER_KEYS[name]
        has_key = getattr(settings, key_setting) is not None
        with_key = settings if has_key else _with_key(settings, name, "none")
        adapter = build_adapter(with_key, name)
        state = "enabled" if name in enabled else "off"
        key = "key set" if has_key else f"no key ({key_setting})"
        print(f"{name:<8} {state:<8} {key:<36} {adapter.describe()}", file=out)


def run_adapter(
    settings: Settings,
    name: str,
    standardizer: Standardizer,
    *,
    once: bool,
    fixture: Path | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Poll one adapter (once, or on its schedule until interrupted) and print what it made."""
    out, err = out or sys.stdout, err or sys.stderr
    if fixture is not None and not fixture.is_file():
        raise ConfigurationError(f"fixture file {fixture} does not exist")
    if fixture is not None and getattr(settings, ADAPTER_KEYS[name], None) is None:
        settings = _with_key(settings, name, FIXTURE_KEY)
    adapter = build_adapter(settings, name)
    clock = clock or SystemClock()
    transport = _fixture_transport(fixture) if fixture is not None else None

    async def polls() -> int:
        failed = 0
        async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
            while True:
                prepared = await poll_adapter(
                    adapter,
                    client,
                    standardizer=standardizer,
                    tenant=settings.adapters_tenant,
                    request_timeout=settings.adapters_timeout,
                    clock=clock,
                )
                _print(prepared, out, err)
                failed = 1 if prepared.failures else 0
                if once:
                    return failed
                await asyncio.sleep(adapter.interval)

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(polls())
    return 0


def _with_key(settings: Settings, name: str, key: str) -> Settings:
    return settings.model_copy(update={ADAPTER_KEYS[name]: SecretStr(key)})


def _fixture_transport(fixture: Path) -> httpx.MockTransport:
    """Answer every request with the fixture file, as the API would (JSON or XML)."""
    body = fixture.read_bytes()
    kind = "text/xml" if fixture.suffix.lower() == ".xml" else "application/json"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": f"{kind};charset=UTF-8"})

    return httpx.MockTransport(answer)


def _print(prepared: Prepared, out: TextIO, err: TextIO) -> None:
    entities = [
        {"id": r.entity_id, "type": r.entity_type, **r.attributes, "@context": r.context}
        for r in prepared.readings
    ]
    out.write(orjson.dumps(entities, option=orjson.OPT_INDENT_2).decode() + "\n")
    for raw, rejected in prepared.rejected:
        where = f" at {rejected.path}" if rejected.path else ""
        print(
            f"would be a dead letter ({rejected.reason}, {rejected.stage}{where}): "
            f"{rejected.message} [from {raw.topic}]",
            file=err,
        )
    for failure in prepared.failures:
        print(f"request failed ({failure.kind}): {failure.message}", file=err)
    print(
        f"{len(prepared.readings)} entity updates, {len(prepared.rejected)} dead letters, "
        f"{len(prepared.failures)} failed of {prepared.requests} requests",
        file=err,
    )
