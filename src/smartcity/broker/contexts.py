"""Resolve JSON-LD @contexts into active contexts that expand and compact NGSI-LD names.

The term-definition processing follows JSON-LD 1.1 (prefix flags, compact IRIs, terms defined
in any order, @vocab, @import) for what NGSI-LD clients send; scoped contexts are kept but not
applied, since NGSI-LD names never need them. The core @context is always applied last, as
NGSI-LD brokers do: its terms and its @vocab cannot be overridden.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from smartcity.broker.core_context import CORE_VOCAB, core_context_definition, is_core_context_url
from smartcity.core.errors import BadRequestData, LdContextNotAvailable

JSON = Any
ContextLoader = Callable[[str], tuple[JSON, float]]

_GEN_DELIMS: Final = frozenset(":/?#[]@")
_MAX_REMOTE_DEPTH: Final = 16
_MAX_CACHED_NAMES: Final = 100_000
_MAX_DOCUMENT_BYTES: Final = 4 * 1024 * 1024
_MAX_REDIRECTS: Final = 5
_MAX_CACHED_DOCUMENTS: Final = 1024
_NEVER: Final = float("inf")
_SDM_RAW: Final = "https://raw.githubusercontent.com/smart-data-models/"
_SDM_PAGES: Final = "https://smart-data-models.github.io/"


@dataclass(frozen=True, slots=True)
class TermDefinition:
    """One processed term: its IRI and the @type/@container it declares."""

    iri: str
    type: str | None = None
    container: tuple[str, ...] = ()
    prefix: bool = False
    scoped_context: JSON = None


class ActiveContext:
    """An immutable processed @context: user terms under the protected NGSI-LD core terms."""

    __slots__ = ("_compacted", "_expanded", "_inverse", "_prefixes", "_terms", "source", "vocab")

    def __init__(
        self, terms: Mapping[str, TermDefinition], core: Mapping[str, TermDefinition], source: JSON
    ) -> None:
        self._terms: dict[str, TermDefinition] = {**terms, **core}
        self.vocab: str = CORE_VOCAB
        self.source: JSON = source
        self._prefixes = {t: d.iri for t, d in self._terms.items() if d.prefix}
        self._inverse = _inverse(terms, core)
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}

    def term(self, name: str) -> TermDefinition | None:
        """Return the definition of a term, if the context defines it."""
        return self._terms.get(name)

    def expand(self, term: str) -> str:
        """Return the IRI a term (or compact IRI, or IRI) stands for."""
        iri = self._expanded.get(term)
        if iri is None:
            iri = self._expand(term)
            if len(self._expanded) >= _MAX_CACHED_NAMES:
                self._expanded.clear()
            self._expanded[term] = iri
        return iri

    def compact(self, iri: str) -> str:
        """Return the shortest name that expands back to an IRI under this context."""
        name = self._compacted.get(iri)
        if name is None:
            name = self._compact(iri)
            if len(self._compacted) >= _MAX_CACHED_NAMES:
                self._compacted.clear()
            self._compacted[iri] = name
        return name

    def _expand(self, term: str) -> str:
        if term.startswith("@"):
            return term
        definition = self._terms.get(term)
        if definition is not None:
            return definition.iri
        prefix, colon, suffix = term.partition(":")
        if colon:
            if prefix == "_" or suffix.startswith("//"):
                return term
            base = self._prefixes.get(prefix)
            return base + suffix if base is not None else term
        return self.vocab + term

    def _compact(self, iri: str) -> str:
        candidates: list[str] = []
        term = self._inverse.get(iri)
        if term is not None:
            candidates.append(term)
        if iri.startswith(self.vocab) and len(iri) > len(self.vocab):
            candidates.append(iri[len(self.vocab) :])
        compact_iris = [
            f"{prefix}:{iri[len(base) :]}"
            for prefix, base in self._prefixes.items()
            if iri.startswith(base) and len(iri) > len(base)
        ]
        candidates.extend(sorted(compact_iris, key=lambda name: (len(name), name)))
        for name in candidates:
            if self._expand(name) == iri:
                return name
        return iri


def _inverse(
    terms: Mapping[str, TermDefinition], core: Mapping[str, TermDefinition]
) -> dict[str, str]:
    """Map IRIs to terms: a core IRI to its core term, others to the shortest user term."""
    inverse: dict[str, str] = {}
    for group in (core, terms):
        chosen: dict[str, str] = {}
        for term, definition in group.items():
            if definition.iri.startswith("@") or definition.iri in inverse:
                continue
            best = chosen.get(definition.iri)
            if best is None or (len(term), term) < (len(best), best):
                chosen[definition.iri] = term
        inverse.update(chosen)
    return inverse


class _Builder:
    """Process local contexts one after the other (the JSON-LD context processing algorithm)."""

    def __init__(
        self, load: ContextLoader, terms: Mapping[str, TermDefinition], protected: bool
    ) -> None:
        self.load = load
        self.terms: dict[str, TermDefinition] = dict(terms)
        self.vocab: str | None = CORE_VOCAB
        self.protected = protected
        self.expires = _NEVER

    def process(self, local: JSON, remote: tuple[str, ...] = (), base: str | None = None) -> None:
        for item in local if isinstance(local, list) else [local]:
            if item is None:
                self.terms, self.vocab = {}, CORE_VOCAB
            elif isinstance(item, str):
                self._process_remote(urljoin(base, item) if base else item, remote)
            elif isinstance(item, dict):
                self._process_object(item, remote, base)
            elif isinstance(item, list):
                self.process(item, remote, base)
            else:
                raise BadRequestData(
                    f"@context entries must be URLs, objects or null, not {_show(item)}"
                )

    def _process_remote(self, url: str, remote: tuple[str, ...]) -> None:
        if is_core_context_url(url):
            return
        if url in remote:
            raise BadRequestData(f"@context {url} includes itself (through {' -> '.join(remote)})")
        if len(remote) >= _MAX_REMOTE_DEPTH:
            raise BadRequestData(f"@context {url} nests more than {_MAX_REMOTE_DEPTH} contexts")
        context, expires = self.load(url)
        self.expires = min(self.expires, expires)
        self.process(context, (*remote, url), url)

    def _process_object(
        self, local: dict[str, Any], remote: tuple[str, ...], base: str | None
    ) -> None:
        if "@context" in local:
            raise BadRequestData(
                "a @context object cannot hold '@context': give the context, not its document"
            )
        if "@import" in local:
            url = local["@import"]
            if not isinstance(url, str):
                raise BadRequestData(f"@import must be a URL, not {_show(url)}")
            imported, expires = self.load(urljoin(base, url) if base else url)
            self.expires = min(self.expires, expires)
            if not isinstance(imported, dict):
                raise BadRequestData(f"@import {url} must name a context object")
            local = {**imported, **{k: v for k, v in local.items() if k != "@import"}}
        if "@vocab" in local:
            vocab = local["@vocab"]
            if vocab is not None and not isinstance(vocab, str):
                raise BadRequestData(f"@vocab must be an IRI or null, not {_show(vocab)}")
            self.vocab = None if vocab is None else self._expand_iri(vocab, local, {})
        defined: dict[str, bool] = {}
        for term in local:
            if not term.startswith("@"):
                self._define(local, term, defined)

    def _define(self, local: dict[str, Any], term: str, defined: dict[str, bool]) -> None:
        state = defined.get(term)
        if state is not None:
            if not state:
                raise BadRequestData(f"@context term {term!r} is defined in a cycle")
            return
        defined[term] = False
        if self.protected and term in CORE_TERMS:
            defined[term] = True
            return
        value = local[term]
        simple = isinstance(value, str)
        if value is None or (isinstance(value, dict) and value.get("@id", "") is None):
            self.terms.pop(term, None)
            defined[term] = True
            return
        if simple:
            value = {"@id": value}
        if not isinstance(value, dict):
            raise BadRequestData(f"@context term {term!r} must map to a string or an object")
        iri = self._term_iri(local, term, value, defined)
        declared_type = value.get("@type")
        if declared_type is not None:
            if not isinstance(declared_type, str):
                raise BadRequestData(f"@type of @context term {term!r} must be a string")
            if not declared_type.startswith("@"):
                declared_type = self._expand_iri(declared_type, local, defined)
        container = value.get("@container", ())
        containers = tuple(container) if isinstance(container, list) else (str(container),)
        explicit_prefix = value.get("@prefix")
        prefix = (
            bool(explicit_prefix)
            if explicit_prefix is not None
            else simple
            and ":" not in term
            and "/" not in term
            and (iri[-1:] in _GEN_DELIMS or iri.startswith("_:"))
        )
        self.terms[term] = TermDefinition(
            iri, declared_type, containers if container else (), prefix, value.get("@context")
        )
        defined[term] = True

    def _lookup(self, term: str) -> TermDefinition | None:
        """Find a term among those defined so far, then among the core's (always in scope)."""
        found = self.terms.get(term)
        if found is None and self.protected:
            found = CORE_TERMS.get(term)
        return found

    def _term_iri(
        self, local: dict[str, Any], term: str, value: dict[str, Any], defined: dict[str, bool]
    ) -> str:
        raw = value.get("@id", value.get("@reverse"))
        if raw is not None:
            if not isinstance(raw, str):
                raise BadRequestData(f"@id of @context term {term!r} must be a string")
            if raw.startswith("@"):
                return raw
            return self._expand_iri(raw, local, defined, defining=term)
        prefix, colon, suffix = term.partition(":")
        if colon:
            if prefix in local and prefix != term:
                self._define(local, prefix, defined)
            definition = self._lookup(prefix)
            return definition.iri + suffix if definition is not None else term
        if "/" in term:
            return term
        if self.vocab is None:
            raise BadRequestData(f"@context term {term!r} has no @id and there is no @vocab")
        return self.vocab + term

    def _expand_iri(
        self, value: str, local: dict[str, Any], defined: dict[str, bool], defining: str = ""
    ) -> str:
        if value.startswith("@"):
            return value
        if value != defining and value in local and not defined.get(value):
            self._define(local, value, defined)
        definition = self._lookup(value)
        if definition is not None:
            return definition.iri
        prefix, colon, suffix = value.partition(":")
        if colon:
            if prefix == "_" or suffix.startswith("//"):
                return value
            if prefix in local and not defined.get(prefix):
                self._define(local, prefix, defined)
            definition = self._lookup(prefix)
            if definition is not None and definition.prefix:
                return definition.iri + suffix
            return value
        return (self.vocab or "") + value


