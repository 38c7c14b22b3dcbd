"""The district services, one folder per domain (mobility, safety, environment, ...)."""
