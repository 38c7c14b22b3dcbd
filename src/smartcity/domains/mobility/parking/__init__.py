"""Shared parking: lots, availability, guidance, forecasts, reservations, tariffs, payment."""
