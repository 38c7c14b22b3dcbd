"""The JSON-LD @context API (NGSI-LD clause 5.13): host users' @contexts, manage the cache.

A hosted @context is served at `{public_url}/ngsi-ld/v1/jsonldContexts/{id}`. Its id is random
and unguessable, and serving its document needs no tenant: clients and other brokers fetch it by
URL alone, as they would any published @context. Listing, details and deletion are per tenant.
The cache of fetched and preloaded documents belongs to the broker process, not to a tenant.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from smartcity.auth.policy import Permission, allowed
from smartcity.auth.principal import Caller
from smartcity.broker.contexts import CachedDocument, ContextResolver, DocumentOrigin
from smartcity.core.clock import Clock, isoformat
from smartcity.core.errors import (
    BadRequestData,
    ContextReloadFailed,
    Forbidden,
    LdContextNotAvailable,
    OperationNotSupported,
    ResourceNotFound,
    Unauthorized,
)
from smartcity.storage.hosted_contexts import HostedContext, HostedContextStore

JSON = Any
HOSTED_PATH: Final = "/ngsi-ld/v1/jsonldContexts/"
_HOSTED_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_CONTEXT_KEYWORDS: Final = frozenset(
    {
        "@base",
        "@direction",
        "@import",
        "@language",
        "@propagate",
        "@protected",
        "@type",
        "@version",
        "@vocab",
    }
)


class ContextKind(StrEnum):
    """The kinds of stored @context NGSI-LD names."""

    HOSTED = "Hosted"
    CACHED = "Cached"
    IMPLICITLY_CREATED = "ImplicitlyCreated"


@dataclass(frozen=True, slots=True)
class ContextDetails:
    """What the broker tells about one stored @context (clause 5.13.3.5)."""

    url: str
    local_id: str
    kind: ContextKind
    timestamp: str
    last_usage: str | None = None
    number_of_hits: int | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object the API answers with."""
        body: dict[str, Any] = {
            "URL": self.url,
            "localId": self.local_id,
            "kind": self.kind.value,
            "timestamp": self.timestamp,
        }
        if self.last_usage is not None:
            body["lastUsage"] = self.last_usage
        if self.number_of_hits is not None:
            body["numberOfHits"] = self.number_of_hits
        if self.extra_info:
            body["extraInfo"] = self.extra_info
        return body


class HostedContextLookup:
    """Recognise the URLs of the broker's own hosted @contexts and read them from the store."""

    def __init__(self, store: HostedContextStore, public_url: str = "") -> None:
        self.store = store
        self.public_url = public_url.rstrip("/")

    def url_of(self, context_id: str, base_url: str = "") -> str:
        """Return the URL a hosted @context is served at."""
        return (self.public_url or base_url.rstrip("/")) + HOSTED_PATH + context_id

    def __call__(self, url: str) -> tuple[str, JSON] | None:
        """Return (id, @context) for a URL of ours; None for another's; raise for a missing one.

        A URL is surely ours when it is the bare path or under the public URL. Any other URL
        with the hosted path may be ours reached by another name (a proxy, an internal host):
        it is ours if the store holds its id, else it is left to be fetched like any other.
        """
        parts = urlsplit(url)
        path = parts.path
        index = path.find(HOSTED_PATH)
        if index < 0 or parts.query or parts.fragment:
            return None
        ours = (not parts.scheme and not parts.netloc and index == 0) or bool(
            self.public_url and url.startswith(self.public_url + HOSTED_PATH)
        )
        if not ours and not parts.scheme.startswith("http"):
            return None
        context_id = path[index + len(HOSTED_PATH) :]
        hosted = self.store.get(context_id) if _HOSTED_ID.match(context_id) else None
        if hosted is not None:
            return hosted.id, hosted.context
        if ours:
            raise LdContextNotAvailable(
                f"@context {url} is not available: no @context with id {context_id!r} "
                "is hosted here"
            )
        return None


