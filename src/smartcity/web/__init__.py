"""HTTP adapter: the NGSI-LD API, health and metrics, over the platform's plain-Python core."""
