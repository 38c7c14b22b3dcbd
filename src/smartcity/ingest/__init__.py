"""Ingestion: devices, the IoT agent, validation and standardization, dead letters, open data."""
