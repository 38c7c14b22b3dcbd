"""District service modules: mobility, safety, environment, tourism, economy."""
