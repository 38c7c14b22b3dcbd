"""Shared parking: lots, availability, guidance, reservations, payment and forecasts."""