class ContextHostingService:
    """Add, list, serve and delete @contexts; list, evict and reload cached ones."""

    def __init__(
        self,
        store: HostedContextStore,
        resolver: ContextResolver,
        lookup: HostedContextLookup,
        clock: Clock,
        *,
        max_bytes: int = 1024 * 1024,
        max_per_tenant: int = 1000,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.lookup = lookup
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_per_tenant = max_per_tenant

    def add(self, caller: Caller, document: JSON) -> HostedContext:
        """Check a document {"@context": ...} and host it in the caller's tenant."""
        _require_manager(caller, "add a @context")
        context = self.checked_document(document)
        hosted = HostedContext(
            id=uuid.uuid4().hex,
            tenant=caller.tenant,
            context=context,
            created_at=isoformat(self.clock.now()),
            created_by=caller.subject,
        )
        if not self.store.add(hosted, max_per_tenant=self.max_per_tenant):
            raise BadRequestData(
                f"this tenant hosts {self.max_per_tenant} @contexts already, the most it may; "
                "delete some it no longer needs"
            )
        return hosted

    def checked_document(self, document: JSON) -> JSON:
        """Return the @context of a document fit to host, or say what is wrong with it."""
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData(
                'the body must be a JSON object with an @context member: {"@context": {...}}'
            )
        others = sorted(name for name in document if name != "@context")
        if others:
            raise BadRequestData(
                "the body must hold only the @context member; remove " + ", ".join(others)
            )
        context = document["@context"]
        size = len(orjson.dumps(context))
        if size > self.max_bytes:
            raise BadRequestData(
                f"the @context takes {size} bytes; at most {self.max_bytes} are accepted"
            )
        items = context if isinstance(context, list) else [context]
        if not items:
            raise BadRequestData("the @context is an empty list: it would define nothing")
        for item in items:
            if not isinstance(item, str | dict):
                raise BadRequestData(
                    "a hosted @context must be an object, a URL, or a list of objects and URLs, "
                    f"not {orjson.dumps(item).decode()[:60]}"
                )
            if isinstance(item, dict):
                unknown = sorted(
                    k for k in item if k.startswith("@") and k not in _CONTEXT_KEYWORDS
                )
                if unknown:
                    raise BadRequestData(
                        f"{', '.join(unknown)} cannot appear in a @context (JSON-LD 1.1 allows "
                        + ", ".join(sorted(_CONTEXT_KEYWORDS))
                        + ")"
                    )
        self.resolver.check(context)
        return context

    def list_contexts(
        self, caller: Caller, kind: ContextKind | None = None, base_url: str = ""
    ) -> list[ContextDetails]:
        """List the caller's tenant's hosted @contexts and the broker's cached ones."""
        found: list[ContextDetails] = []
        if kind in (None, ContextKind.HOSTED):
            hosted = self.store.tenant_contexts(caller.tenant)
            found.extend(self._hosted_details(context, base_url) for context in hosted)
        if kind in (None, ContextKind.CACHED):
            found.extend(
                _cached_details(document)
                for document in self.resolver.documents()
                if document.origin is not DocumentOrigin.HOSTED
            )
        return found

    def details(self, caller: Caller, context_id: str, base_url: str = "") -> ContextDetails:
        """Describe one @context: a hosted one of the caller's tenant, or a cached one."""
        hosted = self.store.get(context_id) if _HOSTED_ID.match(context_id) else None
        if hosted is not None and hosted.tenant == caller.tenant:
            return self._hosted_details(hosted, base_url)
        cached = self._cached(context_id)
        if cached is None:
            raise _not_found(context_id)
        return _cached_details(cached)

    def serve(self, context_id: str) -> JSON:
        """Return the document of a hosted @context, whoever asks."""
        hosted = self.store.get(context_id) if _HOSTED_ID.match(context_id) else None
        if hosted is not None:
            return {"@context": hosted.context}
        if self._cached(context_id) is not None:
            raise OperationNotSupported(
                f"@context {context_id} is a cached copy of a remote one, which is not served "
                "here: fetch it from its URL, or ask for details=true",
                instance=context_id,
            )
        raise _not_found(context_id)

    def delete(self, caller: Caller, context_id: str, *, reload: bool = False) -> None:
        """Remove a hosted @context of the caller's tenant; evict or reload a cached one."""
        _require_manager(caller, "delete or reload a @context")
        hosted = self.store.get(context_id) if _HOSTED_ID.match(context_id) else None
        if hosted is not None and hosted.tenant == caller.tenant:
            if reload:
                raise BadRequestData(
                    "reload=true applies to Cached @contexts only: a Hosted one has no origin "
                    "to download it again from"
                )
            if not self.store.delete(caller.tenant, context_id):
                raise _not_found(context_id)
            self.resolver.forget_hosted(context_id)
            return
        cached = self._cached(context_id)
        if cached is None:
            raise _not_found(context_id)
        if reload:
            try:
                self.resolver.reload(cached.url)
            except LdContextNotAvailable as error:
                raise ContextReloadFailed(
                    f"{error.detail}; the cached copy was kept", instance=cached.url
                ) from None
        elif cached.origin is DocumentOrigin.PRELOADED:
            raise BadRequestData(
                f"@context {cached.url} is preloaded by the broker's configuration "
                "(context_preload_*) and cannot be deleted; reload=true reads its file again",
                instance=cached.url,
            )
        else:
            self.resolver.evict(cached.url)

    def _cached(self, context_id: str) -> CachedDocument | None:
        """Find a cached document by its local id or its URL."""
        document = self.resolver.document(context_id)
        if document is None and _HOSTED_ID.match(context_id):
            document = next(
                (d for d in self.resolver.documents() if cache_id(d.url) == context_id), None
            )
        if document is None or document.origin is DocumentOrigin.HOSTED:
            return None
        return document

    def _hosted_details(self, context: HostedContext, base_url: str) -> ContextDetails:
        return ContextDetails(
            url=self.lookup.url_of(context.id, base_url),
            local_id=context.id,
            kind=ContextKind.HOSTED,
            timestamp=context.created_at,
            extra_info={"createdBy": context.created_by},
        )


def cache_id(url: str) -> str:
    """Return the local id of a cached @context: the same in every process."""
    return hashlib.blake2b(url.encode(), digest_size=16).hexdigest()


def _cached_details(document: CachedDocument) -> ContextDetails:
    extra: dict[str, Any] = {"origin": document.origin.value}
    if document.expires_at is not None:
        extra["expiresAt"] = isoformat(document.expires_at)
    return ContextDetails(
        url=document.url,
        local_id=cache_id(document.url),
        kind=ContextKind.CACHED,
        timestamp=isoformat(document.loaded_at),
        last_usage=None if document.last_used is None else isoformat(document.last_used),
        number_of_hits=document.hits,
        extra_info=extra,
    )


def _require_manager(caller: Caller, action: str) -> None:
    if not allowed(caller, Permission.MANAGE_CONTEXTS):
        if not caller.authenticated:
            raise Unauthorized(f"to {action} send a credential (a bearer token or an API key)")
        raise Forbidden(f"only an admin or an operator may {action}")


def _not_found(context_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"no @context {context_id} is stored here", instance=context_id)
