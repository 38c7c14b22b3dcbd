"""The @context API service: hosting, resolving hosted contexts, and the cache of remote ones."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.broker.context_hosting import (
    HOSTED_PATH,
    ContextHostingService,
    ContextKind,
    HostedContextLookup,
    cache_id,
)
from smartcity.broker.contexts import ContextResolver, DocumentOrigin
from smartcity.core.clock import ManualClock
from smartcity.core.errors import (
    BadRequestData,
    ContextReloadFailed,
    Forbidden,
    LdContextNotAvailable,
    OperationNotSupported,
    ResourceNotFound,
    Unauthorized,
)
from smartcity.storage.hosted_contexts import SqlHostedContextStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.context_server import ContextServer

PUBLIC_URL = "https://broker.changdong.example"
EX = "https://example.org/"
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
OPERATOR = Caller("operator-kim", "", frozenset({Role.OPERATOR}))
ANALYST = Caller("analyst-lee", "", frozenset({Role.ANALYST}))
BuildService = Callable[..., ContextHostingService]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def build(tmp_path: Path, clock: ManualClock) -> Iterator[BuildService]:
    """Yield a function building a service over one SQLite database (each call: one process)."""
    opened: list[SqliteEntityStore] = []
    resolvers: list[ContextResolver] = []

    def build_service(
        allowed_hosts: list[str] | None = None, local_ttl: float = 60.0, **limits: Any
    ) -> ContextHostingService:
        database = SqliteEntityStore(tmp_path / "broker.db")
        opened.append(database)
        store = SqlHostedContextStore(database)
        lookup = HostedContextLookup(store, PUBLIC_URL + "/")
        resolver = ContextResolver(
            allowed_hosts=[] if allowed_hosts is None else allowed_hosts,
            timeout=10.0,  # a fetch from the local test server (a loaded CI took over 0.5 s)
            local=lookup,
            local_ttl=local_ttl,
            clock=clock,
        )
        resolvers.append(resolver)
        return ContextHostingService(store, resolver, lookup, clock, **limits)

    yield build_service
    for resolver in resolvers:
        resolver.close()
    for database in opened:
        database.close()


@pytest.fixture
def service(build: BuildService) -> ContextHostingService:
    return build()


def host(service: ContextHostingService, context: Any, caller: Caller = OPERATOR) -> str:
    return service.add(caller, {"@context": context}).id


# -- hosting and resolving -------------------------------------------------------------------------


def test_a_hosted_context_resolves_by_every_url_of_ours_without_fetching(
    service: ContextHostingService,
) -> None:
    context_id = host(service, {"speed": EX + "speed", "Bus": EX + "Bus"})
    assert service.serve(context_id) == {"@context": {"speed": EX + "speed", "Bus": EX + "Bus"}}
    for url in (
        PUBLIC_URL + HOSTED_PATH + context_id,
        HOSTED_PATH + context_id,
        "http://10.0.0.7:8000" + HOSTED_PATH + context_id,
    ):
        service.resolver.evict(url)
        active = service.resolver.resolve(url)
        assert active.expand("speed") == EX + "speed"
        assert active.compact(EX + "Bus") == "Bus"
    # The resolver runs offline: no URL of ours needed the remote allowlist.
    assert service.resolver.allowed_hosts == []


def test_an_unknown_id_of_ours_is_not_available(service: ContextHostingService) -> None:
    with pytest.raises(LdContextNotAvailable, match=r"no @context with id 'f+' is hosted here"):
        service.resolver.resolve(PUBLIC_URL + HOSTED_PATH + "f" * 32)
    with pytest.raises(LdContextNotAvailable, match="is hosted here"):
        service.resolver.resolve(HOSTED_PATH + "not-an-id")
    # Another broker's context of the same path is fetched like any other remote one.
    with pytest.raises(LdContextNotAvailable, match="offline"):
        service.resolver.resolve("https://other.example" + HOSTED_PATH + "f" * 32)


def test_hosted_contexts_may_build_on_each_other(service: ContextHostingService) -> None:
    base = host(service, {"ex": EX})
    derived = host(service, [HOSTED_PATH + base, {"speed": "ex:speed"}])
    assert service.resolver.resolve(HOSTED_PATH + derived).expand("speed") == EX + "speed"


def test_processes_on_one_database_share_hosted_contexts(build: BuildService) -> None:
    first, second = build(local_ttl=0), build(local_ttl=0)
    context_id = host(first, {"speed": EX + "speed"})
    url = PUBLIC_URL + HOSTED_PATH + context_id
    assert second.resolver.resolve(url).expand("speed") == EX + "speed"
    assert second.serve(context_id) == first.serve(context_id)
    first.delete(OPERATOR, context_id)
    with pytest.raises(LdContextNotAvailable, match="is hosted here"):
        second.resolver.resolve(url)


def test_a_deleted_context_stops_resolving_at_once(service: ContextHostingService) -> None:
    context_id = host(service, {"speed": EX + "speed"})
    url = HOSTED_PATH + context_id
    service.resolver.resolve(url)
    service.resolver.resolve([url, {"extra": EX + "extra"}])
    service.delete(OPERATOR, context_id)
    with pytest.raises(ResourceNotFound):
        service.serve(context_id)
    for context in (url, [url, {"extra": EX + "extra"}]):
        with pytest.raises(LdContextNotAvailable):
            service.resolver.resolve(context)


# -- checking documents ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([{"@context": {}}], "JSON object with an @context member"),
        ({"context": {}}, "JSON object with an @context member"),
        ({"@context": {"a": EX + "a"}, "id": "x"}, "only the @context member; remove id"),
        ({"@context": None}, "object, a URL, or a list"),
        ({"@context": 12}, "object, a URL, or a list"),
        ({"@context": [{"a": EX + "a"}, True]}, "not true"),
        ({"@context": []}, "empty list"),
        ({"@context": {"@graph": []}}, "@graph cannot appear in a @context"),
        ({"@context": {"a": "b", "b": "a"}}, "defined in a cycle"),
        ({"@context": {"a": 5}}, "must map to a string or an object"),
        ({"@context": "https://contexts.example/x.jsonld"}, "cannot be used here: the broker runs"),
        ({"@context": ["relative/ctx.jsonld"]}, "only absolute http"),
        ({"@context": [HOSTED_PATH + "0" * 32]}, "is hosted here"),
        ({"@context": {"big": "x" * 5000}}, "takes 5010 bytes; at most 4096"),
    ],
)
def test_bad_documents_are_refused_with_the_reason(
    build: BuildService, document: Any, message: str
) -> None:
    service = build(max_bytes=4096)
    with pytest.raises(BadRequestData, match=message):
        service.add(OPERATOR, document)
    assert service.list_contexts(OPERATOR, ContextKind.HOSTED) == []


def test_a_remote_reference_from_an_allowed_host_is_fetched_and_cached(
    build: BuildService, server: ContextServer
) -> None:
    service = build(allowed_hosts=["127.0.0.1"])
    remote = server.serve_json("/base.jsonld", {"@context": {"ex": EX}})
    context_id = host(service, [remote, {"speed": "ex:speed"}])
    assert service.resolver.resolve(HOSTED_PATH + context_id).expand("speed") == EX + "speed"
    assert server.hits["/base.jsonld"] == 1
    cached = service.list_contexts(OPERATOR, ContextKind.CACHED)
    assert [details.url for details in cached] == [remote]


def test_a_tenant_hosts_at_most_the_limit(build: BuildService) -> None:
    service = build(max_per_tenant=2)
    host(service, {"a": EX + "a"})
    host(service, {"b": EX + "b"})
    with pytest.raises(BadRequestData, match="hosts 2 @contexts already"):
        host(service, {"c": EX + "c"})
    host(service, {"c": EX + "c"}, Caller("operator-park", "north", frozenset({Role.ADMIN})))


# -- roles and tenants -----------------------------------------------------------------------------


def test_only_admins_and_operators_add_and_delete(service: ContextHostingService) -> None:
    with pytest.raises(Forbidden, match="admin or an operator"):
        host(service, {"a": EX + "a"}, ANALYST)
    context_id = host(service, {"a": EX + "a"})
    with pytest.raises(Forbidden):
        service.delete(ANALYST, context_id)
    with pytest.raises(Unauthorized, match="send a credential"):
        service.delete(Caller.anonymous(), context_id)
    admin = Caller("admin-choi", "", frozenset({Role.ADMIN}), PrincipalKind.USER)
    service.delete(admin, context_id)


def test_tenants_see_and_manage_only_their_own(service: ContextHostingService) -> None:
    north = Caller("operator-park", "north", frozenset({Role.OPERATOR}))
    context_id = host(service, {"a": EX + "a"}, north)
    assert [d.local_id for d in service.list_contexts(north, ContextKind.HOSTED)] == [context_id]
    assert service.list_contexts(OPERATOR, ContextKind.HOSTED) == []
    with pytest.raises(ResourceNotFound):
        service.details(OPERATOR, context_id)
    with pytest.raises(ResourceNotFound):
        service.delete(OPERATOR, context_id)
    # The document itself is public, as any published @context.
    assert service.serve(context_id) == {"@context": {"a": EX + "a"}}
    assert service.details(north, context_id).kind is ContextKind.HOSTED


def test_hosted_details(service: ContextHostingService) -> None:
    context_id = host(service, {"a": EX + "a"})
    details = service.details(OPERATOR, context_id, "http://ignored:8000")
    assert details.to_json() == {
        "URL": PUBLIC_URL + HOSTED_PATH + context_id,
        "localId": context_id,
        "kind": "Hosted",
        "timestamp": "2026-05-01T09:00:00.000000Z",
        "extraInfo": {"createdBy": "operator-kim"},
    }
    assert service.list_contexts(OPERATOR, ContextKind.IMPLICITLY_CREATED) == []


def test_a_hosted_context_cannot_be_reloaded(service: ContextHostingService) -> None:
    context_id = host(service, {"a": EX + "a"})
    with pytest.raises(BadRequestData, match="Cached @contexts only"):
        service.delete(OPERATOR, context_id, reload=True)
    assert service.serve(context_id)


def test_unknown_ids(service: ContextHostingService) -> None:
    for unknown in ("0" * 32, "nothing", "https://example.org/never-loaded.jsonld"):
        with pytest.raises(ResourceNotFound, match="no @context"):
            service.serve(unknown)
        with pytest.raises(ResourceNotFound):
            service.details(OPERATOR, unknown)
        with pytest.raises(ResourceNotFound):
            service.delete(OPERATOR, unknown)


# -- the cache of remote and preloaded contexts ----------------------------------------------------


def test_cached_contexts_report_loading_hits_and_last_use(
    build: BuildService, server: ContextServer, clock: ManualClock
) -> None:
    service = build(allowed_hosts=["127.0.0.1"])
    url = server.serve_json("/bus.jsonld", {"@context": {"Bus": EX + "Bus"}})
    service.resolver.resolve(url)
    clock.advance(timedelta(minutes=5))
    service.resolver.resolve(url)
    service.resolver.resolve([url, {"extra": EX + "extra"}])
    details = service.details(OPERATOR, url)
    assert service.details(OPERATOR, cache_id(url)).url == url
    body = details.to_json()
    assert body["kind"] == "Cached"
    assert body["localId"] == cache_id(url)
    assert body["timestamp"] == "2026-05-01T09:00:00.000000Z"
    # Last use is kept on the monotonic clock and told on the platform's: just before 09:05.
    assert "2026-05-01T09:04:59" <= body["lastUsage"] <= "2026-05-01T09:05:00.000000Z"
    assert body["numberOfHits"] == 3
    assert body["extraInfo"]["origin"] == "fetched"
    assert body["extraInfo"]["expiresAt"] == "2026-05-01T10:00:00.000000Z"
    assert server.hits["/bus.jsonld"] == 1


def test_a_cached_context_is_not_served_but_described(
    build: BuildService, server: ContextServer
) -> None:
    service = build(allowed_hosts=["127.0.0.1"])
    url = server.serve_json("/bus.jsonld", {"@context": {"Bus": EX + "Bus"}})
    service.resolver.resolve(url)
    with pytest.raises(OperationNotSupported, match="details=true"):
        service.serve(cache_id(url))
    with pytest.raises(OperationNotSupported):
        service.serve(url)


def test_evicting_a_cached_context_fetches_it_again_on_next_use(
    build: BuildService, server: ContextServer
) -> None:
    service = build(allowed_hosts=["127.0.0.1"])
    url = server.serve_json("/bus.jsonld", {"@context": {"Bus": EX + "Bus"}})
    service.resolver.resolve(url)
    service.delete(OPERATOR, cache_id(url))
    assert service.list_contexts(OPERATOR, ContextKind.CACHED) == []
    server.serve_json("/bus.jsonld", {"@context": {"Bus": EX + "Autobus"}})
    assert service.resolver.resolve(url).expand("Bus") == EX + "Autobus"
    assert server.hits["/bus.jsonld"] == 2


def test_reloading_replaces_the_cached_copy(build: BuildService, server: ContextServer) -> None:
    service = build(allowed_hosts=["127.0.0.1"])
    url = server.serve_json("/bus.jsonld", {"@context": {"Bus": EX + "Bus"}})
    assert service.resolver.resolve(url).expand("Bus") == EX + "Bus"
    server.serve_json("/bus.jsonld", {"@context": {"Bus": EX + "Autobus"}})
    service.delete(OPERATOR, url, reload=True)
    assert service.resolver.resolve(url).expand("Bus") == EX + "Autobus"
    assert server.hits["/bus.jsonld"] == 2
    server.routes.pop("/bus.jsonld")
    with pytest.raises(ContextReloadFailed, match="HTTP 404; the cached copy was kept"):
        service.delete(OPERATOR, url, reload=True)
    assert service.resolver.resolve(url).expand("Bus") == EX + "Autobus"
    assert ContextReloadFailed("x").status == 504


def test_preloaded_contexts_are_reloaded_from_their_file_not_deleted(
    service: ContextHostingService, tmp_path: Path
) -> None:
    path = tmp_path / "city.jsonld"
    url = "https://contexts.changdong.example/city.jsonld"
    path.write_text(json.dumps({"@context": {"Bus": EX + "Bus"}}))
    service.resolver.preload_file(url, path)
    assert service.resolver.resolve(url).expand("Bus") == EX + "Bus"
    with pytest.raises(BadRequestData, match="preloaded by the broker's configuration"):
        service.delete(OPERATOR, url)
    path.write_text(json.dumps({"@context": {"Bus": EX + "Autobus"}}))
    service.delete(OPERATOR, cache_id(url), reload=True)
    assert service.resolver.resolve(url).expand("Bus") == EX + "Autobus"
    path.write_text("{broken")
    with pytest.raises(ContextReloadFailed, match=r"city\.jsonld"):
        service.delete(OPERATOR, url, reload=True)
    (cached,) = service.resolver.documents()
    assert cached.origin is DocumentOrigin.PRELOADED
    assert cached.expires_at is None


def test_hosted_documents_are_not_listed_as_cached(service: ContextHostingService) -> None:
    context_id = host(service, {"a": EX + "a"})
    service.resolver.resolve(HOSTED_PATH + context_id)
    assert [d.kind for d in service.list_contexts(OPERATOR)] == [ContextKind.HOSTED]
    with pytest.raises(ResourceNotFound):
        service.details(OPERATOR, cache_id(HOSTED_PATH + context_id))
