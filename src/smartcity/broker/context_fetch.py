"""Fetch remote @context documents over HTTP: the allowlist, redirects, size and time limits."""

from __future__ import annotations

import time
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from smartcity.core.errors import LdContextNotAvailable

JSON = Any
MAX_DOCUMENT_BYTES: Final = 4 * 1024 * 1024
MAX_REDIRECTS: Final = 5
ACCEPT: Final = "application/ld+json, application/json;q=0.9, */*;q=0.1"


def fetch_refusal(url: str, allowed_hosts: list[str] | None) -> str | None:
    """Return why a URL may not be fetched (None: any host, []: offline), or None if it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "only absolute http(s) URLs can be fetched"
    if allowed_hosts is None:
        return None
    if not allowed_hosts:
        return "the broker runs offline and has no preloaded copy of it"
    host = parts.hostname.lower()
    for allowed in allowed_hosts:
        pattern = allowed.lower()
        if host == pattern or parts.netloc.lower() == pattern:
            return None
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return None
    return f"host {host!r} is not in the allowed @context hosts"


def fetch_document(
    client: httpx.Client, url: str, timeout: float, allowed_hosts: list[str] | None
) -> JSON:
    """GET a JSON document, following redirects only to allowed hosts, within the timeout."""
    deadline = time.monotonic() + timeout
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        refusal = fetch_refusal(current, allowed_hosts)
        if refusal is not None:
            raise unavailable(url, refusal)
        try:
            with client.stream("GET", current) as response:
                if response.is_redirect and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise unavailable(url, f"the server answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise unavailable(url, "the document is larger than 4 MiB")
                    if time.monotonic() > deadline:
                        raise unavailable(url, f"no answer within {timeout:g} s")
        except httpx.TimeoutException:
            raise unavailable(url, f"no answer within {timeout:g} s") from None
        except httpx.HTTPError as error:
            reason = f"the request failed ({type(error).__name__}: {error})"
            raise unavailable(url, reason) from None
        try:
            return orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            raise unavailable(url, "the document is not JSON") from None
    raise unavailable(url, f"more than {MAX_REDIRECTS} redirects")


def unavailable(url: str, reason: str) -> LdContextNotAvailable:
    """Return the error for a @context that cannot be had, and why."""
    return LdContextNotAvailable(f"@context {url} is not available: {reason}")