def _show(value: JSON) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _no_loader(url: str) -> tuple[JSON, float]:
    raise LdContextNotAvailable(f"@context {url} cannot be loaded here")


def _build_core() -> dict[str, TermDefinition]:
    builder = _Builder(_no_loader, {}, protected=False)
    builder.process(core_context_definition())
    return builder.terms


CORE_TERMS: Final[Mapping[str, TermDefinition]] = _build_core()
CORE: Final = ActiveContext({}, CORE_TERMS, None)


def build_context(context: JSON, load: ContextLoader = _no_loader) -> tuple[ActiveContext, float]:
    """Process a @context; return it and when the remote documents it used expire."""
    builder = _Builder(load, {}, protected=True)
    builder.process(context)
    return ActiveContext(builder.terms, CORE_TERMS, context), builder.expires


class ContextResolver:
    """Turn the @context of a request into an ActiveContext, fetching and caching documents."""

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
    ) -> None:
        self.allowed_hosts = None if allowed_hosts is None else list(allowed_hosts)
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.failure_ttl = failure_ttl
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}
        self._documents: dict[str, tuple[JSON, float]] = {}
        self._failures: dict[str, tuple[str, float]] = {}
        self._contexts: OrderedDict[str | bytes, tuple[ActiveContext, float]] = OrderedDict()
        items = preload.items() if isinstance(preload, Mapping) else preload or ()
        for url, path in items:
            self.preload_file(url, Path(path))

    def cached(self, context: JSON) -> ActiveContext | None:
        """Return the active context if it is at hand without any I/O, else None."""
        if context is None or (isinstance(context, str) and is_core_context_url(context)):
            return CORE
        key = context if isinstance(context, str) else orjson.dumps(context)
        with self._lock:
            cached = self._contexts.get(key)
            if cached is not None and cached[1] > time.monotonic():
                self._contexts.move_to_end(key)
                return cached[0]
        return None

    def resolve(self, context: JSON) -> ActiveContext:
        """Return the active context for a @context value (None means the core context)."""
        at_hand = self.cached(context)
        if at_hand is not None:
            return at_hand
        key = context if isinstance(context, str) else orjson.dumps(context)
        active, expires = build_context(context, self._load)
        with self._lock:
            self._contexts[key] = (active, expires)
            self._contexts.move_to_end(key)
            while len(self._contexts) > self.cache_size:
                self._contexts.popitem(last=False)
        return active

    def preload_document(self, url: str, document: JSON) -> None:
        """Serve a context document for a URL from memory, never from the network."""
        context = _context_member(url, document)
        with self._lock:
            self._documents[url] = (context, _NEVER)
            self._failures.pop(url, None)
            self._contexts.clear()

    def preload_file(self, url: str, path: Path) -> None:
        """Serve the context document in a file for a URL."""
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise ValueError(f"cannot preload @context {url} from {path}: {error}") from None
        self.preload_document(url, document)

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

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _load(self, url: str) -> tuple[JSON, float]:
        with self._lock:
            cached = self._documents.get(url)
            if cached is not None and cached[1] > time.monotonic():
                return cached
        self._check_allowed(url, url)
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        try:
            with url_lock:
                return self._load_once(url)
        finally:
            with self._lock:
                self._url_locks.pop(url, None)

    def _load_once(self, url: str) -> tuple[JSON, float]:
        now = time.monotonic()
        with self._lock:
            cached = self._documents.get(url)
            if cached is not None and cached[1] > now:
                return cached
            failure = self._failures.get(url)
            if failure is not None and failure[1] > now:
                raise LdContextNotAvailable(failure[0])
        try:
            context = _context_member(url, self._fetch(url))
        except LdContextNotAvailable as error:
            with self._lock:
                _prune(self._failures, now)
                self._failures[url] = (error.detail, time.monotonic() + self.failure_ttl)
            raise
        entry = (context, time.monotonic() + self.cache_ttl)
        with self._lock:
            _prune(self._documents, now)
            self._documents[url] = entry
            self._failures.pop(url, None)
        return entry

    def _fetch(self, url: str) -> JSON:
        deadline = time.monotonic() + self.timeout
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            self._check_allowed(url, current)
            try:
                with self._http().stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise _unavailable(url, f"the server answered HTTP {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > _MAX_DOCUMENT_BYTES:
                            raise _unavailable(url, "the document is larger than 4 MiB")
                        if time.monotonic() > deadline:
                            raise _unavailable(url, f"no answer within {self.timeout:g} s")
            except httpx.TimeoutException:
                raise _unavailable(url, f"no answer within {self.timeout:g} s") from None
            except httpx.HTTPError as error:
                reason = f"the request failed ({type(error).__name__}: {error})"
                raise _unavailable(url, reason) from None
            try:
                return orjson.loads(bytes(body))
            except orjson.JSONDecodeError:
                raise _unavailable(url, "the document is not JSON") from None
        raise _unavailable(url, f"more than {_MAX_REDIRECTS} redirects")

    def _check_allowed(self, url: str, current: str) -> None:
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _unavailable(url, "only absolute http(s) URLs can be fetched")
        if self.allowed_hosts is None:
            return
        if not self.allowed_hosts:
            raise _unavailable(url, "the broker runs offline and has no preloaded copy of it")
        host = parts.hostname.lower()
        for allowed in self.allowed_hosts:
            pattern = allowed.lower()
            if host == pattern or parts.netloc.lower() == pattern:
                return
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return
        raise _unavailable(url, f"host {host!r} is not in the allowed @context hosts")

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.timeout,
                    transport=self._transport,
                    headers={"Accept": "application/ld+json, application/json;q=0.9, */*;q=0.1"},
                )
            return self._client


def _prune(cache: dict[str, tuple[Any, float]], now: float) -> None:
    """Drop expired entries once a cache of remote documents or failures grows large."""
    if len(cache) >= _MAX_CACHED_DOCUMENTS:
        for url in [url for url, (_, expires) in cache.items() if expires <= now]:
            del cache[url]


def smart_data_models_urls(repository: str) -> list[str]:
    """Return the URLs under which clients name a Smart Data Models repository's context."""
    return [
        f"{_SDM_RAW}{repository}/master/context.jsonld",
        f"{_SDM_RAW}{repository}/refs/heads/master/context.jsonld",
        f"{_SDM_PAGES}{repository}/context.jsonld",
    ]


def _context_member(url: str, document: JSON) -> JSON:
    if not isinstance(document, dict) or "@context" not in document:
        raise _unavailable(url, "the document has no @context member")
    return document["@context"]


def _unavailable(url: str, reason: str) -> LdContextNotAvailable:
    return LdContextNotAvailable(f"@context {url} is not available: {reason}")
