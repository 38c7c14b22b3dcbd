"""The live map under a flood of changes: does the browser keep drawing, and how late is it?

`python -m bench.livemap [--rates 500 2000 4000] [--seconds 20]` starts the real server with the
Changdong district on SQLite, opens /map in Debian's headless Chromium with an admin key, and
for each rate changes the 800 streetlights through the NGSI-LD batch API (5 batches a second).
It prints, per rate: the changes the broker committed per second, the entity states the page
received per second (the stream sends the newest state of each entity per read), the frames the
page drew per second and its longest frame, and how late a change reached the page.
Not part of `python -m bench`: it needs Chromium, and its figures depend on the browser's host.
`--write` puts the table into docs/benchmarks.md between its markers (replacing the last one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.server import create_bench_key, free_port

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MARK_START = "<!-- livemap:start -->"
MARK_END = "<!-- livemap:end -->"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
LINK = '<urn:smartcity:context:changdong>; rel="http://www.w3.org/ns/json-ld#context"'
BATCHES_PER_SECOND = 5
PROBE = "urn:ngsi-ld:Streetlight:{}"

MONITOR = """(probe) => {
  const m = {frames: 0, longest: 0, last: performance.now(), lags: [], probe: null, running: true};
  const frame = (now) => {
    m.longest = Math.max(m.longest, now - m.last); m.last = now; m.frames += 1;
    if (m.running) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  // How late the newest change of the first streetlight shows, sampled every 50 ms.
  m.timer = setInterval(() => {
    const light = window.livemap.entity(probe);
    const power = light && light.attributes.powerState;
    const observed = power && power.observedAt;
    if (observed && observed !== m.probe) {
      m.probe = observed;
      m.lags.push(Date.now() - Date.parse(observed));
    }
  }, 50);
  window.benchMonitor = m;
}"""
COLLECT = """() => {
  const m = window.benchMonitor; m.running = false; clearInterval(m.timer);
  const received = window.livemap.state.received;
  const s = window.livemap.state;
  return {frames: m.frames, longest: m.longest, lags: m.lags, received, flushMs: s.flushMs};
}"""


@dataclass(frozen=True)
class RateResult:
    """What one rate of changes did to the page."""

    target: int
    committed_per_second: float
    received_per_second: float
    frames_per_second: float
    longest_frame_ms: float
    flush_share: float
    """The share of the page's time spent applying changes and handing them to the map."""
    lag_median_ms: float
    lag_p95_ms: float


@contextmanager
def serving(database: Path) -> Iterator[str]:
    """Run `smartcity serve --district` on a free port; yield its URL."""
    with district_server(database) as (url, _):
        yield url


@contextmanager
def district_server(
    database: Path, settings: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `smartcity serve --district` on a free port with extra `SMARTCITY_*` settings;
    yield its URL and process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "SMARTCITY_CONTEXT_OFFLINE": "true",
        "SMARTCITY_AUTH_SECRET": "bench-secret-for-signing-bearer-tokens-0123456789",
        "SMARTCITY_LOG_LEVEL": "warning",
        **(settings or {}),
    }
    command = [sys.executable, "-m", "smartcity.cli", "serve", "--district", "--port", str(port)]
    command += ["--database-url", f"sqlite:///{database}"]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)


def streetlight_ids(url: str, key: str) -> list[str]:
    """Return the ids of the district's streetlights."""
    found: list[str] = []
    while True:
        page = httpx.get(
            f"{url}/ngsi-ld/v1/entities",
            params={"type": "Streetlight", "limit": 1000, "offset": len(found), "pick": "id"},
            headers={"X-API-Key": key, "Link": LINK},
            timeout=30,
        ).json()
        found.extend(entity["id"] for entity in page)
        if len(page) < 1000:
            return found


