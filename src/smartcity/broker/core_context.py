"""The NGSI-LD core @context (ETSI GS CIM 009, v1.9), written as our own compact table.

Most core terms map to ``ngsi-ld:<term>``; the rest differ only by an IRI renamed with ``has``,
a ``@type`` or a ``@container``. Building the document from these tables keeps the vocabulary
readable and lets a test compare it with the ETSI file term by term.
"""

from __future__ import annotations

import re
from typing import Any, Final

NGSI_LD_PREFIX: Final = "https://uri.etsi.org/ngsi-ld/"
GEOJSON_PREFIX: Final = "https://purl.org/geojson/vocab#"
CORE_VOCAB: Final = NGSI_LD_PREFIX + "default-context/"
CORE_CONTEXT_URL: Final = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"

_CORE_URL = re.compile(r"https://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.\d+)?\.jsonld")

# Terms whose IRI is ngsi-ld:<term>.
_PLAIN = """
    Attribute AttributeList ContextSourceIdentity ContextSourceNotification
    ContextSourceRegistration Date DateTime EntityMap EntityType EntityTypeInfo EntityTypeList
    ExecutionResultDetails GeoProperty JsonProperty LanguageProperty ListProperty
    ListRelationship Notification Property Relationship Snapshot SnapshotNotification
    Subscription TemporalProperty Time VocabProperty accept aggrParams aggrMethods
    aggrPeriodDuration attributeCount attributeDetails attrs cacheDuration collation
    contextSourceAlias contextSourceInfo contextSourceUptime cooldown csf data detail endpoint
    entities entity entityCount error errors expandValues format geoQ geoproperty georel idPattern
    information isActive join jsonKeys jsonldContext lang lastN linkedMaps localOnly location
    management managementInterval mode ngsildConformance notification notificationTrigger
    notifierInfo notUpdated observationInterval observationSpace omit operations
    operationSpace ordering pick q reason receiverInfo refreshRate registrationId
    registrationName resultStatus scope scopeQ showChanges snapshotId snapshotLifetime
    snapshotPriority snapshotStatus status subscriptionName sysAttrs temporalQ throttling
    timeInterval timeout timeproperty timerel timesFailed timesSent triggerReason unchanged
    unitCode updated uri
"""
# Terms whose IRI is ngsi-ld:has<Term>.
_HAS = "entityMapLifetime joinLevel key previousValue splitEntities value"
_DATETIME = """
    contextSourceTimeAt createdAt deletedAt endAt endTimeAt expiresAt lastFailure
    lastNotification lastSuccess lastUsedAt modifiedAt notifiedAt observedAt startAt timeAt
"""
_VOCAB = """
    attributeList attributeName attributeNames attributeTypes attributes propertyNames
    relationshipNames typeList typeName typeNames watchedAttributes
"""
_VOCAB_HAS = "objectType previousVocab valueType vocab"
_ID = "datasetId entityId instanceId subscriptionId success tenant"
_ID_HAS = "object previousObject"
_JSON = "contextSourceExtras problemDetails"
_JSON_HAS = "previousJson"
_LIST = """
    avg distinctCount entityList jsons max min orderBy snapshotQueries snapshotQueriesDetails
    snapshotTemporalQueries snapshotTemporalQueriesDetails stddev sum sumsq totalCount
"""
_LIST_HAS = """
    languageMaps objectList objectLists objects previousObjectList previousValueList valueList
    valueLists values vocabs
"""
_INDEX_HAS = "dataset entityMap"
_LANGUAGE_HAS = "languageMap previousLanguageMap"
_GEOJSON = """
    Feature FeatureCollection GeometryCollection LineString MultiLineString MultiPoint
    MultiPolygon Point Polygon geometry properties
"""
_OTHER: Final[dict[str, Any]] = {
    "containedBy": "ngsi-ld:isContainedBy",
    "json": {"@id": "ngsi-ld:hasJSON", "@type": "@json"},
    "bbox": {"@container": "@list", "@id": "geojson:bbox"},
    "coordinates": {"@container": "@list", "@id": "geojson:coordinates"},
    "features": {"@container": "@set", "@id": "geojson:features"},
    "description": "http://purl.org/dc/terms/description",
    "title": "http://purl.org/dc/terms/title",
    "langString": "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString",
    "ngsildproof": {
        "@id": "ngsi-ld:ngsildproof",
        "@context": [
            {
                "entityIdSealed": "ngsi-ld:entityIdSealed",
                "entityTypeSealed": {"@id": "ngsi-ld:entityTypeSealed", "@type": "@vocab"},
            },
            "https://w3id.org/security/data-integrity/v2",
        ],
    },
}


def _has(term: str) -> str:
    return "ngsi-ld:has" + term[0].upper() + term[1:]


def _typed(names: str, key: str, value: str, *, has: bool = False) -> dict[str, Any]:
    return {n: {"@id": _has(n) if has else "ngsi-ld:" + n, key: value} for n in names.split()}


def core_context_definition() -> dict[str, Any]:
    """Return the core @context's local context (the value of its ``@context`` member)."""
    definition: dict[str, Any] = {
        "@version": 1.1,
        "@protected": True,
        "ngsi-ld": NGSI_LD_PREFIX,
        "geojson": GEOJSON_PREFIX,
        "id": "@id",
        "type": "@type",
    }
    definition.update({n: "ngsi-ld:" + n for n in _PLAIN.split()})
    definition.update({n: _has(n) for n in _HAS.split()})
    definition.update({n: "geojson:" + n for n in _GEOJSON.split()})
    definition.update(_typed(_DATETIME, "@type", "DateTime"))
    definition.update(_typed(_VOCAB, "@type", "@vocab"))
    definition.update(_typed(_VOCAB_HAS, "@type", "@vocab", has=True))
    definition.update(_typed(_ID, "@type", "@id"))
    definition.update(_typed(_ID_HAS, "@type", "@id", has=True))
    definition.update(_typed(_JSON, "@type", "@json"))
    definition.update(_typed(_JSON_HAS, "@type", "@json", has=True))
    definition.update(_typed(_LIST, "@container", "@list"))
    definition.update(_typed(_LIST_HAS, "@container", "@list", has=True))
    definition.update(_typed(_INDEX_HAS, "@container", "@index", has=True))
    definition.update(_typed(_LANGUAGE_HAS, "@container", "@language", has=True))
    definition.update(_OTHER)
    definition["@vocab"] = CORE_VOCAB
    return definition


def core_context_document() -> dict[str, Any]:
    """Return the core @context document as served at its ETSI URL."""
    return {"@context": core_context_definition()}


def is_core_context_url(url: str) -> bool:
    """Tell whether a URL names the NGSI-LD core @context (any version)."""
    return _CORE_URL.fullmatch(url) is not None
