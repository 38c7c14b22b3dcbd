"""Resolve the @context of a request: built-in, hosted, preloaded or fetched documents, cached.

The resolver keeps the documents it loaded (with when they expire, how often they were used,
and where they came from) so that the JSON-LD @context API can list, evict and reload them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from smartcity.broker.context_fetch import ACCEPT, fetch_document, fetch_refusal, unavailable
from smartcity.broker.core_context import is_core_context_url
from smartcity.broker.jsonld import (
    CORE,
    CORE_TERMS,
    NEVER,
    ActiveContext,
    ContextLoader,
    ProcessedContext,
    TermDefinition,
    build_context,
    process_context,
)
from smartcity.core.clock import Clock, SystemClock
from smartcity.core.errors import BadRequestData, LdContextNotAvailable

__all__ = [
    "CORE",
    "CORE_TERMS",
    "ActiveContext",
    "CachedDocument",
    "ContextLoader",
    "ContextResolver",
    "DocumentOrigin",
    "LocalContexts",
    "TermDefinition",
    "build_context",
    "smart_data_models_urls",
]

JSON = Any
LocalContexts = Callable[[str], "tuple[str, JSON] | None"]
"""Given a URL, return (local id, @context) when it names a context the broker hosts itself,
None when it names someone else's; raise LdContextNotAvailable for an unknown one of ours."""

_MAX_CACHED_DOCUMENTS: Final = 1024
_SDM_RAW: Final = "https://raw.githubusercontent.com/smart-data-models/"
_SDM_PAGES: Final = "https://smart-data-models.github.io/"


class DocumentOrigin(StrEnum):
    """Where a cached @context document came from."""

    FETCHED = "fetched"
    PRELOADED = "preloaded"
    HOSTED = "hosted"


@dataclass(slots=True)
class _Document:
    context: JSON
    expires: float
    origin: DocumentOrigin
    loaded_at: datetime
    path: Path | None = None
    hosted_id: str | None = None
    hits: int = 0
    last_used: float | None = None
    """When it was last used, on the monotonic clock (cheaper than a datetime per request)."""
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CachedDocument:
    """What the resolver holds for one @context URL."""

    url: str
    context: JSON
    origin: DocumentOrigin
    loaded_at: datetime
    expires_at: datetime | None
    hits: int
    last_used: datetime | None
    hosted_id: str | None