async def change_lights(url: str, key: str, ids: list[str], rate: int, seconds: float) -> int:
    """Change `rate` streetlights a second for `seconds`; return how many changes committed."""
    per_batch = max(rate // BATCHES_PER_SECOND, 1)
    states = ("on", "off", "low")
    committed = 0
    if rate <= 0:
        await asyncio.sleep(seconds)
        return 0
    headers = {"X-API-Key": key, "Link": LINK}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        started = time.monotonic()
        for tick in range(int(seconds * BATCHES_PER_SECOND)):
            due = started + tick / BATCHES_PER_SECOND
            await asyncio.sleep(max(due - time.monotonic(), 0))
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            chosen = [ids[(tick * per_batch + n) % len(ids)] for n in range(per_batch)]
            # The first streetlight is the probe: it changes in every batch.
            chosen[0] = ids[0]
            body = [
                {
                    "id": entity_id,
                    "type": "Streetlight",
                    "powerState": {
                        "type": "Property",
                        "value": states[(tick + n) % 3],
                        "observedAt": now,
                    },
                }
                for n, entity_id in enumerate(chosen)
            ]
            response = await client.post(f"{url}/ngsi-ld/v1/entityOperations/update", json=body)
            if response.status_code in (200, 204):
                committed += len(body)
    return committed


def measure(page: Any, url: str, key: str, ids: list[str], rate: int, seconds: float) -> RateResult:
    """Change the lights at one rate while the page's monitor runs."""
    page.evaluate(MONITOR, ids[0])
    flush_before = page.evaluate("() => window.livemap.state.flushMs")
    received_before = page.evaluate("() => window.livemap.state.received")
    started = time.monotonic()
    # Playwright's loop runs in this thread: the changes are made from another one.
    with ThreadPoolExecutor(1) as writer:
        committed = writer.submit(asyncio.run, change_lights(url, key, ids, rate, seconds)).result()
    page.wait_for_timeout(3000)  # the last changes reach the page
    elapsed = time.monotonic() - started
    figures = page.evaluate(COLLECT)
    lags = sorted(figures["lags"]) or [float("nan")]
    return RateResult(
        target=rate,
        committed_per_second=committed / seconds,
        received_per_second=(figures["received"] - received_before) / seconds,
        frames_per_second=figures["frames"] / elapsed,
        longest_frame_ms=figures["longest"],
        flush_share=(figures["flushMs"] - flush_before) / 1000 / elapsed,
        lag_median_ms=statistics.median(lags),
        lag_p95_ms=lags[min(int(len(lags) * 0.95), len(lags) - 1)],
    )


def run(rates: list[int], seconds: float, hidden: bool = False) -> list[RateResult]:
    """Measure every rate against one server and one page."""
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="bench-livemap-") as folder,
        serving(Path(folder) / "map.db") as url,
        sync_playwright() as playwright,
    ):
        key = create_bench_key(f"sqlite:///{Path(folder) / 'map.db'}")
        ids = streetlight_ids(url, key)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{url}/map")
            page.evaluate(
                "k => sessionStorage.setItem('smartcity.map.credential', "
                "JSON.stringify({kind: 'key', secret: k}))",
                key,
            )
            page.reload()
            page.wait_for_function("() => window.livemap && window.livemap.loadedAt", timeout=60e3)
            if hidden:  # the changes still arrive and are applied, but not drawn
                page.uncheck("#layer-list input[data-layer=streetlights]")
            return [measure(page, url, key, ids, rate, seconds) for rate in rates]
        finally:
            browser.close()


def table(results: list[RateResult]) -> str:
    """Return the figures as a markdown table."""
    lines = [
        "| changes/s asked | committed/s | states received by the page/s | frames/s "
        "| longest frame (ms) | page busy applying | lag median (ms) | lag p95 (ms) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lag = "– | –" if r.target == 0 else f"{r.lag_median_ms:.0f} | {r.lag_p95_ms:.0f}"
        lines.append(
            f"| {r.target} | {r.committed_per_second:.0f} | {r.received_per_second:.0f} "
            f"| {r.frames_per_second:.0f} | {r.longest_frame_ms:.0f} | {r.flush_share:.1%} "
            f"| {lag} |"
        )
    return "\n".join(lines)


def write_table(text: str, seconds: float, load: float) -> None:
    """Replace the table between the live map's markers in docs/benchmarks.md."""
    current = DOCS.read_text()
    if MARK_START not in current or MARK_END not in current:
        raise SystemExit(f"{DOCS} has no {MARK_START} ... {MARK_END} section to replace")
    before, rest = current.split(MARK_START, 1)
    after = rest.split(MARK_END, 1)[1]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = (
        f"Measured {when} by `python -m bench.livemap --seconds {seconds:g}`; the machine's "
        f"load average was {load:.1f} just before (other work on the 2 cores)."
    )
    DOCS.write_text(f"{before}{MARK_START}\n{heading}\n\n{text}\n{MARK_END}{after}")


def main() -> None:
    """Run the measurement and print a table (and write it with --write)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[0, 500, 2000, 4000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--hidden", action="store_true", help="hide the streetlights layer (apply, do not draw)"
    )
    parser.add_argument("--write", action="store_true", help="write the table into the docs")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = run(args.rates, args.seconds, args.hidden)
    text = table(results)
    print(text)
    if args.write and not args.hidden:
        write_table(text, args.seconds, load)


if __name__ == "__main__":
    main()
