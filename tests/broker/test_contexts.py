"""@context processing, the built-in core context, and the caching, fetching resolver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartcity.broker.contexts import CORE, ContextResolver, build_context
from smartcity.broker.core_context import (
    CORE_CONTEXT_URL,
    core_context_document,
    is_core_context_url,
)
from smartcity.core.errors import BadRequestData, LdContextNotAvailable
from tests.context_server import ContextServer

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT = NGSI_LD + "default-context/"
SDM = "https://smartdatamodels.org/"
PARKING_URL = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
)


# -- the core context ------------------------------------------------------------------------------


def test_core_context_equals_the_etsi_file(shared_data: Path) -> None:
    etsi = json.loads((shared_data / "ngsi-ld" / "ngsi-ld-core-context-v1.9.jsonld").read_text())
    ours = core_context_document()
    assert sorted(ours["@context"]) == sorted(etsi["@context"])
    for term, definition in etsi["@context"].items():
        assert ours["@context"][term] == definition, term
    assert ours == etsi


@pytest.mark.parametrize(
    "url",
    [
        CORE_CONTEXT_URL,
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld",
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
    ],
)
def test_core_context_urls_are_recognised(url: str) -> None:
    assert is_core_context_url(url)
    assert ContextResolver(allowed_hosts=[]).resolve(url) is CORE


@pytest.mark.parametrize(
    "url",
    [
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v2.jsonld",
        "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld?x",
    ],
)
def test_other_urls_are_not_the_core_context(url: str) -> None:
    assert not is_core_context_url(url)


def test_core_terms_expand_and_compact() -> None:
    assert CORE.expand("location") == NGSI_LD + "location"
    assert CORE.expand("observationSpace") == NGSI_LD + "observationSpace"
    assert CORE.expand("value") == NGSI_LD + "hasValue"
    assert CORE.expand("Point") == "https://purl.org/geojson/vocab#Point"
    assert CORE.compact(NGSI_LD + "location") == "location"
    assert CORE.compact(NGSI_LD + "hasObject") == "object"


def test_unknown_terms_use_the_default_vocabulary() -> None:
    assert CORE.expand("temperature") == DEFAULT + "temperature"
    assert CORE.compact(DEFAULT + "temperature") == "temperature"


def test_absolute_iris_stay_as_they_are() -> None:
    for iri in ("https://example.org/speed", "urn:ngsi-ld:thing", "http://x.org/a#b"):
        assert CORE.expand(iri) == iri
        assert CORE.compact(iri) == iri


def test_core_prefix_compacts_unknown_core_iris() -> None:
    assert CORE.expand("ngsi-ld:somethingNew") == NGSI_LD + "somethingNew"
    assert CORE.compact(NGSI_LD + "somethingNew") == "ngsi-ld:somethingNew"


def test_a_default_vocabulary_iri_shadowed_by_a_term_stays_reachable() -> None:
    ctx, _ = build_context({"location2": DEFAULT + "x", "x": "https://example.org/x"})
    assert ctx.compact(DEFAULT + "x") == "location2"
    assert ctx.compact("https://example.org/x") == "x"
    other, _ = build_context({"x": "https://example.org/x"})
    compacted = other.compact(DEFAULT + "x")
    assert other.expand(compacted) == DEFAULT + "x"


# -- user contexts ---------------------------------------------------------------------------------


def test_terms_prefixes_and_object_definitions() -> None:
    ctx, _ = build_context(
        {
            "sdm": SDM,
            "speed": "sdm:speed",
            "refRoad": {"@id": "sdm:refRoad", "@type": "@id"},
            "tags": {"@id": "https://example.org/tags", "@container": "@list"},
        }
    )
    assert ctx.expand("speed") == SDM + "speed"
    assert ctx.expand("refRoad") == SDM + "refRoad"
    assert ctx.expand("sdm:other") == SDM + "other"
    assert ctx.expand("tags") == "https://example.org/tags"
    assert ctx.compact(SDM + "speed") == "speed"
    assert ctx.compact(SDM + "other") == "sdm:other"
    definition = ctx.term("refRoad")
    assert definition is not None
    assert definition.type == "@id"
    tags = ctx.term("tags")
    assert tags is not None
    assert tags.container == ("@list",)


def test_user_terms_may_use_the_core_prefixes() -> None:
    ctx, _ = build_context({"myProp": "ngsi-ld:myProp", "shape": "geojson:shape"})
    assert ctx.expand("myProp") == NGSI_LD + "myProp"
    assert ctx.expand("shape") == "https://purl.org/geojson/vocab#shape"
    assert ctx.compact(NGSI_LD + "myProp") == "myProp"


def test_terms_may_use_prefixes_defined_after_them() -> None:
    ctx, _ = build_context({"speed": "ex:speed", "ex": "https://example.org/"})
    assert ctx.expand("speed") == "https://example.org/speed"


def test_only_terms_ending_in_a_delimiter_are_prefixes() -> None:
    ctx, _ = build_context({"thing": "https://example.org/thing"})
    assert ctx.expand("thing:x") == "thing:x"


def test_explicit_prefix_flag() -> None:
    ctx, _ = build_context({"ex": {"@id": "https://example.org/ns", "@prefix": True}})
    assert ctx.expand("ex:a") == "https://example.org/nsa"


def test_nested_arrays_apply_in_order() -> None:
    ctx, _ = build_context(
        [{"a": "https://one.org/a"}, [{"a": "https://two.org/a", "b": "https://two.org/b"}]]
    )
    assert ctx.expand("a") == "https://two.org/a"
    assert ctx.expand("b") == "https://two.org/b"


def test_null_clears_earlier_user_terms() -> None:
    ctx, _ = build_context([{"a": "https://one.org/a"}, None, {"b": "https://two.org/b"}])
    assert ctx.expand("a") == DEFAULT + "a"
    assert ctx.expand("b") == "https://two.org/b"


def test_core_terms_cannot_be_overridden() -> None:
    ctx, _ = build_context(
        {"location": "http://uri.etsi.org/ngsi-ld/location", "@vocab": "https://example.org/"}
    )
    assert ctx.expand("location") == NGSI_LD + "location"
    assert ctx.compact(NGSI_LD + "location") == "location"
    assert ctx.expand("unknownTerm") == DEFAULT + "unknownTerm"


def test_user_vocab_applies_to_its_own_term_definitions() -> None:
    ctx, _ = build_context({"@vocab": "https://example.org/", "speed": "velocity"})
    assert ctx.expand("speed") == "https://example.org/velocity"


def test_cyclic_term_definitions_are_refused() -> None:
    with pytest.raises(BadRequestData, match="cycle"):
        build_context({"a": "b", "b": "a"})


@pytest.mark.parametrize(
    "bad", [42, {"a": 3}, {"a": {"@id": 5}}, {"@vocab": 1}, {"@context": {"a": "urn:a"}}]
)
def test_malformed_contexts_are_refused(bad: Any) -> None:
    with pytest.raises(BadRequestData):
        build_context(bad)


def test_expansions_are_cached_per_context() -> None:
    ctx, _ = build_context({"speed": "https://example.org/speed"})
    first = ctx.expand("temperature")
    assert ctx.expand("temperature") is first
    compacted = ctx.compact("https://example.org/speed")
    assert ctx.compact("https://example.org/speed") is compacted


# -- preloading ------------------------------------------------------------------------------------


def example_context_urls(shared_data: Path) -> set[str]:
    urls: set[str] = set()
    for path in (shared_data / "smart-data-models").glob("*/*/example-normalized.jsonld"):
        context = json.loads(path.read_text())["@context"]
        for item in context if isinstance(context, list) else [context]:
            if isinstance(item, str):
                urls.add(item)
    return urls


def test_smart_data_models_are_served_at_every_url_the_examples_use(shared_data: Path) -> None:
    resolver = ContextResolver(allowed_hosts=[])
    resolver.preload_smart_data_models(shared_data / "smart-data-models")
    missing = []
    for url in sorted(example_context_urls(shared_data)):
        try:
            resolver.resolve(url)
        except LdContextNotAvailable:
            missing.append(url)
    # The Aeronautics repository is not among the shared data.
    assert missing == [
        "https://raw.githubusercontent.com/smart-data-models/dataModel.Aeronautics"
        "/refs/heads/master/context.jsonld"
    ]
    parking = resolver.resolve(PARKING_URL)
    assert parking.expand("ParkingSpot") == SDM + "dataModel.Parking/ParkingSpot"
    merged = resolver.resolve(
        "https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld"
    )
    assert merged.expand("ParkingSpot") == "https://uri.fiware.org/ns/data-models#ParkingSpot"


def test_preload_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    document = {"@context": {"speed": "https://example.org/speed"}}
    (tmp_path / "sub" / "ctx.jsonld").write_text(json.dumps(document))
    resolver = ContextResolver(allowed_hosts=[])
    resolver.preload_directory(tmp_path, "https://contexts.example.org/v1")
    ctx = resolver.resolve("https://contexts.example.org/v1/sub/ctx.jsonld")
    assert ctx.expand("speed") == "https://example.org/speed"
    preloaded = ContextResolver(
        allowed_hosts=[], preload={"https://a.example/c": tmp_path / "sub" / "ctx.jsonld"}
    )
    assert preloaded.resolve(["https://a.example/c"]).expand("speed") == (
        "https://example.org/speed"
    )


def test_preloading_a_file_that_is_not_a_context_fails(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonld"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.jsonld"):
        ContextResolver(allowed_hosts=[]).preload_file("https://a.example/c", path)


def test_resolved_contexts_are_cached(shared_data: Path) -> None:
    resolver = ContextResolver(allowed_hosts=[])
    resolver.preload_smart_data_models(shared_data / "smart-data-models")
    context = [PARKING_URL, {"extra": "https://example.org/extra"}]
    assert resolver.resolve(context) is resolver.resolve(list(context))
    assert resolver.resolve(None) is CORE


def test_offline_resolver_refuses_unknown_urls_at_once() -> None:
    resolver = ContextResolver(allowed_hosts=[], timeout=5)
    started = time.monotonic()
    with pytest.raises(LdContextNotAvailable, match="offline") as raised:
        resolver.resolve("https://contexts.example.org/ctx.jsonld")
    assert "https://contexts.example.org/ctx.jsonld" in raised.value.detail
    assert time.monotonic() - started < 1


# -- fetching over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def resolver() -> Iterator[ContextResolver]:
    made = ContextResolver(allowed_hosts=None, timeout=0.5)
    yield made
    made.close()


def test_a_remote_context_is_fetched_once(server: ContextServer, resolver: ContextResolver) -> None:
    url = server.serve_json("/ctx.jsonld", {"@context": {"speed": "https://example.org/speed"}})
    assert resolver.resolve(url).expand("speed") == "https://example.org/speed"
    assert resolver.resolve(url).expand("speed") == "https://example.org/speed"
    assert resolver.resolve([url, {"x": "https://example.org/x"}]).expand("x") == (
        "https://example.org/x"
    )
    assert server.hits["/ctx.jsonld"] == 1


def test_concurrent_requests_fetch_once(server: ContextServer, resolver: ContextResolver) -> None:
    url = server.serve_json("/ctx.jsonld", {"@context": {"speed": "https://example.org/speed"}})
    server.delay = 0.2
    results: list[str] = []

    def work(n: int) -> None:
        results.append(resolver.resolve([url, {f"t{n}": "https://example.org/t"}]).expand("speed"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == ["https://example.org/speed"] * 8
    assert server.hits["/ctx.jsonld"] == 1


def test_nested_remote_contexts_are_resolved(
    server: ContextServer, resolver: ContextResolver
) -> None:
    inner = server.serve_json("/inner.jsonld", {"@context": {"ex": "https://example.org/"}})
    outer = server.serve_json("/outer.jsonld", {"@context": [inner, {"speed": "ex:speed"}]})
    assert resolver.resolve(outer).expand("speed") == "https://example.org/speed"
    assert server.hits["/inner.jsonld"] == 1


def test_a_context_that_includes_itself_is_refused(
    server: ContextServer, resolver: ContextResolver
) -> None:
    url = server.base + "/loop.jsonld"
    server.serve_json("/loop.jsonld", {"@context": [url]})
    with pytest.raises(BadRequestData, match="includes itself"):
        resolver.resolve(url)


def test_expired_documents_are_fetched_again(server: ContextServer) -> None:
    url = server.serve_json("/ctx.jsonld", {"@context": {"speed": "https://example.org/speed"}})
    resolver = ContextResolver(timeout=10.0, cache_ttl=0)  # fetched from the local server
    try:
        resolver.resolve(url)
        resolver.resolve(url)
    finally:
        resolver.close()
    assert server.hits["/ctx.jsonld"] == 2


def assert_unavailable(resolver: ContextResolver, url: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(LdContextNotAvailable) as raised:
        resolver.resolve(url)
    assert time.monotonic() - started < resolver.timeout + 1
    assert url in raised.value.detail
    assert reason in raised.value.detail


def test_a_server_slower_than_the_timeout(server: ContextServer, resolver: ContextResolver) -> None:
    assert_unavailable(resolver, server.base + "/slow", "no answer within 0.5 s")


def test_an_unreachable_server(resolver: ContextResolver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert_unavailable(resolver, f"http://127.0.0.1:{port}/ctx.jsonld", "request failed")


def test_a_missing_document(server: ContextServer, resolver: ContextResolver) -> None:
    assert_unavailable(resolver, server.base + "/nothing.jsonld", "HTTP 404")


def test_a_document_that_is_not_json(server: ContextServer, resolver: ContextResolver) -> None:
    server.routes["/page.html"] = (200, b"<html>hello</html>")
    assert_unavailable(resolver, server.base + "/page.html", "not JSON")


def test_a_json_document_without_context(server: ContextServer, resolver: ContextResolver) -> None:
    url = server.serve_json("/plain.json", {"speed": 1})
    assert_unavailable(resolver, url, "no @context member")


def test_a_host_outside_the_allowlist(server: ContextServer) -> None:
    url = server.serve_json("/ctx.jsonld", {"@context": {}})
    resolver = ContextResolver(allowed_hosts=["contexts.example.org"], timeout=0.5)
    assert_unavailable(resolver, url, "not in the allowed @context hosts")
    assert server.hits["/ctx.jsonld"] == 0
    allowed = ContextResolver(allowed_hosts=["127.0.0.1"], timeout=10.0)  # fetched: no hurry
    try:
        allowed.resolve(url)
    finally:
        allowed.close()
    assert server.hits["/ctx.jsonld"] == 1


def test_offline_mode_never_fetches(server: ContextServer) -> None:
    url = server.serve_json("/ctx.jsonld", {"@context": {}})
    assert_unavailable(ContextResolver(allowed_hosts=[], timeout=0.5), url, "offline")
    assert server.hits["/ctx.jsonld"] == 0


def test_preloaded_urls_are_never_fetched(server: ContextServer, tmp_path: Path) -> None:
    url = server.serve_json("/ctx.jsonld", {"@context": {"speed": "https://remote.org/speed"}})
    path = tmp_path / "ctx.jsonld"
    path.write_text(json.dumps({"@context": {"speed": "https://local.org/speed"}}))
    resolver = ContextResolver(preload={url: path})
    assert resolver.resolve(url).expand("speed") == "https://local.org/speed"
    assert server.hits["/ctx.jsonld"] == 0


def test_failures_are_remembered_briefly(server: ContextServer, resolver: ContextResolver) -> None:
    url = server.base + "/later.jsonld"
    assert_unavailable(resolver, url, "HTTP 404")
    server.serve_json("/later.jsonld", {"@context": {}})
    assert_unavailable(resolver, url, "HTTP 404")
    assert server.hits["/later.jsonld"] == 1
