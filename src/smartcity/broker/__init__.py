"""NGSI-LD context broker: contexts, entity codec, query planning and the entity service."""
