"""Process JSON-LD @contexts into active contexts that expand and compact NGSI-LD names.

The term-definition processing follows JSON-LD 1.1 (prefix flags, compact IRIs, terms defined
in any order, @vocab, @import) for what NGSI-LD clients send; scoped contexts are kept but not
applied, since NGSI-LD names never need them. The core @context is always applied last, as
NGSI-LD brokers do: its terms and its @vocab cannot be overridden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin

import orjson

from smartcity.broker.core_context import CORE_VOCAB, core_context_definition, is_core_context_url
from smartcity.core.errors import BadRequestData, LdContextNotAvailable

JSON = Any
ContextLoader = Callable[[str], tuple[JSON, float]]

_GEN_DELIMS: Final = frozenset(":/?#[]@")
_MAX_REMOTE_DEPTH: Final = 16
_MAX_CACHED_NAMES: Final = 100_000
NEVER: Final = float("inf")


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
        self.expires = NEVER
        self.urls: list[str] = []
        """Every remote document loaded, in order (a URL once)."""

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
        context = self._load(url)
        self.process(context, (*remote, url), url)

    def _load(self, url: str) -> JSON:
        context, expires = self.load(url)
        self.expires = min(self.expires, expires)
        if url not in self.urls:
            self.urls.append(url)
        return context

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
            imported = self._load(urljoin(base, url) if base else url)
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


@dataclass(frozen=True, slots=True)
class ProcessedContext:
    """An active context with the remote documents it was built from and when they expire."""

    active: ActiveContext
    expires: float
    urls: tuple[str, ...]


def process_context(context: JSON, load: ContextLoader = _no_loader) -> ProcessedContext:
    """Process a @context, loading the remote documents it names with `load`."""
    builder = _Builder(load, {}, protected=True)
    builder.process(context)
    active = ActiveContext(builder.terms, CORE_TERMS, context)
    return ProcessedContext(active, builder.expires, tuple(builder.urls))


def build_context(context: JSON, load: ContextLoader = _no_loader) -> tuple[ActiveContext, float]:
    """Process a @context; return it and when the remote documents it used expire."""
    processed = process_context(context, load)
    return processed.active, processed.expires
