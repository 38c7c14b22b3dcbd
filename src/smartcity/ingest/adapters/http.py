"""HTTP for the adapters: GET with a timeout and a size cap, every secret redacted from URLs.

The Seoul APIs carry their key in the URL (in the path for openapi.seoul.go.kr, in the query for
ws.bus.go.kr), so a URL is never logged, stored in a dead letter or put in an error message
before `redact` has replaced each key by `***`. httpx logs every request's URL at INFO level:
`SecretFilter` redacts those records too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

import httpx

from smartcity.ingest.adapters.base import PollFailure

REDACTED = "***"
MAX_BODY_BYTES = 16 * 1024 * 1024
"""No answer of these APIs comes near this (1,000 parking lots are about 1.5 MB)."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text`, as is and URL-encoded, by `***`."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
            text = text.replace(form, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """Redact the adapters' secrets from the records of the HTTP libraries' loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, self.secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_FILTER = SecretFilter()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_FILTER)


def hide_in_logs(secrets: Iterable[str]) -> None:
    """Make the HTTP libraries' log records redact these secrets from now on."""
    _FILTER.secrets.update(secret for secret in secrets if secret)


@dataclass(frozen=True, slots=True)
class Fetched:
    """One successful answer."""

    url: str
    """The URL asked, secrets redacted."""
    status: int
    body: bytes
    content_type: str | None


class Fetcher:
    """GET URLs through one httpx client, with a timeout; failures become PollFailure."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout: float,
        secrets: Iterable[str] = (),
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.secrets = [secret for secret in secrets if secret]
        self.max_bytes = max_bytes
        hide_in_logs(self.secrets)

    def redact(self, text: str) -> str:
        """Return `text` with this fetcher's secrets replaced by `***`."""
        return redact(text, self.secrets)

    def shown(self, url: str, params: Mapping[str, str] | None = None) -> str:
        """Return the URL a GET would ask, as it may be shown (secrets redacted)."""
        return self.redact(str(httpx.URL(url, params=params)))

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> Fetched:
        """GET `url`; raise PollFailure on a timeout, a transport error or a non-2xx status."""
        request = self.client.build_request("GET", url, params=params, timeout=self.timeout)
        shown = self.redact(str(request.url))
        try:
            response = await self.client.send(request, stream=True)
            try:
                if not 200 <= response.status_code < 300:
                    raise PollFailure("http", f"HTTP {response.status_code} from {shown}")
                body = await self._read(response, shown)
            finally:
                await response.aclose()
        except httpx.TimeoutException as error:
            raise PollFailure(
                "timeout",
                f"no answer within {self.timeout:g} s from {shown} ({type(error).__name__})",
            ) from None
        except httpx.HTTPError as error:
            # httpx messages may quote the URL: redact them too.
            detail = self.redact(str(error)) or type(error).__name__
            raise PollFailure("transport", f"{detail} ({shown})") from None
        return Fetched(shown, response.status_code, body, response.headers.get("content-type"))

    async def _read(self, response: httpx.Response, shown: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise PollFailure(
                    "too-large", f"the answer from {shown} exceeds {self.max_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)