class ContextResolver:
    """Turn the @context of a request into an ActiveContext, loading and caching documents."""

    def __init__(
        self,
        *,
        allowed_hosts: list[str] | None = None,
        timeout: float = 3.0,
        preload: Mapping[str, str | Path] | Iterable[tuple[str, str | Path]] | None = None,
        cache_ttl: float = 3600.0,
        cache_size: int = 256,
        failure_ttl: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        local: LocalContexts | None = None,
        local_ttl: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self.allowed_hosts = None if allowed_hosts is None else list(allowed_hosts)
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.failure_ttl = failure_ttl
        self.local = local
        self.local_ttl = local_ttl
        """How long a hosted document is trusted before the store is asked again (another
        process may have deleted it)."""
        self.clock: Clock = clock or SystemClock()
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}
        self._documents: dict[str, _Document] = {}
        self._failures: dict[str, tuple[str, float]] = {}
        self._contexts: OrderedDict[str | bytes, ProcessedContext] = OrderedDict()
        items = preload.items() if isinstance(preload, Mapping) else preload or ()
        for url, path in items:
            self.preload_file(url, Path(path))

    # -- resolving --------------------------------------------------------------------------

    def cached(self, context: JSON) -> ActiveContext | None:
        """Return the active context if it is at hand without any I/O, else None."""
        if context is None or (isinstance(context, str) and is_core_context_url(context)):
            return CORE
        key = context if isinstance(context, str) else orjson.dumps(context)
        with self._lock:
            cached = self._contexts.get(key)
            if cached is None or cached.expires <= time.monotonic():
                return None
            self._contexts.move_to_end(key)
            if cached.urls:
                now = time.monotonic()
                for url in cached.urls:
                    document = self._documents.get(url)
                    if document is not None:
                        document.hits += 1
                        document.last_used = now
            return cached.active

    def resolve(self, context: JSON) -> ActiveContext:
        """Return the active context for a @context value (None means the core context)."""
        at_hand = self.cached(context)
        if at_hand is not None:
            return at_hand
        return self._remember(context, process_context(context, self._load))

    def check(self, context: JSON) -> ActiveContext:
        """Process a @context a user wants to keep: a reference that may not be fetched is
        BadRequestData rather than LdContextNotAvailable, since retrying will not help."""
        return self._remember(
            context, process_context(context, lambda url: self._load(url, strict=True))
        )

    def _remember(self, context: JSON, processed: ProcessedContext) -> ActiveContext:
        key = context if isinstance(context, str) else orjson.dumps(context)
        with self._lock:
            self._contexts[key] = processed
            self._contexts.move_to_end(key)
            while len(self._contexts) > self.cache_size:
                self._contexts.popitem(last=False)
        return processed.active

    # -- preloading -------------------------------------------------------------------------

    def preload_document(self, url: str, document: JSON, path: Path | None = None) -> None:
        """Serve a context document for a URL from memory, never from the network."""
        context = _context_member(url, document)
        entry = _Document(context, NEVER, DocumentOrigin.PRELOADED, self.clock.now(), path)
        with self._lock:
            self._documents[url] = entry
            self._failures.pop(url, None)
            self._contexts.clear()

    def preload_file(self, url: str, path: Path) -> None:
        """Serve the context document in a file for a URL."""
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise ValueError(f"cannot preload @context {url} from {path}: {error}") from None
        self.preload_document(url, document, path)

    def preload_directory(self, path: Path, base_url: str) -> None:
        """Serve every .jsonld/.json file under a folder at base_url + its relative path."""
        base = base_url if base_url.endswith("/") else base_url + "/"
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix in (".jsonld", ".json"):
                self.preload_file(base + file.relative_to(path).as_posix(), file)

    def preload_smart_data_models(self, root: Path) -> None:
        """Serve the Smart Data Models contexts under root at every URL clients use for them."""
        for file in sorted(root.glob("dataModel.*/context.jsonld")):
            for url in smart_data_models_urls(file.parent.name):
                self.preload_file(url, file)
        merged = root / "context.jsonld"
        if merged.is_file():
            for url in smart_data_models_urls("data-models"):
                self.preload_file(url, merged)
            # The legacy FIWARE data-models context, succeeded by the merged one (same IRIs).
            self.preload_file("https://fiware.github.io/data-models/context.jsonld", merged)

    # -- the cache, as the @context API sees it ---------------------------------------------

    def documents(self) -> list[CachedDocument]:
        """Return every document at hand (not expired), by URL."""
        with self._lock:
            now = time.monotonic()
            return [
                self._report(url, document)
                for url, document in sorted(self._documents.items())
                if document.expires > now
            ]

    def document(self, url: str) -> CachedDocument | None:
        """Return the document at hand for a URL, if any."""
        with self._lock:
            now = time.monotonic()
            document = self._documents.get(url)
            if document is None or document.expires <= now:
                return None
            return self._report(url, document)

    def evict(self, url: str) -> bool:
        """Forget a document and every active context built from it; tell if it was held."""
        with self._lock:
            held = self._documents.pop(url, None) is not None
            self._failures.pop(url, None)
            self._forget_contexts({url})
        return held

    def forget_hosted(self, hosted_id: str) -> None:
        """Forget a hosted context under every URL it was loaded by."""
        with self._lock:
            urls = {u for u, d in self._documents.items() if d.hosted_id == hosted_id}
            for url in urls:
                del self._documents[url]
            self._forget_contexts(urls)

    def reload(self, url: str) -> CachedDocument:
        """Load a document again (its file if preloaded, else over HTTP) and replace it."""
        current = self.document(url)
        if current is not None and current.origin is DocumentOrigin.PRELOADED:
            with self._lock:
                path = self._documents[url].path
            if path is None:
                raise unavailable(url, "it was preloaded from memory; there is no file to read")
            try:
                self.preload_file(url, path)
            except ValueError as error:
                raise LdContextNotAvailable(str(error)) from None
        else:
            self._check_allowed(url, url)
            self._load_locked(url, refresh=True)
        with self._lock:
            self._forget_contexts({url})
        reloaded = self.document(url)
        if reloaded is None:
            raise LdContextNotAvailable(f"@context {url} expired as soon as it was reloaded")
        return reloaded

    def _forget_contexts(self, urls: set[str]) -> None:
        for key in [k for k, c in self._contexts.items() if urls.intersection(c.urls)]:
            del self._contexts[key]

    def _report(self, url: str, document: _Document) -> CachedDocument:
        last_used = None
        if document.last_used is not None:
            ago = time.monotonic() - document.last_used
            last_used = self.clock.now() - timedelta(seconds=ago)
        return CachedDocument(
            url=url,
            context=document.context,
            origin=document.origin,
            loaded_at=document.loaded_at,
            expires_at=document.expires_at,
            hits=document.hits,
            last_used=last_used,
            hosted_id=document.hosted_id,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- loading ----------------------------------------------------------------------------

    def _at_hand(self, url: str) -> tuple[JSON, float] | None:
        with self._lock:
            document = self._documents.get(url)
            if document is None or document.expires <= time.monotonic():
                return None
            document.hits += 1
            document.last_used = time.monotonic()
            return document.context, document.expires

    def _keep(self, url: str, document: _Document) -> tuple[JSON, float]:
        with self._lock:
            _prune(self._documents, self._failures, time.monotonic())
            self._documents[url] = document
            self._failures.pop(url, None)
        return document.context, document.expires

    def _load(self, url: str, *, strict: bool = False) -> tuple[JSON, float]:
        at_hand = self._at_hand(url)
        if at_hand is not None:
            return at_hand
        if self.local is not None:
            try:
                found = self.local(url)
            except LdContextNotAvailable as error:
                if strict:
                    raise BadRequestData(error.detail) from None
                raise
            if found is not None:
                hosted_id, context = found
                now = self.clock.now()
                expires = time.monotonic() + self.local_ttl
                hosted = _Document(context, expires, DocumentOrigin.HOSTED, now, None, hosted_id)
                hosted.hits, hosted.last_used = 1, time.monotonic()
                hosted.expires_at = now + timedelta(seconds=self.local_ttl)
                return self._keep(url, hosted)
        refusal = fetch_refusal(url, self.allowed_hosts)
        if refusal is not None:
            if strict:
                raise BadRequestData(f"@context {url} cannot be used here: {refusal}")
            raise unavailable(url, refusal)
        return self._load_locked(url)

    def _load_locked(self, url: str, *, refresh: bool = False) -> tuple[JSON, float]:
        """Load a URL with at most one fetch of it at a time."""
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        try:
            with url_lock:
                return self._load_once(url, refresh=refresh)
        finally:
            with self._lock:
                self._url_locks.pop(url, None)

    def _load_once(self, url: str, *, refresh: bool = False) -> tuple[JSON, float]:
        now = time.monotonic()
        if not refresh:
            at_hand = self._at_hand(url)
            if at_hand is not None:
                return at_hand
            with self._lock:
                failure = self._failures.get(url)
                if failure is not None and failure[1] > now:
                    raise LdContextNotAvailable(failure[0])
        try:
            context = _context_member(
                url, fetch_document(self._http(), url, self.timeout, self.allowed_hosts)
            )
        except LdContextNotAvailable as error:
            with self._lock:
                _prune(self._documents, self._failures, now)
                self._failures[url] = (error.detail, time.monotonic() + self.failure_ttl)
            raise
        loaded_at = self.clock.now()
        fetched = _Document(
            context, time.monotonic() + self.cache_ttl, DocumentOrigin.FETCHED, loaded_at
        )
        fetched.expires_at = loaded_at + timedelta(seconds=self.cache_ttl)
        if not refresh:
            fetched.hits, fetched.last_used = 1, time.monotonic()
        return self._keep(url, fetched)

    def _check_allowed(self, url: str, current: str) -> None:
        refusal = fetch_refusal(current, self.allowed_hosts)
        if refusal is not None:
            raise unavailable(url, refusal)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.timeout,
                    transport=self._transport,
                    headers={"Accept": ACCEPT},
                )
            return self._client


def _prune(
    documents: dict[str, _Document], failures: dict[str, tuple[str, float]], now: float
) -> None:
    """Drop expired entries once the cache of documents or of failures grows large."""
    if len(documents) >= _MAX_CACHED_DOCUMENTS:
        for url in [url for url, document in documents.items() if document.expires <= now]:
            del documents[url]
    if len(failures) >= _MAX_CACHED_DOCUMENTS:
        for url in [url for url, (_, expires) in failures.items() if expires <= now]:
            del failures[url]


def smart_data_models_urls(repository: str) -> list[str]:
    """Return the URLs under which clients name a Smart Data Models repository's context."""
    return [
        f"{_SDM_RAW}{repository}/master/context.jsonld",
        f"{_SDM_RAW}{repository}/refs/heads/master/context.jsonld",
        f"{_SDM_PAGES}{repository}/context.jsonld",
    ]


def _context_member(url: str, document: JSON) -> JSON:
    if not isinstance(document, dict) or "@context" not in document:
        raise unavailable(url, "the document has no @context member")
    return document["@context"]
